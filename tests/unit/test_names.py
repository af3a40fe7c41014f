"""Resource tags and the names derived from them (no root needed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_vmsnap.vm import names
from pytest_vmsnap.vm.helpers import PACKAGE_ROOT


def test_tag_is_prefix_and_six_hex(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    tag = names.new_tag()
    assert tag.startswith("vmsnap-")
    assert len(tag) == len("vmsnap-") + 6
    int(tag.removeprefix("vmsnap-"), 16)
    assert names.is_tag(tag)


def test_tag_carries_the_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    tag = names.new_tag()
    assert tag.endswith("-gw3")
    assert names.is_tag(tag)
    assert names.new_tag(worker="") != tag


def test_odd_worker_ids_are_left_out() -> None:
    tag = names.new_tag(worker="my worker/1")
    assert names.is_tag(tag)
    assert "worker" not in tag


def test_tags_do_not_repeat() -> None:
    tags = {names.new_tag(worker="") for _ in range(500)}
    assert len(tags) == 500


@pytest.mark.parametrize("tag", ["vmsnap-1a2b3c", "vmsnap-1a2b3c-gw12"])
def test_every_derived_name_gives_its_tag_back(tag: str) -> None:
    home = Path("/var/tmp/vmsnap")
    derived = [
        names.vm_name(tag, "vm1"),
        names.image_name(tag, "vm1", "data"),
        str(names.pool_image(home, tag)),
        str(names.pool_dir(home, tag)),
        str(names.pool_image(home, tag, "btrfs")),
        str(names.mount_dir(home, tag, "vm1", "wal")),
        str(names.owner_file(home, tag)),
        f"{names.pool_dir(home, tag)}/{names.image_name(tag, 'restore', 'data')} (deleted)",
    ]
    for name in derived:
        assert names.tag_of(name) == tag, name


def test_xfs_and_btrfs_pools_of_one_tag_do_not_collide() -> None:
    home = Path("/h")
    assert names.pool_image(home, "vmsnap-abcdef") == Path("/h/vmsnap-abcdef-pool.img")
    assert names.pool_dir(home, "vmsnap-abcdef") == Path("/h/vmsnap-abcdef-pool")
    assert names.pool_image(home, "vmsnap-abcdef", "btrfs") != names.pool_image(
        home, "vmsnap-abcdef"
    )


@pytest.mark.parametrize(
    "text", ["/var/tmp/vmsnap", "/dev/loop3", "xvmsnap-abc123", "/srv/vmsnapper-1", ""]
)
def test_untagged_text_has_no_tag(text: str) -> None:
    assert names.tag_of(text) is None


def test_names_are_made_safe() -> None:
    assert names.image_name("vmsnap-abcdef", "my vm", "../data") == "vmsnap-abcdef-my_vm-_data.img"
    with pytest.raises(ValueError):
        names.component("...")
    with pytest.raises(ValueError, match="not a vmsnap tag"):
        names.image_name("other-abcdef", "vm", "data")


def test_home_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VMSNAP_HOME", raising=False)
    assert names.vmsnap_home() == Path("/var/tmp/vmsnap")
    monkeypatch.setenv("VMSNAP_HOME", "/srv/state")
    assert names.vmsnap_home() == Path("/srv/state")


def test_owner_record_tells_live_from_dead(tmp_path: Path) -> None:
    tag = names.new_tag(worker="")
    assert names.owner_alive(tmp_path, tag) is None
    names.claim(tmp_path, tag)
    assert names.owner_alive(tmp_path, tag) is True
    # A process that claimed a tag and exited: its record stays, but it is not alive.
    other = names.new_tag(worker="")
    code = "import sys; from pytest_vmsnap.vm import names; names.claim(sys.argv[1], sys.argv[2])"
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), other],
        check=True,
        env={**os.environ, "PYTHONPATH": PACKAGE_ROOT},
    )
    assert names.owner_file(tmp_path, other).exists()
    assert names.owner_alive(tmp_path, other) is False
    names.owner_file(tmp_path, other).write_text("garbage")
    assert names.owner_alive(tmp_path, other) is False


def test_scratch_names_of_no_run_never_read_as_tags() -> None:
    """Every run releases what dead runs left as it starts: a probe file of a live run read as
    the tag ``vmsnap-reflink`` (no owner record: dead) was deleted under its feet (found by
    four runs at once)."""
    import inspect

    from pytest_vmsnap.vm import disks
    from pytest_vmsnap.vm.snapshot import reflink

    sources = inspect.getsource(disks) + inspect.getsource(reflink)
    scratch = ["".join(p) for p in re.findall(r'prefix="([^"]+)"|f"(\.vmsnap[^{"]*)', sources)]
    assert len(scratch) >= 3, scratch  # the two reflink probes and the recovery mount point
    for prefix in scratch:
        assert names.tag_of(prefix + "x1y2z3") is None, prefix
    assert names.tag_of("/var/tmp/vmsnap/vmsnap-1a2b3c-pool.img") == "vmsnap-1a2b3c"
