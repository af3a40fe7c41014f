"""The durations the page shows, each one number with one definition: the summary table, the
cycle's card and the timeline's bars all read them from here, so they cannot disagree.

Each number is a field of the run's JSON; where the timeline's framework step around it is
longer (the plugin host's poll after a script, the framework's request for the snapshot and
its answer, starting and stopping the freeze helper), the bar shows the number solid and the
rest of the step pale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .format import as_dict, as_float, as_list

KEYS = ("pre", "post", "frozen", "snapshot")

DEFINITION = {
    "pre": "pre-script: its run time as the framework measured it, from starting "
    "`sh <script>` until the framework saw it exit (at its next poll in faithful pacing) or "
    "gave up on it (scripts.pre.duration_s). On the timeline: the solid part of the bar; the "
    "pale rest is the framework's own time in the step (the plugin host's next poll, the "
    "harness's hand-over), not the script's.",
    "post": "post-script: its run time, measured as the pre-script's (scripts.post.duration_s).",
    "frozen": "frozen: how long the file systems were frozen, from the first FIFREEZE "
    "returning to the last FITHAW returning, as the freeze helper measured it "
    "(freeze.frozen_s). On the timeline: the dashed band.",
    "snapshot": "snapshot: the backend's take() (copying or cloning the disk images), as the "
    "backend measured it (snapshot.duration_s). On the timeline: the solid part of the "
    "snapshot bar; the pale rest is the framework asking the host for it and getting the "
    "answer.",
}
"""What each number is: in the page's legend and in the tooltips of the cells and bars."""

STEP_DEFINITION = (
    "The other bars are the framework's steps, from the moment it began one to the moment it "
    "was done: the pre-check, the freeze call (starting the freeze helper until every file "
    "system is frozen), the thaw call (the thaw request until the helper has exited), and in "
    "faithful pacing the extension's own waits."
)

REST = {
    "pre": "the plugin host's next poll and the harness's hand-over",
    "post": "the plugin host's next poll and the harness's hand-over",
    "snapshot": "the framework asking the host for the snapshot and getting its answer",
}
"""What the pale part of a step's bar is, beyond the number."""


@dataclass(frozen=True)
class Measure:
    """One duration: its number, and where its bar starts on the run's clock."""

    key: str
    seconds: float
    start: float | None
    """Seconds from the start of the run (None: the record says nothing of where)."""
    exact: bool = True
    """False when the position is estimated from the framework's steps (an older record)."""
    modelled: bool = False
    """The number was modelled, not waited for (the plugin host's watchdog)."""

    @property
    def end(self) -> float | None:
        return None if self.start is None else self.start + self.seconds


def phases_of(run: dict[str, Any]) -> list[tuple[str, float, float]]:
    """The timeline's steps ``(name, start, end)`` that have numbers."""
    out = []
    for p in as_list(run.get("timeline")):
        p = as_dict(p)
        start, end = as_float(p.get("start_s")), as_float(p.get("end_s"))
        if isinstance(p.get("phase"), str) and start is not None and end is not None:
            out.append((p["phase"], start, max(start, end)))
    return out


def measures(run: dict[str, Any]) -> dict[str, Measure]:
    """The run's durations by key (``pre``, ``post``, ``frozen``, ``snapshot``); a key is
    missing when the run has no such number (a script not run, nothing frozen or taken)."""
    steps: dict[str, tuple[float, float]] = {}
    for name, a, b in phases_of(run):
        steps.setdefault(name, (a, b))
    out: dict[str, Measure] = {}
    scripts = as_dict(run.get("scripts"))
    for which in ("pre", "post"):
        s = as_dict(scripts.get(which))
        dur = as_float(s.get("duration_s"))
        if s.get("ran") and dur is not None:
            # The step begins with the script's start: the bar begins with the step.
            start = steps[which][0] if which in steps else None
            out[which] = Measure(which, max(dur, 0.0), start, modelled=bool(s.get("watchdog")))
    frozen = _frozen(run, steps)
    if frozen is not None:
        out["frozen"] = frozen
    snapshot = _snapshot(run, steps)
    if snapshot is not None:
        out["snapshot"] = snapshot
    return out


def _span(value: Any) -> tuple[float, float] | None:
    pair = as_list(value)
    if len(pair) != 2:
        return None
    a, b = as_float(pair[0]), as_float(pair[1])
    return (a, b) if a is not None and b is not None else None


def _frozen(run: dict[str, Any], steps: dict[str, tuple[float, float]]) -> Measure | None:
    freeze = as_dict(run.get("freeze"))
    secs = as_float(freeze.get("frozen_s"))
    if not secs or secs <= 0 or freeze.get("frozen") is False:
        return None
    window = _span(freeze.get("window_s"))
    if window is not None:
        return Measure("frozen", secs, window[0])
    if "freeze" not in steps:
        return Measure("frozen", secs, None)
    # An older record: the helper reports "frozen" as the freeze call returns, and the
    # thaw call ends once it has thawed.
    start = steps["freeze"][1]
    if "thaw" in steps and start + secs > steps["thaw"][1]:
        start = max(steps["thaw"][1] - secs, steps["freeze"][0])
    return Measure("frozen", secs, start, exact=False)


def _snapshot(run: dict[str, Any], steps: dict[str, tuple[float, float]]) -> Measure | None:
    snap = as_dict(run.get("snapshot"))
    secs = as_float(snap.get("duration_s"))
    if not snap.get("taken") or secs is None:
        return None
    take = _span(snap.get("take_s"))
    if take is not None:
        return Measure("snapshot", max(secs, 0.0), take[0])
    if "snapshot" not in steps:
        return Measure("snapshot", max(secs, 0.0), None)
    # An older record: the answer follows the take at once.
    a, b = steps["snapshot"]
    return Measure("snapshot", max(secs, 0.0), max(a, b - secs), exact=False)
