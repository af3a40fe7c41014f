"""The container stand-in through both faces a user meets, for PostgreSQL and MariaDB with
their correct sample pairs: ``vmsnap run --vm container`` and ``pytest --vmsnap`` with
``vmsnap_vm = container`` in the ini. Both must give what the host stand-in gives:
application-consistent, with the cycle really run inside a container."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from appcycle import cycle_files
from plugin_runs import QUIESCE, app_project, main_cycle_passes

pytest_plugins = ["pytester"]
APPS = ["postgres", "mariadb"]


@pytest.mark.parametrize("app", APPS)
def test_vmsnap_run_vm_container(
    engine: object, images_built: dict[str, str], tmp_path: Path, app: str
) -> None:
    config, pre, post = cycle_files(tmp_path, app)
    out = tmp_path / "result.json"
    argv = [sys.executable, "-m", "pytest_vmsnap.cli", "run", "--vm", "container"]
    argv += ["--config", str(config), "--pre", str(pre), "--post", str(post), "--app", app]
    argv += ["--quiesce", QUIESCE[app], "--pacing", "prompt", "--workload-seconds", "0.6"]
    done = subprocess.run(
        [*argv, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    d = json.loads(out.read_text())
    why = f"{done.stdout}\n{done.stderr}\n{d['reasons']} {d['error']}"
    assert done.returncode == 0, why
    assert d["vm"] == "container" and d["verdict"] == "application-consistent", why
    assert d["scripts"]["pre"]["exit_code"] == 0 and d["scripts"]["post"]["exit_code"] == 0
    assert d["freeze"]["mounts"] and d["snapshot"]["taken"], d["freeze"]
    assert d["oracle"]["acked_before_pre"] > 0 and d["oracle"]["acked_missing"] == 0
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("app", APPS)
def test_pytest_vmsnap_with_vmsnap_vm_container(
    engine: object, images_built: dict[str, str], pytester: pytest.Pytester, app: str
) -> None:
    main = main_cycle_passes(app_project(pytester, app, vmsnap_vm="container"), app, "container")
    assert main["vm"] == "container"
