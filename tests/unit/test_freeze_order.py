"""Which mounts the freezer picks, in which order (azure-framework.md 7.1); no root needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_vmsnap.vm.freeze import GuardFreezer, mount_candidates_from_mountinfo, select_mounts

TABLE = [
    ("/", "ext4"),
    ("/boot", "ext4"),
    ("/boot/efi", "vfat"),
    ("/dev/shm", "tmpfs"),
    ("/var/lib/postgresql", "xfs"),
    ("/data", "btrfs"),
    ("/legacy", "ext3"),
    ("/mnt/nfs", "nfs4"),
    ("/srv", "overlay"),
]


def test_only_ext3_ext4_xfs_btrfs_reverse_table_order_root_last() -> None:
    assert select_mounts(TABLE) == ["/legacy", "/data", "/var/lib/postgresql", "/boot", "/"]


def test_root_is_last_even_when_mounted_last() -> None:
    assert select_mounts([("/a", "ext4"), ("/", "xfs"), ("/b", "btrfs")]) == ["/b", "/a", "/"]


def test_skip_list_is_honoured_except_for_root() -> None:
    order = select_mounts(TABLE, skip=["/", "/data", "/boot", " "])
    assert order == ["/legacy", "/var/lib/postgresql", "/"]


def test_skip_list_entries_are_exact_strings() -> None:
    """Errata E7: MountsToSkip is compared as exact strings: "/boot/" and " /data" skip
    nothing (the mount table says "/boot" and "/data")."""
    order = select_mounts(TABLE, skip=["/boot/", " /data", "/legacy"])
    assert order == ["/data", "/var/lib/postgresql", "/boot", "/"]


def test_duplicate_mount_point_keeps_the_topmost_mount() -> None:
    # /data is mounted twice; the later (topmost) mount decides type and position.
    table = [("/data", "ext4"), ("/x", "xfs"), ("/data/", "tmpfs"), ("/y", "ext4")]
    assert select_mounts(table) == ["/y", "/x"]
    table = [("/data", "tmpfs"), ("/x", "xfs"), ("/data", "ext4")]
    assert select_mounts(table) == ["/data", "/x"]


def test_nothing_eligible_is_an_empty_selection() -> None:
    assert select_mounts([("/boot/efi", "vfat"), ("/run", "tmpfs")]) == []
    assert select_mounts([]) == []


def test_no_candidate_freezes_nothing_and_succeeds() -> None:
    freezer = GuardFreezer([("/run", "tmpfs")])
    result = freezer.freeze()
    assert (result.code, result.mounts) == (0, [])
    assert freezer.guard_pid is None
    assert freezer.thaw().code == 0
    assert freezer.close() == []


MOUNTINFO = r"""22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
25 22 0:22 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw
61 22 7:0 / /tmp/with\040space rw,relatime shared:40 - xfs /dev/loop0 rw,attr2
62 22 7:1 / /var/lib/db rw,relatime shared:41 master:7 - ext4 /dev/loop1 rw
63 62 0:50 / /var/lib/db rw,relatime - tmpfs tmpfs rw
garbage line
"""


def test_mountinfo_parsing_order_escapes_and_duplicates(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    everything = mount_candidates_from_mountinfo(None, info)
    assert everything == [
        ("/", "ext4"),
        ("/dev/shm", "tmpfs"),
        ("/tmp/with space", "xfs"),
        ("/var/lib/db", "ext4"),
        ("/var/lib/db", "tmpfs"),
    ]
    picked = mount_candidates_from_mountinfo(["/var/lib/db/", "/tmp/with space", "/nope"], info)
    assert picked == [("/tmp/with space", "xfs"), ("/var/lib/db", "ext4"), ("/var/lib/db", "tmpfs")]
    # The tmpfs mounted over /var/lib/db hides the ext4: nothing to freeze there.
    assert select_mounts(picked) == ["/tmp/with space"]


def test_mountinfo_of_this_process_has_root() -> None:
    assert mount_candidates_from_mountinfo(["/"])[-1][0] == "/"


def test_open_failure_is_123_before_anything_is_frozen(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-mount")
    freezer = GuardFreezer([(missing, "ext4")], timeout_s=5)
    result = freezer.freeze()
    assert result.code == 123, result
    assert f"Failed to open: {missing}" in result.message
    assert "FREEZING" not in freezer.output
    assert freezer.guard_pid is None  # reaped


def test_a_file_is_not_a_mount_point_121(tmp_path: Path) -> None:
    """Errata E6: safefreeze opens a file fine and then refuses it as not a directory, with a
    message that is not "Failed to open": 121, not 123."""
    (tmp_path / "f").write_text("x")
    result = GuardFreezer([(str(tmp_path / "f"), "ext4")], timeout_s=5).freeze()
    assert result.code == 121, result


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "soon"])
def test_guard_rejects_a_bad_timeout(timeout: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_vmsnap.vm.guest.freeze_guard",
            "--timeout",
            timeout,
            "/nonexistent-vmsnap",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "timeout" in done.stderr


def test_guard_does_not_freeze_when_its_parent_is_already_gone() -> None:
    # --parent names a PID that is not the guard's parent: as if the parent died before the
    # guard could set PR_SET_PDEATHSIG. It must stop before opening (let alone freezing).
    argv = [sys.executable, "-m", "pytest_vmsnap.vm.guest.freeze_guard", "--timeout", "5"]
    done = subprocess.run(
        [*argv, "--parent", "1", "/nonexistent-vmsnap"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == ["Parent process is gone: not freezing"]
