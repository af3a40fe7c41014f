"""One complete vmsnap cycle: build a stand-in VM, load it, run the framework, restore, judge.

This is what ``vmsnap run`` and every ``pytest --vmsnap`` cycle item call. The cycle is a row
of phase functions over one small state (:class:`_Cycle`):

- build: :func:`~.testbed.build` (disks in a reflink pool, the VM, the user's files at their
  real paths, the application provisioned);
- load: the recorded workload starts and the framework agent starts beside it;
- drive: the framework cycle runs inside the VM (real freeze through the guard, the snapshot
  taken from the host side); the quiesce probe runs when the pre-script has ended;
- probe: the liveness probe after the post-script; the workload stops, its history is read;
- restore: the snapshot is cloned into a fresh VM and the application started there;
- judge: the oracle's verdict from all of the above.

Every resource is released in reverse order whatever happens, and no file system is ever
left frozen.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..apps.base import IntegrityReport, Role, roles
from ..evidence import oracle
from ..evidence.script_output import masked_failures
from ..evidence.workload import Ack, parse_history
from ..framework import engines
from ..framework.azure.profiles import get as get_profile
from ..framework.interfaces import SnapshotResult
from ..framework.scripts import FAITHFUL, PROMPT
from ..lint.sources import Source, modes_finding
from ..settings import Settings
from ..vm import disks as vmdisks
from ..vm import snapshot
from ..vm.base import StandIn
from ..vm.errors import VmError
from ..vm.forkserver import Call
from ..vm.snapshot.parts import PartCopied
from . import testbed, torn_copy
from .advice import pre_waits_on_post
from .baseline import baseline_cycle
from .driver import Agent, DrivenCycle, FrameworkKilled, drive_cycle
from .protocol import AgentOptions, CycleRecord, FreezeOptions, Pacing, snapshot_from_dict
from .result import LIVENESS_BOUND_S, RunResult
from .signals import sigterm_unwinds, unwinding
from .testbed import Testbed, new_vm

log = logging.getLogger(__name__)

QUIESCE_PROBE_TIMEOUT_S = 1.0
START_DEADLINE_S = 60.0
HISTORY = "/run/vmsnap/history.jsonl"
"""The workload's history, inside the source VM: in its memory, not on this host (a script
could write there) nor on the VM's disks (it would be in the snapshot)."""

Hooks = Mapping[str, Callable[..., Any]]

_EVENT_PHASES = {
    "pre_start": "pre: pre-script started",
    "pre_end": "pre: pre-script ended",
    "freeze_start": "freeze: freezing the file systems",
    "snapshot_start": "snapshot: taking the snapshot",
    "thawed": "thaw: file systems thawed",
    "post_start": "post: post-script started",
    "post_end": "post: post-script ended",
}
"""The framework's events as progress lines (``vmsnap run -v``, ``pytest -v``)."""


def _phase(text: str, *args: object) -> None:
    """One progress line: ``<phase>: what happens`` (build, load, pre, freeze, snapshot,
    thaw, post, restore, judge), logged at INFO."""
    log.info(text, *args)


def _event_phase(name: str) -> None:
    if name in _EVENT_PHASES:
        _phase(_EVENT_PHASES[name])


def run(settings: Settings, *, hooks: Hooks | None = None) -> RunResult:
    """Run one cycle as ``settings`` describe; never raises for a failed cycle.

    ``hooks`` (for fault injection): ``after_freeze`` is called with the VM while frozen
    (before the snapshot); ``snapshot`` replaces the snapshot function (it returns a
    :class:`~pytest_vmsnap.framework.interfaces.SnapshotResult` or its fields as a dict). For
    building races on purpose: ``before_workload`` is called with the VM once the application
    is provisioned, before the recorded workload starts; ``before_snapshot`` is called with the
    VM when the framework's snapshot step begins, before any disk is copied, whether or not the
    file systems are frozen (with ``fsFreezeEnabled: false`` ``after_freeze`` never runs);
    ``at_pre_end`` is called with the VM as soon as the pre-script's end is noticed, before the
    quiesce probe. Hooks run in the controller while the framework waits for them.
    """
    result = RunResult(settings)
    problems = settings.problems()
    if problems:
        result.error = "; ".join(problems)
        result.verdict, result.reasons = oracle.ERROR, [f"harness: {result.error}"]
        return result
    try:
        with sigterm_unwinds():
            if settings.vm == "dir" or os.geteuid() != 0:
                _run_dir(settings, result)
            else:
                t = time.monotonic()
                try:
                    _run_vm(settings, result, hooks or {})
                finally:
                    result.timings["total_s"] = time.monotonic() - t
    except FrameworkKilled as err:  # what the script did, in the user's terms
        result.verdict, result.reasons = oracle.NOT_TAKEN, [str(err)]
        result.findings.append(
            {
                "code": None,
                "name": "ScriptKilledFramework",
                "message": str(err),
                "action": f"Make the {err.which}-script end with its own exit code; never "
                "signal its parent ($PPID) or its process group: they are the extension's.",
            }
        )
        log.error("%s", err)
    except Exception as err:  # one clear line for the user; the VM was released already
        # Not "not-taken" (that is the framework's decision): the harness itself failed, so
        # nothing is known about the scripts. A verdict reached before it failed is kept in
        # the reasons, not in the verdict.
        result.error = f"{type(err).__name__}: {' '.join(str(err).split())}"
        log.error("cycle failed: %s", result.error)
        judged = [f"(judged before the error: {result.verdict})"] if result.reasons else []
        result.verdict = oracle.ERROR
        result.reasons = [f"harness: {result.error}", *judged, *result.reasons]
    return result


def _record_files(result: RunResult, sources: list[Source]) -> None:
    """The user's files as installed (``files`` in the JSON), and a finding naming them when
    the pre-check refuses a mode they were installed with (the framework's names the VM's
    path)."""
    result.files = [s.to_dict() for s in sources]
    if result.settings.framework != "azure":
        return  # the modes finding is about Azure's pre-check
    finding = modes_finding(sources, get_profile(result.settings.profile))
    if finding is not None:
        result.findings.append(finding)


def _run_dir(settings: Settings, result: RunResult) -> None:
    """Without root: the framework cycle in a directory, no freeze, no database."""
    _phase("build: directory stand-in (no root: no freeze, no snapshot, no database)")
    with tempfile.TemporaryDirectory(prefix="vmsnap-dir-") as tmp:
        staged = testbed.stage_files(settings, Path(tmp))
        if staged is not None:
            _record_files(result, staged.sources)
        engine = engines.get(
            settings.framework,
            profile=settings.profile,
            options=dict(settings.framework_options),
        )
        cycle = engine.run_cycle(
            tmp,
            pacing=FAITHFUL if settings.pacing == "faithful" else PROMPT,
            # Only the scripts' phases: this stand-in's freeze and snapshot do nothing.
            observer=lambda name: _event_phase(name) if name[:4] in ("pre_", "post") else None,
            env=dict(settings.env),
        )
    result.cycle = CycleRecord.from_dict(cycle.to_dict())
    result.findings.extend(masked_failures(result.cycle.scripts))
    result.timeline = [dict(p) for p in result.cycle.timeline]
    result.evidence.notes.append(
        "no root: directory stand-in, no freeze, no database; the "
        "verdict is never better than crash-consistent"
    )
    _judge(
        result,
        taken=False,
        why_not_taken="directory stand-in: nothing to restore (needs root "
        "for loop devices and fsfreeze)",
    )


class _Clock:
    """Converts monotonic times to seconds from the start of the run."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def rel(self, t: float) -> float:
        return round(t - self.t0, 4)


@dataclass
class _Cycle:
    """What the phases of one cycle share."""

    settings: Settings
    result: RunResult
    hooks: Hooks
    bed: Testbed
    stack: contextlib.ExitStack
    """Releases what the phases made after the build (workload, agent, snapshots, VM 2)."""
    clock: _Clock = field(default_factory=_Clock)
    workload: Call | None = None
    agent: Agent | None = None
    events: dict[str, float] = field(default_factory=dict)
    quiesce_probes: list[dict[str, Any]] = field(default_factory=list)
    """One per writer role (``writers``) at each probing point, each with ``role`` and
    ``at``: the pre-script's end, the capture of the disks, and across ``window_s``."""
    window: dict[str, Any] | None = None
    """The timeline's ``window`` phase, when ``window_s`` held the capture."""
    snaps: list[Any] = field(default_factory=list)
    driven: DrivenCycle | None = None
    acks: list[Ack] = field(default_factory=list)
    parts: list[PartCopied] = field(default_factory=list)
    """The parts of a torn copy, as they were copied."""
    take: tuple[float, float] | None = None
    """When the backend's ``take()`` ran (monotonic): its end, less its own ``duration_s``."""


def _run_vm(settings: Settings, result: RunResult, hooks: Hooks) -> None:
    _phase(
        "build: %s stand-in, %d %s disk(s), %s",
        settings.vm,
        settings.disks,
        settings.fs,
        settings.app,
    )
    # Two stacks, the testbed's outside: released in the same order as one stack would.
    with (
        testbed.build(settings, "source", timings=result.timings) as bed,
        contextlib.ExitStack() as stack,
    ):
        result.tag = bed.tag
        result.versions = bed.versions
        _record_files(result, bed.sources)
        for note in bed.staging_notes:
            result.findings.append(
                {
                    "code": None,
                    "name": "ScriptNotInstalledAsAsked",
                    "message": note,
                    "action": "Fix the config so that the extension can read it; until then "
                    "it runs no script (use --pre-at/--post-at to place the scripts anyway).",
                }
            )
        c = _Cycle(settings, result, hooks, bed, stack)
        _load(c)
        _drive(c)
        _probe_and_stop(c)
        assert c.driven is not None
        if not (c.snaps and c.driven.cycle.taken):
            _judge(result, taken=False, why_not_taken=f"no snapshot: {c.driven.cycle.message}")
            return
        _restore_and_check(c)
        _judge(
            result,
            taken=True,
            ceiling=oracle.CRASH if settings.baseline else None,
            ceiling_reason="baseline: no scripts and no freeze, a crash-consistent snapshot",
        )


def _load(c: _Cycle) -> None:
    """Start the recorded workload and, beside its warm-up, the framework agent."""
    vm = c.bed.vm
    if "before_workload" in c.hooks:
        c.hooks["before_workload"](vm)
    _phase("load: recorded workload (writers: %s)", c.settings.writers)
    workload = vm.submit(
        "pytest_vmsnap.evidence.workload:run", c.settings.app, HISTORY, c.settings.writers
    )
    c.workload = workload
    c.stack.callback(_stop_workload, workload)
    c.agent = Agent(vm)  # its start-up overlaps the workload's warm-up
    c.stack.callback(c.agent.end)
    _wait_first_ack(workload, vm, roles(c.settings.writers))
    time.sleep(max(0.2, c.settings.workload_seconds / 2))


def _drive(c: _Cycle) -> None:
    """The framework cycle inside the VM; the controller probes and snapshots on its events."""
    settings, vm, result = c.settings, c.bed.vm, c.result

    def on_event(name: str, t_event: float) -> None:
        c.events[name] = t_event
        _event_phase(name)
        if name == "pre_end" and "at_pre_end" in c.hooks:
            c.hooks["at_pre_end"](vm)  # first: the state as the pre-script left it
        if name == "pre_end" and not settings.baseline:
            began = time.monotonic()
            _quiesce_at(c, "the pre-script's end")
            result.timings["quiesce_probe_s"] = time.monotonic() - began
        if name == "freeze_call" and not settings.baseline:
            _hold_window(c, "the freeze")
        if name == "frozen" and "after_freeze" in c.hooks:
            c.hooks["after_freeze"](vm)
        if name == "snapshot_start" and "before_snapshot" in c.hooks:
            c.hooks["before_snapshot"](vm)

    backend = c.bed.backend
    t = time.monotonic()
    if settings.baseline:
        driven = baseline_cycle(lambda: _take_snapshot(c), on_event, backend.name)
    else:
        freeze = FreezeOptions(tuple((d.spec.mountpoint, d.spec.fs) for d in c.bed.disks))
        pacing: Pacing = "prompt" if settings.pacing == "prompt" else "faithful"
        options = AgentOptions(
            settings.profile,
            pacing,
            freeze,
            env=settings.env,
            framework=settings.framework,
            framework_options=settings.framework_options,
        )
        driven = drive_cycle(
            vm,
            snapshot=lambda: _take_snapshot(c),
            options=options,
            on_event=on_event,
            agent=c.agent,
        )
    result.timings["framework_cycle_s"] = time.monotonic() - t
    c.driven = driven
    result.cycle = driven.cycle
    result.findings.extend(pre_waits_on_post(settings, driven.cycle))
    result.findings.extend(masked_failures(driven.cycle.scripts))
    # The first event (precheck_end) marks the end of the timeline's first phase; a
    # baseline's (pre_end) marks the start of its only one, its snapshot.
    phases = driven.cycle.timeline
    first = phases[0]["end_s"] if phases and not settings.baseline else 0.0
    t_cycle0 = driven.events[0][1] - first if driven.events else c.clock.t0
    result.timeline = [
        {
            "phase": p["phase"],
            "start_s": c.clock.rel(t_cycle0 + p["start_s"]),
            "end_s": c.clock.rel(t_cycle0 + p["end_s"]),
        }
        for p in phases
    ]
    if c.window is not None:
        result.timeline.append(c.window)
    # The frozen span and the snapshot's take() on the timeline's clock: the report draws
    # them with the lengths it prints (frozen_s, duration_s).
    frozen = driven.cycle.freeze.get("window_s")
    if frozen:
        driven.cycle.freeze["window_s"] = [c.clock.rel(t_cycle0 + t) for t in frozen]
    if c.take is not None:
        driven.cycle.snapshot["take_s"] = [c.clock.rel(t) for t in c.take]
    log.info("framework cycle: status %s (%s)", driven.cycle.status, driven.cycle.message)


def _take_snapshot(c: _Cycle) -> SnapshotResult:
    """The framework's snapshot step, from the host side (or the ``snapshot`` hook)."""
    if "snapshot" in c.hooks:
        answer = c.hooks["snapshot"]()
        return answer if isinstance(answer, SnapshotResult) else snapshot_from_dict(answer)
    if "frozen" not in c.events and not c.settings.baseline:
        _hold_window(c, "the snapshot")  # nothing froze the disks: they are captured now
    disks = c.bed.disks
    order = disks if c.settings.snapshot_order == "layout" else disks[::-1]
    backend = c.bed.backend
    if c.settings.torn_copy:
        if "frozen" in c.events:
            raise VmError("a torn copy needs a cycle that does not freeze (its checkpoint writes)")
        parts = torn_copy.plan(c.bed.vm, c.settings.app, disks)
        assert c.workload is not None and c.workload.pid is not None
        backend = torn_copy.TornCopy(c.bed.vm, c.settings.app, c.workload.pid, parts, c.parts)
    snap = backend.take(order, c.bed.workdir / "snap", skew_s=c.settings.skew_s)
    took = time.monotonic()
    c.take = (took - snap.duration_s, took)
    c.result.snapshot_parts = [
        {
            "part": p.label,
            "bytes": p.bytes,
            "start_s": c.clock.rel(p.start_s),
            "end_s": c.clock.rel(p.end_s),
            "then": p.then,
        }
        for p in c.parts
    ]
    c.snaps.append(snap)
    c.stack.callback(snapshot.delete, snap)
    return SnapshotResult(
        code=0,
        taken=True,
        backend=c.bed.backend.name,
        duration_s=snap.duration_s,
        message=f"{len(snap.images)} disk(s)",
    )


def _probe_and_stop(c: _Cycle) -> None:
    """The liveness probe, then the workload's end and its history; the source VM ends."""
    vm, result = c.bed.vm, c.result
    t = time.monotonic()
    live = _probes_at_once(
        vm, "probe_live", c.settings.app, LIVENESS_BOUND_S, roles(c.settings.writers)
    )
    result.timings["liveness_s"] = time.monotonic() - t
    at_s = c.clock.rel(time.monotonic())
    result.probes.extend({"probe": "liveness", "at_s": at_s, **p} for p in live)
    oracle.judge_probes(result.evidence, c.settings.quiesce, c.quiesce_probes, live)
    t = time.monotonic()
    time.sleep(0.05)  # the workload's own writes after the post-script, for the timeline
    assert c.workload is not None
    _stop_workload(c.workload)
    c.acks = parse_history((vm.read_file(HISTORY) or b"").decode(errors="replace"))
    result.latency = [
        (c.clock.rel(a.t0), a.t1 - a.t0, a.op if not a.error else "error")
        for a in c.acks
        if a.op in ("append", "transfer")
    ]
    # Ending the source VM flushes its disks on unmount (a second for a database that
    # wrote much): let that run beside the restore, which uses other images.
    stopper = threading.Thread(target=vm.stop, name="vmsnap-source-stop", daemon=True)
    stopper.start()
    c.stack.callback(stopper.join)
    result.timings["source_stop_s"] = time.monotonic() - t


def _restore_and_check(c: _Cycle) -> None:
    """Clone the snapshot into a fresh VM, start the application there and read it."""
    result, stack, app = c.result, c.stack, c.bed.app
    _phase("restore: the snapshot into a fresh VM, starting %s there", c.settings.app)
    t = time.monotonic()
    restored_disks = snapshot.restore(c.snaps[0], c.bed.workdir / "restore")
    stack.callback(snapshot.delete_restored, restored_disks)
    for disk in restored_disks:
        vmdisks.attach(disk)
        stack.callback(vmdisks.detach, disk)
    # No graceful stop of the restored copy: it is thrown away, and ending its VM ends it.
    vm2 = new_vm(c.settings, stack, "restored", restored_disks, c.bed.tag)
    vm2.warm("pytest_vmsnap.evidence.probe", *app.client_modules)
    start = app.start(vm2, START_DEADLINE_S)
    result.timings["restore_start_s"] = time.monotonic() - t
    integrity: IntegrityReport | None = None
    state: dict[str, Any] | None = None
    t = time.monotonic()
    if start.started:
        integrity = app.integrity(vm2)
        state = _probe(vm2, "read_state", c.settings.app)
    result.timings["verify_s"] = time.monotonic() - t
    oracle.check_restore(
        result.evidence,
        start,
        integrity,
        state,
        c.acks,
        c.events.get("pre_end"),
        c.events.get("thawed"),
    )


def _judge(
    result: RunResult,
    *,
    taken: bool,
    why_not_taken: str = "",
    ceiling: str | None = None,
    ceiling_reason: str = "",
) -> None:
    """The oracle's verdict from the evidence gathered and the framework's status."""
    assert result.cycle is not None
    hidden = hidden_failures(result.cycle)
    if hidden and ceiling is None:
        ceiling, ceiling_reason = oracle.CRASH, hidden
    verdict = oracle.decide(
        result.evidence,
        taken=taken,
        status=result.cycle.status,
        why_not_taken=why_not_taken,
        ceiling=ceiling,
        ceiling_reason=ceiling_reason,
    )
    result.verdict, result.reasons = verdict.verdict, verdict.reasons
    _phase("judge: %s", result.verdict)


def hidden_failures(cycle: CycleRecord) -> str:
    """A script that failed while the framework still reported an application-consistent
    snapshot (qemu-ga's stock wrapper exits 0 whatever its scripts did; VMware ignores a
    failing ``freezeFail`` script): the scripts are wrong whatever the snapshot holds. ''
    when there is none."""
    if cycle.status != 0:
        return ""
    failed = [
        f"{c.get('path') or c.get('phase')} ({c.get('phase')}: "
        + (
            str(c.get("start_error"))
            if c.get("start_error")
            else "timed out"
            if c.get("timed_out")
            else f"exit {c.get('exit_code')}"
        )
        + ")"
        for c in cycle.calls
        if c.get("start_error") or c.get("timed_out") or c.get("exit_code") not in (0, None)
    ]
    if not failed:
        return ""
    return f"a script failed and the framework still reported success: {', '.join(failed)}"


def _probe(vm: StandIn, fn: str, *args: Any) -> dict[str, Any]:
    """A :mod:`pytest_vmsnap.evidence.probe` function, run inside the VM; an error as data."""
    try:
        answer: dict[str, Any] = vm.call(f"pytest_vmsnap.evidence.probe:{fn}", *args, timeout=120)
        return answer
    except VmError as err:
        return {"result": "error", "error": str(err)}


def _quiesce_at(c: _Cycle, at: str) -> None:
    """The quiesce probes of every role, now, recorded with where in the window they ran."""
    probes = _quiesce_probes(c.bed.vm, c.settings.app, roles(c.settings.writers))
    pre_end = c.events.get("pre_end")
    for p in probes:
        t0 = p.get("t0") or time.monotonic()
        p["at"] = at
        if pre_end is not None:
            p["after_pre_s"] = round(t0 - pre_end, 3)
        # Each at its own start (the roles' probes run one after the other).
        c.result.probes.append({"probe": "quiesce", "at_s": c.clock.rel(t0), **p})
    c.quiesce_probes.extend(probes)


def _hold_window(c: _Cycle, capture: str) -> None:
    """Just before the application's disks are captured (``capture``: the freeze, or the
    snapshot when nothing froze them): probe the quiesce; with ``window_s``, hold the capture
    that much longer (a slow freeze or host snapshot) and probe at its middle and its end, so
    that a lock with a fixed lifetime shorter than the window is seen to expire."""
    window = c.settings.window_s
    if window <= 0:
        _quiesce_at(c, capture)
        return
    began = time.monotonic()
    _quiesce_at(c, f"{capture}, after the extension's own delays")
    for label, until in ((f"mid-window ({window / 2:g} s)", window / 2), ("", window)):
        time.sleep(max(0.0, began + until - time.monotonic()))
        _quiesce_at(c, label or f"{capture}, held {window:g} s (the worst case)")
    c.window = {
        "phase": "window",
        "start_s": c.clock.rel(began),
        "end_s": c.clock.rel(time.monotonic()),
    }


def _quiesce_probes(vm: StandIn, app: str, roles: tuple[Role, ...]) -> list[dict[str, Any]]:
    """The quiesce probe of every role, one after the other (two probe writes at once could
    hold each other up); an error as data, with its role."""
    return [
        {"role": role, **_probe(vm, "probe_write", app, QUIESCE_PROBE_TIMEOUT_S, role)}
        for role in roles
    ]


def _probes_at_once(
    vm: StandIn, fn: str, app: str, bound_s: float, roles: tuple[Role, ...]
) -> list[dict[str, Any]]:
    """``fn(app, bound_s, role)`` for every role at the same time (a liveness bound is paid
    once, not per role); an error as data, with its role."""
    calls = [
        (role, vm.submit(f"pytest_vmsnap.evidence.probe:{fn}", app, bound_s, role))
        for role in roles
    ]
    answers = []
    for role, call in calls:
        try:
            answers.append(dict(call.result(120)))
        except VmError as err:
            answers.append({"role": role, "result": "error", "error": str(err)})
    return answers


def _wait_first_ack(
    workload: Call, vm: StandIn, roles: tuple[Role, ...], deadline_s: float = 30.0
) -> None:
    """Wait until the workload has an acknowledged write of every role: a cycle over an idle
    database would prove nothing (on a loaded machine the writers need a moment to start and
    connect)."""
    end = time.monotonic() + deadline_s
    waiting = set(roles)
    last_error: dict[str, str] = {}
    while time.monotonic() < end:
        history = (vm.read_file(HISTORY) or b"").decode(errors="replace")
        acks = parse_history(history)
        waiting -= {a.role for a in acks if a.error is None and a.seq}
        if not waiting:
            return
        last_error.update((a.role, a.error) for a in acks if a.error and a.role in waiting)
        missing = [e for e in last_error.values() if e.startswith("No module named")]
        if missing:  # a client library the VM's Python lacks: no retry can help
            raise RuntimeError(
                f"the workload cannot connect: {missing[0]} in the VM's Python (host "
                "stand-in: pip install 'pytest-vmsnap[apps]')"
            )
        if workload.done():
            try:
                workload.result(0)
                detail = "it returned"
            except VmError as err:
                detail = str(err)
            raise RuntimeError(f"the workload ended before its first write: {detail}")
        time.sleep(0.01)
    why = "; ".join(f"{role}: {last_error[role]}" for role in sorted(waiting) if role in last_error)
    raise RuntimeError(
        f"the workload had no acknowledged write as {' or '.join(sorted(waiting))} "
        f"after {deadline_s:.0f} s" + (f" (last error: {why})" if why else "")
    )


def _stop_workload(workload: Call) -> None:
    """Ask the workload to stop (SIGTERM: its last writes are part of the record); when a
    signal asks this process to end, or a write hangs on a lock past the bound, kill it."""
    if workload.done():
        return
    workload.signal(signal.SIGTERM)
    if unwinding() or not workload.wait(40):
        workload.kill()
        workload.wait(10)
