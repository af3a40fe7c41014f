"""``vmsnap doctor`` for real on this machine (root, loop devices, a real freeze, a reflink
pool, the applications, Docker), leaving nothing behind; ``vmsnap setup --dry-run`` and
``scripts/install-deps.sh`` for real (nothing is installed: apt only simulates)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_vmsnap.setup import doctor, packages
from pytest_vmsnap.vm import cleanup, disks, names
from pytest_vmsnap.vm.linux import read_mounts

REPO = Path(__file__).resolve().parents[2]
VMSNAP = [sys.executable, "-m", "pytest_vmsnap.cli"]

pytestmark = pytest.mark.usefixtures("root_required")


def test_doctor_passes_here_and_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    tag = names.new_tag()
    monkeypatch.setattr(names, "new_tag", lambda worker=None: tag)
    # The default home, as a run's: its owner record there keeps other runs' start-up cleanup
    # (which releases tags nobody owns) away from this one's loop devices.
    home = names.vmsnap_home()
    began = time.monotonic()
    report = doctor.run_checks()
    took = time.monotonic() - began
    failed = [c.line() for c in report.checks if c.status == "FAIL"]
    assert report.ok and not failed, "\n".join(failed)
    by_name = {c.name: c for c in report.checks}
    for name in ("root", "loop devices", "freeze", "reflink pool", "namespaces", "postgres"):
        assert by_name[name].status == "ok", by_name[name]
    assert "FIFREEZE and FITHAW" in by_name["freeze"].detail
    assert "reflink snapshot backend works" in by_name["reflink pool"].detail
    assert took < 30, f"doctor took {took:.1f} s"
    # Released by exact name: no loop device, mount, file or registry entry of its tag.
    left = cleanup.find_leftovers(home, tag_prefix=tag, include_live=True)
    assert not left, left
    assert not [m for m in read_mounts() if tag in m.target or tag in m.source]
    assert not [r for r in disks.registered() if tag in r.path]
    assert not [p.name for p in Path(home).iterdir() if tag in p.name]


def test_vmsnap_doctor_command_and_json() -> None:
    done = subprocess.run(
        [*VMSNAP, "doctor", "--app", "sqlite", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] is True
    assert {c["name"] for c in data["checks"]} >= {"root", "freeze", "sqlite", "docker engine"}
    assert all(set(c) == {"name", "status", "detail", "fix", "required"} for c in data["checks"])


def test_vmsnap_doctor_fails_with_the_fix_for_a_missing_postgres_version() -> None:
    done = subprocess.run(
        [*VMSNAP, "doctor", "--app", "postgres", "--pg-version", "7"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 1
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("FAIL")]
    assert "PostgreSQL 7 is not installed" in line and line.endswith(
        "fix: apt-get install postgresql-7"
    )
    assert done.stdout.splitlines()[-1] == "doctor: 1 required check(s) failed: postgres"


def test_setup_dry_run_changes_nothing() -> None:
    done = subprocess.run(
        [*VMSNAP, "setup", "--dry-run", "--all"], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    listed = len(packages.read_list())
    assert done.stdout.strip() == f"setup: all {listed} packages are installed"


def test_setup_dry_run_lets_apt_simulate_a_missing_package() -> None:
    # "sl" (a steam locomotive) is in Debian main and installed nowhere that matters.
    if "sl" in packages.installed(["sl"]):
        pytest.skip("sl is installed here")
    result = packages.setup(["coreutils", "sl"], dry_run=True)
    if result.error and "Unable to locate package" in result.error:
        pytest.skip(f"apt has no package lists here: {result.error}")
    assert result.ok, result.error
    assert result.missing == ["sl"] and "sl" in result.would_install
    assert "sl" not in packages.installed(["sl"])  # simulated only


def test_install_deps_still_works_for_make() -> None:
    if shutil.which("dpkg-query") is None:
        pytest.skip("no dpkg")
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-deps.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert done.returncode == 0, done.stderr
