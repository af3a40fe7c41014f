"""Plain data shared by the VM modules: what a disk is, where it lives, how it is mounted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

FsType = Literal["ext4", "xfs", "btrfs"]


@dataclass(frozen=True)
class DiskSpec:
    """What the user asks for: one disk of the stand-in VM."""

    name: str
    """Short name, unique inside one VM (``data``, ``wal``)."""
    mountpoint: str
    """The absolute path the disk is mounted at inside the VM, e.g. ``/var/lib/postgresql``."""
    size_mb: int = 1024
    fs: FsType = "ext4"


@dataclass
class Disk:
    """A disk that exists: its sparse image in the pool and, while attached, its loop device."""

    spec: DiskSpec
    image: Path
    loopdev: str | None = None
    uuid_clone: bool = False
    """True for images cloned from another image (xfs then needs ``-o nouuid``)."""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def mount_options(self) -> list[str]:
        """Mount options this disk needs (``nouuid`` for an xfs clone)."""
        return ["nouuid"] if self.spec.fs == "xfs" and self.uuid_clone else []
