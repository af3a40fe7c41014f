"""End to end: cycle.run.run with vm="container" gives the same verdict as the host stand-in.

The sample scripts run unchanged in both. Each case runs the full cycle twice (container and
host): provision under load, the framework cycle inside the VM with the real freeze guard, a
snapshot from the host side, a restore into a new VM (a new container from the same image),
and the oracle.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from appcycle import SCRIPTS_CONFIG

from pytest_vmsnap import data
from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.evidence import oracle
from pytest_vmsnap.settings import Settings

SAMPLES = data.sample_scripts()


def _settings(tmp_path: Path, app: str, pre: str, post: str, **changes: object) -> Settings:
    files = {}
    for which, name in (("pre", pre), ("post", post)):
        src = SAMPLES / app / name
        if not src.is_file():
            pytest.skip(f"sample script {src.relative_to(SAMPLES)} is not there")
        dst = tmp_path / f"{which}-{name}"
        shutil.copy(src, dst)
        dst.chmod(0o700)
        files[which] = dst
    config = tmp_path / "VMSnapshotScriptPluginConfig.json"
    config.write_text(json.dumps(SCRIPTS_CONFIG, indent=2))
    config.chmod(0o600)
    base = Settings(
        config=config,
        pre=files["pre"],
        post=files["post"],
        app=app,
        pacing="prompt",
        workload_seconds=1.0,
    )
    return base.with_(**changes)


def _host_available(app: str) -> str | None:
    from pytest_vmsnap.apps.discover import host_problems

    binary = {"sqlite": "/usr/bin/sqlite3"}  # the others: found as the host stand-in finds them
    problems = host_problems(app) + ([] if Path(binary.get(app, "/")).exists() else ["no sqlite3"])
    if problems:
        return f"{app} is not installed on the host ({problems[0]}): no host stand-in to compare"
    return None


def _summary(result: object) -> dict[str, object]:
    d = result.to_dict()
    o = d["oracle"]
    return {
        "verdict": d["verdict"],
        "status": d["status"],
        "health_code": d["health_code"],
        "consistency": d["consistency"],
        "taken": d["snapshot"]["taken"],
        "started": o["started"],
        "integrity_ok": o["integrity_ok"],
        "invariants_ok": o["invariants_ok"],
        "acked_missing": o["acked_missing"],
        "liveness_ok": o["liveness_ok"],
        "quiesce_probe": (o["quiesce_probe"] or {}).get("result"),
    }


CASES = [
    # app, pre, post, quiesce, expected verdict (None: below application-consistent, with
    # the live application left unable to write)
    ("postgres", "pre.sh", "post.sh", "none", oracle.APPLICATION),
    ("mariadb", "pre.sh", "post.sh", "lock", oracle.APPLICATION),
    ("mariadb", "pre-ftwrl-exits.sh", "post-leaves-readonly.sh", "none", None),
    ("redis", "pre.sh", "post.sh", "lock", oracle.APPLICATION),
    ("redis", "pre-bgsave-nowait.sh", "post.sh", "lock", oracle.CRASH),
    ("sqlite", "pre.sh", "post.sh", "lock", oracle.APPLICATION),
    ("sqlite", "pre-lock-released.sh", "post.sh", "lock", oracle.CRASH),
]


@pytest.mark.parametrize(("app", "pre", "post", "quiesce", "expected"), CASES)
def test_container_cycle_matches_host(
    engine: object,
    images_built: dict[str, str],
    tmp_path: Path,
    app: str,
    pre: str,
    post: str,
    quiesce: str,
    expected: str | None,
) -> None:
    settings = _settings(tmp_path, app, pre, post, quiesce=quiesce)
    in_container = run(settings.with_(vm="container"))
    c = in_container.to_dict()
    assert not c["error"], c["error"]
    assert c["vm"] == "container"
    assert c["scripts"]["pre"]["ran"] and c["scripts"]["post"]["ran"]
    assert c["freeze"]["mounts"], c["freeze"]
    if expected is not None:
        assert c["verdict"] == expected, (c["reasons"], c["scripts"])
        assert c["status"] == 0 and c["oracle"]["acked_missing"] == 0
        # The in-VM client wrote (a harness that cannot connect must not pass as "refused").
        assert c["oracle"]["acked_before_pre"] > 0, c["oracle"]
    else:
        assert c["verdict"] != oracle.APPLICATION, c["reasons"]
        assert c["oracle"]["liveness_ok"] is False
    why = _host_available(app)
    if why:
        pytest.skip(why)
    on_host = run(settings.with_(vm="host"))
    assert not on_host.error, on_host.error
    assert _summary(in_container) == _summary(on_host)


@pytest.mark.parametrize("framework", ["gcp", "vmware", "qemu-ga", "aws-dlm"])
def test_every_frameworks_engine_runs_in_the_container_stand_in(
    engine: object, images_built: dict[str, str], framework: str
) -> None:
    """The other frameworks' engines run inside the container as inside the host stand-in:
    their files installed where each looks, their own environment, their correct SQLite
    sample application-consistent (the freeze only where the framework freezes)."""
    files = data.FRAMEWORK_SAMPLES[framework]["sqlite"]
    settings = Settings(
        framework=framework,
        app="sqlite",
        vm="container",
        quiesce="lock",
        pacing="prompt",
        workload_seconds=0.5,
        **{role: SAMPLES / "sqlite" / path for role, path in files.items()},  # type: ignore[arg-type]
        modes=(("hook", 0o755), ("pre", 0o755), ("post", 0o755)),
    )
    c = run(settings).to_dict()
    assert not c["error"], c["error"]
    assert (c["vm"], c["framework"]) == ("container", framework)
    assert c["verdict"] == oracle.APPLICATION, (c["outcome"], c["reasons"])
    assert c["freeze"]["frozen"] is (framework in ("vmware", "qemu-ga"))
