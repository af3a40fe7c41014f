"""Disks of the stand-in VM: sparse images in a reflink pool, loop devices, mounts.

Every image, loop device, mount and directory made here is recorded in an in-process
:class:`Registry`, so :func:`release_all` can undo it, in reverse order, on any exit path.

Frozen file systems (machine-notes 4e): ``umount`` of a frozen file system "succeeds", but the
superblock stays alive and frozen where nobody can see it, and the loop device under it stays
bound. So nothing here unmounts without thawing first (:func:`thaw_if_frozen`), and
:func:`recover_hidden_superblock` repairs the case where someone else did (recipe R10).
Loop devices are only ever detached by exact name, after checking they still back our image.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from . import linux, names
from .errors import VmError
from .linux import CommandError, MountEntry, fs_type, read_mounts, run
from .model import Disk, DiskSpec

MKFS: dict[str, list[str]] = {
    "ext4": ["mkfs.ext4", "-q", "-F"],
    "xfs": ["mkfs.xfs", "-q", "-f"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"],
}
# Smallest image mkfs accepts, in MiB (measured: xfsprogs 6.1, btrfs-progs 6.2).
MIN_SIZE_MB: dict[str, int] = {"ext4": 1, "xfs": 300, "btrfs": 109}
DEFAULT_POOL_GB = 20

PoolFs = Literal["xfs", "btrfs"]
Kind = Literal["image", "file", "dir", "loop", "mount"]


# --- freeze state -------------------------------------------------------------------------------


def thaw_if_frozen(path: str | os.PathLike[str]) -> bool:
    """Thaw the file system holding ``path`` if it is frozen; True if it was
    (:func:`.linux.thaw`); VmError when it cannot be told."""
    try:
        return linux.thaw(path, strict=True)
    except OSError as err:
        raise VmError(f"FITHAW {path}: {err.strerror or err}") from err


def thaw_fully(path: str | os.PathLike[str]) -> bool:
    """Thaw until the file system is no longer frozen (bounded); True if it was frozen."""
    thawed = False
    for _ in range(16):
        if not thaw_if_frozen(path):
            return thawed
        thawed = True
    raise VmError(f"{path} is still frozen after 16 thaws")


# --- what the kernel says: mounts and loop devices ----------------------------------------------


@dataclass(frozen=True)
class LoopDevice:
    """One bound loop device, as ``losetup --json --list`` reports it."""

    name: str
    back_file: str
    autoclear: bool
    majmin: str


def parse_losetup_json(text: str) -> list[LoopDevice]:
    """Parse ``losetup --json --list -O NAME,BACK-FILE,AUTOCLEAR,MAJ:MIN``."""
    if not text.strip():
        return []  # losetup prints nothing at all when no loop device is bound
    out = []
    for dev in json.loads(text).get("loopdevices", []):
        back = (dev.get("back-file") or "").removesuffix(" (deleted)")
        autoclear = dev.get("autoclear") in (True, 1, "1", "true")
        out.append(LoopDevice(dev["name"], back, autoclear, dev.get("maj:min") or ""))
    return out


def list_loops() -> list[LoopDevice]:
    """Every bound loop device on the machine (loop devices are not namespaced)."""
    argv = ["losetup", "--json", "--list", "-O", "NAME,BACK-FILE,AUTOCLEAR,MAJ:MIN"]
    return parse_losetup_json(run(argv))


def backing_file(dev: str) -> str | None:
    """The file behind loop device ``dev``, or None if it is not bound."""
    try:
        text = Path(f"/sys/block/{Path(dev).name}/loop/backing_file").read_text()
    except OSError:
        return None
    return text.strip().removesuffix(" (deleted)")


def is_mounted(target: str | os.PathLike[str]) -> bool:
    """Is ``target`` a mount point in this mount namespace?"""
    t = os.path.realpath(target)
    return any(m.target == t for m in read_mounts())


def mounts_of(dev: str) -> list[MountEntry]:
    """Where block device ``dev`` is mounted here (by source path, or by device number:
    btrfs reports an anonymous device number, so the source path is checked too)."""
    try:
        rdev = os.stat(dev).st_rdev
        majmin = f"{os.major(rdev)}:{os.minor(rdev)}"
    except OSError:
        majmin = ""
    return [m for m in read_mounts() if m.source == dev or (majmin and m.majmin == majmin)]


def is_held(dev: str) -> bool:
    """Does something hold ``dev`` exclusively (a mounted superblock, visible here or not)?"""
    try:
        fd = os.open(dev, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
    except OSError as err:
        return err.errno == errno.EBUSY
    os.close(fd)
    return False


def can_reflink(directory: str | os.PathLike[str]) -> bool:
    """Does ``directory`` support reflink copies? Tried for real: FICLONE on two temp files."""
    src_fd, src = tempfile.mkstemp(prefix=".vmsnap_reflink-", dir=directory)
    dst_fd, dst = tempfile.mkstemp(prefix=".vmsnap_reflink-", dir=directory)
    try:
        os.write(src_fd, b"\0" * 4096)
        os.fsync(src_fd)
        linux.reflink(src_fd, dst_fd)
        return True
    except OSError:
        return False
    finally:
        for fd, name in ((src_fd, src), (dst_fd, dst)):
            os.close(fd)
            os.unlink(name)


# --- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One thing made here: an image or file, a directory, a loop device, a mount."""

    kind: Kind
    path: str
    """File, directory, device (``/dev/loopN``) or mount target."""
    backing: str = ""
    """For a loop device: the image it must still back before it may be detached."""


class Registry:
    """What this process has made, in creation order; released in reverse order."""

    def __init__(self) -> None:
        self._items: list[Resource] = []
        self._lock = threading.RLock()

    def add(self, res: Resource) -> Resource:
        with self._lock:
            self._items.append(res)
        return res

    def forget(self, kind: Kind, path: str) -> None:
        """Drop the newest record of ``kind`` at ``path`` (it was released by other means)."""
        with self._lock:
            for i in range(len(self._items) - 1, -1, -1):
                if self._items[i].kind == kind and self._items[i].path == path:
                    del self._items[i]
                    return

    def items(self) -> list[Resource]:
        with self._lock:
            return list(self._items)

    def release(self, resources: Iterable[Resource] | None = None) -> list[str]:
        """Release ``resources`` (default: all), newest first; the actions taken.

        Goes on past failures and raises one :class:`VmError` naming them all at the end.
        """
        with self._lock:
            todo = list(self._items if resources is None else resources)
        done: list[str] = []
        errors: list[str] = []
        for res in reversed(todo):
            try:
                done += _release_one(res)
                self.forget(res.kind, res.path)
            except (VmError, OSError) as err:
                errors.append(f"{res.kind} {res.path}: {err}")
        if errors:
            raise VmError("could not release: " + "; ".join(errors))
        return done


REGISTRY = Registry()


def release_all() -> list[str]:
    """Release everything this process made, newest first: thaw, unmount, detach, delete."""
    return REGISTRY.release()


def registered() -> list[Resource]:
    """What this process has made and not yet released, oldest first."""
    return REGISTRY.items()


def release_path(path: str | os.PathLike[str]) -> list[str]:
    """Release what this process registered at ``path`` (an image, a file such as an owner
    record); the actions taken."""
    return REGISTRY.release([r for r in REGISTRY.items() if r.path == str(path)])


def _release_one(res: Resource) -> list[str]:
    if res.kind == "mount":
        return _umount(res.path)
    if res.kind == "loop":
        return detach_device(res.path, res.backing or None)
    if res.kind == "dir":
        try:
            os.rmdir(res.path)
        except FileNotFoundError:
            return []
        return [f"removed {res.path}"]
    try:  # image or file
        os.unlink(res.path)
    except FileNotFoundError:
        return []
    return [f"removed {res.path}"]


# --- mounts -------------------------------------------------------------------------------------


def _mkdirs(path: Path) -> list[Resource]:
    """mkdir -p, registering each directory it creates (so it is removed again)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    made = []
    for d in reversed(missing):
        d.mkdir()
        made.append(REGISTRY.add(Resource("dir", str(d))))
    return made


def mount(disk: Disk, target: str | os.PathLike[str], options: Sequence[str] = ()) -> Path:
    """Mount an attached disk at ``target`` (created if missing) with the options it needs
    (``nouuid`` for an xfs clone) plus ``options``; returns the resolved target."""
    if not disk.loopdev:
        raise VmError(f"disk {disk.spec.name} ({disk.image}) is not attached")
    tgt = Path(os.path.realpath(target))
    _mkdirs(tgt)
    opts = list(dict.fromkeys([*disk.mount_options, *options]))
    argv = ["mount", "-t", disk.spec.fs]
    if opts:
        argv += ["-o", ",".join(opts)]
    run([*argv, disk.loopdev, str(tgt)])
    REGISTRY.add(Resource("mount", str(tgt)))
    return tgt


def umount(target: str | os.PathLike[str]) -> list[str]:
    """Thaw (if frozen), then unmount ``target``; the actions taken (none if not mounted).

    Never unmounts a frozen file system: that would leave its superblock frozen and hidden.
    """
    tgt = os.path.realpath(target)
    actions = _umount(tgt)
    REGISTRY.forget("mount", tgt)
    return actions


def _umount(tgt: str) -> list[str]:
    actions: list[str] = []
    if is_mounted(tgt):
        if thaw_fully(tgt):
            actions.append(f"thawed {tgt}")
        run(["umount", tgt])
        actions.append(f"unmounted {tgt}")
    return actions


# --- loop devices -------------------------------------------------------------------------------


def attach(disk: Disk, *, read_only: bool = False) -> str:
    """Bind a free loop device to the disk's image; returns it (also set as ``disk.loopdev``)."""
    if disk.loopdev:
        raise VmError(f"disk {disk.spec.name} is already attached to {disk.loopdev}")
    image = os.path.realpath(disk.image)
    argv = ["losetup", "--find", "--show", *(["--read-only"] if read_only else []), image]
    dev = run(argv).strip()
    REGISTRY.add(Resource("loop", dev, backing=image))
    disk.loopdev = dev
    return dev


def detach(disk: Disk) -> list[str]:
    """Detach the disk's loop device (exactly that one, only if it still backs this image)."""
    if not disk.loopdev:
        return []
    actions = detach_device(disk.loopdev, os.path.realpath(disk.image))
    REGISTRY.forget("loop", disk.loopdev)
    disk.loopdev = None
    return actions


def detach_device(dev: str, expect_backing: str | None = None) -> list[str]:
    """Detach loop device ``dev``; the actions taken.

    With ``expect_backing`` it is left alone (and this is not an error) when it now backs
    another file: loop devices are reused as soon as they are free. It refuses while ``dev`` is
    mounted here, and repairs a superblock left frozen by an unmount first (recipe R10).
    """
    back = backing_file(dev)
    if back is None or (expect_backing and back != expect_backing):
        return []
    where = mounts_of(dev)
    if where:
        raise VmError(f"{dev} is still mounted at {where[0].target}: unmount it first")
    actions = []
    if is_held(dev):
        actions += recover_hidden_superblock(dev)
    if backing_file(dev) == back:
        try:
            run(["losetup", "--detach", dev])
        except CommandError:
            if backing_file(dev) == back:
                raise
    # The kernel finishes the detach when the last opener (udev, blkid) closes the device.
    deadline = time.monotonic() + 2.0
    while backing_file(dev) == back:
        if time.monotonic() > deadline:
            raise VmError(
                f"{dev} ({back}) is still bound: a mount in another namespace holds it; it "
                "detaches by itself when that ends (autoclear is set)"
            )
        time.sleep(0.02)
    return [*actions, f"detached {dev} ({back})"]


def recover_hidden_superblock(dev: str) -> list[str]:
    """Recipe R10: ``dev`` is held by a superblock mounted nowhere here, typically one that was
    unmounted while frozen. Mount it again (which reuses that superblock), thaw, unmount.

    If it is really mounted in another mount namespace, this only thaws it.
    """
    tmp = tempfile.mkdtemp(prefix="vmsnap_recover-")
    try:
        run(["mount", dev, tmp])
    except VmError:
        os.rmdir(tmp)
        raise
    try:
        thawed = thaw_fully(tmp)
    except VmError as err:
        # Unmounting it now would hide it again: leave it where it can be seen.
        raise VmError(f"{dev} cannot be thawed, left mounted at {tmp}: {err}") from err
    run(["umount", tmp])
    os.rmdir(tmp)
    return [f"thawed the hidden frozen file system on {dev}"] if thawed else []


# --- images -------------------------------------------------------------------------------------


def _new_file(path: Path) -> tuple[int, Resource]:
    """Create ``path`` (it must not exist) and register it; an fd open for writing."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError as err:
        raise VmError(f"{path} exists already (a leftover? try `vmsnap cleanup`)") from err
    return fd, REGISTRY.add(Resource("image", str(path)))


def _new_sparse(path: Path, size_mb: int) -> Resource:
    """Create ``path`` as a sparse file of ``size_mb`` MiB, registered."""
    fd, res = _new_file(path)
    try:
        os.ftruncate(fd, size_mb * 1024 * 1024)
    finally:
        os.close(fd)
    return res


def mkfs(image: str | os.PathLike[str], fs: str) -> None:
    """Format an image (or device) with ``fs``."""
    if fs not in MKFS:
        raise VmError(f"unknown file system {fs!r}: use one of {', '.join(MKFS)}")
    run([*MKFS[fs], str(image)], timeout=300)


def check_spec(spec: DiskSpec) -> None:
    """Raise a clear VmError for a disk that mkfs would refuse."""
    if spec.fs not in MKFS:
        raise VmError(f"disk {spec.name}: unknown file system {spec.fs!r}")
    if spec.size_mb < MIN_SIZE_MB[spec.fs]:
        raise VmError(
            f"disk {spec.name}: {spec.fs} needs at least {MIN_SIZE_MB[spec.fs]} MiB, "
            f"not {spec.size_mb}"
        )


def create_disk(pool: Pool, tag: str, vm_name: str, spec: DiskSpec) -> Disk:
    """A new sparse image of ``spec.size_mb`` MiB in the pool, formatted with ``spec.fs``."""
    check_spec(spec)
    image = Path(os.path.realpath(pool.path)) / names.image_name(tag, vm_name, spec.name)
    res = _new_sparse(image, spec.size_mb)
    try:
        mkfs(image, spec.fs)
    except VmError:
        _undo([res])
        raise
    return Disk(spec, image)


def clone_image(src: Disk, dst: str | os.PathLike[str], spec: DiskSpec | None = None) -> Disk:
    """A reflink copy of ``src``'s image at ``dst`` (a bare name goes beside ``src``).

    Instant and space-free in an XFS or btrfs pool. The copy is only consistent if ``src`` is
    not mounted, or frozen while this runs. The result has ``uuid_clone`` set: xfs needs
    ``nouuid`` to mount it beside the original.
    """
    dst_path = Path(dst)
    if not dst_path.is_absolute():
        dst_path = src.image.parent / dst_path
    s = os.open(src.image, os.O_RDONLY | os.O_CLOEXEC)
    try:
        d, res = _new_file(dst_path)
        try:
            linux.reflink(s, d)
        except OSError as err:
            failed: OSError | None = err
        else:
            failed = None
        finally:
            os.close(d)
    finally:
        os.close(s)
    if failed is not None:
        _undo([res])
        raise VmError(
            f"reflink {src.image} -> {dst_path}: {failed.strerror} (the pool must be XFS or "
            "btrfs, with both files in it)"
        ) from failed
    return Disk(spec or src.spec, dst_path, uuid_clone=True)


# --- the pool -----------------------------------------------------------------------------------


@dataclass
class Pool:
    """A directory that supports reflink, where the session's disk images live.

    Either a directory in ``home`` (when ``home`` itself can reflink) or a sparse XFS/btrfs
    image on a loop device mounted at ``<home>/<tag>-pool/``.
    """

    path: Path
    fs: str
    tag: str
    image: Path | None = None
    loopdev: str | None = None
    _own: list[Resource] = field(default_factory=list, repr=False)

    @classmethod
    def open(
        cls,
        home: str | os.PathLike[str] | None,
        tag: str,
        *,
        fs: PoolFs = "xfs",
        size_gb: int = DEFAULT_POOL_GB,
        reuse_home: bool = True,
    ) -> Pool:
        """Make the session's pool under ``home`` (default ``$VMSNAP_HOME``).

        ``fs="xfs"``: any reflink-capable ``home`` is used as it is, otherwise a sparse XFS
        image (``reflink=1``) is made. ``fs="btrfs"``: a btrfs pool (the btrfs snapshot backend
        needs subvolumes), reusing ``home`` only if it is btrfs. ``reuse_home=False`` always
        makes an image.
        """
        if fs not in ("xfs", "btrfs"):
            raise VmError(f"a pool is xfs or btrfs, not {fs!r}")
        home_p = Path(os.path.realpath(home or names.vmsnap_home()))
        home_p.mkdir(parents=True, exist_ok=True)
        _claim(home_p, tag)
        pool = cls(path=names.pool_dir(home_p, tag, fs), fs=fs, tag=tag)
        try:
            host_fs = fs_type(home_p)
            reusable = can_reflink(home_p) if fs == "xfs" else host_fs == "btrfs"
            if reuse_home and reusable:
                pool.fs = host_fs
                pool._own += _mkdirs(pool.path)
            else:
                pool._make_image(home_p, size_gb)
        except BaseException:
            _undo(pool._own)
            raise
        return pool

    def _make_image(self, home: Path, size_gb: int) -> None:
        self.image = names.pool_image(home, self.tag, self.fs)
        self._own.append(_new_sparse(self.image, size_gb * 1024))
        # xfsprogs 6.1 has reflink=1 by default; say it anyway for older ones.
        run([*MKFS[self.fs], *(["-m", "reflink=1"] if self.fs == "xfs" else []), str(self.image)])
        dev = run(["losetup", "--find", "--show", str(self.image)]).strip()
        self._own.append(REGISTRY.add(Resource("loop", dev, backing=str(self.image))))
        self.loopdev = dev
        self._own += _mkdirs(self.path)
        # discard: images deleted inside the pool give their space back to the host file.
        run(["mount", "-t", self.fs, "-o", "discard", dev, str(self.path)])
        self._own.append(REGISTRY.add(Resource("mount", str(self.path))))

    def close(self) -> list[str]:
        """Unmount and detach exactly what :meth:`open` made; the actions taken.

        Disks in the pool must be detached first (their loop devices keep it busy).
        """
        inside = str(self.path) + "/"
        users = [d.name for d in list_loops() if d.back_file.startswith(inside)]
        if users:
            raise VmError(
                f"pool {self.path} is still in use by {', '.join(users)}: detach its disks first"
            )
        actions = REGISTRY.release(self._own)
        self._own = []
        self.loopdev = None
        return actions

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _undo(resources: list[Resource]) -> None:
    """Release what a failed call made; the original error matters more than this one (and
    whatever stays is still registered for :func:`release_all`)."""
    with contextlib.suppress(VmError):
        REGISTRY.release(resources)


def _claim(home: Path, tag: str) -> None:
    """Record this process as the tag's owner once; the record goes with :func:`release_all`."""
    path = names.owner_file(home, tag)
    if not any(r.kind == "file" and r.path == str(path) for r in REGISTRY.items()):
        names.claim(home, tag)
        # Recorded before the pool: released after everything made in it.
        REGISTRY.add(Resource("file", str(path)))
