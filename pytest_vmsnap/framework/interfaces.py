"""The two small interfaces the cycle is given: freezing file systems and taking a snapshot.

The engine never touches block devices itself. Real implementations live in
:mod:`pytest_vmsnap.vm`; the no-op ones here let the cycle run where no VM exists, and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class FreezeResult:
    """Outcome of a freeze request: code 0, or 121/122/123 as the extension reports them."""

    code: int
    message: str = ""
    mounts: list[str] = field(default_factory=list)


@dataclass
class ThawResult:
    """Outcome of a thaw: code 0, or 2 when the snapshot must be treated as inconsistent
    (the guard had already thawed on its own, or a thaw failed)."""

    code: int
    message: str = ""
    frozen_s: dict[str, float] = field(default_factory=dict)
    window: tuple[float, float] | None = None
    """When the file systems were frozen, on the monotonic clock: from the first mount's
    FIFREEZE returning to the last FITHAW returning (None when the freezer did not measure it)."""


@dataclass
class SnapshotResult:
    """Outcome of the snapshot step: code 0 when taken, else the error code."""

    code: int
    taken: bool
    backend: str
    duration_s: float = 0.0
    message: str = ""
    detail: dict[str, object] = field(default_factory=dict)


class Freezer(Protocol):
    """Freezes the VM's eligible file systems and thaws them again."""

    def freeze(self) -> FreezeResult:
        """Freeze; must return only once every mount is frozen or the attempt failed."""
        ...

    def thaw(self) -> ThawResult:
        """Thaw everything frozen by :meth:`freeze` (called even after a failed snapshot)."""
        ...


class Snapshotter(Protocol):
    """Takes the disk snapshot (called between freeze and thaw)."""

    def snapshot(self) -> SnapshotResult:
        """Take the snapshot and report how it went."""
        ...


class NoOpFreezer:
    """Freezes nothing: for running the framework cycle without a stand-in VM."""

    real = False

    def freeze(self) -> FreezeResult:
        return FreezeResult(0, "no-op freezer: nothing was frozen (no stand-in VM)")

    def thaw(self) -> ThawResult:
        return ThawResult(0, "no-op freezer: nothing to thaw")


class NoOpSnapshotter:
    """Takes no snapshot but reports success: for running the framework cycle alone."""

    real = False

    def snapshot(self) -> SnapshotResult:
        return SnapshotResult(
            0, True, "none", message="no-op snapshotter: no disk was copied (no stand-in VM)"
        )
