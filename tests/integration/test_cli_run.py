"""``vmsnap run`` end to end on the host stand-in, for each application, as CI jobs call it.

Each run is the real command in a subprocess (``python -m pytest_vmsnap.cli run``) with the
app's correct sample pair: exit 0, and the JSON written with ``--json`` carries every key of
the contract in DESIGN.md with values that agree with each other. One broken set-up (a
pre-script anyone may write to) shows exit 1, the framework code and the recommended action.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from appcycle import cycle_files, require

QUIESCE = {"sqlite": "lock", "postgres": "none", "mariadb": "lock", "redis": "lock"}
SCRIPT_KEYS = {
    "ran",
    "exit_code",
    "error_code",
    "duration_s",
    "attempts",
    "retries_logged",
    "timed_out",
}
ORACLE_KEYS = {
    "started",
    "recovery_needed",
    "integrity_ok",
    "acked_before_pre",
    "acked_missing",
    "invariants_ok",
    "quiesce_probe",
    "liveness_ok",
}


def vmsnap_run(
    tmp_path: Path, app: str, config: Path, pre: Path, post: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path / "result.json"
    argv = [sys.executable, "-m", "pytest_vmsnap.cli", "run", "--config", str(config)]
    argv += ["--pre", str(pre), "--post", str(post), "--app", app, "--json", str(out)]
    argv += ["--pacing", "prompt", "--workload-seconds", "0.4", *extra]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert out.exists(), f"no JSON written (exit {done.returncode}): {done.stderr}"
    return done, json.loads(out.read_text())


def assert_contract(d: dict[str, Any]) -> None:
    """Every key DESIGN.md promises, with the documented types."""
    for key in ("verdict", "status", "health_code", "consistency", "scripts", "freeze"):
        assert key in d, key
    for key in ("snapshot", "oracle", "findings", "timeline"):
        assert key in d, key
    for which in ("pre", "post"):
        assert set(d["scripts"][which]) >= SCRIPT_KEYS, (which, d["scripts"][which])
    assert {"enabled", "frozen_s", "mounts"} <= set(d["freeze"])
    assert {"backend", "taken", "duration_s"} <= set(d["snapshot"])
    assert set(d["oracle"]) >= ORACLE_KEYS, d["oracle"]
    for f in d["findings"]:
        assert {"code", "name", "message", "action"} <= set(f), f
    for p in d["timeline"]:
        assert {"phase", "start_s", "end_s"} <= set(p) and p["end_s"] >= p["start_s"], p


@pytest.mark.parametrize("app", list(QUIESCE))
def test_vmsnap_run_correct_pair(tmp_path: Path, root_required: None, app: str) -> None:
    """The correct sample pair: exit 0, application-consistent, a coherent JSON record."""
    require(app)
    config, pre, post = cycle_files(tmp_path, app)
    done, d = vmsnap_run(tmp_path, app, config, pre, post, "--quiesce", QUIESCE[app])
    why = json.dumps({k: d.get(k) for k in ("verdict", "reasons", "error", "oracle")}, default=str)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{why}"
    assert_contract(d)
    assert d["verdict"] == "application-consistent", why
    assert (d["status"], d["health_code"], d["consistency"]) == (0, 0, "application"), why
    for which in ("pre", "post"):
        s = d["scripts"][which]
        assert s["ran"] and s["exit_code"] == 0 and s["attempts"] == 1, s
        assert s["error_code"] in (None, 0) and not s["timed_out"], s
    assert d["freeze"]["enabled"] and d["freeze"]["mounts"], d["freeze"]
    assert d["snapshot"] == {**d["snapshot"], "backend": "reflink", "taken": True}
    o = d["oracle"]
    assert o["started"] and o["integrity_ok"] and o["invariants_ok"] and o["liveness_ok"], why
    assert o["acked_before_pre"] > 0 and o["acked_missing"] == 0, why
    phases = [p["phase"] for p in d["timeline"]]
    assert phases.index("pre") < phases.index("snapshot") < phases.index("post"), phases
    # The versions read at runtime (server and client library) are in the record.
    assert d["versions"] and "?" not in d["versions"].values(), d["versions"]
    # The one-line summary a CI log shows.
    assert "application-consistent" in done.stdout, done.stdout


@pytest.mark.parametrize("continue_on_failure", [True, False])
def test_vmsnap_run_world_writable_pre_script(
    tmp_path: Path, root_required: None, continue_on_failure: bool
) -> None:
    """A pre-script with mode 777: the extension's pre-check refuses both scripts (306), so
    neither runs. With continueBackupOnFailure the snapshot is still taken (status 1, health
    306, no better than crash-consistent); without it there is no snapshot (status 306).
    Either way exit 1, with the code and its recommended action in the output."""
    require("sqlite")
    config, pre, post = cycle_files(tmp_path, "sqlite")
    doc = json.loads(config.read_text())
    config.write_text(json.dumps({**doc, "continueBackupOnFailure": continue_on_failure}))
    pre.chmod(0o777)
    done, d = vmsnap_run(tmp_path, "sqlite", config, pre, post)
    assert done.returncode == 1, done.stdout + done.stderr
    assert_contract(d)
    assert not d["scripts"]["pre"]["ran"] and not d["scripts"]["post"]["ran"]
    assert d["health_code"] == 306, d["health_code"]
    if continue_on_failure:
        assert d["status"] == 1 and d["snapshot"]["taken"], (d["status"], d["snapshot"])
        assert d["verdict"] == "crash-consistent", d["reasons"]
    else:
        assert d["status"] == 306 and not d["snapshot"]["taken"], (d["status"], d["snapshot"])
        assert d["verdict"] == "not-taken", d["reasons"]
    (finding,) = [f for f in d["findings"] if f["code"] == 306]
    assert "permission" in (finding["message"] + finding["action"]).lower(), finding
    assert "306" in done.stdout, done.stdout


def test_a_config_the_extension_cannot_read_still_runs_its_cycle(
    tmp_path: Path, root_required: None
) -> None:
    """Issue 11: the user asks what happens in production. A malformed config is installed
    as given and the cycle runs as the extension runs it: 305, no script, a frozen snapshot,
    status 1, nothing reported as the health code; the scripts that could not be placed are
    a finding. With --pre-at the pre-script is placed anyway (it still does not run)."""
    require("sqlite")
    config, pre, post = cycle_files(tmp_path, "sqlite")
    config.write_text('{"preScriptLocation": "/etc/azure/sqlite/pre.sh",')  # cut short
    done, d = vmsnap_run(tmp_path, "sqlite", config, pre, post, "--pre-at", "/opt/pre.sh")
    assert_contract(d)
    assert d["error"] == "" and d["status"] == 1 and d["health_code"] == 0, d
    assert d["snapshot"]["taken"] and d["freeze"]["frozen"]
    assert not d["scripts"]["pre"]["ran"] and not d["scripts"]["post"]["ran"]
    assert any(f["code"] == 305 for f in d["findings"]), d["findings"]
    notes = [f["message"] for f in d["findings"] if f["name"] == "ScriptNotInstalledAsAsked"]
    assert any("installed at /opt/pre.sh (--pre-at)" in n for n in notes), notes
    assert any("was not installed" in n and "not valid JSON" in n for n in notes), notes
    assert done.returncode == 1


def test_vmsnap_run_verbose_says_each_phase(tmp_path: Path, root_required: None) -> None:
    """``-v``: a line per phase on stderr, in the cycle's order (the lines ``pytest -v``
    shows live); without it, none."""
    config, pre, post = cycle_files(tmp_path, "sqlite")
    done, _ = vmsnap_run(tmp_path, "sqlite", config, pre, post, "--quiesce", "lock", "-v")
    assert done.returncode == 0, done.stderr
    phases = [
        line.removeprefix("vmsnap: ").split(":", 1)[0]
        for line in done.stderr.splitlines()
        if line.startswith("vmsnap: ") and ": " in line.removeprefix("vmsnap: ")
    ]
    wanted = ["build", "load", "pre", "freeze", "snapshot", "thaw", "post", "restore", "judge"]
    assert [p for p in dict.fromkeys(phases) if p in wanted] == wanted, done.stderr
    assert "vmsnap: judge: application-consistent" in done.stderr.splitlines()
    quiet, _ = vmsnap_run(tmp_path, "sqlite", config, pre, post, "--quiesce", "lock")
    assert "build:" not in quiet.stderr, quiet.stderr
