"""Running ``pytest --vmsnap`` on a user project built with ``pytester``, as a user would, and
reading what it leaves: the report files, and any loop device or mount still carrying a tag."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from appcycle import cycle_files

TIMEOUT_S = 600
MAIN_CHECKS = "main or quiesce or liveness"
"""The three items that judge the main cycle (``vmsnap::main``, ``::quiesce``, ``::liveness``)."""
# Each correct pair's quiesce declaration: PostgreSQL's CHECKPOINT holds nothing.
QUIESCE = {"postgres": "none", "mariadb": "lock", "redis": "lock"}


def run_pytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=TIMEOUT_S)


def leftovers(tags: list[str]) -> list[str]:
    """Loop devices and mounts on this host that carry one of ``tags``."""
    assert tags and all(tags)
    out = subprocess.run(
        ["losetup", "--json", "--list"], capture_output=True, text=True, check=True
    ).stdout
    loops = json.loads(out)["loopdevices"] if out.strip() else []
    found = [
        f"loop {d['name']} -> {d.get('back-file')}"
        for d in loops
        if any(t in (d.get("back-file") or "") for t in tags)
    ]
    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    found += [f"mount {line}" for line in mountinfo if any(t in line for t in tags)]
    return found


def reports(pytester: pytest.Pytester) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (pytester.path / "report").glob("*.json")}


def app_project(pytester: pytest.Pytester, app: str, **ini: str) -> pytest.Pytester:
    """A user project for ``app`` with its correct sample pair (config 600, scripts 700)."""
    backup = pytester.path / "backup"
    backup.mkdir()
    config, pre, post = cycle_files(backup, app)
    keys = {
        "vmsnap_config": config.relative_to(pytester.path),
        "vmsnap_pre": pre.relative_to(pytester.path),
        "vmsnap_post": post.relative_to(pytester.path),
        "vmsnap_app": app,
        "vmsnap_quiesce": QUIESCE[app],
        "vmsnap_report": "report",
        **ini,
    }
    pytester.makeini("[pytest]\n" + "\n".join(f"{k} = {v}" for k, v in keys.items()))
    return pytester


def main_cycle_passes(pytester: pytest.Pytester, app: str, vm: str) -> dict:
    """``pytest --vmsnap`` selecting the main cycle's checks: they pass, the summary names the
    app and the VM kind, the report's verdict is application-consistent, nothing is left."""
    result = run_pytest(pytester, "--vmsnap", "-k", MAIN_CHECKS)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 3 and not outcomes.get("failed"), result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*= vmsnap summary =*",
            f"app {app} | vm {vm} | disks 1 ext4 | snapshot reflink | profile extension | pacing *",
            "main: application-consistent | status 0 health 0 | frozen * ms | *",
        ]
    )
    main = reports(pytester)["main"]
    assert main["verdict"] == "application-consistent", main["reasons"]
    assert main["oracle"]["acked_before_pre"] > 0 and main["oracle"]["acked_missing"] == 0
    assert leftovers([main["tag"]]) == []
    return main
