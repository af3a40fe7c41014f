"""Four `vmsnap run` at once: no collision, no leftover (issue 12; the timing is measured by
``bench/bench_parallel.py``, not asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from appcycle import cycle_files, require

from pytest_vmsnap.evidence import oracle
from pytest_vmsnap.vm import cleanup


def test_four_runs_at_once_keep_apart_and_leave_nothing(
    tmp_path: Path, root_required: None
) -> None:
    apps = ["sqlite", "sqlite", "postgres", "postgres"]
    require("postgres")
    procs = []
    for i, app in enumerate(apps):
        work = tmp_path / f"run{i}"
        work.mkdir()
        config, pre, post = cycle_files(work, app)
        argv = [sys.executable, "-m", "pytest_vmsnap.cli", "run", "--config", str(config),
                "--pre", str(pre), "--post", str(post), "--app", app, "--pacing", "prompt",
                "--workload-seconds", "0.4", "--json", str(work / "result.json")]  # fmt: skip
        procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE))
    errors = [p.communicate(timeout=300)[1].decode(errors="replace") for p in procs]
    results = [json.loads((tmp_path / f"run{i}" / "result.json").read_text()) for i in range(4)]
    tags = [r["tag"] for r in results]
    assert len(set(tags)) == 4, tags
    for r, err in zip(results, errors, strict=True):
        assert r["verdict"] == oracle.APPLICATION, (r["app"], r["reasons"], r["error"], err)
        assert "Traceback" not in err
    for tag in tags:
        left = cleanup.find_leftovers(tag_prefix=tag, include_live=True)
        assert not (left.mounts or left.loops or left.files), (tag, left)
