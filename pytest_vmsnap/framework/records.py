"""The framework part of the ``vmsnap run`` JSON contract, as typed records.

The engine writes them (``CycleResult.to_dict``, ``ScriptResult.to_dict``,
``Code.as_finding``); the harness, the reports and the plugin read the same types, so a key
is spelled in one place. Keys are added, never renamed.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class Finding(TypedDict):
    """One entry of ``findings``: a framework code with the recommended action."""

    code: int | None
    name: str
    message: str
    action: str


class ScriptRecord(TypedDict, total=False):
    """``scripts.pre`` / ``scripts.post``: one script as the framework ran it (or did not)."""

    ran: bool
    argv: list[str] | None
    exit_code: int | None
    error_code: int
    duration_s: float
    """From start until the framework saw the script end or gave up on it."""
    attempts: int
    """How many times the script was really executed."""
    retries_logged: int
    """The extension's retry counter."""
    timed_out: bool
    watchdog: bool
    output_stalled: bool
    left_running: list[int]
    stdout: str
    stderr: str
    output_bytes: int
    start_error: str
    """Why the framework could not start it (a missing shebang, no exec bit), when it could
    not."""
    phase: str
    """In ``calls``: the verb or side the script ran for (``freeze``, ``thaw``, ...)."""
    path: str
    """In ``calls``: where the framework found the script, inside the VM."""


class FreezeRecord(TypedDict, total=False):
    """``freeze``: whether the framework froze, for how long, which mounts, its codes."""

    enabled: bool
    real: bool
    frozen: bool
    frozen_s: float
    window_s: list[float] | None
    """``[start, end]`` of the time the file systems were frozen (the first FIFREEZE done to
    the last FITHAW done, so ``end - start`` is ``frozen_s``), on the timeline's clock: seconds
    from the start of the cycle in the engine's record, of the run in the ``vmsnap run`` JSON;
    None when the freezer did not measure it."""
    mounts: list[Any]
    code: int | None
    message: str
    thaw_code: int | None


class SnapshotRecord(TypedDict, total=False):
    """``snapshot``: the backend, whether it was taken, how long it took."""

    backend: str | None
    real: bool
    taken: bool
    duration_s: float
    """How long the backend's ``take()`` ran (copying or cloning the disk images)."""
    take_s: list[float]
    """``[start, end]`` of the backend's ``take()``, in seconds from the start of the run
    (the controller's measure; absent when no backend took it: an injected result)."""
    message: str


class PhaseRecord(TypedDict):
    """One entry of ``timeline``: seconds from the start of the cycle."""

    phase: str
    start_s: float
    end_s: float


class PrecheckRecord(TypedDict):
    """``precheck``: the pre-check's code, detail and log lines."""

    code: int
    detail: str
    log: list[str]


class CycleRecordJson(TypedDict):
    """What ``CycleResult.to_dict`` writes: the framework's whole account of one cycle."""

    status: int
    health_code: int
    message: str
    consistency: str
    profile: str
    precheck: PrecheckRecord
    scripts: dict[str, ScriptRecord]
    freeze: FreezeRecord
    snapshot: SnapshotRecord
    findings: list[Finding]
    timeline: list[PhaseRecord]
    framework: NotRequired[str]
    """Which framework ran the cycle (absent: Azure, as before there were others)."""
    outcome: NotRequired[str]
    """The framework's own name for the result, for the frameworks without Azure's codes."""
    calls: NotRequired[list[ScriptRecord]]
    """Every script the framework ran, in order (frameworks that run several)."""
