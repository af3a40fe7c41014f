"""Runs one pre- or post-script the way the extension's ``ScriptRunner`` does.

``sh <path> <params...>`` without a shell, stdout/stderr into pipes, a poll loop that sleeps P
seconds between checks and gives up after ``ceil(T/P)`` sleeps. Under the ``extension`` profile
the pipes are not read while the script runs (so a script that writes more than a pipe's buffer
stalls, as it does under the real extension), retries never re-run the script and a timed-out
script keeps running. The output is drained afterwards for the report.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from . import codes
from .config import HOST_TIMEOUT_CAP_S, host_watchdog_s
from .profiles import EXTENSION, Profile
from .records import ScriptRecord

OUTPUT_KEEP = 64 * 1024  # bytes of head and of tail kept per stream for the report
DRAIN_LIMIT_S = 1.0  # after a script ended, how long we keep reading what its children write
_F_GETPIPE_SZ = 1032
_FIONREAD = 0x541B


class Clock(Protocol):
    """Time source for the poll loop; tests inject a fake one to avoid real waiting."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class Process(Protocol):
    """The part of :class:`subprocess.Popen` the runner uses."""

    pid: int
    returncode: int | None
    stdout: IO[bytes] | None
    stderr: IO[bytes] | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


Spawn = Callable[[Sequence[str]], Process]


def spawn_script(
    argv: Sequence[str], cwd: str | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a script as the extension does: no shell, pipes for stdout and stderr.

    It gets its own process group so that a timed-out script and its children can be found
    and ended later by exact group id (the extension leaves it in the daemon's group).
    """
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        process_group=0,
    )


@dataclass
class Output:
    """A stream's captured bytes: the head and the tail, and how much there was in all."""

    head: bytes = b""
    tail: bytes = b""
    total: int = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = OUTPUT_KEEP - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail = (self.tail + chunk)[-OUTPUT_KEEP:]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)

    def text(self) -> str:
        """The output as text for a report, with a marker where bytes were left out."""
        body = self.head.decode("utf-8", "replace")
        if self.tail:
            skipped = self.total - len(self.head) - len(self.tail)
            if skipped > 0:
                body += f"\n[... {skipped} bytes not kept ...]\n"
            body += self.tail.decode("utf-8", "replace")
        return body


@dataclass
class ScriptResult:
    """Everything about one script run, in the shape the cycle and the reports need."""

    which: str
    argv: list[str] | None
    ran: bool = False
    exit_code: int | None = None
    error_code: int = 0
    timed_out: bool = False
    attempts: int = 0
    retries_logged: int = 0
    continue_backup: Any = True
    start_s: float = 0.0
    end_s: float = 0.0
    stdout: Output = field(default_factory=Output)
    stderr: Output = field(default_factory=Output)
    output_stalled: bool = False
    left_running: list[int] = field(default_factory=list)
    watchdog: bool = False
    log: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """From start until the framework saw the script end or gave up on it."""
        return self.end_s - self.start_s

    @property
    def failed(self) -> bool:
        return self.error_code != 0

    def to_dict(self) -> ScriptRecord:
        """The ``scripts.pre`` / ``scripts.post`` record of the ``vmsnap run`` JSON."""
        return {
            "ran": self.ran,
            "argv": self.argv,
            "exit_code": self.exit_code,
            "error_code": self.error_code,
            "duration_s": round(self.duration_s, 3),
            "attempts": self.attempts,
            "retries_logged": self.retries_logged,
            "timed_out": self.timed_out,
            "watchdog": self.watchdog,
            "output_stalled": self.output_stalled,
            "left_running": self.left_running,
            "stdout": self.stdout.text(),
            "stderr": self.stderr.text(),
            "output_bytes": self.stdout.total + self.stderr.total,
        }


def not_run(which: str) -> ScriptRecord:
    """The record of a script the framework never started (same keys as one that ran)."""
    return ScriptResult(which, None).to_dict()


@dataclass(frozen=True)
class Pacing:
    """How literally the extension's waiting is reproduced.

    ``faithful``: the runner sleeps whole poll periods and notices an exit only at poll
    boundaries, as the extension does. ``prompt``: same timeout arithmetic, but an exit is
    noticed at once (for fast harness runs; the timeline is then shorter than the extension's).
    """

    faithful: bool = True


FAITHFUL = Pacing(True)
PROMPT = Pacing(False)


def run_script(
    which: str,
    argv: list[str] | None,
    *,
    timeout_s: float,
    poll_s: int,
    retries: Any,
    continue_on_failure: Any,
    profile: Profile = EXTENSION,
    clock: Clock | None = None,
    spawn: Spawn | None = None,
    pacing: Pacing = FAITHFUL,
    host_timeout_s: int = HOST_TIMEOUT_CAP_S,
) -> ScriptResult:
    """Run the ``pre`` or ``post`` script with the extension's poll loop and outcome codes.

    ``argv`` None means building it raised inside the extension's worker thread (a bad
    params value): the plugin host's watchdog then reports 310/311 without running anything.
    """
    clock = clock or SystemClock()
    spawn = spawn or spawn_script
    failed_code, timeout_code, watchdog_code = (
        (codes.PRE_FAILED, codes.PRE_TIMEOUT, codes.HOST_PRE_TIMEOUT)
        if which == "pre"
        else (codes.POST_FAILED, codes.POST_TIMEOUT, codes.HOST_POST_TIMEOUT)
    )
    result = ScriptResult(which, argv, start_s=clock.monotonic())
    if argv is None:
        return _watchdog(
            result,
            watchdog_code,
            poll_s,
            "building the argument list raised "
            "TypeError in the plugin thread (params must be a list)",
            host_timeout_s,
        )

    ratio = timeout_s / poll_s  # the extension's pollTotalCount (true division)
    result.log.append(f"Running {which}script for ScriptRunner module...")
    try:
        proc = spawn(argv)
    except OSError as err:  # no `sh` on the PATH (a script removed it), no such directory...
        return _watchdog(
            result,
            watchdog_code,
            poll_s,
            f"starting {argv[0]} raised {type(err).__name__} ({err.strerror or err}) in the "
            "plugin thread",
            host_timeout_s,
        )
    result.ran, result.attempts = True, 1
    readers = _start_readers(proc, result) if profile.drain_output_live else []
    sleeps = 0
    count = 0
    while True:
        while proc.poll() is None:
            if sleeps >= ratio:
                result.timed_out = True
                result.log.append(f"{which.capitalize()}script for ScriptRunner timed out.")
                break
            sleeps += 1
            _wait_one_poll(proc, clock, poll_s, pacing)
        if not result.timed_out and proc.returncode == 0:
            break
        if result.timed_out:
            break
        try:
            give_up = count >= retries
        except TypeError:
            result.exit_code = proc.returncode
            _collect(proc, result, readers)
            result.error_code = failed_code
            return _watchdog(
                result,
                watchdog_code,
                poll_s,
                f"{which}ScriptNoOfRetries {retries!r} is not a number: the "
                "retry comparison raised TypeError in the plugin thread",
                host_timeout_s,
            )
        if give_up:
            break
        result.log.append(f"{which.capitalize()}script for ScriptRunner failed. Retrying...")
        count += 1
        if profile.rerun_on_retry:
            _collect(proc, result, readers)
            proc = spawn(argv)
            result.attempts += 1
            readers = _start_readers(proc, result) if profile.drain_output_live else []
    result.end_s = clock.monotonic()
    result.retries_logged = count

    if result.timed_out:
        result.error_code = timeout_code
        result.continue_backup = continue_on_failure
        if profile.kill_on_timeout:
            _kill_group(proc)
            _collect(proc, result, readers)
        else:
            _abandon(proc, result)
        return result

    result.exit_code = proc.returncode
    _collect(proc, result, readers)
    if proc.returncode == 0:
        result.log.append(f"{which.capitalize()}script for ScriptRunner successfully executed.")
    else:
        result.error_code = failed_code
        result.continue_backup = continue_on_failure
        result.log.append(
            f"{which.capitalize()}script for ScriptRunner failed with error "
            f"code: {proc.returncode} ."
        )
    return result


def _wait_one_poll(proc: Process, clock: Clock, poll_s: float, pacing: Pacing) -> None:
    """One poll period: a whole sleep (faithful), or until the process ends (prompt).

    In prompt pacing any :class:`Process` is waited on, not only a real ``Popen``, so an
    injected process (tests, remote agents) gets the same "noticed at once" behaviour.
    """
    if pacing.faithful:
        clock.sleep(poll_s)
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=poll_s)


def _watchdog(
    result: ScriptResult, code: int, poll_s: int, why: str, host_timeout_s: int
) -> ScriptResult:
    """The plugin thread died without reporting; the host gives up after ~1806 s."""
    result.error_code = code
    result.watchdog = True
    result.continue_backup = True  # the host keeps continueBackup True in this path
    waited = host_watchdog_s(poll_s, host_timeout_s)
    result.end_s = result.start_s + waited
    result.log.append(
        f"plugin thread died: {why}; the plugin host's watchdog reports "
        f"{codes.lookup(code).name} after {waited:.0f} s"
    )
    return result


class _Reader(threading.Thread):
    """Reads one output pipe while the script runs (profiles that drain output live).

    Once told to stop (the script ended or was killed) it takes what is still buffered and
    returns, without waiting for end-of-file: a background child the script left behind may
    hold the pipe open for as long as it lives (a lock holder, for example).
    """

    def __init__(self, stream: IO[bytes], out: Output) -> None:
        super().__init__(daemon=True)
        self.fd = stream.fileno()
        self.out = out
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            readable, _, _ = select.select([self.fd], [], [], 0.05)
            if not readable:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return  # end of file: every writer has gone
            self.out.add(chunk)
        _drain_now(self.fd, self.out)


def _start_readers(proc: Process, result: ScriptResult) -> list[_Reader]:
    threads = []
    for stream, out in ((proc.stdout, result.stdout), (proc.stderr, result.stderr)):
        if stream is None:
            continue
        t = _Reader(stream, out)
        t.start()
        threads.append(t)
    return threads


def _drain_now(fd: int, out: Output) -> None:
    """Take what the pipe holds now, without waiting for more (or for end-of-file)."""
    deadline = time.monotonic() + DRAIN_LIMIT_S
    try:
        os.set_blocking(fd, False)
        while time.monotonic() < deadline:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            out.add(chunk)
    except (BlockingIOError, OSError):
        return


def _collect(proc: Process, result: ScriptResult, readers: list[_Reader]) -> None:
    """Take what a finished (or killed) script wrote, into the result.

    Never waits for end-of-file: the extension never reads the pipes, so a script that left
    a background child holding them open must not hold up the framework either.
    """
    if readers:
        for t in readers:
            t.done.set()
        for t in readers:
            t.join(timeout=DRAIN_LIMIT_S + 1)
        return
    for stream, out in ((proc.stdout, result.stdout), (proc.stderr, result.stderr)):
        if stream is not None:
            _drain_now(stream.fileno(), out)


_PARKED: list[tuple[Process, ScriptResult]] = []
"""Timed-out scripts whose output pipes stay open until the cycle ends (errata E1)."""


def _abandon(proc: Process, result: ScriptResult) -> None:
    """What the extension does on timeout: stop watching, leave the script running.

    Its output pipes stay open and unread (errata E1: CPython parks a running child's Popen,
    pipes and all, until the extension's process exits), so the script keeps running and
    writing until a pipe is full, then blocks; it never gets SIGPIPE. Whether it is blocked
    already is read without draining the pipe, which would give it room the real one has not.
    What it wrote is read at the cycle's end (:func:`release_parked`).
    """
    for stream in (proc.stdout, proc.stderr):
        if stream is None:
            continue
        fd = stream.fileno()
        try:
            capacity = fcntl.fcntl(fd, _F_GETPIPE_SZ)
            pending = int.from_bytes(fcntl.ioctl(fd, _FIONREAD, b"\0\0\0\0"), "little")
            result.output_stalled |= pending >= capacity
        except OSError:
            pass
    if result.output_stalled:
        result.log.append("the script was blocked writing to a full, unread output pipe")
    if proc.poll() is None:
        result.left_running.append(proc.pid)
    _PARKED.append((proc, result))


def release_parked() -> None:
    """The extension's process ends: read what the timed-out scripts wrote (for the report)
    and close their pipes; a script still writing then gets SIGPIPE, as under the real one."""
    while _PARKED:
        proc, result = _PARKED.pop()
        for stream, out in ((proc.stdout, result.stdout), (proc.stderr, result.stderr)):
            if stream is None:
                continue
            try:  # what is in the pipe now, no more: reading frees room the script would fill
                fd = stream.fileno()
                left = int.from_bytes(fcntl.ioctl(fd, _FIONREAD, b"\0\0\0\0"), "little")
                os.set_blocking(fd, False)
                while left > 0 and (chunk := os.read(fd, min(left, 65536))):
                    out.add(chunk)
                    left -= len(chunk)
            except (BlockingIOError, OSError, ValueError):
                pass
            stream.close()


def _kill_group(proc: Process) -> None:
    """Kill a timed-out script and everything it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    # A script blocked on a frozen file system cannot die before the thaw: do not wait forever.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
