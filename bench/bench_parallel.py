#!/usr/bin/env python3
"""Four `vmsnap run` at once against the same four one after another (root; issue 12).

The runs mix applications and stand-in kinds: SQLite and PostgreSQL in the host stand-in,
SQLite in the container stand-in (skipped without Docker), each with its correct sample
scripts and prompt pacing. Prints each run's verdict and time, the wall time at once and one
after another, and whether any tag collided or left anything behind.
Usage: ``python3 bench/bench_parallel.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_vmsnap import data  # noqa: E402
from pytest_vmsnap.vm import cleanup  # noqa: E402


def _files(work: Path, app: str) -> list[str]:
    config = json.loads((data.example("sqlite") / data.CONFIG_NAME).read_text())
    config.update(
        preScriptLocation=f"/etc/azure/{app}/pre.sh",
        postScriptLocation=f"/etc/azure/{app}/post.sh",
        preScriptParams=[] if app != "sqlite" else config["preScriptParams"],
    )
    work.mkdir(parents=True)
    (work / "config.json").write_text(json.dumps(config))
    (work / "config.json").chmod(0o600)
    for name in ("pre.sh", "post.sh"):
        shutil.copy(data.sample_scripts(app) / name, work / name)
        (work / name).chmod(0o700)
    return ["--config", str(work / "config.json"), "--pre", str(work / "pre.sh"),
            "--post", str(work / "post.sh"), "--app", app]  # fmt: skip


def _runs(tmp: Path) -> list[tuple[str, list[str]]]:
    kinds = [("sqlite", "host"), ("sqlite", "host"), ("postgres", "host"), ("postgres", "host")]
    if shutil.which("dockerd", path="/usr/sbin:/usr/bin"):
        kinds[1] = ("sqlite", "container")
    out = []
    for i, (app, vm) in enumerate(kinds):
        args = _files(tmp / f"run{i}", app)
        argv = [sys.executable, "-m", "pytest_vmsnap.cli", "run", *args, "--vm", vm,
                "--pacing", "prompt", "--json", str(tmp / f"run{i}" / "result.json")]  # fmt: skip
        out.append((f"{app}/{vm}", argv))
    return out


def _at_once(runs: list[tuple[str, list[str]]]) -> tuple[float, list[dict]]:
    t = time.monotonic()
    procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL) for _, argv in runs]
    for p in procs:
        p.wait()
    return time.monotonic() - t, [_result(argv) for _, argv in runs]


def _one_by_one(runs: list[tuple[str, list[str]]]) -> tuple[float, list[dict]]:
    t = time.monotonic()
    for _, argv in runs:
        subprocess.run(argv, stdin=subprocess.DEVNULL)
    return time.monotonic() - t, [_result(argv) for _, argv in runs]


def _result(argv: list[str]) -> dict:
    try:
        return json.loads(Path(argv[-1]).read_text())
    except (OSError, ValueError):
        return {}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="vmsnap-parallel-") as tmp:
        runs = _runs(Path(tmp))
        # Warm-up (images, page cache) so neither side pays first-use costs.
        _one_by_one(runs[:1])
        rows, ok = [], True
        for how, fn in (("at once", _at_once), ("one after another", _one_by_one)):
            wall, results = fn(runs)
            tags = [r.get("tag") for r in results]
            left = cleanup.find_leftovers(include_live=True)
            ours = [t for t in tags if t]
            leftover = [str(m) for m in left.mounts + left.loops + left.files if any(
                t in str(m) for t in ours)]  # fmt: skip
            ok &= len(set(ours)) == len(runs) and not leftover
            ok &= all(r.get("verdict") == "application-consistent" for r in results)
            rows.append((how, wall, results, leftover))
        for how, wall, results, leftover in rows:
            print(f"{how:18} wall {wall:6.1f} s  leftovers {len(leftover)}")
            for (name, _), r in zip(runs, results, strict=True):
                total = sum(v for k, v in r.get("timings", {}).items() if k == "total_s")
                print(f"    {name:18} {r.get('verdict')!s:24} {r.get('tag')!s:16} {total:5.1f} s")
        print("distinct tags, nothing left, all application-consistent:", ok)
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
