"""The controller's side of a cycle in a stand-in VM: starts the agent and answers it.

The agent (inside the VM) runs the framework engine; the controller (this process, on the host)
takes the snapshot from the host side when asked, and runs the caller's hooks at each phase edge
(for example the quiesce probe at ``pre_end``). The controller never touches the VM's file
systems while they are frozen, and thaws them itself if the agent dies.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..framework.azure import codes
from ..framework.interfaces import SnapshotResult
from ..vm.errors import VmError
from ..vm.helpers import end_process
from .protocol import AgentOptions, CycleRecord, Event, encode, snapshot_to_dict
from .signals import unwinding

log = logging.getLogger(__name__)

EventHook = Callable[[str, float], None]
SnapshotFn = Callable[[], SnapshotResult]


class VM(Protocol):
    """What the driver needs of a stand-in VM (host namespaces or a container)."""

    name: str

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]: ...

    def thaw_all(self) -> list[str]: ...


@dataclass
class DrivenCycle:
    """The agent's cycle result plus the controller's view of the phase edges."""

    cycle: CycleRecord
    events: list[tuple[str, float]] = field(default_factory=list)
    agent_stderr: str = ""


AGENT_MODULE = "pytest_vmsnap.cycle.agent"


class FrameworkKilled(VmError):
    """A script killed the framework's own process (``kill -9 $PPID``): the cycle has no
    result, as under the real extension, where the backup job dies with it."""

    def __init__(self, which: str, signum: int) -> None:
        self.which = which
        self.signum = signum
        super().__init__(
            f"the {which}-script killed the framework's process (signal {signum}) while it "
            "ran: under the real extension the backup job dies with it and no snapshot is taken"
        )


class Agent:
    """The framework agent inside a VM, started ahead of its cycle: its interpreter start and
    imports happen while the workload warms up, not on the cycle's clock."""

    def __init__(self, vm: VM, python: str = sys.executable) -> None:
        self.proc = vm.popen(
            [python, "-m", AGENT_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def end(self, timeout_s: float = 30.0) -> None:
        """Close its input (an agent still waiting for its cycle exits) and wait for it; when
        a signal asks this process to end, kill its client at once (the VM's end ends it)."""
        end_process(self.proc, 0.2 if unwinding() else timeout_s)


def drive_cycle(
    vm: VM,
    *,
    snapshot: SnapshotFn,
    options: AgentOptions,
    on_event: EventHook | None = None,
    python: str = sys.executable,
    timeout_s: float = 3900.0,
    agent: Agent | None = None,
) -> DrivenCycle:
    """Run one framework cycle inside ``vm`` and return its result.

    ``options`` go to the agent (profile, pacing, the mounts to freeze). ``snapshot`` is
    called while the VM is frozen.
    ``agent`` is one started ahead (:class:`Agent`), or None to start one now.
    """
    agent = agent or Agent(vm, python)
    proc = agent.proc
    assert proc.stdout is not None
    events: list[tuple[str, float]] = []
    deadline = time.monotonic() + timeout_s
    result: CycleRecord | None = None
    try:
        _reply(proc, "start", options.to_dict())
        for line in proc.stdout:
            message = json.loads(line)
            if "event" in message:
                event = Event.from_message(message)
                events.append((event.name, event.t))
                if on_event is not None:
                    on_event(event.name, event.t)
                _reply(proc, "ack", True)
            elif "snapshot" in message:
                _reply(proc, "snapshot_result", snapshot_to_dict(_safe_snapshot(snapshot)))
            elif "result" in message:
                result = CycleRecord.from_dict(message["result"])
                break
            if time.monotonic() > deadline:
                raise VmError(f"VM {vm.name}: the framework cycle did not end in {timeout_s} s")
    except BrokenPipeError:
        pass  # the agent died before its cycle: its stderr says why, below
    finally:
        # Whatever happened above, no VM file system stays frozen.
        vm.thaw_all()
        agent.end()
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    running, signum = _script_running(events), _killed_by(proc.returncode)
    if result is None and running and signum:
        raise FrameworkKilled(running, signum)
    if result is None:
        last = stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise VmError(
            f"VM {vm.name}: the framework agent ended without a result: {last[0]}"
            + died_frozen([name for name, _ in events])
        )
    return DrivenCycle(result, events, stderr)


def died_frozen(events: list[str]) -> str:
    """What the real helper would have done (errata E4) when the framework's process ended
    while the file systems were frozen: a sentence to add to the error, or ''."""
    if "frozen" not in events or "thawed" in events:
        return ""
    return (
        "; it ended while the file systems were frozen: the harness thawed them at once, but "
        "the extension's safefreeze thaws only on SIGUSR1 or at its own timeout (vmbackup.conf "
        "timeout, 60 s by default), so in production the application would have stayed "
        "frozen that long, and the helper would then exit 2 (errata E4)"
    )


def _script_running(events: list[tuple[str, float]]) -> str | None:
    """The script the framework was running when its events stopped ("pre", "post")."""
    last = events[-1][0] if events else ""
    return last.removesuffix("_start") if last in ("pre_start", "post_start") else None


def _killed_by(returncode: int | None) -> int | None:
    """The signal that ended the agent: its client reports it as ``-N`` (nsenter passes it
    on) or as ``128 + N`` (docker exec)."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    return returncode - 128 if returncode > 128 else None


def _reply(agent: subprocess.Popen[Any], kind: str, body: Any) -> None:
    assert agent.stdin is not None
    agent.stdin.write(encode(kind, body))
    agent.stdin.flush()


def _safe_snapshot(snapshot: SnapshotFn) -> SnapshotResult:
    try:
        return snapshot()
    except Exception as err:  # the agent must always get an answer, then thaw
        log.warning("snapshot failed: %s", err)
        return SnapshotResult(codes.ERROR, False, "?", message=f"snapshot failed: {err}")
