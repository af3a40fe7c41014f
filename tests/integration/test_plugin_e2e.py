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

from pytest_vmsnap.data import CONFIG_NAME, example, sample_scripts

pytest_plugins = ["pytester"]

EXAMPLE_CONFIG = example("sqlite") / CONFIG_NAME
SAMPLES = sample_scripts("sqlite")


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
    result = run_pytest(_project(pytester), "--vmsnap", "-k", "fault", "-v")
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
    result.stdout.fnmatch_lines(  # -v: the live phase lines of each cycle
        [
            "vmsnap::fault-pre-hangs ",
            "    vmsnap fault-pre-hangs: build: host stand-in, 1 ext4 disk(s), sqlite",
            "    vmsnap fault-pre-hangs: pre: pre-script started",
            "    vmsnap fault-pre-hangs: judge: crash-consistent",
            "vmsnap::fault-pre-hangs PASSED*",
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
            "*_ vmsnap::quiesce: quiesce probe _*",
            "quiesce probe: a write on a fresh connection was accepted at the pre-script's end "
            "while the scripts claimed to hold a lock",
            "  (vmsnap_quiesce = lock: the scripts claim to hold a lock)",
            "  probe: *",
            "    -> Keep the lock in a session that outlives the pre-script*",
            "FAILED vmsnap::quiesce - *",
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
    result = run_pytest(project, "--vmsnap", "-k", "worst-window")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["window: application-consistent | *"])
    config = project.path / "backup/VMSnapshotScriptPluginConfig.json"
    data = json.loads(config.read_text())
    data["preScriptParams"] = [data["preScriptParams"][0], "2"]
    config.write_text(json.dumps(data))
    result = run_pytest(project, "--vmsnap", "-k", "worst-window")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ vmsnap::worst-window: worst-case window: capture held 4 s _*",
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
        with open(Path(__file__).parent / "cycles.jsonl", "a") as f:
            f.write(json.dumps([worker, t0, time.time()]) + "\\n")


battery.run = _timed
"""


def test_xdist_shares_the_main_cycle_and_runs_the_others_in_parallel(
    pytester: pytest.Pytester, root_required: None
) -> None:
    """Under ``-n 2`` the three items that judge the main cycle (sent round robin to both
    workers) judge one cycle, run once by whichever worker needed it first; two other cycles
    run side by side, one per worker, each in VMs of its own."""
    pytest.importorskip("xdist")
    project = _project(pytester)
    project.makeconftest(TIMING_CONFTEST)
    shared = run_pytest(project, "--vmsnap", "-n", "2", "-v", "-k", MAIN_CHECKS)
    shared.assert_outcomes(passed=3)
    workers = {line.split("]", 1)[0] for line in shared.outlines if " PASSED vmsnap::" in line}
    assert workers == {"[gw0", "[gw1"}, shared.outlines
    log = project.path / "cycles.jsonl"
    assert len(log.read_text().splitlines()) == 1  # one main cycle in the session
    (main,) = reports(project).values()
    lines = [line for line in shared.outlines if line.startswith("main [")]
    assert len(lines) == 1 and ": application-consistent | status 0 health 0 |" in lines[0]
    assert main["oracle"]["acked_missing"] == 0 and main["oracle"]["invariants_ok"] is True

    log.unlink()
    parallel = run_pytest(
        project, "--vmsnap", "-n", "2", "-k", "fault-pre-fails or fault-post-fails"
    )
    parallel.assert_outcomes(passed=2)
    (a, b) = [json.loads(x) for x in log.read_text().splitlines()]
    assert {a[0], b[0]} == {"gw0", "gw1"} and max(a[1], b[1]) < min(a[2], b[2]), (a, b)
    found = reports(project)
    tags = [found[k]["tag"] for k in found]
    assert len(set(tags)) == 3 and all(t.endswith(("-gw0", "-gw1")) for t in tags)
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
