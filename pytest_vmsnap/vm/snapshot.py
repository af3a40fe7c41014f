"""Snapshot backends for a stand-in VM's disks: reflink, copy, btrfs and devmapper.

A backend takes a point-in-time copy of every disk image of one VM into a new directory of the
pool, and :func:`restore` turns such a snapshot into fresh disks for a new stand-in VM without
ever touching the snapshot itself.

- ``reflink``: ``ioctl(FICLONE)`` of each image (XFS with ``reflink=1`` or btrfs pool); takes
  milliseconds whatever the data size.
- ``copy``: a real sparse copy (``cp --sparse=always --reflink=never``); works on any file
  system, and its time grows with the data.
- ``btrfs``: the VM's images live in one btrfs subvolume (see :func:`create_subvolume`); the
  snapshot is ``btrfs subvolume snapshot -r`` of it, atomic across all disks of the VM.
- ``devmapper``: dm-snapshot tables, planned as pure functions; this machine's kernel has no
  device-mapper, so it reports itself unavailable and never runs anything.

Disks are snapshotted one after the other, with ``skew_s`` seconds between two disks, so a
harness can show what happens to a database spread over several disks when the disks are not
snapshotted at one instant. ``btrfs`` is atomic and ignores the skew.

Freezing: the cycle freezes the VM's *inner* file systems (the ext4/xfs/btrfs inside the images),
never the pool that holds the images. That is what makes every backend here freeze-compatible,
``btrfs`` included: ``btrfs subvolume snapshot`` on a *frozen* btrfs hangs in D state until the
thaw, so the pool a btrfs snapshot is taken of must never be one of the frozen mounts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..framework import codes
from ..framework.interfaces import SnapshotResult
from .errors import VmError
from .linux import fs_type, read_mounts, reflink, run
from .model import Disk, DiskSpec

"""``_IOW(0x94, 9, int)``: clone all of ``src_fd`` into ``dst_fd`` (shared extents)."""
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


def _check_disks(disks: Sequence[Disk]) -> None:
    if not disks:
        raise VmError("no disks to snapshot")
    names = [d.spec.name for d in disks]
    if len(set(names)) != len(names):
        raise VmError(f"disk names must be unique within a VM: {names}")
    for disk in disks:
        if not disk.image.is_file():
            raise VmError(f"disk {disk.spec.name}: image {disk.image} does not exist")


def _new_dir(dest_dir: Path) -> None:
    """Create ``dest_dir``; it must not exist yet, so deleting it later removes only ours."""
    if dest_dir.exists():
        raise VmError(f"snapshot directory {dest_dir} already exists")
    if not dest_dir.parent.is_dir():
        raise VmError(f"parent of snapshot directory {dest_dir} does not exist")
    dest_dir.mkdir()


def _remove_files_and_dir(files: Sequence[Path], directory: Path) -> None:
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
        _check_disks(disks)
        if skew_s < 0:
            raise VmError(f"skew_s must be >= 0, not {skew_s}")
        files = [dest_dir / d.image.name for d in disks]
        if len({f.name for f in files}) != len(files):
            raise VmError("two disks have the same image file name; the snapshot would collide")
        _new_dir(dest_dir)
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
            _remove_files_and_dir(files, dest_dir)
            raise
        return Snapshot(self.name, dest_dir, taken, time.monotonic() - began)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pool={self.pool!r})"


class ReflinkBackend(SnapshotBackend):
    """FICLONE of each image: milliseconds, needs an XFS (``reflink=1``) or btrfs pool."""

    name = "reflink"
    freeze_compatible = True

    def available(self) -> tuple[bool, str]:
        if self.pool is None:
            return False, "reflink needs a pool directory to probe (XFS with reflink=1 or btrfs)"
        return probe_reflink(self.pool)

    def _copy(self, src: Path, dst: Path) -> None:
        try:
            reflink_file(src, dst)
        except OSError as err:
            raise VmError(
                f"reflink {src} -> {dst} failed: {err.strerror}; the pool must be XFS with "
                "reflink=1 or btrfs, and the snapshot on the same file system"
            ) from err


class CopyBackend(SnapshotBackend):
    """A real sparse copy: works anywhere, and takes longer the more data the disks hold."""

    name = "copy"
    freeze_compatible = True

    def available(self) -> tuple[bool, str]:
        if shutil.which("cp") is None:
            return False, "cp (coreutils) is not installed"
        return True, "sparse copy with cp --sparse=always --reflink=never"

    def _copy(self, src: Path, dst: Path) -> None:
        # No fsync: the copy is read back on this host through the same page cache.
        sparse_copy(src, dst)


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
        _check_disks(disks)
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


class DevmapperBackend(SnapshotBackend):
    """dm-snapshot of each disk (as LVM does it); only planned here, see :func:`plan_dm_disk`.

    The kernel of this machine has no device-mapper, so :meth:`available` says no and
    :meth:`take` raises VmError with that reason.
    """

    name = "devmapper"
    freeze_compatible = True

    def __init__(
        self,
        pool: Path | None = None,
        *,
        proc_misc: Path = Path("/proc/misc"),
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        super().__init__(pool)
        self.proc_misc = proc_misc
        self.which = which

    def available(self) -> tuple[bool, str]:
        try:
            misc = self.proc_misc.read_text()
        except OSError as err:
            return False, f"cannot read {self.proc_misc}: {err.strerror}"
        if not any(line.split()[1:] == ["device-mapper"] for line in misc.splitlines()):
            return False, (
                f"the kernel has no device-mapper driver ({self.proc_misc} has no "
                "device-mapper entry, so /dev/mapper/control has nothing behind it)"
            )
        if self.which("dmsetup") is None:
            return False, "dmsetup is not installed"
        return True, "device-mapper driver and dmsetup are present"

    def take(self, disks: Sequence[Disk], dest_dir: Path, skew_s: float = 0.0) -> Snapshot:
        ok, reason = self.available()
        if not ok:
            raise VmError(f"devmapper snapshot unavailable: {reason}")
        # The tables are planned and unit-tested, but running them needs the disks attached
        # through dm origins from the start; never exercised on a machine with device-mapper.
        raise VmError(
            "devmapper snapshot: executing the planned dm tables is not implemented "
            "(see plan_dm_disk); use reflink, copy or btrfs"
        )


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


def probe_reflink(directory: Path) -> tuple[bool, str]:
    """Try one FICLONE inside ``directory`` (with two small scratch files removed afterwards)."""
    tag = f".vmsnap-reflink-probe-{os.getpid()}-{time.monotonic_ns()}"
    src, dst = directory / f"{tag}.src", directory / f"{tag}.dst"
    try:
        src.write_bytes(b"\0" * 4096)
        reflink_file(src, dst)
    except OSError as err:
        try:
            kind = fs_type(directory)
        except VmError:
            kind = "unknown file system"
        return False, f"no reflink in {directory} ({kind}): {err.strerror}"
    finally:
        src.unlink(missing_ok=True)
        dst.unlink(missing_ok=True)
    return True, f"FICLONE works in {directory}"


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
    if _is_mountpoint(subvol):
        # A snapshot of the mounted top level would also capture every other VM's images.
        raise VmError(
            f"{subvol} is a mounted btrfs top level; put the VM's images in a subvolume "
            "made with create_subvolume()"
        )
    return subvol


def _is_mountpoint(path: Path) -> bool:
    """True if ``path`` is listed in this mount namespace's mount table.

    Not :func:`os.path.ismount`: every btrfs subvolume has its own ``st_dev``, so that calls
    any subvolume a mount point.
    """
    target = str(path.resolve())
    return any(m.target == target for m in read_mounts())


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
    _new_dir(dest_dir)
    out: list[Disk] = []
    try:
        for d in snapshot.disks:
            image = dest_dir / d.image.name
            how = clone_or_copy(d.image, image)
            extra = {"restored_from": str(d.image), "restore_dir": str(dest_dir), "how": how}
            out.append(Disk(d.spec, image, uuid_clone=True, extra=extra))
    except BaseException:
        _remove_files_and_dir([dest_dir / d.image.name for d in snapshot.disks], dest_dir)
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
        _remove_files_and_dir(files, Path(directory))


def delete(snapshot: Snapshot) -> None:
    """Remove exactly the snapshot's files and directory (or its subvolume)."""
    if snapshot.subvolume:
        if snapshot.dest_dir.exists():
            delete_subvolume(snapshot.dest_dir)
    else:
        _remove_files_and_dir(snapshot.images, snapshot.dest_dir)
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


# --------------------------------------------------------------------------- dm-snapshot plans


def sectors(size_bytes: int) -> int:
    """``size_bytes`` in 512-byte sectors (device-mapper's unit); it must divide evenly."""
    if size_bytes <= 0 or size_bytes % SECTOR_BYTES:
        raise VmError(f"device size {size_bytes} is not a positive multiple of {SECTOR_BYTES}")
    return size_bytes // SECTOR_BYTES


def linear_table(length: int, device: str, offset: int = 0) -> str:
    """``linear`` target: ``length`` sectors of ``device`` from ``offset``."""
    return f"0 {length} linear {device} {offset}"


def origin_table(length: int, real_device: str) -> str:
    """``snapshot-origin`` target: the device the file system uses; writes to it copy the old
    chunks out to every snapshot of ``real_device`` first."""
    return f"0 {length} snapshot-origin {real_device}"


def snapshot_table(
    length: int, real_device: str, cow_device: str, persistent: bool = True, chunk: int = 8
) -> str:
    """``snapshot`` target: ``real_device`` as it was, with overwritten chunks in ``cow_device``.

    ``chunk`` is in sectors (8 = 4 KiB) and must be a power of two; ``P`` keeps the exception
    store on the COW device across reboots, ``N`` does not.
    """
    if chunk < 1 or chunk & (chunk - 1):
        raise VmError(f"chunk size {chunk} is not a power of two")
    return f"0 {length} snapshot {real_device} {cow_device} {'P' if persistent else 'N'} {chunk}"


@dataclass(frozen=True)
class DmDiskPlan:
    """What device-mapper would do for one disk: names, tables and dmsetup commands."""

    disk: str
    length: int
    real: str
    origin: str
    snap: str
    tables: dict[str, str]
    attach: list[list[str]] = field(default_factory=list)
    """Run when the disk is attached; the file system then lives on ``/dev/mapper/ORIGIN``."""
    take: list[list[str]] = field(default_factory=list)
    """Run (with the file system frozen) to take the snapshot."""
    drop: list[list[str]] = field(default_factory=list)
    """Removes the snapshot device (the COW loop device is then detached by its owner)."""
    detach: list[list[str]] = field(default_factory=list)
    """Removes the origin and real devices when the disk is detached."""


def _dm_name(*parts: str) -> str:
    name = "-".join(parts)
    if "/" in name or not name or len(name) > 127:
        raise VmError(f"invalid device-mapper name {name!r}")
    return name


def plan_dm_disk(
    disk: str, loopdev: str, cow_loopdev: str, size_bytes: int, tag: str, prefix: str = "vmsnap"
) -> DmDiskPlan:
    """Plan a dm-snapshot of one disk, the way LVM does it.

    ``PREFIX-DISK-real`` is a linear map of the disk's loop device, ``PREFIX-DISK`` the
    snapshot-origin the file system lives on, and ``PREFIX-DISK-TAG`` the snapshot, whose COW
    store is ``cow_loopdev`` (a fresh sparse file as large as the disk, so it can never fill up
    and invalidate the snapshot; zeros there mean "new store" to the kernel).
    """
    length = sectors(size_bytes)
    real, origin, snap = (
        _dm_name(prefix, disk, "real"),
        _dm_name(prefix, disk),
        _dm_name(prefix, disk, tag),
    )
    real_dev = f"/dev/mapper/{real}"
    tables = {
        real: linear_table(length, loopdev),
        origin: origin_table(length, real_dev),
        snap: snapshot_table(length, real_dev, cow_loopdev),
    }
    attach = [
        ["dmsetup", "create", real, "--table", tables[real]],
        ["dmsetup", "create", origin, "--table", tables[origin]],
    ]
    take = [
        # The cycle has frozen the file system already: no second freeze by dm (--nolockfs).
        ["dmsetup", "suspend", "--nolockfs", origin],
        ["dmsetup", "create", snap, "--table", tables[snap]],
        ["dmsetup", "resume", origin],
    ]
    drop = [["dmsetup", "remove", snap]]
    detach = [["dmsetup", "remove", origin], ["dmsetup", "remove", real]]
    return DmDiskPlan(disk, length, real, origin, snap, tables, attach, take, drop, detach)
