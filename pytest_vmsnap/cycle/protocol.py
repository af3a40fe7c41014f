"""The records that cross the line between the controller and the framework agent in the VM.

Both sides import this module: :mod:`.driver` (the controller, on the host) and :mod:`.agent`
(inside the VM). Messages are JSON lines; each kind has one record here with ``to_dict`` and
``from_dict``, so neither side reads string keys of its own:

- controller to agent: :class:`AgentOptions` (``{"start": ...}``, the cycle begins),
  ``{"ack": true}`` (a phase edge was handled), ``{"snapshot_result": ...}``
  (a :class:`~pytest_vmsnap.framework.interfaces.SnapshotResult`);
- agent to controller: ``{"event": name, "t": monotonic}``, ``{"snapshot": true}``,
  ``{"result": ...}`` (a :class:`CycleRecord`).

:class:`CycleRecord` is also the framework part of the ``vmsnap run`` JSON contract (its
``status``, ``health_code``, ``scripts``, ``freeze``, ``snapshot``, ``findings``, ``timeline``);
the types of its parts are the framework's own (:mod:`pytest_vmsnap.framework.records`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

from ..framework.azure import codes
from ..framework.interfaces import SnapshotResult
from ..framework.records import (
    Finding,
    FreezeRecord,
    PhaseRecord,
    ScriptRecord,
    SnapshotRecord,
)
from ..framework.scripts import not_run

Pacing = Literal["faithful", "prompt"]


@dataclass(frozen=True)
class FreezeOptions:
    """The disks the agent's freezer freezes: ``(mount point inside the VM, fs type)``."""

    mounts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AgentOptions:
    """What the controller tells the agent when its cycle starts."""

    profile: str = "extension"
    pacing: Pacing = "faithful"
    freeze: FreezeOptions = field(default_factory=FreezeOptions)
    env: tuple[tuple[str, str], ...] = ()
    """Variables the user adds to the scripts' environment (``vmsnap_env``), on top of the
    extension's (:mod:`pytest_vmsnap.framework.azure.environment`)."""
    framework: str = "azure"
    """Whose engine runs the cycle (:data:`pytest_vmsnap.framework.engines.NAMES`)."""
    framework_options: tuple[tuple[str, str], ...] = ()
    """The engine's options (``vmsnap_framework_options``)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentOptions:
        freeze = data.get("freeze") or {}
        pacing: Pacing = "prompt" if data.get("pacing") == "prompt" else "faithful"
        return cls(
            profile=str(data.get("profile", "extension")),
            pacing=pacing,
            framework=str(data.get("framework", "azure")),
            freeze=FreezeOptions(
                mounts=tuple((str(m), str(fs)) for m, fs in freeze.get("mounts", ()))
            ),
            env=tuple((str(k), str(v)) for k, v in data.get("env", ())),
            framework_options=tuple((str(k), str(v)) for k, v in data.get("framework_options", ())),
        )


def snapshot_to_dict(result: SnapshotResult) -> dict[str, Any]:
    """The ``snapshot_result`` message: a snapshot taken by the controller."""
    return asdict(result)


def snapshot_from_dict(data: Mapping[str, Any]) -> SnapshotResult:
    """Read a ``snapshot_result`` message; a missing answer is a failed snapshot (code 2)."""
    return SnapshotResult(
        code=int(data.get("code", 2)),
        taken=bool(data.get("taken")),
        backend=str(data.get("backend", "?")),
        duration_s=float(data.get("duration_s", 0.0)),
        message=str(data.get("message", "")),
        detail=dict(data.get("detail", {})),
    )


def encode(kind: str, body: Any) -> bytes:
    """One message line: ``{kind: body}``."""
    return (json.dumps({kind: body}) + "\n").encode()


@dataclass(frozen=True)
class Event:
    """A phase edge the agent reports (``precheck_end``, ``pre_end``, ``frozen``, ...), at
    ``t`` on the monotonic clock, which the VM shares with the controller."""

    name: str
    t: float

    def encode(self) -> bytes:
        return (json.dumps({"event": self.name, "t": self.t}) + "\n").encode()

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> Event:
        return cls(str(message["event"]), float(message["t"]))


@dataclass
class CycleRecord:
    """One framework cycle's outcome as it crossed from the agent (or was built without one)."""

    status: int
    """0 application-consistent, 1 file-system consistent, otherwise the error code."""
    health_code: int
    message: str
    consistency: str = "none"
    profile: str = "extension"
    scripts: dict[str, ScriptRecord] = field(default_factory=dict)
    freeze: FreezeRecord = field(default_factory=lambda: FreezeRecord(enabled=False))
    snapshot: SnapshotRecord = field(default_factory=lambda: SnapshotRecord(taken=False))
    findings: list[Finding] = field(default_factory=list)
    timeline: list[PhaseRecord] = field(default_factory=list)
    precheck: dict[str, Any] | None = None
    framework: str = "azure"
    outcome: str = ""
    """The framework's own name for the result (the frameworks without Azure's codes)."""
    calls: list[ScriptRecord] = field(default_factory=list)
    """Every script the framework ran, in order, with its phase and path."""

    def __post_init__(self) -> None:
        # A script the framework never started keeps every key of one that ran.
        for which in ("pre", "post"):
            self.scripts.setdefault(which, not_run(which))

    @property
    def taken(self) -> bool:
        """The framework reports a snapshot taken."""
        return bool(self.snapshot.get("taken"))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.precheck is None:
            del out["precheck"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CycleRecord:
        """Read the agent's ``result`` (``CycleResult.to_dict``); missing parts get defaults
        (a record without a status is the framework's generic error)."""
        return cls(
            status=int(data.get("status", codes.ERROR)),
            health_code=int(data.get("health_code", codes.ERROR)),
            message=str(data.get("message", "")),
            consistency=str(data.get("consistency", "none")),
            profile=str(data.get("profile", "extension")),
            scripts=dict(data.get("scripts") or {}),
            freeze=cast(FreezeRecord, dict(data.get("freeze") or {"enabled": False})),
            snapshot=cast(SnapshotRecord, dict(data.get("snapshot") or {"taken": False})),
            findings=list(data.get("findings") or []),
            timeline=list(data.get("timeline") or []),
            precheck=data.get("precheck"),
            framework=str(data.get("framework", "azure")),
            outcome=str(data.get("outcome", "")),
            calls=list(data.get("calls") or []),
        )
