"""What happens to a snapshot after it is taken: restored into fresh disks, deleted; and the
framework's Snapshotter on top of a backend.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ...framework.azure import codes
from ...framework.interfaces import SnapshotResult
from ..errors import VmError
from ..linux import run
from ..model import Disk
from .base import Snapshot, SnapshotBackend, clone_or_copy, new_dir, remove_files_and_dir
from .btrfs import delete_subvolume

# --------------------------------------------------------------------------- restore / delete


def restore(snapshot: Snapshot, dest_dir: Path) -> list[Disk]:
    """Fresh, detached disks holding the snapshot's data, in the new directory ``dest_dir``.

    The snapshot is never used in place: its images are cloned again (reflink where the file
    system can, else a sparse copy; a writable subvolume snapshot for ``btrfs``), so the same
    snapshot can be restored many times. The disks have ``uuid_clone=True`` (xfs then mounts
    with ``nouuid``); release them with :func:`delete_restored` once detached.
    """
    if not snapshot.taken:
        raise VmError("cannot restore a snapshot that was not taken")
    if dest_dir.exists():
        raise VmError(f"restore directory {dest_dir} already exists")
    if snapshot.subvolume:
        run(["btrfs", "subvolume", "snapshot", str(snapshot.dest_dir), str(dest_dir)])
        return [
            Disk(
                d.spec,
                dest_dir / d.image.relative_to(snapshot.dest_dir),
                uuid_clone=True,
                extra={"restored_from": str(d.image), "restore_subvolume": str(dest_dir)},
            )
            for d in snapshot.disks
        ]
    new_dir(dest_dir)
    out: list[Disk] = []
    try:
        for d in snapshot.disks:
            image = dest_dir / d.image.name
            how = clone_or_copy(d.image, image)
            extra = {"restored_from": str(d.image), "restore_dir": str(dest_dir), "how": how}
            out.append(Disk(d.spec, image, uuid_clone=True, extra=extra))
    except BaseException:
        remove_files_and_dir([dest_dir / d.image.name for d in snapshot.disks], dest_dir)
        raise
    return out


def delete_restored(disks: Sequence[Disk]) -> None:
    """Remove disks made by :func:`restore` (exactly their images and directory)."""
    for disk in disks:
        if disk.loopdev:
            raise VmError(f"disk {disk.spec.name} is still attached to {disk.loopdev}")
    subvols = {d.extra["restore_subvolume"] for d in disks if "restore_subvolume" in d.extra}
    for subvol in subvols:
        if Path(subvol).exists():
            delete_subvolume(Path(subvol))
    plain = [d for d in disks if "restore_subvolume" not in d.extra]
    for directory in {d.extra.get("restore_dir", str(d.image.parent)) for d in plain}:
        files = [d.image for d in plain if d.image.parent == Path(directory)]
        remove_files_and_dir(files, Path(directory))


def delete(snapshot: Snapshot) -> None:
    """Remove exactly the snapshot's files and directory (or its subvolume)."""
    if snapshot.subvolume:
        if snapshot.dest_dir.exists():
            delete_subvolume(snapshot.dest_dir)
    else:
        remove_files_and_dir(snapshot.images, snapshot.dest_dir)
    snapshot.taken = False


# --------------------------------------------------------------------------- framework adapter


class BackendSnapshotter:
    """The framework's :class:`~pytest_vmsnap.framework.interfaces.Snapshotter` for a backend.

    ``snapshot()`` never raises: a failure becomes code 2 with the reason. The snapshot taken is
    kept in :attr:`last` for the restore step.
    """

    real = True

    def __init__(
        self,
        backend: SnapshotBackend,
        disks: Sequence[Disk],
        dest_dir: Path,
        skew_s: float = 0.0,
    ) -> None:
        self.backend = backend
        self.disks = list(disks)
        self.dest_dir = dest_dir
        self.skew_s = skew_s
        self.last: Snapshot | None = None

    def snapshot(self) -> SnapshotResult:
        """Take the snapshot into :attr:`dest_dir` and report it."""
        began = time.monotonic()
        try:
            snap = self.backend.take(self.disks, self.dest_dir, self.skew_s)
        except Exception as err:  # the cycle must get a result, then thaw
            return SnapshotResult(
                codes.ERROR,
                False,
                self.backend.name,
                duration_s=time.monotonic() - began,
                message=f"{self.backend.name} snapshot failed: {err}",
            )
        self.last = snap
        return SnapshotResult(
            0,
            True,
            snap.backend,
            duration_s=snap.duration_s,
            message=snap.message,
            detail=snap.to_dict(),
        )
