"""One cycle's account for the frameworks other than Azure, and the step they share: freeze (or
not), snapshot, thaw, with the events and the timeline.

Azure's engine has its own (:class:`~.azure.cycle.CycleResult`, whose status is the
extension's code). The other frameworks have no numeric status of their own, so ``status`` is
the common scale (:data:`APPLICATION`, :data:`NOT_QUIESCED`, :data:`NO_SNAPSHOT`) and
``outcome`` is the framework's own word for what happened (``SCRIPT_TIMED_OUT``,
``ApplicationQuiesceFault``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .interfaces import Freezer, FreezeResult, SnapshotResult, Snapshotter, ThawResult
from .records import (
    CycleRecordJson,
    Finding,
    FreezeRecord,
    PhaseRecord,
    ScriptRecord,
    SnapshotRecord,
)
from .scripts import Clock, ScriptResult, not_run

APPLICATION = 0
"""The framework reports a snapshot taken with its scripts' quiesce (application-consistent)."""
NOT_QUIESCED = 1
"""A snapshot was taken but the framework does not report it application-consistent (AWS
DLM's crash-consistent fallback, say)."""
NO_SNAPSHOT = 2
"""The framework took no snapshot (its ``outcome`` says why)."""


@dataclass
class Phase:
    """One bar of the timeline, in seconds from the start of the cycle."""

    phase: str
    start_s: float
    end_s: float

    def to_dict(self) -> PhaseRecord:
        return {
            "phase": self.phase,
            "start_s": round(self.start_s, 4),
            "end_s": round(self.end_s, 4),
        }


@dataclass
class Call:
    """One script the framework ran (or found and did not run), with its phase."""

    phase: str
    """The verb or side it ran for: ``freeze``, ``thaw``, ``freezeFail``, ``pre``, ``post``,
    ``dry-run``."""
    path: str
    """Where the framework found it, inside the VM."""
    result: ScriptResult

    def to_dict(self) -> ScriptRecord:
        return {**self.result.to_dict(), "phase": self.phase, "path": self.path}


@dataclass
class FrameworkCycle:
    """The outcome of one cycle of a framework other than Azure, with the evidence behind it."""

    framework: str
    status: int = APPLICATION
    outcome: str = ""
    """The framework's own name for the result (``NO_ERROR``, ``SCRIPT_TIMED_OUT``, ...)."""
    message: str = ""
    calls: list[Call] = field(default_factory=list)
    """Every script run, in the order the framework ran them."""
    pre: ScriptResult | None = None
    """``scripts.pre`` of the JSON: the freeze side as one record (the failing call, else the
    last one); None when no script ran on that side."""
    post: ScriptResult | None = None
    freeze: FreezeResult | None = None
    thaw: ThawResult | None = None
    snapshot: SnapshotResult | None = None
    froze: bool = False
    freezes: bool = False
    """Whether this framework freezes file systems itself."""
    frozen_s: float = 0.0
    frozen_window: tuple[float, float] | None = None
    timeline: list[Phase] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    precheck_log: list[str] = field(default_factory=list)
    real_freeze: bool = True
    real_snapshot: bool = True

    @property
    def snapshot_taken(self) -> bool:
        return self.snapshot is not None and self.snapshot.taken

    @property
    def consistency(self) -> str:
        """What the snapshot is as the framework reports it: ``application``,
        ``filesystem`` (frozen, not application-consistent), ``crash`` or ``none``."""
        if not self.snapshot_taken or self.status not in (APPLICATION, NOT_QUIESCED):
            return "none"
        if self.status == APPLICATION:
            return "application"
        return "filesystem" if self.froze else "crash"

    def side(self, phases: tuple[str, ...]) -> ScriptResult | None:
        """The calls of these phases as one record: the first that failed, else the last."""
        runs = [c.result for c in self.calls if c.phase in phases]
        failed = [r for r in runs if r.failed]
        return failed[0] if failed else (runs[-1] if runs else None)

    def to_dict(self) -> CycleRecordJson:
        """The framework part of the ``vmsnap run`` JSON contract (Azure's keys, plus
        ``framework``, ``outcome`` and ``calls``)."""
        return {
            "status": self.status,
            "health_code": self.status,
            "message": self.message,
            "consistency": self.consistency,
            "profile": self.framework,
            "framework": self.framework,
            "outcome": self.outcome,
            "precheck": {"code": 0, "detail": "", "log": self.precheck_log},
            "scripts": {
                "pre": self.pre.to_dict() if self.pre else not_run("pre"),
                "post": self.post.to_dict() if self.post else not_run("post"),
            },
            "calls": [c.to_dict() for c in self.calls],
            "freeze": freeze_record(self, enabled=self.freezes),
            "snapshot": snapshot_record(self),
            "findings": self.findings,
            "timeline": [p.to_dict() for p in self.timeline],
        }


class Captured(Protocol):
    """What a cycle record knows of its freeze, thaw and snapshot (Azure's and the others')."""

    freeze: FreezeResult | None
    thaw: ThawResult | None
    snapshot: SnapshotResult | None
    froze: bool
    frozen_s: float
    frozen_window: tuple[float, float] | None
    real_freeze: bool
    real_snapshot: bool

    @property
    def snapshot_taken(self) -> bool: ...


def freeze_record(c: Captured, *, enabled: bool) -> FreezeRecord:
    """``freeze`` of the JSON: whether the framework freezes, whether and how long it did."""
    return {
        "enabled": enabled,
        "real": c.real_freeze,
        "frozen": c.froze,
        "frozen_s": round(c.frozen_s, 4),
        "window_s": [round(t, 4) for t in c.frozen_window] if c.frozen_window else None,
        "mounts": c.freeze.mounts if c.freeze else [],
        "code": c.freeze.code if c.freeze else None,
        "message": c.freeze.message if c.freeze else "",
        "thaw_code": c.thaw.code if c.thaw else None,
    }


def snapshot_record(c: Captured) -> SnapshotRecord:
    """``snapshot`` of the JSON: the backend, whether it was taken, how long it took."""
    return {
        "backend": c.snapshot.backend if c.snapshot else None,
        "real": c.real_snapshot,
        "taken": c.snapshot_taken,
        "duration_s": round(c.snapshot.duration_s, 4) if c.snapshot else 0.0,
        "message": c.snapshot.message if c.snapshot else "",
    }


class Timeline:
    """Marks the phases of one cycle on its clock, and reports its events."""

    def __init__(self, result: FrameworkCycle, clock: Clock, notify: Callable[[str], None]):
        self.result, self.clock, self.notify = result, clock, notify
        self.t0 = clock.monotonic()

    def now(self) -> float:
        return self.clock.monotonic()

    def mark(self, name: str, start: float) -> None:
        self.result.timeline.append(Phase(name, start - self.t0, self.clock.monotonic() - self.t0))


@dataclass
class Capture:
    """How the freeze, snapshot and thaw step went."""

    freeze_failed: bool = False
    snapshot_failed: bool = False
    thaw_failed: bool = False

    @property
    def ok(self) -> bool:
        return not (self.freeze_failed or self.snapshot_failed or self.thaw_failed)


def freeze(result: FrameworkCycle, freezer: Freezer, tl: Timeline) -> bool:
    """Freeze the file systems (events ``freeze_start``, ``freeze_call``, ``frozen``); False
    when the freeze failed (the freezer has thawed what it froze)."""
    start = tl.now()
    tl.notify("freeze_start")
    tl.notify("freeze_call")  # the moment the application's disks are captured
    result.freeze = freezer.freeze()
    tl.mark("freeze", start)
    if result.freeze.code:
        return False
    result.froze = True
    tl.notify("frozen")
    return True


def snapshot(result: FrameworkCycle, snapshotter: Snapshotter, tl: Timeline) -> bool:
    """Take the snapshot (events ``snapshot_start``, ``snapshot_end``)."""
    start = tl.now()
    tl.notify("snapshot_start")
    result.snapshot = snapshotter.snapshot()
    tl.mark("snapshot", start)
    tl.notify("snapshot_end")
    return not result.snapshot.code and result.snapshot.taken


def thaw(result: FrameworkCycle, freezer: Freezer, tl: Timeline) -> bool:
    """Thaw what :func:`freeze` froze (event ``thawed``); False when the thaw failed or the
    freeze had ended on its own before it."""
    start = tl.now()
    result.thaw = freezer.thaw()
    tl.mark("thaw", start)
    result.frozen_s = max(result.thaw.frozen_s.values(), default=0.0)
    if result.thaw.window is not None:
        a, b = result.thaw.window
        result.frozen_window = (a - tl.t0, b - tl.t0)
    tl.notify("thawed")
    return not result.thaw.code


def capture(
    result: FrameworkCycle,
    freezer: Freezer,
    snapshotter: Snapshotter,
    tl: Timeline,
    *,
    freeze_fs: bool,
) -> Capture:
    """Freeze (when ``freeze_fs``), snapshot, thaw: the step between the two sides' scripts for
    a framework that does nothing in between (VMware and qemu-ga run their thaw-side scripts
    after the thaw, as here)."""
    out = Capture()
    if freeze_fs and not freeze(result, freezer, tl):
        out.freeze_failed = True
        return out
    try:
        out.snapshot_failed = not snapshot(result, snapshotter, tl)
    finally:
        if freeze_fs:
            out.thaw_failed = not thaw(result, freezer, tl)
    return out
