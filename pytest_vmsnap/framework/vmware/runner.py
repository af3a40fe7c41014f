"""One script as vmtoolsd runs it: started through the shell, waited for on the plugin's
1-second poll, killed the ProcMgr way when the abort timer fires.

Sources (vmware/open-vm-tools, ``open-vm-tools/``):
- ``services/plugins/vmbackup/stateMachine.c``: the state machine is a 1000 ms timer
  (``pollPeriod = 1000``, ``VMBACKUP_ENQUEUE_EVENT``); a script's end is noticed, and the
  next step taken, only at such a tick (``VmBackupAsyncCallback`` ->
  ``VmBackupScriptOpQuery``);
- ``lib/procMgr/procMgrPosix.c``: ``ProcMgr_KillByPid`` sends SIGTERM, waits up to 5 s, then
  SIGKILL and waits up to 15 s, to the script's pid only (its children live on);
  ``ProcMgr_ExecAsync``'s waiter reports ``WEXITSTATUS`` of the script, which is 0 for a
  process killed by a signal, and ``ProcMgr_GetExitCode`` ignores the waiter's own success
  flag: a script that dies of a signal counts as a success.
"""

from __future__ import annotations

import contextlib
import math
import signal
import subprocess
from dataclasses import dataclass, field

from ..scripts import (
    Clock,
    Process,
    Reader,
    ScriptResult,
    Spawn,
    SystemClock,
    collect,
    start_readers,
)

POLL_PERIOD_S = 1.0
"""``pollPeriod``: the state machine's tick."""
TERM_WAIT_S = 5.0
KILL_WAIT_S = 15.0
STEP_S = 0.02

EXIT = "exit"
TIMER = "timer"
"""vmtoolsd's abort timer (``timeout``) fired."""
BOUND = "bound"
"""The harness's own bound came first (where vmtoolsd would wait longer, or forever)."""


@dataclass
class Clockwork:
    """The cycle's clock, its 1-second ticks, and the two deadlines that end a wait."""

    clock: Clock
    faithful: bool
    t0: float
    timer_at: float | None
    """When vmtoolsd's abort timer fires (None: ``timeout=0``, never)."""
    bound_at: float
    """When the harness stops waiting, whatever vmtoolsd would do."""
    timer_fired: bool = False

    def now(self) -> float:
        return self.clock.monotonic()

    def stop_reason(self) -> str | None:
        """Which deadline has passed, the earlier one first; None while neither has."""
        now = self.now()
        timer = self.timer_at if not self.timer_fired else None
        if timer is not None and now >= timer and timer <= self.bound_at:
            return TIMER
        if now >= self.bound_at:
            return BOUND
        return None

    def next_tick(self) -> str | None:
        """Wait for the plugin's next tick (``faithful`` only); a deadline reached first is
        returned instead (the timer fires between ticks)."""
        if not self.faithful:
            return self.stop_reason()
        k = math.floor((self.now() - self.t0) / POLL_PERIOD_S) + 1
        tick = self.t0 + k * POLL_PERIOD_S
        while True:
            reason = self.stop_reason()
            if reason:
                return reason
            left = tick - self.now()
            if left <= 0:
                return None
            self.clock.sleep(min(left, STEP_S * 5))


@dataclass
class Running:
    """A started script: its record, process and output readers."""

    index: int
    location: str
    op: str
    result: ScriptResult
    proc: Process
    readers: list[Reader] = field(default_factory=list)


def start(
    index: int, location: str, op: str, argv: list[str], spawn: Spawn, clock: Clock
) -> tuple[ScriptResult, Running | None]:
    """Start one script; (its record, None) when it could not be started (``proc == NULL``)."""
    result = ScriptResult(op, list(argv), start_s=clock.monotonic())
    try:
        proc = spawn(argv)
    except OSError as err:
        result.end_s = clock.monotonic()
        result.error_code = 1
        result.start_error = str(err.strerror or err)
        result.log.append(f"could not start {location}: {result.start_error}")
        return result, None
    result.ran, result.attempts = True, 1
    return result, Running(index, location, op, result, proc, start_readers(proc, result))


def wait(run: Running, work: Clockwork) -> str:
    """Wait until the script ends (:data:`EXIT`) or a deadline passes (:data:`TIMER`,
    :data:`BOUND`; the script is then killed as ``ProcMgr_KillByPid`` does)."""
    proc, result = run.proc, run.result
    while proc.poll() is None:
        reason = work.stop_reason()
        if reason:
            result.timed_out = True
            result.end_s = work.now()
            result.error_code = 1
            result.log.append(
                "vmtoolsd's abort timer fired"
                if reason == TIMER
                else "the harness's bound was reached"
            )
            _kill(run, work.clock)
            collect(proc, result, run.readers)
            return reason
        _step(proc, work.clock)
    result.end_s = work.now()
    code = proc.returncode if proc.returncode is not None else proc.poll()
    result.exit_code = code
    if code is not None and code < 0:
        # WEXITSTATUS of a signalled status is 0: ProcMgr reports exit code 0, a success.
        result.log.append(
            f"killed by signal {-code}: vmtoolsd reads its exit code as 0 and counts it "
            "as a success"
        )
    elif code:
        result.error_code = 1
    collect(proc, result, run.readers)
    return EXIT


def _kill(run: Running, clock: Clock) -> None:
    send = getattr(run.proc, "send_signal", None)
    if send is None:
        return
    for sig, limit in ((signal.SIGTERM, TERM_WAIT_S), (signal.SIGKILL, KILL_WAIT_S)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            send(sig)
        run.result.log.append(f"sent {sig.name} to {run.proc.pid}")
        deadline = clock.monotonic() + limit
        while run.proc.poll() is None and clock.monotonic() < deadline:
            _step(run.proc, clock)
        if run.proc.poll() is not None:
            return
    run.result.left_running.append(run.proc.pid)


def _step(proc: Process, clock: Clock) -> None:
    if isinstance(clock, SystemClock):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STEP_S)
        return
    clock.sleep(STEP_S)
