"""Backends by name, and the choice of one that works here."""

from __future__ import annotations

from pathlib import Path

from ..errors import VmError
from .base import SnapshotBackend
from .btrfs import BtrfsBackend
from .copy import CopyBackend
from .devmapper import DevmapperBackend
from .reflink import ReflinkBackend

BACKENDS: dict[str, type[SnapshotBackend]] = {
    "reflink": ReflinkBackend,
    "copy": CopyBackend,
    "btrfs": BtrfsBackend,
    "devmapper": DevmapperBackend,
}
AUTO_ORDER = ("reflink", "copy")
"""Tried in order when no backend is named (btrfs needs its own pool layout, so it is opt-in)."""


def get_backend(name: str, pool: Path | None = None) -> SnapshotBackend:
    """The backend called ``name`` for ``pool`` (VmError for an unknown name)."""
    try:
        return BACKENDS[name](pool)
    except KeyError:
        raise VmError(
            f"unknown snapshot backend {name!r}; choose one of {', '.join(BACKENDS)}"
        ) from None


def select_backend(name: str | None, pool: Path | None) -> SnapshotBackend:
    """The backend to use: ``name`` if it works here (else VmError with the reason), or the
    first available of :data:`AUTO_ORDER` when ``name`` is None."""
    if name is not None:
        backend = get_backend(name, pool)
        ok, reason = backend.available()
        if not ok:
            raise VmError(f"snapshot backend {name!r} cannot be used here: {reason}")
        return backend
    reasons = []
    for candidate in AUTO_ORDER:
        backend = get_backend(candidate, pool)
        ok, reason = backend.available()
        if ok:
            return backend
        reasons.append(f"{candidate}: {reason}")
    raise VmError("no snapshot backend works here: " + "; ".join(reasons))
