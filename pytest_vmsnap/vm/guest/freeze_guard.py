"""The freeze guard: freezes file systems, and makes sure they are thawed again whatever happens.

It plays the part of the Azure extension's ``safefreeze`` helper (azure-framework.md 7.2 and 8)
and is started by :class:`pytest_vmsnap.vm.freeze.GuardFreezer` as::

    python -B -S -m pytest_vmsnap.vm.guest.freeze_guard --timeout SECONDS [--parent PID] \
        MOUNT [MOUNT...]

Lines on stdout (each one write(2), so nothing is buffered; the parent reads them):

``FREEZING``
    the first FIFREEZE is about to be issued (before this line nothing was frozen);
``FROZEN <monotonic>``
    every mount is frozen (CLOCK_MONOTONIC, the same clock as the parent's ``time.monotonic``);
``THAWED <monotonic> <json>``
    thaw done; the JSON maps each mount that was thawed to the seconds it stayed frozen;
``THAW-FAILED <json>``
    mount -> error for every FITHAW that failed;
anything else
    a message: ``Failed to open: <path>``, ``Failed to freeze: <path>: <error>``,
    ``Failed to receive timely Thaw``, ``Thaw requested by SIGUSR1``, ...

Exit status: 0 when it thawed on request (a thaw signal or the parent's death) after reporting
FROZEN, and every thaw succeeded; 1 on an open or freeze failure (including a thaw request before
FROZEN), on its timeout, or when a thaw failed; 2 on bad usage.

Ways the thaw happens (any one is enough):

1. a thaw signal (HUP INT QUIT ABRT PIPE TERM USR1 USR2 TSTP TTIN TTOU): the handler thaws at once;
2. the parent's death: PR_SET_PDEATHSIG sends SIGHUP, and ``getppid()`` is checked every tick in
   case the parent died before the prctl;
3. the timeout, counted from the moment everything was frozen (main loop, 10 ms ticks);
4. watchdog 1: SIGALRM from an interval timer just after the deadline; its handler thaws and
   exits even when the main loop is stuck in a blocking call;
5. watchdog 2: a thread, a little later, for a main thread that never gets back to Python.

Like ``safefreeze`` it cannot help against SIGKILL or SIGSTOP of itself, or a FIFREEZE that never
returns (watchdog 2 still thaws the mounts frozen before it); unlike it, the parent's death is a
thaw signal too. For a guard that stops answering, GuardFreezer.close() issues FITHAW itself.

The guard writes nothing to disk: once a file system is frozen any write to it would block the
guard in D state, and with it the thaw. So every module is imported before the first FIFREEZE and
no bytecode is written.
"""

import sys

if __name__ == "__main__":  # not when merely imported (the tests read its constants)
    sys.dont_write_bytecode = True  # before any further import: no .pyc may be written

import argparse
import contextlib
import ctypes
import fcntl
import json
import math
import os
import signal
import stat
import threading
import time

from ..linux import FIFREEZE, FITHAW

PR_SET_PDEATHSIG = 1
TICK_S = 0.01
ALARM_GRACE_S = 0.2  # watchdog 1 fires this long after the deadline
THREAD_GRACE_S = 0.5  # watchdog 2 fires this long after the deadline
PARENT_DEATH_SIGNAL = signal.SIGHUP
THAW_SIGNALS = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGABRT,
    signal.SIGPIPE,
    signal.SIGTERM,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
)
SIGNAL_NAMES = {int(s): s.name for s in (*THAW_SIGNALS, signal.SIGALRM)}
# Fault injection for the tests only: "loop" stalls the main thread in a blocking wait after
# FROZEN (signal handlers still run); "hard" also blocks every signal in it, so only the
# watchdog thread is left to thaw.
STALL_ENV = "VMSNAP_GUARD_STALL"


def emit(line: str) -> None:
    """Write one line to stdout with a single write(2); a parent that is gone is not an error."""
    with contextlib.suppress(OSError):
        os.write(1, (line + "\n").encode("utf-8", "replace"))


class Guard:
    """Holds the open mounts and the freeze state; every thaw path goes through :meth:`finish`."""

    def __init__(self, paths: list[str], timeout_s: float, parent: int) -> None:
        self.paths = paths
        self.timeout_s = timeout_s
        self.parent = parent
        self.fds: list[int] = []
        self.frozen: list[tuple[str, int, float]] = []  # (path, fd, frozen at), freeze order
        self.thawed: dict[str, float] = {}
        self.thaw_failed: dict[str, str] = {}
        self.phase = "start"  # start -> freezing -> waiting -> done
        self.requested: str | None = None
        self.deadline = math.inf
        self.lock = threading.Lock()  # held around each FIFREEZE and by whoever finishes
        self.entry_lock = threading.Lock()  # one FITHAW per entry, even from two threads
        self.stall = os.environ.get(STALL_ENV, "")

    # -- signals -----------------------------------------------------------------------------

    def on_thaw_signal(self, signum: int, frame: object) -> None:
        if self.requested is None:
            self.requested = SIGNAL_NAMES.get(signum, str(signum))
        if self.phase == "waiting":
            # Thaw right here: this also works while the main loop is blocked somewhere.
            self.finish(f"Thaw requested by {self.requested}", 0, wait_s=0)
        # While freezing, the freeze loop sees the request after the current FIFREEZE.

    def on_alarm(self, signum: int, frame: object) -> None:
        if self.phase == "waiting":
            self.finish("Failed to receive timely Thaw (watchdog timer)", 1, wait_s=0)
        elif self.requested is None:
            self.requested = "watchdog timer"

    def install_handlers(self) -> None:
        for sig in THAW_SIGNALS:
            signal.signal(sig, self.on_thaw_signal)
        signal.signal(signal.SIGALRM, self.on_alarm)

    def watch_parent(self) -> bool:
        """Make the parent's death a thaw signal; False if the parent is already gone."""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0) != 0:
            emit(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
        return os.getppid() == self.parent  # it may have died before the prctl

    # -- freeze / thaw -----------------------------------------------------------------------

    def open_all(self) -> bool:
        for path in self.paths:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                emit(f"Failed to open: {path}")
                return False
            self.fds.append(fd)
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                # Opened, but not a directory: safefreeze's message is not "Failed to open",
                # so the extension reports 121, not 123 (errata E6).
                emit(f"Not a directory: {path}")
                return False
        return True

    def freeze_all(self) -> None:
        """FIFREEZE in argv order; on any failure or thaw request, thaw what is frozen and exit."""
        self.phase = "freezing"
        self.arm(time.monotonic() + self.timeout_s)
        emit("FREEZING")
        failure = ""
        for path, fd in zip(self.paths, self.fds, strict=True):
            with self.lock:
                if self.requested:
                    failure = f"Thaw requested by {self.requested} before every mount was frozen"
                    break
                try:
                    fcntl.ioctl(fd, FIFREEZE, 0)
                except OSError as err:
                    failure = f"Failed to freeze: {path}: {os.strerror(err.errno or 0)}"
                    break
                self.frozen.append((path, fd, time.monotonic()))
        if failure:
            also = self.thaw_every_opened()
            if also:
                failure += (
                    f"; FITHAW on every opened mount, as safefreeze does, also thawed "
                    f"{', '.join(also)}, which something else had frozen"
                )
            self.finish(failure, 1)
        now = time.monotonic()
        self.phase = "waiting"  # from here a thaw signal's handler thaws by itself
        self.arm(now + self.timeout_s)
        if self.requested:  # it came while freezing: FROZEN was never reported
            self.finish(f"Thaw requested by {self.requested} before FROZEN was reported", 1)
        emit(f"FROZEN {now:.6f}")

    def thaw_every_opened(self) -> list[str]:
        """After a failed FIFREEZE, safefreeze issues FITHAW on every descriptor it opened, in
        reverse, not only on those it froze (errata E6): a mount that a pre-script froze gets
        thawed too. Returns those (the ones this guard did not freeze that were frozen)."""
        ours = {path for path, _, _ in self.frozen}
        also = []
        with self.lock:
            for path, fd in reversed(list(zip(self.paths, self.fds, strict=False))):
                if path in ours:
                    since = next(t for p, _, t in self.frozen if p == path)
                    self.thaw_one(path, fd, since)
                    continue
                try:
                    fcntl.ioctl(fd, FITHAW, 0)
                except OSError:
                    continue  # not frozen (EINVAL): the usual case
                also.append(path)
        return also

    def arm(self, deadline: float) -> None:
        self.deadline = deadline
        delay = deadline - time.monotonic() + ALARM_GRACE_S
        signal.setitimer(signal.ITIMER_REAL, max(0.001, delay))

    def thaw_one(self, path: str, fd: int, since: float) -> None:
        with self.entry_lock:
            if path in self.thawed or path in self.thaw_failed:
                return
            try:
                fcntl.ioctl(fd, FITHAW, 0)
            except OSError as err:
                self.thaw_failed[path] = os.strerror(err.errno or 0)
            else:
                self.thawed[path] = round(time.monotonic() - since, 6)

    def finish(self, reason: str, code: int, *, wait_s: float = -1) -> None:
        """Thaw everything (reverse order), report and exit.

        Returns only if the lock was not had within ``wait_s`` (-1: no limit): someone else is
        finishing, or the main thread is inside a FIFREEZE.
        """
        if not self.lock.acquire(True, wait_s):
            return
        self.phase = "done"
        signal.setitimer(signal.ITIMER_REAL, 0)
        for path, fd, since in reversed(self.frozen):
            self.thaw_one(path, fd, since)
        self.report(reason)
        os._exit(1 if self.thaw_failed else code)

    def report(self, reason: str) -> None:
        # THAWED is printed even when nothing got frozen: it tells the parent the guard
        # accounted for every FIFREEZE it issued, so there is nothing left to force.
        now = time.monotonic()
        if reason:
            emit(reason)
        emit(f"THAWED {now:.6f} {json.dumps(self.thawed)}")
        if self.thaw_failed:
            emit(f"THAW-FAILED {json.dumps(self.thaw_failed)}")

    def watchdog_thread(self) -> None:
        """Second watchdog: thaw even when the main thread never gets back to the interpreter."""
        while True:
            wait = self.deadline + THREAD_GRACE_S - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, 0.05))
                continue
            self.finish("Failed to receive timely Thaw (watchdog thread)", 1, wait_s=0.2)
            # The main thread holds the lock inside a FIFREEZE that does not return: thaw what
            # is frozen already, and have it stop when (if) the call comes back.
            if self.requested != "watchdog thread":
                self.requested = "watchdog thread"
                emit("Watchdog thread: thawing while a FIFREEZE is still running")
            for path, fd, since in reversed(list(self.frozen)):
                self.thaw_one(path, fd, since)
            time.sleep(0.2)

    def wait(self) -> None:
        """Main loop: 10 ms ticks until a thaw request, the parent's death or the timeout."""
        stall = self.stall
        if stall == "hard":
            signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        if stall in ("loop", "hard"):
            threading.Event().wait()  # fault injection: never returns
        while True:
            if self.requested:
                self.finish(f"Thaw requested by {self.requested}", 0)
            if os.getppid() != self.parent:
                self.finish("Parent process is gone: thawing", 0)
            if time.monotonic() >= self.deadline:
                self.finish("Failed to receive timely Thaw", 1)
            time.sleep(TICK_S)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_vmsnap.vm.guest.freeze_guard",
        description="Freeze file systems; thaw on a signal, the parent's death or a timeout.",
    )
    parser.add_argument("--timeout", type=float, required=True, help="seconds before self-thaw")
    parser.add_argument(
        "--parent", type=int, default=None, help="the parent's own PID (closes a start-up race)"
    )
    parser.add_argument("mounts", nargs="+", metavar="MOUNT")
    args = parser.parse_args(argv)
    if not (args.timeout > 0 and math.isfinite(args.timeout)):
        parser.error("--timeout must be a positive number of seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    parent = os.getppid()  # as early as possible; --parent closes the remaining gap
    args = parse_args(sys.argv[1:] if argv is None else argv)
    guard = Guard(list(args.mounts), args.timeout, args.parent or parent)
    guard.install_handlers()
    # A blocked signal mask is inherited across fork/exec: make sure ours can be delivered.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {*THAW_SIGNALS, signal.SIGALRM})
    if not guard.watch_parent():
        emit("Parent process is gone: not freezing")
        return 1
    if not guard.open_all():
        return 1
    # Warm up everything the frozen path uses, so nothing is loaded or compiled later.
    json.dumps({"/": 0.0})
    time.monotonic()
    # The watchdog thread starts with every signal blocked, so signals go to the main thread.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    threading.Thread(target=guard.watchdog_thread, name="watchdog", daemon=True).start()
    signal.pthread_sigmask(signal.SIG_SETMASK, old)
    if guard.requested:
        emit(f"Thaw requested by {guard.requested} before freezing")
        return 1
    guard.freeze_all()
    guard.wait()
    return 1  # not reached: every path ends in finish()


if __name__ == "__main__":
    sys.exit(main())
