"""Nothing a script does inside a host stand-in VM reaches this host (issue 12's canaries).

The VM's root is a copy-on-write view of this host: a pre-script that writes into every
directory, rewrites this host's canaries, tries to freeze ``/``, ``/usr`` and the harness's
files and wipes ``/usr``, ``/var/tmp`` and the state directory leaves this host as it was.
"""

from __future__ import annotations

from pathlib import Path

from appcycle import cycle_settings
from canaries import manifest, placed

from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.vm import names


def test_an_attacking_script_leaves_this_host_unchanged(
    tmp_path: Path, root_required: None
) -> None:
    home = names.vmsnap_home()
    before = manifest("/usr/bin", "/usr/sbin")
    runs_before = {p.name for p in home.iterdir()} - {"docker"}
    with placed() as canaries:
        d = run(cycle_settings(tmp_path, "sqlite", canaries.attack())).to_dict()
        assert canaries.changes() == []
    assert manifest("/usr/bin", "/usr/sbin") == before
    assert {p.name for p in home.iterdir()} - {"docker"} == runs_before
    # The cycle itself ran to its end and says what happened, in one line where it failed.
    assert d["verdict"] and "Traceback" not in str(d), d
    pre = d["scripts"]["pre"]
    assert pre["ran"] and "froze" not in (pre.get("stderr") or ""), pre
