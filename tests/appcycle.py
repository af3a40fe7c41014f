"""Helpers for the tests that run whole application cycles: what each app needs, the files of
one cycle (config and scripts with the modes the framework wants) and readable evidence."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap import data
from pytest_vmsnap.settings import Settings

SAMPLES = data.sample_scripts()
DATA = Path(__file__).resolve().parent / "integration" / "data"
TRIVIAL = "#!/bin/sh\n# does nothing: no quiesce at all\nexit 0\n"
SCRIPTS_CONFIG: dict[str, Any] = {
    "pluginName": "ScriptRunner",
    "preScriptLocation": "/etc/azure/scripts/pre.sh",
    "postScriptLocation": "/etc/azure/scripts/post.sh",
    "preScriptParams": [],
    "postScriptParams": [],
    "preScriptNoOfRetries": 0,
    "postScriptNoOfRetries": 0,
    "timeoutInSeconds": 30,
    "ScriptsExecutionPollTimeSeconds": 1,
    "continueBackupOnFailure": True,
    "fsFreezeEnabled": True,
}
"""A config for scripts at ``/etc/azure/scripts/{pre,post}.sh`` (the container tests')."""

# app -> (programs, Python modules) it needs on this machine (PostgreSQL: found by version)
NEEDS: dict[str, tuple[list[str], list[str]]] = {
    "sqlite": (["sqlite3"], []),
    "postgres": (["runuser"], ["psycopg"]),
    "mariadb": (["mariadbd", "mariadb-install-db"], ["pymysql"]),
    "redis": (["redis-server", "redis-cli"], ["redis"]),
}


def require(app: str) -> None:
    """Skip (with the reason) when the application or its client library is missing."""
    programs, modules = NEEDS[app]
    if app == "postgres":
        from pytest_vmsnap.apps.discover import NotInstalled, find_postgres

        try:
            find_postgres()
        except NotInstalled as err:
            pytest.skip(f"{app}: {err}")
    for program in programs:
        if shutil.which(program) is None:
            pytest.skip(f"{app}: {program} is not installed")
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{app}: the Python module {module} is not installed")


def cycle_files(
    tmp_path: Path,
    app: str,
    pre: Path | str | None = None,
    post: Path | str | None = None,
    *,
    freeze: bool = True,
) -> tuple[Path, Path, Path]:
    """Config (mode 600) and scripts (mode 700, owned by root: the tests run as root) for one
    cycle of ``app``. ``pre``/``post`` are a file to copy or the script's text; by default the
    app's correct sample pair. The config points at ``/etc/azure/<app>/{pre,post}.sh``."""
    config = tmp_path / "VMSnapshotScriptPluginConfig.json"
    config.write_text(
        json.dumps(
            {
                "pluginName": "ScriptRunner",
                "preScriptLocation": f"/etc/azure/{app}/pre.sh",
                "postScriptLocation": f"/etc/azure/{app}/post.sh",
                "preScriptNoOfRetries": 0,
                "postScriptNoOfRetries": 0,
                "timeoutInSeconds": 60,
                "ScriptsExecutionPollTimeSeconds": 1,
                "continueBackupOnFailure": True,
                "fsFreezeEnabled": freeze,
            },
            indent=2,
        )
    )
    config.chmod(0o600)
    scripts = []
    for name, src in (("pre.sh", pre), ("post.sh", post)):
        dst = tmp_path / f"{app}-{name}"
        if src is None:
            src = SAMPLES / app / name
        if isinstance(src, Path):
            shutil.copy(src, dst)
        else:
            dst.write_text(src)
        dst.chmod(0o700)  # git keeps only 755; the framework wants no group/other bits
        scripts.append(dst)
    return config, scripts[0], scripts[1]


def cycle_settings(
    tmp_path: Path,
    app: str,
    pre: Path | str | None = None,
    post: Path | str | None = None,
    *,
    freeze: bool = True,
    **options: Any,
) -> Settings:
    """Settings for one cycle of ``app`` on the files of :func:`cycle_files`; prompt pacing and
    a short workload unless ``options`` say otherwise."""
    config, pre_path, post_path = cycle_files(tmp_path, app, pre, post, freeze=freeze)
    options = {"pacing": "prompt", "workload_seconds": 0.6, **options}
    return Settings(config=config, pre=pre_path, post=post_path, app=app, **options)


def _short(text: str) -> str:
    return " ".join(text.split())[:600]


def evidence(d: dict[str, Any]) -> str:
    """The cycle's evidence (verdict, reasons, framework status, scripts, freeze, snapshot, the
    oracle record with long server-log notes shortened), readable in an assertion message."""
    o = dict(d["oracle"])
    live = o.pop("liveness", None) or {}
    o["liveness_last"] = live.get("last")
    o["notes"] = [_short(n) for n in o.get("notes", [])]
    record = {
        "verdict": d["verdict"],
        "reasons": [_short(r) for r in d["reasons"]],
        "error": d["error"],
        "status": d["status"],
        "health_code": d["health_code"],
        "consistency": d["consistency"],
        "scripts": {
            which: {
                k: d["scripts"][which].get(k)
                for k in ("ran", "exit_code", "error_code", "duration_s", "stderr")
            }
            for which in ("pre", "post")
        },
        "freeze": {k: d["freeze"].get(k) for k in ("enabled", "frozen", "frozen_s", "mounts")},
        "snapshot": d["snapshot"],
        "oracle": o,
        "timings": d["timings"],
    }
    return json.dumps(record, indent=2, default=str)
