"""Installing the user's files into a machine root (stage) and the VM's private directories."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from pytest_vmsnap.cycle.stage import Containment, StageError, read_locations, stage
from pytest_vmsnap.vm.guest.rootfs import copied_mounts
from pytest_vmsnap.vm.linux import parse_mountinfo, read_mounts


def write_config(tmp_path: Path, pre: str, post: str, mode: int = 0o600) -> Path:
    config = tmp_path / "VMSnapshotScriptPluginConfig.json"
    config.write_text(json.dumps({"preScriptLocation": pre, "postScriptLocation": post}))
    config.chmod(mode)
    return config


def script(tmp_path: Path, name: str, mode: int) -> Path:
    path = tmp_path / name
    path.write_text("exit 0\n")
    path.chmod(mode)
    return path


def test_files_land_at_their_locations_with_modes_kept(tmp_path: Path) -> None:
    root = tmp_path / "root"
    config = write_config(tmp_path, "/etc/azure/pre.sh", "/opt/app/post.sh", mode=0o644)
    staged = stage(root, config, script(tmp_path, "a.sh", 0o755), script(tmp_path, "b.sh", 0o700))
    assert (root / "etc/azure/VMSnapshotScriptPluginConfig.json").stat().st_mode & 0o777 == 0o644
    assert (root / "etc/azure/pre.sh").stat().st_mode & 0o777 == 0o755
    assert (root / "opt/app/post.sh").stat().st_mode & 0o777 == 0o700
    assert staged.pre_location == "/etc/azure/pre.sh"


def test_relative_location_resolves_under_the_extension_dir(tmp_path: Path) -> None:
    config = write_config(tmp_path, "pre.sh", "post.sh")
    stage(tmp_path / "root", config, script(tmp_path, "a.sh", 0o700))
    assert list((tmp_path / "root/var/lib/waagent").rglob("pre.sh"))


def test_absolute_symlinks_resolve_inside_the_root_never_on_this_host(tmp_path: Path) -> None:
    """A directory on the way that is an absolute symlink (as /usr/local/<x> -> /usr/local/
    <x>-13.0 often is) leads to the same path inside the root, as it would in the VM."""
    host = tmp_path / "host-dir"
    host.mkdir()
    (host / "pre.sh").write_text("host's own file\n")
    root = tmp_path / "root"
    (root / "usr/local").mkdir(parents=True)
    (root / "usr/local/app").symlink_to(host)  # absolute: /tmp/.../host-dir
    config = write_config(tmp_path, "/usr/local/app/pre.sh", "/etc/azure/post.sh")
    stage(root, config, script(tmp_path, "a.sh", 0o700))
    assert (host / "pre.sh").read_text() == "host's own file\n"  # untouched
    inside = root / str(host).lstrip("/") / "pre.sh"
    assert inside.read_text() == "exit 0\n" and inside.stat().st_mode & 0o777 == 0o700


def test_dotdot_and_relative_symlinks_cannot_climb_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "opt").mkdir(parents=True)
    (root / "opt/up").symlink_to("../../../../../../..")
    config = write_config(tmp_path, "/opt/up/escaped.sh", "/../../../post.sh")
    stage(root, config, script(tmp_path, "a.sh", 0o700), script(tmp_path, "b.sh", 0o700))
    assert (root / "escaped.sh").is_file() and (root / "post.sh").is_file()
    assert not (tmp_path / "escaped.sh").exists() and not (tmp_path / "post.sh").exists()


def test_a_symlink_at_the_location_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    victim.chmod(0o644)
    root = tmp_path / "root"
    (root / "etc/azure").mkdir(parents=True)
    (root / "etc/azure/pre.sh").symlink_to(victim)
    config = write_config(tmp_path, "/etc/azure/pre.sh", "/etc/azure/post.sh")
    stage(root, config, script(tmp_path, "a.sh", 0o700))
    assert victim.read_text() == "keep me\n" and victim.stat().st_mode & 0o777 == 0o644
    placed = root / "etc/azure/pre.sh"
    assert not placed.is_symlink() and placed.read_text() == "exit 0\n"


def test_a_location_on_a_shared_mount_is_refused(tmp_path: Path) -> None:
    """With containment, only the VM's private mounts take writes: here this process's own
    mounts stand for the VM's, and the mount holding tmp_path is left out of the list."""
    config = write_config(tmp_path, "/scripts/pre.sh", "/etc/azure/post.sh")
    containment = Containment(os.getpid(), ("/nowhere",))
    with pytest.raises(StageError, match="not the stand-in VM's own"):
        stage(tmp_path / "root", config, script(tmp_path, "a.sh", 0o700), containment=containment)
    assert not (tmp_path / "root" / "etc").exists()  # nothing made on the shared mount


def test_a_location_on_a_private_mount_is_installed(tmp_path: Path) -> None:
    holder = max(
        (m.target for m in read_mounts() if str(tmp_path).startswith(m.target.rstrip("/") + "/")),
        key=len,
    )
    config = write_config(tmp_path, "/scripts/pre.sh", "/etc/azure/post.sh")
    containment = Containment(os.getpid(), (holder,))
    stage(tmp_path / "root", config, script(tmp_path, "a.sh", 0o700), containment=containment)
    assert (tmp_path / "root/scripts/pre.sh").is_file()


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        ("{not json", r"the config is not valid JSON \(Expecting property name .*char 1\)\)"),
        (b"\xff\xfe{}", r"the config is not UTF-8 text \(byte 0\)"),
        ("[1, 2]", r"the config is a JSON list, not an object"),
        ('{"preScriptLocation": 7}', r"the config's preScriptLocation is 7, not a path"),
        ("{}", r"the config has no preScriptLocation"),
    ],
)
def test_no_location_installs_the_config_as_given_and_says_why(
    tmp_path: Path, config_text: str | bytes, message: str
) -> None:
    """The cycle of a config the extension cannot read still runs (the framework reports
    305/304): the config is installed byte for byte, the script is not, and a note says why;
    with --pre-at it goes where the user says."""
    config = tmp_path / "c.json"
    if isinstance(config_text, bytes):
        config.write_bytes(config_text)
    else:
        config.write_text(config_text)
    staged = stage(tmp_path / "root", config, script(tmp_path, "a.sh", 0o700))
    assert staged.config.read_bytes() == config.read_bytes()
    assert re.search(message, staged.notes[0]) and "was not installed" in staged.notes[0]
    placed = stage(tmp_path / "r2", config, script(tmp_path, "a.sh", 0o700), at=("/s/pre.sh", None))
    assert (tmp_path / "r2/s/pre.sh").read_text() == "exit 0\n"
    assert "installed at /s/pre.sh (--pre-at)" in placed.notes[0]


def test_directories_are_named_as_directories(tmp_path: Path) -> None:
    config = write_config(tmp_path, "/etc", "/etc/azure/post.sh")
    (tmp_path / "root/etc").mkdir(parents=True)
    with pytest.raises(StageError, match="/etc is a directory in the VM"):
        stage(tmp_path / "root", config, script(tmp_path, "a.sh", 0o700))
    with pytest.raises(StageError, match=r"pre-script .* is a directory, not a file"):
        stage(tmp_path / "root", config, tmp_path)


def test_missing_and_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(StageError, match="does not exist"):
        stage(tmp_path, tmp_path / "nope.json")
    config = write_config(tmp_path, "/etc/azure/pre.sh", "/etc/azure/post.sh")
    with pytest.raises(StageError, match="pre-script"):
        stage(tmp_path / "r", config, tmp_path / "missing.sh")
    with pytest.raises(StageError, match="owner"):
        stage(tmp_path / "r", config, owner="no-such-user-vmsnap")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert read_locations(broken) == (None, None)


def test_the_host_vm_copies_real_file_systems_only_once_each_parents_first() -> None:
    info = "\n".join(
        [
            "22 1 8:1 / / rw - ext4 /dev/vda rw",
            "23 22 8:2 / /home/a\\040b rw - xfs /dev/vdb rw",
            "24 22 8:3 / /home rw - ext4 /dev/vdc rw",
            "25 22 0:5 / /proc rw - proc proc rw",
            "26 22 7:1 / /var/tmp/vmsnap/x-pool rw - xfs /dev/loop1 rw",
            "27 22 7:2 / /srv/data rw - ext4 /dev/loop2 rw",
            "28 22 0:6 / /tmp/venv rw - ext4 /dev/vdd rw",
            "29 22 0:7 / /sys/fs/cgroup rw - tmpfs tmpfs rw",
            "30 22 0:8 / /opt/cache rw - tmpfs tmpfs rw",
            "31 22 8:4 / /home rw - btrfs /dev/vde rw",
            "32 22 8:5 / /var/tmp/vmsnap/docker rw - ext4 /dev/vdf rw",
            "33 22 0:9 / /mnt/auto rw - autofs systemd-1 rw",
        ]
    )
    copied = copied_mounts(parse_mountinfo(info), ["/var/tmp/vmsnap"])
    # The topmost /home (btrfs) only: it covers the earlier /home and /home/a b; parents
    # before children; no pseudo fs, no loop-backed image, nothing under /tmp, /sys or the
    # hidden state dir.
    assert [(m.target, m.fstype) for m in copied] == [("/home", "btrfs"), ("/opt/cache", "tmpfs")]
    later = parse_mountinfo(info + "\n40 31 8:9 / /home/a\\040b rw - xfs /dev/vdg rw")
    assert "/home/a b" in [m.target for m in copied_mounts(later, [])]  # unescaped
