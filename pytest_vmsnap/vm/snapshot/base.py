"""What every snapshot backend shares: the snapshot records, the backend base class, and the
file helpers (clone, sparse copy) they use.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..errors import VmError
from ..linux import read_mounts, reflink, run
from ..model import Disk, DiskSpec

BTRFS_SUPER_MAGIC = "btrfs"
BTRFS_SUBVOLUME_INO = 256
"""Inode number of every btrfs subvolume's root directory."""
SECTOR_BYTES = 512


# --------------------------------------------------------------------------- results


@dataclass
class SnapshotDisk:
    """One disk inside a snapshot: where it came from, where its copy is, and when it was taken."""

    spec: DiskSpec
    source: Path
    image: Path
    start_s: float
    """``time.monotonic()`` when this disk's copy began (same clock as the agent's events)."""
    end_s: float


@dataclass
class Snapshot:
    """A taken snapshot of one VM's disks."""

    backend: str
    dest_dir: Path
    """The directory (or, for ``btrfs``, the read-only subvolume) that holds the copies."""
    disks: list[SnapshotDisk]
    duration_s: float
    taken: bool = True
    subvolume: bool = False
    """True when ``dest_dir`` is a btrfs subvolume (deleted with ``btrfs subvolume delete``)."""
    message: str = ""

    @property
    def images(self) -> list[Path]:
        """The snapshot images, in the order of :attr:`specs`."""
        return [d.image for d in self.disks]

    @property
    def specs(self) -> list[DiskSpec]:
        """The disk specs, in the order of :attr:`images`."""
        return [d.spec for d in self.disks]

    @property
    def times(self) -> list[tuple[float, float]]:
        """Per-disk ``(start_s, end_s)`` monotonic timestamps."""
        return [(d.start_s, d.end_s) for d in self.disks]

    @property
    def skew_s(self) -> float:
        """Time between the first disk's start and the last disk's end (0 for one atomic step)."""
        if len(self.disks) < 2:
            return 0.0
        return max(d.end_s for d in self.disks) - min(d.start_s for d in self.disks)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly summary for reports."""
        return {
            "backend": self.backend,
            "taken": self.taken,
            "duration_s": round(self.duration_s, 6),
            "dest_dir": str(self.dest_dir),
            "skew_s": round(self.skew_s, 6),
            "message": self.message,
            "disks": [
                {
                    "name": d.spec.name,
                    "mountpoint": d.spec.mountpoint,
                    "image": str(d.image),
                    "start_s": d.start_s,
                    "end_s": d.end_s,
                }
                for d in self.disks
            ],
        }


# --------------------------------------------------------------------------- helpers


def reflink_file(src: Path, dst: Path) -> None:
    """Clone ``src`` into the new file ``dst`` with FICLONE (shared extents, no data copied).

    ``dst`` must not exist. Raises OSError (EOPNOTSUPP, EXDEV, EINVAL...) when the file system
    cannot clone; ``dst`` is then removed again.
    """
    src_fd = os.open(src, os.O_RDONLY)
    try:
        dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            reflink(src_fd, dst_fd)
        except OSError:
            os.close(dst_fd)
            dst_fd = -1
            dst.unlink(missing_ok=True)
            raise
        finally:
            if dst_fd >= 0:
                os.close(dst_fd)
    finally:
        os.close(src_fd)


def sparse_copy(src: Path, dst: Path) -> None:
    """A real copy of ``src`` to the new file ``dst``, keeping holes (never a clone)."""
    if dst.exists():
        raise VmError(f"{dst} already exists")
    try:
        run(["cp", "--sparse=always", "--reflink=never", str(src), str(dst)], timeout=3600)
    except VmError:
        dst.unlink(missing_ok=True)
        raise


def clone_or_copy(src: Path, dst: Path) -> str:
    """Reflink ``src`` to ``dst`` where the file system can, else a sparse copy; says which."""
    try:
        reflink_file(src, dst)
        return "reflink"
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY):
            raise VmError(f"clone {src} -> {dst}: {err.strerror}") from err
    sparse_copy(src, dst)
    return "copy"


def check_disks(disks: Sequence[Disk]) -> None:
    if not disks:
        raise VmError("no disks to snapshot")
    names = [d.spec.name for d in disks]
    if len(set(names)) != len(names):
        raise VmError(f"disk names must be unique within a VM: {names}")
    for disk in disks:
        if not disk.image.is_file():
            raise VmError(f"disk {disk.spec.name}: image {disk.image} does not exist")


def new_dir(dest_dir: Path) -> None:
    """Create ``dest_dir``; it must not exist yet, so deleting it later removes only ours."""
    if dest_dir.exists():
        raise VmError(f"snapshot directory {dest_dir} already exists")
    if not dest_dir.parent.is_dir():
        raise VmError(f"parent of snapshot directory {dest_dir} does not exist")
    dest_dir.mkdir()


def remove_files_and_dir(files: Sequence[Path], directory: Path) -> None:
    for path in files:
        path.unlink(missing_ok=True)
    # Only an empty directory goes: anything someone else put there stays.
    with contextlib.suppress(FileNotFoundError, OSError):
        directory.rmdir()


# --------------------------------------------------------------------------- backends


class SnapshotBackend:
    """Common shape of a backend; subclasses set the class attributes and ``_copy``."""

    name: ClassVar[str] = ""
    freeze_compatible: ClassVar[bool] = True
    """True when the VM's inner file systems may stay frozen while :meth:`take` runs."""

    def __init__(self, pool: Path | None = None) -> None:
        self.pool = pool
        """Directory where images and snapshots live; used by :meth:`available` to probe."""

    def available(self) -> tuple[bool, str]:
        """Whether this backend can work here (for :attr:`pool`), and why or why not."""
        raise NotImplementedError

    def _copy(self, src: Path, dst: Path) -> None:
        raise NotImplementedError

    def take(self, disks: Sequence[Disk], dest_dir: Path, skew_s: float = 0.0) -> Snapshot:
        """Copy every disk image into the new directory ``dest_dir``, disk after disk.

        ``skew_s`` seconds pass between two disks. On failure the copies made so far are
        removed and VmError is raised.
        """
        check_disks(disks)
        if skew_s < 0:
            raise VmError(f"skew_s must be >= 0, not {skew_s}")
        files = [dest_dir / d.image.name for d in disks]
        if len({f.name for f in files}) != len(files):
            raise VmError("two disks have the same image file name; the snapshot would collide")
        new_dir(dest_dir)
        taken: list[SnapshotDisk] = []
        began = time.monotonic()
        try:
            for i, (disk, dst) in enumerate(zip(disks, files, strict=True)):
                if i and skew_s > 0:
                    time.sleep(skew_s)
                start = time.monotonic()
                self._copy(disk.image, dst)
                taken.append(SnapshotDisk(disk.spec, disk.image, dst, start, time.monotonic()))
        except BaseException:
            remove_files_and_dir(files, dest_dir)
            raise
        return Snapshot(self.name, dest_dir, taken, time.monotonic() - began)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pool={self.pool!r})"


def is_mountpoint(path: Path) -> bool:
    """True if ``path`` is listed in this mount namespace's mount table.

    Not :func:`os.path.ismount`: every btrfs subvolume has its own ``st_dev``, so that calls
    any subvolume a mount point.
    """
    target = str(path.resolve())
    return any(m.target == target for m in read_mounts())
