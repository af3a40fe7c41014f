"""One script run as the guest agent runs it: ``run.WithOutputTimeout(ctx, timeout, path,
disks)`` (GoogleCloudPlatform/guest-agent ``google_guest_agent/run/run.go``).

What that does, read from the code and from Go's ``os/exec``:

- ``context.WithTimeout`` then ``exec.CommandContext``: a deadline ``timeout`` after the call.
  A deadline of 0 or less has passed already, and ``Cmd.Start`` then returns the context's
  error without starting anything.
- stdout and stderr are ``bytes.Buffer``: Go copies the pipes in goroutines, and ``Cmd.Wait``
  returns only when the script has exited *and* both pipes reached end-of-file. ``WaitDelay``
  is zero, so "I/O pipes will be read until EOF, which might not occur until orphaned
  subprocesses of the command have also closed their descriptors for the pipes" (Go
  ``os/exec`` ``Cmd.WaitDelay``): a background process that inherited them holds the agent.
- at the deadline, if the script has not exited, the context's ``Cancel`` calls
  ``os.Process.Kill``: SIGKILL to the script's own process only, never its children (once the
  script has exited, cancellation does nothing; the wait for end-of-file goes on).
- exit code: the script's; -1 when it died of a signal (``ExitError.ExitCode``) or could not
  start; then, if the context's deadline has passed when the wait returns, 124 "by
  convention", whatever the script did.

The output is read as it comes (no stall however much a script writes; the report keeps its
head and tail). Where the agent would wait for ever (a holder that never closes the pipes),
the harness stops after ``hang_bound_s`` past the deadline and says so.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..scripts import Clock, Output, Process, ScriptResult, Spawn, SystemClock
from .codes import TIMEOUT_EXIT

STEP_S = 0.01
"""How often the runner looks whether the script ended."""


@dataclass
class AgentRun:
    """One ``WithOutputTimeout`` call, as the agent saw it."""

    result: ScriptResult
    exit_code: int | None
    """``Result.ExitCode`` (124 when the deadline had passed); None when the agent never got
    an answer (:attr:`hung`)."""
    deadline_s: float
    """The deadline, in seconds after the call (0 or less: passed before the start)."""
    started: bool = False
    exited_after_s: float | None = None
    """When the script itself ended, seconds after its start."""
    returned_after_s: float | None = None
    """When the agent's wait returned (the script ended and its pipes closed)."""
    script_status: int | None = None
    """The script's own exit status (negative: killed by that signal)."""
    killed: bool = False
    """The agent killed the script at its deadline."""
    hung: bool = False
    """The pipes were still open when the harness's bound ran out: the agent would still
    be waiting."""

    @property
    def deadline_passed(self) -> bool:
        return self.exit_code == TIMEOUT_EXIT and (
            self.returned_after_s is None or self.returned_after_s >= self.deadline_s
        )


class _Drain(threading.Thread):
    """Reads one pipe to end-of-file (``io.Copy`` into a ``bytes.Buffer``)."""

    def __init__(self, stream: IO[bytes], out: Output, clock: Clock) -> None:
        super().__init__(daemon=True)
        self.stream, self.out, self.clock = stream, out, clock
        self.eof_at: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        fd = self.stream.fileno()
        while not self.stop.is_set():
            try:
                readable, _, _ = select.select([fd], [], [], 0.05)
                if not readable:
                    continue
                chunk = os.read(fd, 65536)
            except (OSError, ValueError):
                return
            if not chunk:
                self.eof_at = self.clock.monotonic()
                return
            self.out.add(chunk)


def run_script(
    which: str,
    argv: list[str],
    *,
    timeout_ns: int,
    spawn: Spawn,
    clock: Clock | None = None,
    hang_bound_s: float,
) -> AgentRun:
    """Run ``argv`` once as ``run.WithOutputTimeout`` does (see the module doc)."""
    clock = clock or SystemClock()
    deadline_s = timeout_ns / 1e9
    result = ScriptResult(which, list(argv), start_s=clock.monotonic())
    run = AgentRun(result, None, deadline_s)
    if timeout_ns <= 0:
        # Cmd.Start: the context is done already, so it returns ctx.Err() and runs nothing.
        result.end_s = clock.monotonic()
        result.start_error = "context deadline exceeded"
        result.log.append(f"{which}: the deadline ({deadline_s:g} s) had passed before the start")
        run.exit_code, run.returned_after_s = TIMEOUT_EXIT, 0.0
        return run
    try:
        proc = spawn(argv)
    except OSError as err:
        result.end_s = clock.monotonic()
        # Go: "fork/exec PATH: permission denied"; Result.ExitCode -1.
        result.start_error = f"fork/exec {argv[0]}: {(err.strerror or str(err)).lower()}"
        result.log.append(result.start_error)
        late = result.end_s - result.start_s >= deadline_s
        run.exit_code = TIMEOUT_EXIT if late else -1
        run.returned_after_s = result.end_s - result.start_s
        return run
    run.started, result.ran, result.attempts = True, True, 1
    drains = [
        _Drain(stream, out, clock)
        for stream, out in ((proc.stdout, result.stdout), (proc.stderr, result.stderr))
        if stream is not None
    ]
    for d in drains:
        d.start()
    start = result.start_s
    exited_at: float | None = None
    while True:
        now = clock.monotonic()
        if exited_at is None and proc.poll() is not None:
            exited_at = now
        if exited_at is not None and all(not d.is_alive() for d in drains):
            break
        if exited_at is None and not run.killed and now - start >= deadline_s:
            _kill(proc)  # the context's Cancel: os.Process.Kill, the script alone
            run.killed = True
            result.log.append(f"{which}: killed (SIGKILL, the script alone) at its deadline")
        if now - start >= max(deadline_s, 0) + hang_bound_s:
            run.hung = True
            break
        _step(proc, exited_at is None, clock)
    end = clock.monotonic()
    result.end_s = end
    if exited_at is not None:
        run.exited_after_s = exited_at - start
        run.script_status = proc.returncode
    if run.hung:
        for d in drains:
            d.stop.set()
        _close_pipes(proc)
        result.timed_out = True
        result.left_running = group_members(proc.pid)
        result.log.append(
            f"{which}: its output pipes were still open {end - start - deadline_s:.1f} s after "
            "the deadline; the agent would still be waiting (harness bound reached)"
        )
        return run
    eofs = [d.eof_at for d in drains if d.eof_at is not None]
    returned = max([exited_at or end, *eofs]) if exited_at is not None else end
    result.end_s = returned
    run.returned_after_s = returned - start
    status = proc.returncode if proc.returncode is not None else -1
    code = status if status >= 0 else -1  # ExitError.ExitCode: -1 when killed by a signal
    if run.returned_after_s >= deadline_s:
        code = TIMEOUT_EXIT  # child.Err() is DeadlineExceeded: "res.ExitCode = 124"
        result.timed_out = True
    run.exit_code = code
    result.exit_code = code
    if run.killed:  # the agent killed the script alone: whatever it started lives on
        result.left_running = group_members(proc.pid)
    return run


def _kill(proc: Process) -> None:
    kill = getattr(proc, "kill", None)
    with contextlib.suppress(ProcessLookupError, OSError):
        if callable(kill):
            kill()
        else:
            os.kill(proc.pid, signal.SIGKILL)


def _step(proc: Process, running: bool, clock: Clock) -> None:
    if isinstance(clock, SystemClock) and running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STEP_S)
        return
    clock.sleep(STEP_S)


def _close_pipes(proc: Process) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid`` (the script's own group under the harness):
    what a script left behind, which the agent never ends."""
    members = []
    proc_dir = Path("/proc")
    try:
        entries = [e for e in os.listdir(proc_dir) if e.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            data = (proc_dir / entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        fields = data[data.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry))
    return sorted(members)
