#!/usr/bin/env python3
"""Catch rate: every test marked ``catch`` (a broken set-up that must be judged below
application-consistent, and its control) run N times; prints how often each passed.

A catch that depends on timing is a user's false pass, so every rate must be 100 %: the
script exits 1 otherwise. Runs as root (the catch tests use loop devices and fsfreeze).
Usage: ``python3 bench/catch_rate.py [-n 20] [-k EXPR] [--container]`` (``make catch-rate``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one_round(junit: Path, expr: str | None, container: bool) -> dict[str, str]:
    """Run the catch tests once; each test's outcome (passed, failed, skipped)."""
    paths = ["tests/integration"] + (["tests/container"] if container else [])
    argv = [sys.executable, "-m", "pytest", *paths, "-m", "catch", "-q", f"--junitxml={junit}"]
    if expr:
        argv += ["-k", expr]
    subprocess.run(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    outcomes = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        if case.find("skipped") is not None:
            outcomes[name] = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = "failed"
        else:
            outcomes[name] = "passed"
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20, help="rounds (default 20)")
    parser.add_argument("-k", dest="expr", help="only the catch tests matching this expression")
    parser.add_argument("--container", action="store_true", help="the container catches too")
    args = parser.parse_args()
    passed: dict[str, int] = defaultdict(int)
    ran: dict[str, int] = defaultdict(int)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vmsnap_catch_") as tmp:
        for i in range(1, args.n + 1):
            outcomes = one_round(Path(tmp) / f"round{i}.xml", args.expr, args.container)
            if not outcomes:
                print("no catch test ran (pytest exit 5?)", file=sys.stderr)
                return 1
            for name, outcome in outcomes.items():
                if outcome != "skipped":
                    ran[name] += 1
                    passed[name] += outcome == "passed"
            failed = [n for n, o in outcomes.items() if o == "failed"]
            took = time.monotonic() - began
            print(f"round {i}/{args.n}: {len(outcomes)} tests, failed: {failed or 'none'}", end="")
            print(f" ({took:.0f} s)")
    print(f"\n{'test':<84} {'caught':>8} {'rate':>7}")
    for name in sorted(ran):
        print(
            f"{name:<84} {passed[name]:>3}/{ran[name]:<4} {100 * passed[name] / ran[name]:>6.1f}%"
        )
    print(f"\nwall time {time.monotonic() - began:.0f} s for {args.n} rounds")
    return 0 if all(passed[n] == ran[n] for n in ran) else 1


if __name__ == "__main__":
    sys.exit(main())
