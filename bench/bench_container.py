#!/usr/bin/env python3
"""Benchmark the container stand-in against the host stand-in (root, docker.io, debootstrap).

Measured, in this order:

- the Docker engine: time until ``Engine.ensure()`` answers (a dockerd we start, or one that
  runs already) and, at the end, until ``release()`` has stopped it;
- the image for the app: ``ensure_image`` (a build when the recipe changed or on a fresh
  machine, a cache hit otherwise) and a second call (always a cache hit);
- one command inside each kind of VM (``vm.run(["true"])``: ``docker exec`` against
  ``nsenter``), median of 20;
- the full cycle (``cycle.run.run``: provision under load, the framework cycle with the real
  freeze, snapshot, restore into a new VM, oracle) for each kind, ``--runs`` times, alternating
  host and container; medians of the wall time and of the harness's own phase timings.

The engine is held for the whole bench, so the cycles do not pay for starting dockerd (a
single ``vmsnap run --vm container`` does, about a second, when no engine runs). Caches stay
warm. Usage: ``python3 bench/bench_container.py [--app postgres] [--runs 3] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import pytest_vmsnap  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_vmsnap import data
from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.settings import Settings
from pytest_vmsnap.vm import names
from pytest_vmsnap.vm.docker import images
from pytest_vmsnap.vm.docker.engine import Engine

CONFIG = {
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
PHASES = ("vm_build_s", "provision_s", "framework_cycle_s", "restore_start_s", "verify_s")


def settings_for(app: str, work: Path) -> Settings:
    files = {}
    for which in ("pre", "post"):
        src = data.sample_scripts(app) / f"{which}.sh"
        dst = work / f"{which}.sh"
        shutil.copy(src, dst)
        dst.chmod(0o700)
        files[which] = dst
    config = work / "VMSnapshotScriptPluginConfig.json"
    config.write_text(json.dumps(CONFIG))
    config.chmod(0o600)
    return Settings(
        config=config,
        pre=files["pre"],
        post=files["post"],
        app=app,
        quiesce="lock" if app == "mariadb" else "none",
        pacing="prompt",
        workload_seconds=1.0,
    )


def exec_cost(kind: str, app: str, tmp: Path, tag: str, n: int = 20) -> float:
    """Median seconds for one ``vm.run(["true"])`` in a fresh VM of ``kind`` (one small disk)."""
    from pytest_vmsnap.vm.model import Disk, DiskSpec

    image = tmp / f"{tag}-{kind}-exec.img"
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    dev = subprocess.run(
        ["losetup", "--find", "--show", str(image)], check=True, capture_output=True, text=True
    ).stdout.strip()
    disk = Disk(DiskSpec("data", "/srv/bench", 64, "ext4"), image, loopdev=dev)
    try:
        if kind == "container":
            from pytest_vmsnap.vm.docker.container import ContainerVM

            vm = ContainerVM("exec", [disk], tag=tag, app=app)
        else:
            from pytest_vmsnap.vm.host import HostVM

            vm = HostVM("exec", [disk], tag=tag)
        with vm:
            samples = []
            for _ in range(n):
                t = time.monotonic()
                vm.run(["true"])
                samples.append(time.monotonic() - t)
        return statistics.median(samples)
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)
        image.unlink(missing_ok=True)


def remove_our_images(client: object) -> list[str]:
    """Remove every ``vmsnap/*`` image (apps first, then the base); returns their tags."""
    ours = [
        img
        for img in client.images.list()  # type: ignore[attr-defined]
        if any(t.startswith(f"{images.BASE_REPO.split('/')[0]}/") for t in img.tags)
    ]
    ours.sort(key=lambda img: any(t.startswith(images.BASE_REPO) for t in img.tags))
    removed = []
    for img in ours:
        client.images.remove(img.id, force=True)  # type: ignore[attr-defined]
        removed += img.tags
    return removed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="postgres", choices=sorted(images.APP_IMAGES))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="remove our images first, so the first call times a build from scratch (base too)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_container: needs root (loop devices, fsfreeze, dockerd)", file=sys.stderr)
        return 2

    out: dict[str, object] = {"app": args.app, "runs": args.runs}
    engine = Engine()
    t = time.monotonic()
    client = engine.ensure()
    out["engine_ensure_s"] = time.monotonic() - t
    out["engine_started_by_us"] = engine.started_by_us
    tag = names.new_tag()
    names.claim(names.vmsnap_home(), tag)
    cycles: dict[str, list[dict[str, float]]] = {"host": [], "container": []}
    verdicts: dict[str, list[str]] = {"host": [], "container": []}
    try:
        if args.fresh:
            out["removed_images"] = remove_our_images(client)
        first = images.ensure_image(args.app, client)
        again = images.ensure_image(args.app, client)
        out["image"] = first.ref
        out["image_first_call_s"] = first.seconds
        out["image_first_call_built"] = first.built
        out["image_build_steps"] = first.steps
        if first.base is not None:
            out["base_built"] = first.base.built
            out["base_s"] = first.base.seconds
            out["base_steps"] = first.base.steps
        out["image_cached_call_s"] = again.seconds
        with tempfile.TemporaryDirectory(prefix="vmsnap-bench-") as tmp:
            work = Path(tmp)
            out["exec_s"] = {
                kind: exec_cost(kind, args.app, work, tag) for kind in ("host", "container")
            }
            settings = settings_for(args.app, work)
            for i in range(args.runs):
                order = ("host", "container") if i % 2 == 0 else ("container", "host")
                for kind in order:
                    t = time.monotonic()
                    result = run(settings.with_(vm=kind))
                    wall = time.monotonic() - t
                    if result.error:
                        print(f"{kind} run {i + 1}: {result.error}", file=sys.stderr)
                    verdicts[kind].append(result.verdict)
                    cycles[kind].append({"wall_s": wall, **result.timings})
                    print(
                        f"run {i + 1} {kind:9} {wall:6.2f} s  {result.verdict}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        names.owner_file(names.vmsnap_home(), tag).unlink(missing_ok=True)
        t = time.monotonic()
        stopped = engine.release()
        out["engine_release_s"] = time.monotonic() - t
        out["engine_stopped"] = stopped

    def median(kind: str, key: str) -> float | None:
        values = [c[key] for c in cycles[kind] if key in c]
        return statistics.median(values) if values else None

    rows = []
    for key in ("wall_s", *PHASES):
        h, c = median("host", key), median("container", key)
        rows.append((key, h, c))
    out["median"] = {k: {"host": h, "container": c} for k, h, c in rows}
    out["verdicts"] = verdicts
    out["cycles"] = cycles

    print(f"\nvmsnap container stand-in vs host stand-in: {args.app}, median of {args.runs}")
    print(
        f"engine: ensure {out['engine_ensure_s']:.2f} s (started by us: "
        f"{out['engine_started_by_us']}), release {out['engine_release_s']:.2f} s "
        f"(stopped: {out['engine_stopped']})"
    )
    built = "built" if out["image_first_call_built"] else "cache hit"
    if out.get("removed_images"):
        print(f"removed first (--fresh): {', '.join(out['removed_images'])}")
    print(
        f"image {out['image']}: first call {out['image_first_call_s']:.2f} s ({built}), "
        f"second call {out['image_cached_call_s'] * 1000:.1f} ms"
    )
    if out.get("base_built"):
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in out["base_steps"].items())
        print(f"  of which the base image: {out['base_s']:.2f} s ({steps})")
    ex = out["exec_s"]
    print(
        f"one command in the VM: host (nsenter) {ex['host'] * 1000:.0f} ms, "
        f"container (docker exec) {ex['container'] * 1000:.0f} ms\n"
    )
    print(f"{'phase':<20}{'host s':>10}{'container s':>14}{'difference':>12}")
    for key, h, c in rows:
        hs = f"{h:.2f}" if h is not None else "-"
        cs = f"{c:.2f}" if c is not None else "-"
        diff = f"{c - h:+.2f}" if h is not None and c is not None else "-"
        print(f"{key:<20}{hs:>10}{cs:>14}{diff:>12}")
    print(f"\nverdicts: host {verdicts['host']}; container {verdicts['container']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    same = set(verdicts["host"]) == set(verdicts["container"]) and len(set(verdicts["host"])) == 1
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
