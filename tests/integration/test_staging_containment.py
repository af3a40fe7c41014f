"""Installing the user's files into a real host stand-in VM never writes to this host.

The VM shares this host's root file system except for its overlays, its private /tmp and /run
and its disks. Staging resolves every location inside the VM and refuses a location whose
directory is on a shared mount; a symlink on the way is followed as the VM would follow it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from pytest_vmsnap.cycle import testbed
from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.cycle.stage import Containment, StageError, stage
from pytest_vmsnap.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_scripts" / "sqlite"


def _files(tmp_path: Path, pre_location: str) -> Settings:
    config = tmp_path / "VMSnapshotScriptPluginConfig.json"
    data = json.loads((REPO / "examples/sqlite/VMSnapshotScriptPluginConfig.json").read_text())
    data["preScriptLocation"] = pre_location
    config.write_text(json.dumps(data))
    config.chmod(0o600)
    for name in ("pre.sh", "post.sh"):
        shutil.copy(SAMPLES / name, tmp_path / name)
        (tmp_path / name).chmod(0o700)
    return Settings(config=config, pre=tmp_path / "pre.sh", post=tmp_path / "post.sh", app="sqlite")


def test_a_location_in_a_host_directory_the_vm_shares_is_refused(
    tmp_path: Path, root_required: None
) -> None:
    canary = Path("/usr/share") / f"vmsnap-canary-{uuid.uuid4().hex[:8]}"
    settings = _files(tmp_path, str(canary / "pre.sh"))
    with pytest.raises(StageError, match="shares with this host"), testbed.build(settings):
        pass
    assert not canary.exists()
    result = run(settings.with_(pacing="prompt", workload_seconds=0.2)).to_dict()
    assert "shares with this host" in result["error"] and not canary.exists()


def test_a_symlinked_directory_leads_inside_the_vm(tmp_path: Path, root_required: None) -> None:
    """/usr/local is overlaid: an absolute symlink there points into the VM's tree, even when
    this host has a real directory at its target."""
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


def test_other_runs_files_are_read_only_inside_the_vm(tmp_path: Path, root_required: None) -> None:
    """The state directory holds every run's pool images and owner records: a script can read
    them but not change them; its own run directory stays writable."""
    from pytest_vmsnap.vm import names

    other = names.vmsnap_home() / f"canary-{uuid.uuid4().hex[:8]}.img"
    other.write_bytes(b"another run's image\n")
    try:
        with testbed.build(_files(tmp_path, "/etc/azure/pre.sh")) as bed:
            done = bed.vm.run(["sh", "-c", f"echo x >> {other}"], check=False)
            assert done.returncode != 0 and b"Read-only file system" in done.stderr
            bed.vm.run(["sh", "-c", f"echo ok > {bed.workdir}/from-the-vm"])
            assert (bed.workdir / "from-the-vm").read_text() == "ok\n"
        assert other.read_bytes() == b"another run's image\n"
    finally:
        other.unlink()
