"""Runs one program the way qemu-ga (or the stock wrapper) does, with the harness's bound.

The agent forks, calls ``setsid()`` in the child and execs the hook with the agent's own
environment (qemu/qemu ``qga/commands-posix.c``, ``execute_fsfreeze_hook``; QEMU 7.2:
``execle(hook, hook, arg_str, NULL, environ)``; QEMU 9.1 and later: ``ga_run_command`` with
``execvp``). What differs is the standard streams, so there are three ways to run:

- :data:`NULL`: stdin, stdout and stderr on ``/dev/null`` (QEMU 7.2, ``reopen_fd_to_null``);
  the agent waits for the child to exit (``waitpid``) and nothing else. The harness points
  stdout and stderr at an anonymous memory file instead of ``/dev/null``: it never blocks
  either, and the report can still show what the hook wrote, which the agent threw away.
- :data:`PIPE`: stdout and stderr on one pipe that the agent reads to end-of-file before it
  waits for the child (QEMU >= 9.1, ``ga_run_command``/``ga_pipe_read_str``). A background
  process that keeps either stream open keeps the agent reading, however long it lives.
- :data:`LOG`: stdout and stderr appended to the wrapper's log file (the stock wrapper's
  ``"$file" "$@" >>"$LOGFILE" 2>&1``); the wrapper waits for the script to exit.

qemu-ga puts no time limit on the hook (neither version has one). The harness must end, so
each run is bounded by ``bound_s``; a run that reaches it is ended with its whole process
group (the hook is a session leader, as after ``setsid``) and marked ``timed_out``: the
caller reports that the real agent would still be waiting.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..scripts import (
    OUTPUT_KEEP,
    Clock,
    Output,
    Process,
    ScriptResult,
    Spawn,
    SystemClock,
    collect,
    kill_group,
    start_readers,
)

NULL, PIPE, LOG = "null", "pipe", "log"
STEP_S = 0.02
"""How often the harness looks whether the program ended (the agent's ``waitpid`` returns at
once; this is the harness's granularity, not a delay of the agent's)."""
SHELL = "/bin/sh"


@dataclass
class Run:
    """One program run, with what the agent saw of it."""

    result: ScriptResult
    signal: int | None = None
    """The signal that ended it (the agent's "terminated abnormally")."""
    held_open: bool = False
    """It exited, but a process it left behind kept the output pipe open (:data:`PIPE`)."""
    exec_errno: int | None = None
    """``execve`` failed with this errno (the caller words the agent's message)."""
    via_shell: bool = False
    """It had no ``#!`` line and was run by ``/bin/sh`` instead (``execvp``'s and dash's
    fallback on ``ENOEXEC``)."""


def run(
    which: str,
    argv: Sequence[str],
    *,
    stdio: str,
    bound_s: float,
    env: Mapping[str, str],
    cwd: str = "/",
    clock: Clock | None = None,
    spawn: Spawn | None = None,
    log_path: str | None = None,
    enoexec_shell: bool = False,
) -> Run:
    """Run ``argv`` once and wait as the agent does, at most ``bound_s`` seconds.

    ``spawn`` (tests) replaces the agent's way of starting it; its output is read from the
    process's pipes and only its exit is waited for. ``enoexec_shell``: a file without ``#!``
    is run as ``/bin/sh <file> <args>`` (glibc ``execvp``, dash) instead of failing.
    """
    clock = clock or SystemClock()
    result = ScriptResult(which, list(argv), start_s=clock.monotonic())
    out = Run(result)
    if spawn is not None:
        return _run_spawned(out, argv, spawn, bound_s, clock)
    sink = _Sink(stdio, log_path)
    try:
        try:
            proc = _start(argv, sink, env, cwd)
        except OSError as err:
            if err.errno == errno.ENOEXEC and enoexec_shell:
                out.via_shell = True
                proc = _start([SHELL, *argv], sink, env, cwd)
            else:
                raise
    except OSError as err:
        sink.close()
        result.end_s = clock.monotonic()
        result.error_code = 1
        out.exec_errno = err.errno
        result.start_error = f"{err.strerror or err} ({os.path.basename(argv[0])})"
        result.log.append(f"could not start {argv[0]}: {result.start_error}")
        return out
    result.ran, result.attempts = True, 1
    reader = sink.reader(result.stdout)
    while True:
        ended = proc.poll() is not None
        if ended and (reader is None or reader.finished.is_set()):
            break
        if clock.monotonic() - result.start_s >= bound_s:
            result.timed_out = True
            out.held_open = ended
            break
        if ended:
            _pause(clock)  # the program is gone; the pipe is not
        else:
            _wait(proc, clock)
    result.end_s = clock.monotonic()
    if result.timed_out:
        result.error_code = 1
        result.log.append(f"{which}: still waiting after the harness's bound of {bound_s:g} s")
        if proc.poll() is None or out.held_open:
            kill_group(proc)
            result.log.append("ended by the harness with its process group")
    if reader is not None:
        reader.stop()
    sink.collect(result.stdout)
    sink.close()
    code = proc.poll()
    if code is not None and not result.timed_out:
        if code < 0:
            out.signal = -code
            result.error_code = 1
        else:
            result.exit_code = code
            result.error_code = 1 if code else 0
    return out


def _run_spawned(out: Run, argv: Sequence[str], spawn: Spawn, bound_s: float, clock: Clock) -> Run:
    result = out.result
    try:
        proc = spawn(argv)
    except OSError as err:
        result.end_s = clock.monotonic()
        result.error_code = 1
        out.exec_errno = err.errno
        result.start_error = f"{err.strerror or err} ({os.path.basename(argv[0])})"
        return out
    result.ran, result.attempts = True, 1
    readers = start_readers(proc, result)
    while proc.poll() is None:
        if clock.monotonic() - result.start_s >= bound_s:
            result.timed_out = True
            break
        _wait(proc, clock)
    result.end_s = clock.monotonic()
    if result.timed_out:
        result.error_code = 1
        kill_group(proc)
    collect(proc, result, readers)
    code = proc.poll()
    if code is not None and not result.timed_out:
        if code < 0:
            out.signal = -code
            result.error_code = 1
        else:
            result.exit_code = code
            result.error_code = 1 if code else 0
    return out


def _start(
    argv: Sequence[str], sink: _Sink, env: Mapping[str, str], cwd: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=sink.fd,
        stderr=sink.fd,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,  # the agent's setsid(): the hook leads its own session
    )


class _Sink:
    """Where a run's stdout and stderr go (one descriptor for both, as the agent does)."""

    def __init__(self, stdio: str, log_path: str | None) -> None:
        self.stdio = stdio
        self.read_fd = -1
        self.offset = 0
        if stdio == NULL:
            self.fd = os.memfd_create("qga-hook-output", os.MFD_CLOEXEC)
        elif stdio == LOG:
            assert log_path is not None
            self.fd = os.open(
                log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
            self.offset = os.fstat(self.fd).st_size
            self.read_fd = os.open(log_path, os.O_RDONLY | os.O_CLOEXEC)
        else:
            self.read_fd, self.fd = os.pipe2(os.O_CLOEXEC)
        self._reader: _PipeReader | None = None

    def reader(self, out: Output) -> _PipeReader | None:
        """For a pipe: read it to end-of-file while the program runs (as the agent does)."""
        if self.stdio != PIPE:
            return None
        os.close(self.fd)  # the parent's copy: end-of-file comes when the children close theirs
        self.fd = -1
        self._reader = _PipeReader(self.read_fd, out)
        self._reader.start()
        return self._reader

    def collect(self, out: Output) -> None:
        """For a memory file or the log: what was written there during the run."""
        if self.stdio == NULL:
            os.lseek(self.fd, 0, os.SEEK_SET)
            _read_into(self.fd, out)
        elif self.stdio == LOG:
            os.lseek(self.read_fd, self.offset, os.SEEK_SET)
            _read_into(self.read_fd, out)

    def close(self) -> None:
        for fd in (self.fd, self.read_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fd = self.read_fd = -1


def _read_into(fd: int, out: Output) -> None:
    limit = 4 * OUTPUT_KEEP
    while limit > 0:
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        out.add(chunk)
        limit -= len(chunk)


class _PipeReader(threading.Thread):
    """Reads the agent's pipe until every writer has closed it (``ga_pipe_read_str``)."""

    def __init__(self, fd: int, out: Output) -> None:
        super().__init__(daemon=True)
        self.fd, self.out = fd, out
        self.finished = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                ready, _, _ = select.select([self.fd], [], [], 0.05)
                if not ready:
                    continue
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                self.out.add(chunk)
        except OSError:
            pass
        self.finished.set()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=2)


def _pause(clock: Clock) -> None:
    if isinstance(clock, SystemClock):
        time.sleep(STEP_S)
    else:
        clock.sleep(STEP_S)


def _wait(proc: Process, clock: Clock) -> None:
    if isinstance(clock, SystemClock):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STEP_S)
        return
    clock.sleep(STEP_S)
