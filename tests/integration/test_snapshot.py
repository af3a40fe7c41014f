"""Snapshot backends for real: loop disks in an XFS or btrfs pool, frozen, snapshotted, restored.

Every loop device, mount and freeze made here is tracked by exact name and released in
teardown, thaw first (a frozen file system is never unmounted).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_vmsnap.vm.model import Disk, DiskSpec, FsType
from pytest_vmsnap.vm.snapshot import (
    BackendSnapshotter,
    SnapshotBackend,
    create_subvolume,
    delete,
    delete_restored,
    get_backend,
    restore,
)

pytestmark = pytest.mark.integration

FIFREEZE = 0xC0045877
FITHAW = 0xC0045878
MKFS = {
    "ext4": ["mkfs.ext4", "-q", "-F"],
    "xfs": ["mkfs.xfs", "-q", "-f"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"],
}
# Smallest sizes each mkfs accepts comfortably (xfsprogs 6 refuses below 300 MB); sparse anyway.
SIZE_MB = {"ext4": 64, "xfs": 320, "btrfs": 256}


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip()


def _ioctl_dir(path: Path, request: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, request, 0)
    finally:
        os.close(fd)


class Loops:
    """Loop devices, mounts and freezes made by one test, released by exact name."""

    def __init__(self) -> None:
        self.devs: list[str] = []
        self.mounts: list[Path] = []
        self.frozen: list[Path] = []

    def attach(self, image: Path) -> str:
        dev = _run(["losetup", "--find", "--show", str(image)])
        self.devs.append(dev)
        return dev

    def mount(self, dev: str, target: Path, fs: str, options: list[str] | None = None) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        argv = ["mount", "-t", fs]
        if options:
            argv += ["-o", ",".join(options)]
        _run([*argv, dev, str(target)])
        self.mounts.append(target)
        return target

    def freeze(self, mnt: Path) -> None:
        _ioctl_dir(mnt, FIFREEZE)
        self.frozen.append(mnt)

    def thaw(self, mnt: Path) -> None:
        try:
            _ioctl_dir(mnt, FITHAW)
        except OSError as err:
            if err.errno != errno.EINVAL:  # EINVAL: it was not frozen
                raise
        if mnt in self.frozen:
            self.frozen.remove(mnt)

    def release(self, mnt: Path | None = None, dev: str | None = None) -> None:
        """Unmount ``mnt`` and detach ``dev`` (each only if this test made it)."""
        if mnt is not None and mnt in self.mounts:
            self.thaw(mnt)
            _run(["umount", str(mnt)])
            self.mounts.remove(mnt)
        if dev is not None and dev in self.devs:
            _run(["losetup", "-d", dev])
            self.devs.remove(dev)

    def close(self) -> None:
        """Thaw everything, then unmount and detach in reverse order; report what failed."""
        problems = []
        for mnt in [*self.frozen, *self.mounts]:
            try:
                self.thaw(mnt)
            except OSError as err:
                problems.append(f"thaw {mnt}: {err}")
        for mnt in reversed(self.mounts):
            try:
                _run(["umount", str(mnt)])
            except RuntimeError as err:
                problems.append(str(err))
        for dev in reversed(self.devs):
            try:
                _run(["losetup", "-d", dev])
            except RuntimeError as err:
                problems.append(str(err))
        self.mounts.clear()
        self.devs.clear()
        assert not problems, problems


@contextlib.contextmanager
def _loops() -> Iterator[Loops]:
    loops = Loops()
    try:
        yield loops
    finally:
        loops.close()


@pytest.fixture(scope="module")
def root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for loop devices, mounts and fsfreeze")
    for tool in ("losetup", "mkfs.ext4", "mkfs.xfs", "mkfs.btrfs", "btrfs"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def _make_pool(base: Path, fs: str, size: str) -> Iterator[Path]:
    image = base / f"vmsnap-test-pool-{fs}.img"
    _run(["truncate", "-s", size, str(image)])
    _run([*MKFS[fs], str(image)])
    try:
        with _loops() as loops:
            dev = loops.attach(image)
            yield loops.mount(dev, base / f"pool-{fs}", fs)
    finally:
        image.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def xfs_pool(root_only: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 2 GiB sparse XFS (reflink=1) pool, mounted from its own loop device."""
    yield from _make_pool(tmp_path_factory.mktemp("xfspool"), "xfs", "2G")


@pytest.fixture(scope="module")
def btrfs_pool(root_only: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 1 GiB sparse btrfs pool, mounted from its own loop device."""
    yield from _make_pool(tmp_path_factory.mktemp("btrfspool"), "btrfs", "1G")


@pytest.fixture
def loops() -> Iterator[Loops]:
    with _loops() as made:
        yield made


def _pool_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if backend == "btrfs":
        return request.getfixturevalue("btrfs_pool")
    if backend == "copy":
        return tmp_path  # host ext4: the copy backend works where reflink does not
    return request.getfixturevalue("xfs_pool")


def _backend(name: str, pool: Path) -> SnapshotBackend:
    backend = get_backend(name, pool)
    ok, reason = backend.available()
    if not ok:
        pytest.skip(f"{name} backend unavailable: {reason}")
    return backend


def _vm_dir(backend: SnapshotBackend, pool: Path) -> Path:
    """A fresh directory for one VM's images (a subvolume for the btrfs backend)."""
    path = pool / f"vm-{uuid.uuid4().hex[:8]}"
    if backend.name == "btrfs":
        return create_subvolume(path)
    path.mkdir()
    return path


def _make_disk(vmdir: Path, name: str, fs: FsType, size_mb: int | None = None) -> Disk:
    size = size_mb or SIZE_MB[fs]
    image = vmdir / f"{name}.img"
    _run(["truncate", "-s", f"{size}M", str(image)])
    _run([*MKFS[fs], str(image)])
    return Disk(DiskSpec(name, f"/var/lib/{name}", size, fs), image)


def _digest(root: Path) -> dict[str, str]:
    """sha256 of every regular file under ``root`` (lost+found skipped)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == "lost+found" or not path.is_file():
            continue
        out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _write(mnt: Path, tag: str) -> None:
    (mnt / "dir").mkdir(exist_ok=True)
    (mnt / f"{tag}.bin").write_bytes(os.urandom(1 << 20))
    with open(mnt / "dir" / "log.txt", "a") as f:
        f.write(f"{tag}\n" * 100)
        f.flush()
        os.fsync(f.fileno())


@pytest.mark.parametrize("fs", ["ext4", "xfs", "btrfs"])
@pytest.mark.parametrize("backend_name", ["reflink", "copy", "btrfs", "devmapper"])
def test_snapshot_holds_exactly_the_frozen_state(
    backend_name: str,
    fs: FsType,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    loops: Loops,
    root_only: None,
) -> None:
    pool = _pool_for(backend_name, request, tmp_path)
    backend = _backend(backend_name, pool)
    disk = _make_disk(_vm_dir(backend, pool), "data", fs)
    disk.loopdev = loops.attach(disk.image)
    live = loops.mount(disk.loopdev, tmp_path / "live", fs)
    _write(live, "before")
    expected = _digest(live)

    if backend.freeze_compatible:
        loops.freeze(live)
    try:
        snap = backend.take([disk], pool / f"snap-{uuid.uuid4().hex[:8]}")
    finally:
        loops.thaw(live)
    assert snap.taken and snap.backend == backend_name and len(snap.images) == 1
    assert snap.specs == [disk.spec]

    _write(live, "after")  # the live disk moves on; the snapshot must not
    (live / "before.bin").write_bytes(b"changed")
    os.sync()

    restored = restore(snap, pool / f"restore-{uuid.uuid4().hex[:8]}")
    (rdisk,) = restored
    assert rdisk.uuid_clone and rdisk.spec == disk.spec
    assert rdisk.mount_options == (["nouuid"] if fs == "xfs" else [])
    rdev = loops.attach(rdisk.image)
    rmnt = loops.mount(rdev, tmp_path / "restored", fs, rdisk.mount_options)
    assert _digest(rmnt) == expected

    # Writing to the restored disk leaves the snapshot untouched: restore again and compare.
    (rmnt / "scribble").write_bytes(b"x")
    loops.release(rmnt, rdev)
    again = restore(snap, pool / f"restore-{uuid.uuid4().hex[:8]}")
    adev = loops.attach(again[0].image)
    amnt = loops.mount(adev, tmp_path / "again", fs, again[0].mount_options)
    assert _digest(amnt) == expected
    loops.release(amnt, adev)

    delete_restored(restored)
    delete_restored(again)
    delete(snap)
    assert not snap.dest_dir.exists()
    assert not rdisk.image.exists() and not again[0].image.exists()
    assert disk.image.exists()
    loops.release(live, disk.loopdev)
    disk.image.unlink()


def test_skew_between_disks_is_recorded(
    xfs_pool: Path, tmp_path: Path, loops: Loops, root_only: None
) -> None:
    backend = _backend("reflink", xfs_pool)
    vmdir = _vm_dir(backend, xfs_pool)
    disks = [_make_disk(vmdir, "data", "ext4", 32), _make_disk(vmdir, "wal", "ext4", 32)]
    mounts = []
    for disk in disks:
        disk.loopdev = loops.attach(disk.image)
        mounts.append(loops.mount(disk.loopdev, tmp_path / disk.spec.name, "ext4"))
    for mnt in mounts:
        loops.freeze(mnt)
    try:
        snapper = BackendSnapshotter(backend, disks, xfs_pool / "skewed", skew_s=0.2)
        result = snapper.snapshot()
        again = snapper.snapshot()  # same directory a second time: reported, never raised
    finally:
        for mnt in mounts:
            loops.thaw(mnt)
    assert result.code == 0 and result.taken and result.backend == "reflink", result.message
    assert again.code == 2 and not again.taken and "already exists" in again.message
    snap = snapper.last
    assert snap is not None
    (first, second) = snap.disks
    assert second.start_s - first.end_s >= 0.2
    assert snap.skew_s >= 0.2
    detail_disks = result.detail["disks"]
    assert isinstance(detail_disks, list) and [d["name"] for d in detail_disks] == ["data", "wal"]
    delete(snap)
    assert not snap.dest_dir.exists()


def test_btrfs_snapshot_is_atomic_under_a_running_writer(
    btrfs_pool: Path, tmp_path: Path, loops: Loops, root_only: None
) -> None:
    """No freeze: a writer appends line i to disk A, then to disk B, fsync after each.

    An atomic snapshot across both disks sees B <= A <= B + 1 lines, and holds every line
    acknowledged before the snapshot began.
    """
    backend = _backend("btrfs", btrfs_pool)
    vmdir = _vm_dir(backend, btrfs_pool)
    disks = [_make_disk(vmdir, "a", "ext4", 32), _make_disk(vmdir, "b", "ext4", 32)]
    mounts = []
    for disk in disks:
        disk.loopdev = loops.attach(disk.image)
        mounts.append(loops.mount(disk.loopdev, tmp_path / disk.spec.name, "ext4"))

    acked = [0]
    stop = threading.Event()

    def writer() -> None:
        files = [open(m / "seq.txt", "a") for m in mounts]  # noqa: SIM115 - closed below
        try:
            i = 0
            while not stop.is_set():
                for f in files:
                    f.write(f"{i}\n")
                    f.flush()
                    os.fsync(f.fileno())
                acked[0] = i + 1
                i += 1
        finally:
            for f in files:
                f.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        while acked[0] < 50:
            stop.wait(0.01)
        acked_before = acked[0]
        snap = backend.take(disks, btrfs_pool / "atomic", skew_s=0.2)
        stop.wait(0.1)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert snap.subvolume and snap.disks[0].start_s == snap.disks[1].start_s
    assert "skew_s ignored" in snap.message

    restored = restore(snap, btrfs_pool / "atomic-restore")
    counts = []
    for rdisk in restored:
        dev = loops.attach(rdisk.image)
        mnt = loops.mount(dev, tmp_path / f"r-{rdisk.spec.name}", "ext4")
        lines = (mnt / "seq.txt").read_text().splitlines()
        assert lines == [str(i) for i in range(len(lines))]
        counts.append(len(lines))
        loops.release(mnt, dev)
    a, b = counts
    assert b <= a <= b + 1, counts
    assert b >= acked_before, (counts, acked_before)
    assert acked[0] > a  # the writer went on after the snapshot
    delete_restored(restored)
    delete(snap)
    assert not snap.dest_dir.exists()


def test_btrfs_backend_refuses_images_outside_a_subvolume(
    btrfs_pool: Path, loops: Loops, root_only: None
) -> None:
    backend = _backend("btrfs", btrfs_pool)
    plain = btrfs_pool / f"plain-{uuid.uuid4().hex[:8]}"
    plain.mkdir()
    disk = _make_disk(plain, "data", "ext4", 32)
    with pytest.raises(Exception, match="subvolume"):
        backend.take([disk], btrfs_pool / "never")
    assert not (btrfs_pool / "never").exists()
