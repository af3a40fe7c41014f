"""What every framework's script runner shares: a script's process, its captured output, its
result record, the clock and the pacing.

Each framework runs scripts its own way (Azure: ``sh`` with an unread pipe and a poll loop;
the others: executed directly, with their own timeouts); the pieces here are the same for all.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from .records import ScriptRecord

OUTPUT_KEEP = 64 * 1024  # bytes of head and of tail kept per stream for the report
DRAIN_LIMIT_S = 1.0  # after a script ended, how long we keep reading what its children write


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
    start_error: str = ""
    """Why the script could not be started (``Exec format error``: no shebang), if so."""

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
            "start_error": self.start_error,
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


class Reader(threading.Thread):
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
        drain_now(self.fd, self.out)


def start_readers(proc: Process, result: ScriptResult) -> list[Reader]:
    threads = []
    for stream, out in ((proc.stdout, result.stdout), (proc.stderr, result.stderr)):
        if stream is None:
            continue
        t = Reader(stream, out)
        t.start()
        threads.append(t)
    return threads


def drain_now(fd: int, out: Output) -> None:
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


def collect(proc: Process, result: ScriptResult, readers: list[Reader]) -> None:
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
            drain_now(stream.fileno(), out)


def kill_group(proc: Process) -> None:
    """Kill a timed-out script and everything it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    # A script blocked on a frozen file system cannot die before the thaw: do not wait forever.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
