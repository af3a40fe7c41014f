"""What the disk layer reads from the kernel, and the checks it makes before mkfs (no root)."""

from __future__ import annotations

import pytest

from pytest_vmsnap.vm import disks, linux
from pytest_vmsnap.vm.errors import VmError
from pytest_vmsnap.vm.model import DiskSpec

MOUNTINFO = (
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n"
    "98 22 7:0 / /var/tmp/vmsnap/vmsnap-abc123-pool rw,relatime - xfs /dev/loop0 rw\n"
    "99 22 0:52 / /srv/my\\040dir rw,relatime - btrfs /dev/loop1 rw,subvolid=5,subvol=/\n"
)

LOSETUP = """{
   "loopdevices": [
      {"name": "/dev/loop0", "back-file": "/var/tmp/vmsnap/vmsnap-abc123-pool.img",
       "autoclear": false, "maj:min": "7:0"},
      {"name": "/dev/loop1", "back-file": "/x/vmsnap-abc123-vm-data.img (deleted)",
       "autoclear": true, "maj:min": "7:1"}
   ]
}"""


def test_mountinfo_fields_and_escapes() -> None:
    entries = linux.parse_mountinfo(MOUNTINFO)
    assert [e.target for e in entries] == [
        "/",
        "/var/tmp/vmsnap/vmsnap-abc123-pool",
        "/srv/my dir",
    ]
    assert entries[1] == linux.MountEntry(
        "/var/tmp/vmsnap/vmsnap-abc123-pool", "/dev/loop0", "xfs", "7:0", 98
    )
    assert entries[2].fstype == "btrfs"
    assert entries[2].majmin == "0:52"  # btrfs: anonymous device number, not the loop's


def test_losetup_json_and_deleted_backing_files() -> None:
    loops = disks.parse_losetup_json(LOSETUP)
    assert loops[0] == disks.LoopDevice(
        "/dev/loop0", "/var/tmp/vmsnap/vmsnap-abc123-pool.img", False, "7:0"
    )
    assert loops[1].back_file == "/x/vmsnap-abc123-vm-data.img"
    assert loops[1].autoclear is True


def test_losetup_prints_nothing_when_no_loop_is_bound() -> None:
    assert disks.parse_losetup_json("") == []


@pytest.mark.parametrize(("fs", "size", "ok"), [("xfs", 299, False), ("xfs", 300, True),
                                                ("btrfs", 100, False), ("btrfs", 109, True),
                                                ("ext4", 8, True)])  # fmt: skip
def test_minimum_sizes_are_checked_before_mkfs(fs: str, size: int, ok: bool) -> None:
    spec = DiskSpec("data", "/var/lib/app", size, fs)  # type: ignore[arg-type]
    if ok:
        disks.check_spec(spec)
    else:
        with pytest.raises(VmError, match=f"at least {disks.MIN_SIZE_MB[fs]} MiB"):
            disks.check_spec(spec)


def test_unknown_fs_is_refused() -> None:
    with pytest.raises(VmError, match="unknown file system"):
        disks.check_spec(DiskSpec("data", "/d", 64, "zfs"))  # type: ignore[arg-type]


def test_command_error_carries_argv_and_stderr() -> None:
    with pytest.raises(disks.CommandError) as info:
        disks.run(["sh", "-c", "echo boom >&2; exit 3"])
    assert info.value.argv == ["sh", "-c", "echo boom >&2; exit 3"]
    assert info.value.returncode == 3
    assert info.value.stderr.strip() == "boom"
    assert "boom" in str(info.value)
    assert isinstance(info.value, VmError)


def test_missing_tool_is_a_clear_error() -> None:
    with pytest.raises(disks.CommandError, match="not installed"):
        disks.run(["vmsnap-no-such-tool"])
