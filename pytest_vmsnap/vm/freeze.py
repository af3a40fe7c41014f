"""Freezing a stand-in VM's file systems through the guard process, as the extension does.

:class:`GuardFreezer` is the :class:`~pytest_vmsnap.framework.interfaces.Freezer` of a stand-in VM.
It plays the extension's Python side (``fsfreezer.py``, azure-framework.md 7.3) and starts
:mod:`pytest_vmsnap.vm.guest.freeze_guard` in the role of its ``safefreeze`` helper: the guard
holds the freeze and thaws on its own (signal, parent death, timeout), so a dead or stuck
caller never leaves a frozen file system behind.

Codes are the extension's: 121 the guard failed, 122 it did not report "frozen" in time, 123 it
could not open a mount; a thaw that finds the guard already gone (it self-thawed) or failing is
2, "Snapshots are inconsistent".
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from ..framework.interfaces import FreezeResult, ThawResult
from .helpers import helper_env
from .linux import parse_mountinfo, thaw

GUARD_MODULE = "pytest_vmsnap.vm.guest.freeze_guard"
ELIGIBLE_FS = frozenset({"ext3", "ext4", "xfs", "btrfs"})
THAW_WAIT_S = 30.0  # the extension waits this long for the helper to exit after SIGUSR1
INCONSISTENT = "Snapshots are inconsistent"

Mount = tuple[str, str]  # (mount point, file system type)


def _norm(path: str) -> str:
    path = os.path.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("/") else path


def select_mounts(mounts: Iterable[Mount], skip: Iterable[str] = ()) -> list[str]:
    """The mount points the extension freezes, in its freeze order (azure-framework.md 7.1).

    ``mounts`` is in mount-table order. Only ext3/ext4/xfs/btrfs are eligible; a mount point
    listed twice keeps its topmost (last) mount; ``skip`` (MountsToSkip) is honoured except for
    ``/``, compared as exact strings with the mount table's (errata E7: ``/srv/`` does not skip
    ``/srv``). The order is the reverse of the mount table with ``/`` always last; thaw is the exact
    reverse. (The extension also drops lsblk TYPE ``loop`` and the Azure resource disk; a
    stand-in VM's disks are loop devices standing for real disks, so that rule does not apply.)
    """
    topmost: dict[str, tuple[int, str]] = {}
    for index, (mountpoint, fstype) in enumerate(mounts):
        topmost[_norm(mountpoint)] = (index, fstype)
    skipped = {s for s in skip if s} - {"/"}
    chosen = sorted(
        ((index, mp) for mp, (index, fstype) in topmost.items()),
        reverse=True,
    )
    order = [mp for _, mp in chosen if topmost[mp][1] in ELIGIBLE_FS and mp not in skipped]
    if "/" in order:
        order.remove("/")
        order.append("/")
    return order


def mount_candidates_from_mountinfo(
    paths: Iterable[str] | None = None, mountinfo: str | Path = "/proc/self/mountinfo"
) -> list[Mount]:
    """``(mount point, fstype)`` from ``mountinfo``, in mount-table order, for ``paths``.

    ``paths`` are compared as written in the mount table (normalised, symlinks not resolved);
    ``None`` means every mount. A path that is not a mount point is left out; one mounted over
    several times appears each time (:func:`select_mounts` keeps the topmost).
    """
    wanted = None if paths is None else {_norm(p) for p in paths}
    entries = parse_mountinfo(Path(mountinfo).read_text(errors="surrogateescape"))
    return [(m.target, m.fstype) for m in entries if wanted is None or m.target in wanted]


def _in_kernel_wait(pid: int) -> bool:
    """True if ``pid`` sleeps uninterruptibly (D): a kill would only land after the call."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "D"


class GuardFreezer:
    """Freezes the VM's eligible mounts through the freeze guard; thaw, or close, releases them.

    ``mounts`` are ``(mount point, fstype)`` in mount-table order (see
    :func:`mount_candidates_from_mountinfo`); ``timeout_s`` is vmbackup.conf ``timeout`` (the
    guard's self-thaw), ``wait_s`` is ``SafeFreezeWaitInSeconds``, ``skip`` is ``MountsToSkip``,
    ``freeze_delay_s`` the pause before the guard starts (the extension's is 3 s).

    The guard gets the parent-death signal from the *thread* that calls :meth:`freeze`: call it
    from a thread that lives until the thaw, or the guard thaws early (and thaw reports 2).

    After a cycle: ``frozen_s`` (mount -> seconds frozen), ``freeze_latency_s`` (freeze call to
    all frozen), ``thaw_latency_s`` (thaw request to all thawed), ``output`` (the guard's lines),
    ``forced`` (mounts the last resort had to thaw itself; empty when all went well).
    """

    real = True

    def __init__(
        self,
        mounts: Iterable[Mount],
        *,
        timeout_s: float = 60,
        wait_s: float = 66,
        skip: Iterable[str] = (),
        freeze_delay_s: float = 0.0,
        python: str = sys.executable,
        close_wait_s: float = 10.0,
    ) -> None:
        self.candidates = list(mounts)
        self.skip = tuple(skip)
        self.mounts = select_mounts(self.candidates, self.skip)
        self.timeout_s = timeout_s
        self.wait_s = wait_s
        self.freeze_delay_s = freeze_delay_s
        self.python = python
        self.close_wait_s = close_wait_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._reset()

    def _reset(self) -> None:
        self.output: list[str] = []
        self.frozen_s: dict[str, float] = {}
        self.thaw_failed: dict[str, str] = {}
        self.forced: list[str] = []
        self.frozen_at: float | None = None
        self.thawed_at: float | None = None
        self.freeze_latency_s: float | None = None
        self.thaw_latency_s: float | None = None
        self._saw_freezing = False
        self._eof = False
        self._froze_nothing = False

    @property
    def guard_pid(self) -> int | None:
        """PID of the running guard, if any."""
        return self._proc.pid if self._proc is not None else None

    # -- freeze ------------------------------------------------------------------------------

    def freeze(self) -> FreezeResult:
        """Start the guard and wait (at most ``wait_s``) until it reports every mount frozen."""
        if self._proc is not None and self._proc.poll() is None:
            return FreezeResult(
                121, "a freeze by this freezer is still in progress; thaw it first", self.mounts
            )
        self._reset()
        if not self.mounts:
            self._froze_nothing = True
            return FreezeResult(0, "no ext3/ext4/xfs/btrfs mount to freeze: freeze skipped", [])
        if self.freeze_delay_s > 0:
            time.sleep(self.freeze_delay_s)  # in this thread: see the class docstring
        start = time.monotonic()
        try:
            self._start_guard()
        except OSError as err:
            return FreezeResult(121, f"cannot start the freeze guard: {err}", list(self.mounts))
        with self._cond:
            self._cond.wait_for(lambda: self.frozen_at is not None or self._eof, self.wait_s)
            frozen_at, eof = self.frozen_at, self._eof
        if frozen_at is not None:
            self.freeze_latency_s = frozen_at - start
            return FreezeResult(
                0,
                f"froze {len(self.mounts)} file system(s) in {self.freeze_latency_s:.3f} s: "
                + ", ".join(self.mounts),
                list(self.mounts),
            )
        if not eof:
            outcome = self._stop_guard(THAW_WAIT_S)
            return FreezeResult(
                122,
                f"the freeze guard did not report the file systems frozen within {self.wait_s} s"
                f"; {outcome}",
                list(self.mounts),
            )
        rc = self._reap()
        self._stop_guard(0)  # exited without FROZEN: force-thaw if it died mid-freeze
        detail = self._tail()
        if any(line.startswith("Failed to open:") for line in self.output):
            return FreezeResult(
                123, f"the freeze guard could not open a mount point: {detail}", list(self.mounts)
            )
        return FreezeResult(
            121,
            f"the freeze guard exited with code {rc} before every mount was frozen: {detail}",
            list(self.mounts),
        )

    def _start_guard(self) -> None:
        argv = [
            self.python,
            "-B",  # the guard writes nothing to disk, bytecode included
            "-S",  # no site-packages: the guard needs only the stdlib (and saves ~50 ms)
            "-m",
            GUARD_MODULE,
            "--timeout",
            repr(float(self.timeout_s)),
            "--parent",
            str(os.getpid()),
            "--",
            *self.mounts,
        ]
        # Its own session: a SIGKILL aimed at the harness's process group must not take the
        # guard down while it holds a freeze (it thaws on its parent's death instead; a Ctrl-C
        # makes the parent unwind and ask for the thaw).
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=helper_env(),
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self._proc.stdout,), name="freeze-guard-reader", daemon=True
        )
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        """Reader thread: the guard's stdout, line by line, until EOF (it exited)."""
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode(errors="replace").rstrip("\n")
                with self._cond:
                    self.output.append(line)
                    self._parse(line)
                    self._cond.notify_all()
        finally:
            stream.close()
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _parse(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        try:
            if word == "FREEZING":
                self._saw_freezing = True
            elif word == "FROZEN":
                self.frozen_at = float(rest)
            elif word == "THAWED":
                when, _, data = rest.partition(" ")
                self.thawed_at = float(when)
                self.frozen_s = {str(k): float(v) for k, v in json.loads(data).items()}
            elif word == "THAW-FAILED":
                self.thaw_failed = {str(k): str(v) for k, v in json.loads(rest).items()}
        except ValueError:
            pass  # not a protocol line after all; it stays in the output

    # -- thaw --------------------------------------------------------------------------------

    def thaw(self) -> ThawResult:
        """Ask the guard to thaw (SIGUSR1) and wait up to 30 s for it to exit."""
        if self._froze_nothing:
            self._froze_nothing = False
            return ThawResult(0, "nothing was frozen")
        proc = self._proc
        if proc is None:
            return ThawResult(0, "nothing to thaw: no freeze in progress")
        start = time.monotonic()
        gone = proc.poll() is not None
        if not gone:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGUSR1)
        try:
            rc: int | None = proc.wait(timeout=THAW_WAIT_S)
        except subprocess.TimeoutExpired:
            rc = None
        self._join_reader()
        # Already thawed before the request (timeout, a stray signal, the guard dying): the
        # guard's THAWED time is on the same clock, so this holds even if it had not exited yet.
        early = gone or (self.thawed_at is not None and self.thawed_at < start)
        if not early and self.thawed_at is not None:
            self.thaw_latency_s = self.thawed_at - start
        outcome = self._stop_guard(0)  # forces a thaw only if the guard did not
        frozen_s = dict(self.frozen_s)
        # The longest-frozen mount was frozen first and thawed last, just before THAWED.
        longest = max(frozen_s.values(), default=0.0)
        at = self.thawed_at
        window = (at - longest, at) if at is not None and frozen_s else None
        if early:
            return ThawResult(
                2,
                f"{INCONSISTENT}: the freeze guard had already thawed on its own (exit {rc}) "
                f"before the thaw request: {self._tail()}",
                frozen_s,
                window,
            )
        if rc is None:
            return ThawResult(
                2,
                f"{INCONSISTENT}: the freeze guard did not exit within {THAW_WAIT_S:.0f} s of the"
                f" thaw request; {outcome}",
                frozen_s,
                window,
            )
        if rc != 0:
            detail = self._tail()
            return ThawResult(
                2,
                f"{INCONSISTENT}: the freeze guard exited with code {rc}: {detail}",
                frozen_s,
                window,
            )
        return ThawResult(
            0,
            f"thawed {len(frozen_s)} file system(s), frozen at most {longest:.3f} s",
            frozen_s,
            window,
        )

    def close(self) -> list[str]:
        """Make sure nothing this freezer froze stays frozen; safe to call any time, repeatedly.

        Sends SIGUSR1 to a guard still running and waits ``close_wait_s``; as the very last
        resort it issues FITHAW itself. Returns the mounts it had to thaw itself.
        """
        if self._proc is None:
            return []
        self._stop_guard(self.close_wait_s)
        return list(self.forced)

    def __enter__(self) -> GuardFreezer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------------

    def _stop_guard(self, wait_s: float) -> str:
        """End the guard (SIGUSR1, then wait) and force the thaw the guard did not do."""
        proc = self._proc
        if proc is None:
            return "no freeze guard"
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGUSR1)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait_s)
        alive = proc.poll() is None
        if not alive:
            self._join_reader()
        elif _in_kernel_wait(proc.pid):
            # Inside a FIFREEZE/FITHAW that has not returned. A FITHAW from here could hang on
            # the same super block, and a SIGKILL would land only after the call and leave that
            # mount frozen with nobody to thaw it. The guard's watchdog thread thaws what it has
            # frozen; close() tries again later.
            return f"the guard (PID {proc.pid}) is stuck in the kernel; it was asked to thaw"
        with self._cond:
            if alive or (self._saw_freezing and self.thawed_at is None):
                targets = list(reversed(self.mounts))  # it may hold any of them
            else:
                targets = [m for m in reversed(self.mounts) if m in self.thaw_failed]
        forced = [m for m in targets if thaw(m)]
        self.forced += [m for m in forced if m not in self.forced]
        note = f"forced FITHAW on {', '.join(forced)}" if forced else "nothing left frozen"
        if not alive:
            self._proc = None
            return f"the guard exited with code {proc.returncode}; {note}"
        proc.kill()  # exact PID, our own child, not reaped yet: it cannot have been reused
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        self._join_reader()
        self._proc = None
        return f"the guard did not answer and was killed; {note}"

    def _reap(self) -> int:
        assert self._proc is not None
        try:
            return self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return -1  # closed its stdout but lives on: _stop_guard deals with it

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=2)

    def _tail(self, lines: int = 6) -> str:
        with self._cond:
            text = " | ".join(line for line in self.output[-lines:] if line.strip())
        return text or "(no output)"
