"""Installing the user's files into a machine root (stage) and the VM's private directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_vmsnap.cycle.stage import StageError, read_locations, stage
from pytest_vmsnap.vm.host import default_overlays


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


def test_location_outside_private_dirs_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, "/scripts/pre.sh", "/etc/azure/post.sh")
    with pytest.raises(StageError, match="outside the stand-in VM's private directories"):
        stage(
            tmp_path / "root", config, script(tmp_path, "a.sh", 0o700), private=["/etc", "/var/lib"]
        )
    assert not (tmp_path / "root" / "scripts").exists()


def test_relative_location_resolves_under_the_extension_dir(tmp_path: Path) -> None:
    config = write_config(tmp_path, "pre.sh", "post.sh")
    stage(tmp_path / "root", config, script(tmp_path, "a.sh", 0o700), private=["/var/lib"])
    assert list((tmp_path / "root/var/lib/waagent").rglob("pre.sh"))


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


def test_default_overlays_skip_dirs_holding_host_mounts(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw - ext4 /dev/vda rw\n30 22 0:5 / /opt/mnt rw - tmpfs tmpfs rw\n"
    )
    overlays = default_overlays(str(info))
    assert overlays[:2] == ["/etc", "/var/lib"] and "/opt" not in overlays
