"""The other frameworks end to end (root, real databases, real freezes where the framework
freezes): for GCP, VMware Tools, qemu-ga and AWS DLM, the correct sample of PostgreSQL and
of MariaDB is application-consistent and a broken one is caught, through ``vmsnap run``'s
cycle and through ``pytest --vmsnap``; ``vmsnap compare`` runs one pair under all five.

Every broken sample is caught by construction, not by timing: its lock ends with the client
that took it before the pre-script returns (the quiesce probe sees a write go through), or a
script fails and the framework's own outcome says so. The catch tests are marked ``catch``
(``bench/catch_rate.py`` repeats them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from appcycle import require
from plugin_runs import MAIN_CHECKS, run_pytest

from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.data import FRAMEWORK_SAMPLES, sample_scripts
from pytest_vmsnap.evidence import oracle
from pytest_vmsnap.settings import Settings

pytest_plugins = ["pytester"]

QUIESCE = {"postgres": "none", "mariadb": "lock"}

# (framework, app) -> the correct sample's files, by role (under sample_scripts/<app>/)
CORRECT: dict[tuple[str, str], dict[str, str]] = {
    (framework, app): files
    for framework, by_app in FRAMEWORK_SAMPLES.items()
    for app, files in by_app.items()
    if app in QUIESCE
}

# (framework, app) -> a broken sample, and how it is caught: the framework's own word for
# the cycle, and a reason of the verdict or, for a lock that ended early, PROBE: a quiesce
# probe's write went through (then the restored copy may also fail its integrity checks,
# whose verdict, inconsistent, lists only those).
PROBE = "a write went through the quiesce"
BROKEN: dict[tuple[str, str], tuple[dict[str, str], str, str]] = {
    ("gcp", "postgres"): (
        {"pre": "gcp/pre-timeout-124.sh", "post": "gcp/post.sh"},
        "SCRIPT_TIMED_OUT",
        "no snapshot",
    ),
    ("gcp", "mariadb"): (
        {"pre": "gcp/pre-lock-released.sh", "post": "gcp/post.sh"},
        "NO_ERROR",
        PROBE,
    ),
    ("vmware", "postgres"): (
        {"hook": "vmware/50-postgres-backup-session.sh"},
        "VMBACKUP_SCRIPT_ERROR",
        "the framework reported status 1",
    ),
    ("vmware", "mariadb"): (
        {"hook": "vmware/50-mariadb-ftwrl-exits.sh"},
        "VMBACKUP_SUCCESS",
        PROBE,
    ),
    ("qemu-ga", "postgres"): (
        {"hook": "qemu-ga/postgres-fails-hidden.sh"},
        "HOOK_FAILURE_HIDDEN",
        "a script failed and the framework still reported success",
    ),
    ("qemu-ga", "mariadb"): (
        {"hook": "qemu-ga/mariadb-lock-dies.sh"},
        "QUIESCED",
        PROBE,
    ),
    ("aws-dlm", "postgres"): (
        {"document": "aws-dlm/document-lock-dies.json"},
        "POST_SCRIPT_FAILED",
        "the framework reported status 1",
    ),
    ("aws-dlm", "mariadb"): (
        {"document": "aws-dlm/document-lock-dies.json"},
        "SUCCESS",
        PROBE,
    ),
}


def _settings(framework: str, app: str, files: dict[str, str], **extra: Any) -> Settings:
    samples = sample_scripts(app)
    return Settings(
        framework=framework,
        app=app,
        quiesce=QUIESCE[app],
        pacing="prompt",  # no framework but Azure has coded delays; VMware's 1 s ticks aside
        workload_seconds=0.5,
        **{role: samples / path for role, path in files.items()},  # type: ignore[arg-type]
        **extra,
    )


@pytest.mark.parametrize(("framework", "app"), list(CORRECT))
def test_the_correct_sample_is_application_consistent(
    framework: str, app: str, root_required: None
) -> None:
    require(app)
    r = run(_settings(framework, app, CORRECT[framework, app])).to_dict()
    assert r["framework"] == framework
    said = {w: r["scripts"][w].get("stderr", "")[-300:] for w in ("pre", "post")}
    assert r["verdict"] == oracle.APPLICATION, (r["outcome"], r["reasons"], r["error"], said)
    assert r["status"] == 0 and r["oracle"]["liveness_ok"] is True
    assert r["calls"], "the framework ran no script"


@pytest.mark.catch
@pytest.mark.parametrize(("framework", "app"), list(BROKEN))
def test_a_broken_sample_is_caught(framework: str, app: str, root_required: None) -> None:
    require(app)
    files, outcome, reason = BROKEN[framework, app]
    r = run(_settings(framework, app, files)).to_dict()
    assert r["verdict"] not in (oracle.APPLICATION, oracle.ERROR), (r["verdict"], r["error"])
    assert r["outcome"] == outcome, (r["outcome"], r["reasons"])
    if reason == PROBE:
        quiesce = [p for p in r["probes"] if p.get("probe") == "quiesce"]
        assert any(p.get("result") == "accepted" for p in quiesce), quiesce
    else:
        assert any(reason in x for x in r["reasons"]), r["reasons"]


def _project(pytester: pytest.Pytester, framework: str, app: str, files: dict[str, str]) -> None:
    samples = sample_scripts(app)
    keys = {"vmsnap_framework": framework, "vmsnap_app": app, "vmsnap_quiesce": QUIESCE[app]}
    for role, path in files.items():
        dst = pytester.path / Path(path).name
        dst.write_bytes((samples / path).read_bytes())
        dst.chmod(0o755)
        keys[f"vmsnap_{role}"] = dst.name
    pytester.makeini("[pytest]\n" + "\n".join(f"{k} = {v}" for k, v in keys.items()))


@pytest.mark.parametrize("app", ["postgres", "mariadb"])
@pytest.mark.parametrize("framework", ["gcp", "vmware", "qemu-ga", "aws-dlm"])
def test_pytest_vmsnap_passes_the_correct_sample_and_fails_the_broken_one(
    pytester: pytest.Pytester, framework: str, app: str, root_required: None
) -> None:
    """Through the plugin as a user runs it: the main cycle's three items pass for the
    correct sample; for the broken one, the main item fails with the framework's word."""
    require(app)
    _project(pytester, framework, app, CORRECT[framework, app])
    good = run_pytest(pytester, "--vmsnap", "-k", MAIN_CHECKS)
    good.assert_outcomes(passed=3)
    good.stdout.fnmatch_lines([f"main: application-consistent | {framework} *"])
    for name in pytester.path.iterdir():
        if name.is_file() and name.suffix in (".sh", ".json"):
            name.unlink()
    files, outcome, _ = BROKEN[framework, app]
    _project(pytester, framework, app, files)
    bad = run_pytest(pytester, "--vmsnap", "-k", "main")
    bad.assert_outcomes(failed=1)
    bad.stdout.fnmatch_lines([f"main: * | {framework} {outcome} |*"])


def test_vmsnap_compare_shows_a_pair_right_for_azure_wrong_for_gcp_and_vmware(
    tmp_path: Path, root_required: None
) -> None:
    """The SQLite pair reads its database path from $1: Azure passes no argument (its
    params are empty), GCP passes the disk list and VMware the verb, so the pre-script looks
    for a database at 0/1 and at freeze: one table shows where it holds and where not."""
    require("sqlite")
    samples = sample_scripts("sqlite")
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_vmsnap.cli",
            "compare",
            "--app",
            "sqlite",
            "--pre",
            str(samples / "pre.sh"),
            "--post",
            str(samples / "post.sh"),
            "--quiesce",
            "lock",
            "--modes",
            "scripts:700",
            "--pacing",
            "prompt",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = {r["framework"]: r for r in json.loads(out.read_text())}
    assert list(rows) == ["azure", "gcp", "vmware", "qemu-ga", "aws-dlm"]
    got = {name: (r["verdict"], r["outcome"]) for name, r in rows.items()}
    assert got == {
        "azure": ("application-consistent", "status 0 (success_appconsistent)"),
        "gcp": ("not-taken", "UNHANDLED_SCRIPT_ERROR"),
        "vmware": ("not-taken", "ApplicationQuiesceFault"),
        "qemu-ga": ("application-consistent", "QUIESCED"),
        "aws-dlm": ("application-consistent", "SUCCESS"),
    }
    assert "pre: no database at 0/1" in rows["gcp"]["why"]
    assert "pre: no database at freeze" in rows["vmware"]["why"]
    assert proc.stdout.splitlines()[0].split()[:4] == ["framework", "framework", "said", "verdict"]
