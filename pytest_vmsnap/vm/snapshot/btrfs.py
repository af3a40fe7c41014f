"""The ``btrfs`` backend: the VM's images live in one btrfs subvolume; the snapshot is
``btrfs subvolume snapshot -r`` of it, atomic across all disks of the VM.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import VmError
from ..linux import fs_type, run
from ..model import Disk
from .base import (
    BTRFS_SUBVOLUME_INO,
    BTRFS_SUPER_MAGIC,
    Snapshot,
    SnapshotBackend,
    SnapshotDisk,
    check_disks,
    is_mountpoint,
)


class BtrfsBackend(SnapshotBackend):
    """``btrfs subvolume snapshot -r`` of the subvolume holding all the VM's images.

    One atomic step for all disks: no per-disk skew is possible, so ``skew_s`` is ignored.
    Freezing the VM's inner file systems around it is fine, but the btrfs pool itself must never
    be frozen: a subvolume snapshot on a frozen btrfs blocks until the thaw.
    """

    name = "btrfs"
    freeze_compatible = True

    def available(self) -> tuple[bool, str]:
        if shutil.which("btrfs") is None:
            return False, "btrfs-progs (the btrfs command) is not installed"
        if self.pool is None:
            return False, "the btrfs backend needs a pool directory on btrfs"
        try:
            kind = fs_type(self.pool)
        except VmError as err:
            return False, str(err)
        if kind != BTRFS_SUPER_MAGIC:
            return False, f"pool {self.pool} is on {kind}, not btrfs"
        return True, f"pool {self.pool} is on btrfs"

    def take(self, disks: Sequence[Disk], dest_dir: Path, skew_s: float = 0.0) -> Snapshot:
        """Snapshot the subvolume that holds all of ``disks`` as the read-only ``dest_dir``."""
        check_disks(disks)
        subvol = common_subvolume([d.image for d in disks])
        if dest_dir.exists():
            raise VmError(f"snapshot subvolume {dest_dir} already exists")
        start = time.monotonic()
        run(["btrfs", "subvolume", "snapshot", "-r", str(subvol), str(dest_dir)])
        end = time.monotonic()
        taken = [
            SnapshotDisk(d.spec, d.image, dest_dir / d.image.relative_to(subvol), start, end)
            for d in disks
        ]
        note = "atomic subvolume snapshot; skew_s ignored" if skew_s > 0 else ""
        return Snapshot(self.name, dest_dir, taken, end - start, subvolume=True, message=note)

    def _copy(self, src: Path, dst: Path) -> None:  # pragma: no cover - take() is overridden
        raise VmError("the btrfs backend snapshots a whole subvolume, not single files")


# --------------------------------------------------------------------------- btrfs helpers


def is_subvolume(path: Path) -> bool:
    """True if ``path`` is the root directory of a btrfs subvolume."""
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_ino == BTRFS_SUBVOLUME_INO and fs_type(path) == BTRFS_SUPER_MAGIC


def subvolume_of(path: Path) -> Path:
    """The root of the btrfs subvolume that holds ``path`` (VmError if not on btrfs)."""
    if fs_type(path) != BTRFS_SUPER_MAGIC:
        raise VmError(f"{path} is not on btrfs")
    here = path.resolve()
    here = here if here.is_dir() else here.parent
    # Each subvolume has its own st_dev, and its root directory has inode 256.
    dev = here.stat().st_dev
    while here.stat().st_ino != BTRFS_SUBVOLUME_INO:
        parent = here.parent
        if parent == here or parent.stat().st_dev != dev:
            raise VmError(f"cannot find the btrfs subvolume holding {path}")
        here = parent
    return here


def common_subvolume(images: Sequence[Path]) -> Path:
    """The one btrfs subvolume (not the pool's top level) that holds all ``images``."""
    subvols = {subvolume_of(p) for p in images}
    if len(subvols) != 1:
        raise VmError(
            "the btrfs backend needs all disks of a VM in one subvolume; found "
            + ", ".join(sorted(str(s) for s in subvols))
        )
    subvol = subvols.pop()
    if is_mountpoint(subvol):
        # A snapshot of the mounted top level would also capture every other VM's images.
        raise VmError(
            f"{subvol} is a mounted btrfs top level; put the VM's images in a subvolume "
            "made with create_subvolume()"
        )
    return subvol


def create_subvolume(path: Path) -> Path:
    """Create the btrfs subvolume ``path`` (for one VM's disk images) and return it."""
    if path.exists():
        raise VmError(f"{path} already exists")
    run(["btrfs", "subvolume", "create", str(path)])
    return path


def delete_subvolume(path: Path) -> None:
    """Delete the btrfs subvolume ``path`` (read-only snapshots included)."""
    if not is_subvolume(path):
        raise VmError(f"{path} is not a btrfs subvolume")
    run(["btrfs", "subvolume", "delete", str(path)])
