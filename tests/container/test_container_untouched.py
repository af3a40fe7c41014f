"""Nothing a script does inside a container stand-in reaches this host (issue 12's canaries).

The script holds CAP_SYS_ADMIN there, and Docker binds files of this host into every container
(``/etc/hosts``...), and the stand-in binds our package: the init replaces them, so the same
attack as in the host stand-in's test finds nothing of this host to write to or to freeze.
"""

from __future__ import annotations

from pathlib import Path

from appcycle import cycle_settings
from canaries import manifest, placed

from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.vm import names
from pytest_vmsnap.vm.linux import read_mounts


def test_an_attacking_script_leaves_this_host_unchanged(
    engine: object, images_built: dict[str, str], tmp_path: Path
) -> None:
    home = names.vmsnap_home()
    before = manifest("/usr/bin", "/usr/sbin")
    runs_before = {p.name for p in home.iterdir()} - {"docker"}
    with placed() as canaries:
        settings = cycle_settings(tmp_path, "sqlite", canaries.attack(), vm="container")
        d = run(settings).to_dict()
        assert canaries.changes() == []
    assert manifest("/usr/bin", "/usr/sbin") == before
    assert {p.name for p in home.iterdir()} - {"docker"} == runs_before
    assert d["vm"] == "container" and d["verdict"] and "Traceback" not in str(d), d
    pre = d["scripts"]["pre"]
    assert pre["ran"] and "froze" not in (pre.get("stderr") or ""), pre


def test_no_path_in_the_container_is_on_a_file_system_of_this_host(
    engine: object, images_built: dict[str, str], tmp_path: Path
) -> None:
    """Every mount the VM's processes see is its own: the container's overlay root, pseudo
    file systems, tmpfs, the read-only overlay holding our package, or its disks."""
    from pytest_vmsnap.cycle import testbed

    with testbed.build(cycle_settings(tmp_path, "sqlite", vm="container")) as bed:
        assert bed.vm.pid is not None
        disks = {d.spec.mountpoint for d in bed.disks}
        host_devs = {m.majmin for m in read_mounts() if m.source.startswith("/dev/")}
        foreign = [
            (m.target, m.fstype, m.source)
            for m in read_mounts(bed.vm.pid)
            if m.target not in disks and m.majmin in host_devs
        ]
        assert foreign == []
