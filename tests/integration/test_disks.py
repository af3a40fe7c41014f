"""Disks for real: reflink pool, loop devices, mkfs, mounts, clones, release and cleanup.

Each test works under its own tag in its own home directory, and checks at the end, against
``losetup --json --list`` and ``/proc/self/mountinfo`` directly, that nothing of it is left.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_vmsnap.vm import cleanup, disks, linux, names
from pytest_vmsnap.vm.errors import VmError
from pytest_vmsnap.vm.model import DiskSpec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices and mounts"),
    pytest.mark.skipif(shutil.which("losetup") is None, reason="losetup is not installed"),
]

SIZES = {"ext4": 64, "xfs": 300, "btrfs": 128}  # xfs refuses < 300 MiB, btrfs < 109 MiB
ROOT = Path(__file__).resolve().parents[2]


def need_mkfs(fs: str) -> None:
    if shutil.which(disks.MKFS[fs][0]) is None:
        pytest.skip(f"{disks.MKFS[fs][0]} is not installed")


def tagged_state(tag: str) -> list[str]:
    """Loop devices and mounts that carry ``tag``, read straight from the kernel's reports."""
    listing = subprocess.run(
        ["losetup", "--json", "--list"], capture_output=True, text=True, check=True
    ).stdout
    lines = [line for line in listing.splitlines() if tag in line]
    lines += [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if tag in line]
    return lines


@dataclasses.dataclass
class Session:
    home: Path
    tag: str

    def spec(self, fs: str, name: str | None = None) -> DiskSpec:
        need_mkfs(fs)
        return DiskSpec(name or fs, f"/srv/{name or fs}", SIZES[fs], fs)  # type: ignore[arg-type]

    def target(self, vm: str, disk: str) -> Path:
        return names.mount_dir(self.home, self.tag, vm, disk)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = Session(tmp_path / "home", names.new_tag())
    try:
        yield s
    finally:
        released_ok = True
        try:
            disks.release_all()
        except VmError:
            released_ok = False
        left = tagged_state(s.tag)
        if left:  # last resort, so one failure does not leave the machine dirty
            cleanup.release(cleanup.find_leftovers(s.home, s.tag, include_live=True))
        assert released_ok and not left, left


@pytest.fixture
def pool(session: Session) -> disks.Pool:
    need_mkfs("xfs")
    return disks.Pool.open(session.home, session.tag, size_gb=4)


def test_pool_on_ext4_host_is_an_xfs_image_that_reflinks(session: Session) -> None:
    need_mkfs("xfs")
    session.home.mkdir(parents=True)
    if disks.can_reflink(session.home):
        pytest.skip("this host's tmp dir can reflink already: no image pool is needed")
    pool = disks.Pool.open(session.home, session.tag, size_gb=4)
    assert pool.image == session.home / f"{session.tag}-pool.img"
    assert pool.loopdev and disks.backing_file(pool.loopdev) == str(pool.image)
    st = pool.image.stat()
    assert st.st_blocks * 512 < st.st_size / 20  # sparse: only the zeroed xfs log is written
    assert linux.fs_type(pool.path) == "xfs"
    assert disks.can_reflink(pool.path)
    assert tagged_state(session.tag)
    pool.close()
    assert not tagged_state(session.tag)
    assert not pool.image.exists() and not pool.path.exists()


def test_a_home_that_reflinks_is_used_as_it_is(session: Session, pool: disks.Pool) -> None:
    inner = disks.Pool.open(pool.path, session.tag, size_gb=4)
    assert inner.image is None and inner.loopdev is None
    assert inner.path == pool.path / f"{session.tag}-pool" and inner.path.is_dir()
    disk = disks.create_disk(inner, session.tag, "vm", session.spec("ext4"))
    assert disks.clone_image(disk, "copy.img").image.exists()
    with pytest.raises(VmError, match="exists already"):
        disks.clone_image(disk, "copy.img")


def test_btrfs_pool(session: Session) -> None:
    need_mkfs("btrfs")
    pool = disks.Pool.open(session.home, session.tag, fs="btrfs", size_gb=4)
    assert linux.fs_type(pool.path) == "btrfs"
    assert disks.can_reflink(pool.path)
    pool.close()
    assert not tagged_state(session.tag)


@pytest.mark.parametrize("fs", ["ext4", "xfs", "btrfs"])
def test_disk_lifecycle(session: Session, pool: disks.Pool, fs: str) -> None:
    disk = disks.create_disk(pool, session.tag, "vm", session.spec(fs))
    assert disk.image.parent == pool.path
    assert names.tag_of(str(disk.image)) == session.tag
    dev = disks.attach(disk)
    assert disk.loopdev == dev and disks.backing_file(dev) == str(disk.image)
    target = disks.mount(disk, session.target("vm", fs))
    assert disks.is_mounted(target) and linux.fs_type(target) == fs
    with open(target / "hello", "w") as f:
        f.write(fs)
        f.flush()
        os.fsync(f.fileno())
    assert disks.umount(target) == [f"unmounted {target}"]
    disks.detach(disk)
    assert disk.loopdev is None and disks.backing_file(dev) != str(disk.image)
    # The data is on the image: attach and mount it again.
    disks.attach(disk)
    disks.mount(disk, target)
    assert (target / "hello").read_text() == fs
    disks.umount(target)
    disks.detach(disk)


def test_detach_refuses_a_mounted_disk(session: Session, pool: disks.Pool) -> None:
    disk = disks.create_disk(pool, session.tag, "vm", session.spec("ext4"))
    disks.attach(disk)
    disks.mount(disk, session.target("vm", "ext4"))
    with pytest.raises(VmError, match="still mounted"):
        disks.detach(disk)
    with pytest.raises(VmError, match="still in use"):
        pool.close()


def test_xfs_clone_mounts_beside_its_original(session: Session, pool: disks.Pool) -> None:
    disk = disks.create_disk(pool, session.tag, "vm", session.spec("xfs", "data"))
    disks.attach(disk)
    live = disks.mount(disk, session.target("vm", "data"))
    (live / "before").write_text("1")
    fd = os.open(live, os.O_RDONLY)
    try:  # a snapshot as the snapshot backend takes it: freeze, clone, thaw
        fcntl.ioctl(fd, linux.FIFREEZE, 0)
        try:
            clone = disks.clone_image(disk, names.image_name(session.tag, "restore", "data"))
        finally:
            assert disks.thaw_if_frozen(live)
    finally:
        os.close(fd)
    assert clone.uuid_clone and clone.mount_options == ["nouuid"]
    assert clone.image.parent == disk.image.parent
    disks.attach(clone)
    # Without nouuid XFS refuses a second file system with the same UUID.
    with pytest.raises(VmError):
        disks.mount(dataclasses.replace(clone, uuid_clone=False), session.target("bad", "data"))
    restored = disks.mount(clone, session.target("restore", "data"))
    assert (restored / "before").read_text() == "1"
    (restored / "after").write_text("2")
    assert not (live / "after").exists()


def test_release_all_leaves_nothing(session: Session, pool: disks.Pool) -> None:
    for fs in ("ext4", "xfs", "btrfs"):
        disk = disks.create_disk(pool, session.tag, "vm", session.spec(fs))
        disks.attach(disk)
        disks.mount(disk, session.target("vm", fs))
        if fs == "ext4":
            clone = disks.clone_image(disk, "clone.img")
            disks.attach(clone)
    assert len(tagged_state(session.tag)) >= 8  # 5 loops (pool, 3 disks, clone), 4 mounts
    actions = disks.release_all()
    assert sum(a.startswith("detached") for a in actions) == 5
    assert sum(a.startswith("unmounted") for a in actions) == 4
    assert not tagged_state(session.tag)
    assert not [r for r in disks.registered() if session.tag in r.path]
    assert not list(session.home.iterdir())


def test_frozen_mount_is_thawed_before_unmount(session: Session, pool: disks.Pool) -> None:
    disk = disks.create_disk(pool, session.tag, "vm", session.spec("ext4"))
    dev = disks.attach(disk)
    target = disks.mount(disk, session.target("vm", "ext4"))
    assert disks.thaw_if_frozen(target) is False  # not frozen: FITHAW says EINVAL
    fd = os.open(target, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, linux.FIFREEZE, 0)
    finally:
        os.close(fd)
    actions = disks.release_all()
    assert actions.index(f"thawed {target}") < actions.index(f"unmounted {target}")
    assert not any("hidden" in a for a in actions)  # nothing had to be repaired afterwards
    assert disks.backing_file(dev) != str(disk.image)


def test_cleanup_repairs_a_file_system_unmounted_while_frozen(
    session: Session, pool: disks.Pool
) -> None:
    """machine-notes 4e / R10: the hazard made on purpose, then repaired by cleanup."""
    disk = disks.create_disk(pool, session.tag, "vm", session.spec("ext4"))
    dev = disks.attach(disk)
    target = disks.mount(disk, session.target("vm", "ext4"))
    fd = os.open(target, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, linux.FIFREEZE, 0)
    finally:
        os.close(fd)
    subprocess.run(["umount", str(target)], check=True)  # "succeeds"; the superblock lives on
    subprocess.run(["losetup", "--detach", dev], check=True)  # only sets autoclear
    assert disks.backing_file(dev) == str(disk.image) and disks.is_held(dev)

    found = cleanup.find_leftovers(session.home, session.tag, include_live=True)
    assert [lo.name for lo in found.loops if lo.back_file == str(disk.image)] == [dev]
    assert dev not in {m.source for m in found.mounts}
    report = cleanup.release(found)
    assert report.ok, report.errors
    assert f"thawed the hidden frozen file system on {dev}" in report.actions
    assert disks.backing_file(dev) != str(disk.image)
    assert not tagged_state(session.tag)


CHILD = textwrap.dedent(
    """
    import fcntl, os, sys, time
    from pytest_vmsnap.vm import disks, linux, names
    from pytest_vmsnap.vm.model import DiskSpec
    home, tag = sys.argv[1], sys.argv[2]
    pool = disks.Pool.open(home, tag, size_gb=4)
    for fs, size in (("ext4", 64), ("btrfs", 128)):
        disk = disks.create_disk(pool, tag, "vm", DiskSpec(fs, "/srv/" + fs, size, fs))
        disks.attach(disk)
        target = disks.mount(disk, names.mount_dir(home, tag, "vm", fs))
    fd = os.open(names.mount_dir(home, tag, "vm", "ext4"), os.O_RDONLY)
    fcntl.ioctl(fd, linux.FIFREEZE, 0)
    print("READY", flush=True)
    time.sleep(600)
    """
)


def test_cleanup_after_a_killed_run(session: Session) -> None:
    need_mkfs("xfs")
    need_mkfs("btrfs")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(session.home), session.tag],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY"
        # While its owner runs, the tag is left alone.
        alive = cleanup.find_leftovers(session.home, session.tag)
        assert alive.live == [session.tag] and not alive
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    found = cleanup.find_leftovers(session.home, session.tag)
    assert found.tags == [session.tag] and not found.live
    assert len(found.loops) == 3  # the pool and two disks
    assert len(found.mounts) == 3
    assert {p.name for p in found.files} == {
        f"{session.tag}-pool.img",
        f"{session.tag}-pool",
        f"{session.tag}-mnt",
        f"{session.tag}.owner",
    }
    report = cleanup.release(found)
    assert report.ok, report.errors
    frozen = names.mount_dir(session.home, session.tag, "vm", "ext4")
    assert report.actions[0] == f"thawed {frozen}"
    assert not tagged_state(session.tag)
    assert not list(session.home.iterdir())
    assert not cleanup.find_leftovers(session.home, session.tag)
