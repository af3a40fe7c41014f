#!/usr/bin/env python3
"""How fast a run that dies or is told to end leaves nothing behind (root).

A controller process runs an SQLite cycle and holds it in the frozen window (a hook that
would sleep 60 s). Then it gets SIGKILL (its reaper releases the tag), SIGTERM or SIGINT (it
unwinds itself). Measured from the signal: until the controller has exited, and until nothing
of the run's tag is left (mounts, loop devices, files, processes, the reaper included).
Targets (issue 12): everything released within 2 s of SIGTERM/SIGINT, within seconds of
SIGKILL. Usage: ``python3 bench/bench_death.py [--runs 10]``; prints a table (median, max).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_vmsnap import data  # noqa: E402
from pytest_vmsnap.vm import cleanup  # noqa: E402

VICTIM = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.settings import Settings
d = Path({work!r})
s = Settings(config=d / "c.json", pre=d / "pre.sh", post=d / "post.sh", app="sqlite",
             pacing="prompt", quiesce="lock", workload_seconds=0.2)
def hold(vm):
    (d / "frozen.json").write_text(json.dumps({{"tag": vm.tag}}))
    time.sleep(60)
run(s, hooks={{"after_freeze": hold}})
"""


def left(tag: str) -> bool:
    found = cleanup.find_leftovers(tag_prefix=tag, include_live=True)
    if found.mounts or found.loops or found.files:
        return True
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and tag.encode() in (proc / "cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def once(sig: signal.Signals, work: Path) -> tuple[float, float]:
    marker = work / "frozen.json"
    marker.unlink(missing_ok=True)
    victim = subprocess.Popen(
        [sys.executable, "-c", VICTIM.format(repo=str(REPO), work=str(work))],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    tag = json.loads(marker.read_text())["tag"]
    sent = time.monotonic()
    if sig == signal.SIGKILL:
        os.killpg(victim.pid, sig)  # the reaper has a session of its own
    else:
        os.kill(victim.pid, sig)
    victim.wait(timeout=60)
    exited = time.monotonic() - sent
    while left(tag) and time.monotonic() - sent < 60:
        time.sleep(0.02)
    return exited, time.monotonic() - sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_death: needs root (loop devices, fsfreeze)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="vmsnap-bench-death-"))
    try:
        config = json.loads((data.example("sqlite") / data.CONFIG_NAME).read_text())
        (work / "c.json").write_text(json.dumps(config))
        (work / "c.json").chmod(0o600)
        for name in ("pre.sh", "post.sh"):
            shutil.copy(data.sample_scripts("sqlite") / name, work / name)
            (work / name).chmod(0o700)
        print("| signal | runs | exited: median | max | nothing left: median | max |")
        print("|---|---|---|---|---|---|")
        for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            times = [once(sig, work) for _ in range(args.runs)]
            exited = [t[0] for t in times]
            gone = [t[1] for t in times]
            print(
                f"| {sig.name} | {args.runs} | {statistics.median(exited):.2f} s | "
                f"{max(exited):.2f} s | {statistics.median(gone):.2f} s | {max(gone):.2f} s |",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
