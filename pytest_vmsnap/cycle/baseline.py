"""The crash-consistent baseline: the same snapshot with no scripts and no freeze."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..framework.azure import codes
from ..framework.interfaces import SnapshotResult
from .driver import DrivenCycle
from .protocol import CycleRecord


def baseline_cycle(
    take_snapshot: Callable[[], SnapshotResult],
    on_event: Callable[[str, float], None],
    backend: str,
) -> DrivenCycle:
    """Take the snapshot at once, with the events a framework cycle would report around it.

    The reference point for "acknowledged writes" is the start of the snapshot (there is no
    pre-script); the record has the shape of a framework cycle so reports read the same.
    """
    t0 = time.monotonic()
    on_event("pre_end", t0)
    snap = take_snapshot()
    t1 = time.monotonic()
    on_event("thawed", t1)
    code = snap.code or codes.ERROR
    cycle = CycleRecord(
        status=1 if snap.taken else code,
        health_code=0 if snap.taken else code,
        message="baseline: snapshot without scripts or freeze",
        consistency="crash" if snap.taken else "none",
        profile="baseline",
        freeze={
            "enabled": False,
            "real": True,
            "frozen": False,
            "frozen_s": 0.0,
            "mounts": [],
            "code": None,
            "message": "baseline: no freeze",
        },
        snapshot={
            "backend": backend,
            "real": True,
            "taken": snap.taken,
            "duration_s": snap.duration_s,
            "message": snap.message,
        },
        timeline=[{"phase": "snapshot", "start_s": 0.0, "end_s": round(t1 - t0, 4)}],
    )
    return DrivenCycle(cycle, [("pre_end", t0), ("thawed", t1)])
