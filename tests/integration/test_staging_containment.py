"""Installing the user's files into a real host stand-in VM never writes to this host.

The VM's root is a copy-on-write view of this host; only the harness's own files are
read-only there. Staging resolves every location inside the VM and refuses a location on a
mount that is not the VM's own; a symlink on the way is followed as the VM would follow it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from pytest_vmsnap import data
from pytest_vmsnap.cycle import testbed
from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.cycle.stage import Containment, StageError, stage
from pytest_vmsnap.settings import Settings
from pytest_vmsnap.vm.helpers import PACKAGE_ROOT

SAMPLES = data.sample_scripts("sqlite")
EXAMPLE_CONFIG = data.example("sqlite") / data.CONFIG_NAME


def _files(tmp_path: Path, pre_location: str) -> Settings:
    config = tmp_path / "VMSnapshotScriptPluginConfig.json"
    data = json.loads(EXAMPLE_CONFIG.read_text())
    data["preScriptLocation"] = pre_location
    config.write_text(json.dumps(data))
    config.chmod(0o600)
    for name in ("pre.sh", "post.sh"):
        shutil.copy(SAMPLES / name, tmp_path / name)
        (tmp_path / name).chmod(0o700)
    return Settings(config=config, pre=tmp_path / "pre.sh", post=tmp_path / "post.sh", app="sqlite")


def test_a_location_anywhere_on_the_host_lands_in_the_vm_only(
    tmp_path: Path, root_required: None
) -> None:
    """/usr/share was shared with this host before the VM's root became a copy-on-write view
    of it: the script is installed and runs there, and this host never sees it."""
    canary = Path("/usr/share") / f"vmsnap-canary-{uuid.uuid4().hex[:8]}"
    settings = _files(tmp_path, str(canary / "pre.sh"))
    with testbed.build(settings) as bed:
        inside = bed.vm.run(["cat", f"{canary}/pre.sh"]).stdout.decode()
        assert inside == (SAMPLES / "pre.sh").read_text()
        assert not canary.exists()
    assert not canary.exists()


def test_a_location_in_the_harness_files_is_refused(tmp_path: Path, root_required: None) -> None:
    """The harness's own files are read-only inside the VM: staging says so in one line,
    before the cycle, and `vmsnap run` reports it as the run's error."""
    canary = Path(PACKAGE_ROOT) / f"vmsnap-canary-{uuid.uuid4().hex[:8]}"
    settings = _files(tmp_path, str(canary / "pre.sh"))
    with pytest.raises(StageError, match="not the stand-in VM's own"), testbed.build(settings):
        pass
    assert not canary.exists()
    result = run(settings.with_(pacing="prompt", workload_seconds=0.2)).to_dict()
    assert "not the stand-in VM's own" in result["error"] and not canary.exists()
    # The harness could not run the cycle: its own verdict, with the cause, never the
    # framework's "not-taken".
    assert result["verdict"] == "error" and result["error"] in result["reasons"][0]


def test_a_symlinked_directory_leads_inside_the_vm(tmp_path: Path, root_required: None) -> None:
    """An absolute symlink in the VM points into the VM's tree, even when this host has a real
    directory at its target."""
    name = f"vmsnap-link-{uuid.uuid4().hex[:8]}"
    host_target = Path("/usr/local") / f"{name}-real"
    host_target.mkdir()
    try:
        (host_target / "pre.sh").write_text("host's own\n")
        settings = _files(tmp_path, f"/usr/local/{name}/pre.sh")
        with testbed.build(settings.with_(pre=None)) as bed:  # the pre-script comes below
            os.symlink(str(host_target), bed.vm.path(f"/usr/local/{name}"))
            assert bed.vm.pid is not None
            stage(
                bed.vm.path("/"),
                settings.config,  # type: ignore[arg-type]
                settings.pre,
                containment=Containment(bed.vm.pid, tuple(bed.vm.private_dirs)),
            )
            inside = bed.vm.run(["cat", f"/usr/local/{name}/pre.sh"]).stdout.decode()
            assert inside == (SAMPLES / "pre.sh").read_text()
        assert (host_target / "pre.sh").read_text() == "host's own\n"
        assert not Path(f"/usr/local/{name}").exists()
    finally:
        shutil.rmtree(host_target)


def test_no_run_s_files_are_visible_inside_the_vm(tmp_path: Path, root_required: None) -> None:
    """The state directory holds every run's pool images and owner records (this run's too):
    the VM sees it empty and read-only."""
    from pytest_vmsnap.vm import names

    other = names.vmsnap_home() / f"canary-{uuid.uuid4().hex[:8]}.img"
    other.write_bytes(b"another run's image\n")
    try:
        with testbed.build(_files(tmp_path, "/etc/azure/pre.sh")) as bed:
            home = str(names.vmsnap_home())
            assert bed.vm.run(["ls", "-A", home]).stdout == b""
            done = bed.vm.run(["sh", "-c", f"echo x >> {other}"], check=False)
            assert done.returncode != 0 and b"Read-only file system" in done.stderr
            assert bed.pool.path.is_dir()  # still there, on this host
        assert other.read_bytes() == b"another run's image\n"
    finally:
        other.unlink()
