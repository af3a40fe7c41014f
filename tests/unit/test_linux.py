"""vm/linux.py: the one command runner, the mount table, fs types and the thaw probe."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_vmsnap.vm import linux
from pytest_vmsnap.vm.errors import VmError

MOUNTINFO = (
    "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n"
    "40 22 7:3 / /var/lib/with\\040space rw shared:9 - xfs /dev/loop3 rw,nouuid\n"
    "41 22 7:4 / /mnt/tab\\011here rw - btrfs /dev/loop4 rw\n"
    "not a mountinfo line\n"
)


def test_mountinfo_paths_are_unescaped_in_table_order() -> None:
    entries = linux.parse_mountinfo(MOUNTINFO)
    assert [m.target for m in entries] == ["/", "/var/lib/with space", "/mnt/tab\there"]
    assert entries[1] == linux.MountEntry("/var/lib/with space", "/dev/loop3", "xfs", "7:3", 40)


def test_fs_type_agrees_with_findmnt(tmp_path: Path) -> None:
    want = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE", "-T", str(tmp_path)], capture_output=True, text=True
    ).stdout.strip()
    assert linux.fs_type(tmp_path) == want
    assert linux.fs_type("/proc/self") == "proc"


def test_run_returns_stdout_and_names_what_failed() -> None:
    assert linux.run(["printf", "hi"]) == "hi"
    with pytest.raises(linux.CommandError, match=r"sh -c echo oops >&2; exit 3: oops") as err:
        linux.run(["sh", "-c", "echo oops >&2; exit 3"])
    assert err.value.returncode == 3 and isinstance(err.value, VmError)
    with pytest.raises(linux.CommandError, match="not installed"):
        linux.run(["vmsnap-no-such-command"])
    with pytest.raises(linux.CommandError, match=r"did not finish in 0\.2 s"):
        linux.run(["sleep", "5"], timeout=0.2)


def test_thaw_of_what_is_not_frozen_or_gone_is_false(tmp_path: Path) -> None:
    assert linux.thaw(tmp_path) is False  # not frozen (EINVAL), or tmpfs cannot be frozen
    assert linux.thaw(tmp_path / "gone", strict=True) is False
