"""``pytest --vmsnap`` end to end, as a user runs it: real cycles in stand-in VMs (root).

Each test builds a user project with ``pytester`` (the SQLite example's config and sample
scripts, installed with modes 600/700) and runs pytest on it in a subprocess.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from appcycle import require
from plugin_runs import (
    MAIN_CHECKS,
    QUIESCE,
    app_project,
    leftovers,
    main_cycle_passes,
    reports,
    run_pytest,
)

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "examples" / "sqlite" / "VMSnapshotScriptPluginConfig.json"
SAMPLES = REPO / "sample_scripts" / "sqlite"


def _install(src: Path, dst: Path, mode: int) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    dst.chmod(mode)


def _project(pytester: pytest.Pytester, pre: str = "pre.sh", **ini: str) -> pytest.Pytester:
    backup = pytester.path / "backup"
    _install(EXAMPLE_CONFIG, backup / "VMSnapshotScriptPluginConfig.json", 0o600)
    _install(SAMPLES / pre, backup / "pre.sh", 0o700)
    _install(SAMPLES / "post.sh", backup / "post.sh", 0o700)
    keys = {
        "vmsnap_config": "backup/VMSnapshotScriptPluginConfig.json",
        "vmsnap_pre": "backup/pre.sh",
        "vmsnap_post": "backup/post.sh",
        "vmsnap_app": "sqlite",
        "vmsnap_quiesce": "lock",
        "vmsnap_report": "report",
        **ini,
    }
    pytester.makeini("[pytest]\n" + "\n".join(f"{k} = {v}" for k, v in keys.items()))
    return pytester


def test_bundled_sqlite_example_passes(pytester: pytest.Pytester, root_required: None) -> None:
    result = run_pytest(_project(pytester), "--vmsnap", "-k", MAIN_CHECKS)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*= vmsnap summary =*",
            "app sqlite | vm host | disks 1 ext4 | snapshot reflink | profile extension | pacing *",
            "main: application-consistent | status 0 health 0 | frozen * ms | pre *s x1 | "
            "post *s x1 | quiesce app blocked, privileged blocked | live app ok, privileged ok",
        ]
    )
    main = reports(pytester)["main"]
    assert main["verdict"] == "application-consistent"
    assert main["oracle"]["quiesce_probe"]["result"] in ("blocked", "refused")
    assert leftovers([main["tag"]]) == []


@pytest.mark.parametrize("app", list(QUIESCE))
def test_zero_code_battery_per_application(
    pytester: pytest.Pytester, root_required: None, app: str
) -> None:
    """The zero-code battery's main cycle for PostgreSQL, MariaDB and Redis (SQLite above)."""
    require(app)
    main_cycle_passes(app_project(pytester, app), app, "host")


def test_fault_items_follow_the_outcome_table(
    pytester: pytest.Pytester, root_required: None
) -> None:
    """The battery's fault injections on the bundled example: each gets its outcome-table row
    and leaves the application writable (the failing post-script still runs the user's own
    post-script first, so the lock the pre-script took is released)."""
    tmp = Path(tempfile.gettempdir())
    before = set(tmp.glob("vmsnap-fault-*"))
    result = run_pytest(_project(pytester), "--vmsnap", "-k", "fault")
    result.assert_outcomes(passed=5)
    assert set(tmp.glob("vmsnap-fault-*")) - before == set()  # the faults' files are gone
    result.stdout.fnmatch_lines(
        [
            "fault-pre-hangs: crash-consistent | status 1 health 308 | *",
            "fault-pre-fails: crash-consistent | status 1 health 300 | *",
            "fault-post-fails: crash-consistent | status 1 health 301 | *",
            "fault-post-missing: crash-consistent | status 1 health 303 | *",
            "fault-snapshot-fails: not-taken | status 2 health 2 | *",
        ]
    )
    found = reports(pytester)
    assert found["fault-post-fails"]["oracle"]["liveness_ok"] is True
    assert leftovers([d["tag"] for d in found.values()]) == []


def test_lock_released_by_the_pre_script_fails_the_quiesce_check(
    pytester: pytest.Pytester, root_required: None
) -> None:
    project = _project(pytester, pre="pre-lock-released.sh")
    result = run_pytest(project, "--vmsnap", "-k", "quiesce")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ vmsnap: quiesce probe _*",
            "quiesce probe: a write on a fresh connection was accepted at the pre-script's end "
            "while the scripts claimed to hold a lock",
            "  (vmsnap_quiesce = lock: the scripts claim to hold a lock)",
            "  probe: *",
            "    -> Keep the lock in a session that outlives the pre-script*",
            "FAILED vmsnap::quiesce probe - *",
        ]
    )
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out
    assert leftovers([reports(pytester)["main"]["tag"]]) == []


@pytest.mark.catch
def test_worst_case_window_item_catches_a_watchdog_shorter_than_the_window(
    pytester: pytest.Pytester, root_required: None
) -> None:
    """The battery's worst-case window item holds the capture ``vmsnap_worst_window`` seconds
    longer: the bundled pair passes with its 120 s watchdog and fails, with the moment the lock
    was gone, when its watchdog is 2 s."""
    project = _project(pytester, vmsnap_worst_window="4", vmsnap_pacing="prompt")
    result = run_pytest(project, "--vmsnap", "-k", "worst")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["window: application-consistent | *"])
    config = project.path / "backup/VMSnapshotScriptPluginConfig.json"
    data = json.loads(config.read_text())
    data["preScriptParams"] = [data["preScriptParams"][0], "2"]
    config.write_text(json.dumps(data))
    result = run_pytest(project, "--vmsnap", "-k", "worst")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ vmsnap: worst-case window: capture held 4 s _*",
            "with the capture held 4 s longer (a slow freeze or host snapshot): quiesce probe: "
            "a write on a fresh connection was accepted at * s after the pre-script ended*",
            "*give its watchdog more time than the longest snapshot window.",
        ]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


TIMING_CONFTEST = """
import json
import os
import time
from pathlib import Path

from pytest_vmsnap.plugin import battery

_real = battery.run


def _timed(settings, hooks=None):
    t0 = time.time()
    try:
        return _real(settings, hooks=hooks)
    finally:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(Path(__file__).parent / f"cycle-{worker}.json", "w") as f:
            json.dump([t0, time.time()], f)


battery.run = _timed
"""


def test_xdist_runs_isolated_cycles_in_parallel(
    pytester: pytest.Pytester, root_required: None
) -> None:
    pytest.importorskip("xdist")
    project = _project(pytester)
    project.makeconftest(TIMING_CONFTEST)
    # Two items for two workers: each worker runs the main cycle in its own context.
    result = run_pytest(project, "--vmsnap", "-n", "2", "-k", "application-consistent or liveness")
    result.assert_outcomes(passed=2)
    lines = sorted(line for line in result.outlines if line.startswith("main ["))
    assert [line.split(":", 1)[0] for line in lines] == ["main [gw0]", "main [gw1]"], lines
    assert all(": application-consistent | status 0 health 0 |" in line for line in lines)

    found = reports(project)
    assert sorted(found) == ["main-gw0", "main-gw1"]
    tags = [found[f"main-{w}"]["tag"] for w in ("gw0", "gw1")]
    assert tags[0] != tags[1]
    assert tags[0].endswith("-gw0") and tags[1].endswith("-gw1")
    for data in found.values():
        assert data["verdict"] == "application-consistent"
        assert data["oracle"]["acked_missing"] == 0 and data["oracle"]["invariants_ok"] is True
    (a0, a1), (b0, b1) = (
        json.loads((project.path / f"cycle-{w}.json").read_text()) for w in ("gw0", "gw1")
    )
    assert max(a0, b0) < min(a1, b1), "the two cycles did not overlap in time"
    assert leftovers(tags) == []


USER_TESTS = """
import pytest

pytestmark = pytest.mark.vmsnap(app="sqlite")


def test_pre_script_holds_the_lock_until_post(vmsnap_sqlite, request):
    box = vmsnap_sqlite
    (request.config.rootpath / "vm-tag").write_text(box.tag)
    with box.client() as c:
        c.append(1, writer=0)
    box.run_script("pre")
    try:
        with box.client() as c:
            assert c.probe_write(0.5)[0] == "blocked"
    finally:
        box.run_script("post")
    with box.client() as c:
        assert c.probe_write(2.0)[0] == "accepted"
        assert 1 in c.read_state().seqs


@pytest.mark.vmsnap(disks=2, fs="xfs")
def test_two_disk_cycle(vmsnap_cycle):
    result = vmsnap_cycle()
    assert result.settings.disks == 2 and result.settings.fs == "xfs"
    result.assert_application_consistent().assert_status(0, 0).assert_quiesced().assert_live()
"""


def test_user_tests_with_fixtures_and_marker(
    pytester: pytest.Pytester, root_required: None
) -> None:
    project = _project(pytester)
    project.makepyfile(test_backup=USER_TESTS)
    result = run_pytest(project, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*= vmsnap summary =*", "test_two_disk_cycle: application-consistent | status 0 *"]
    )
    cycle = reports(project)["test_two_disk_cycle"]
    assert cycle["disks"] == 2 and cycle["fs"] == "xfs"
    vm_tag = (project.path / "vm-tag").read_text()
    assert leftovers([vm_tag, cycle["tag"]]) == []
