#!/usr/bin/env python3
"""Benchmark the snapshot backends: frozen window, snapshot time and restore time (root).

For each backend usable here: a 1 GiB ext4 disk holding 200 MB of data, with a concurrent writer
process appending 4 KiB blocks and fsyncing each. Five times: FIFREEZE, take the snapshot,
FITHAW (fcntl directly, thaw in ``finally``), then five restores of the last snapshot (clone,
losetup, mount). Medians are printed as a table. Where the disk lives:

- reflink: in a sparse XFS pool (reflink=1) on a loop device;
- copy: on this host's own file system (a real copy, the case where reflink is impossible);
- btrfs: in a subvolume of a sparse btrfs pool on a loop device;
- devmapper: reported as unavailable with the reason.

Caches stay warm (no drop_caches: this machine is shared). Usage: ``python3 bench/bench_snapshot.py
[--runs 5] [--data-mb 200] [--workdir /tmp]``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

try:
    import pytest_vmsnap  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_vmsnap.vm.model import Disk, DiskSpec
from pytest_vmsnap.vm.snapshot import (
    BACKENDS,
    SnapshotBackend,
    create_subvolume,
    delete,
    delete_restored,
    get_backend,
    restore,
)

FIFREEZE = 0xC0045877
FITHAW = 0xC0045878
TARGET_FROZEN_S = 0.020
TARGET_RESTORE_S = 0.300

WRITER = r"""
import json, os, signal, sys, time
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
block, n, worst = b"w" * 4096, 0, 0.0
print("ready", flush=True)
while not stop:
    t = time.perf_counter()
    os.write(fd, block)
    os.fsync(fd)
    worst = max(worst, time.perf_counter() - t)
    n += 1
os.close(fd)
print(json.dumps({"writes": n, "max_s": worst}), flush=True)
"""


def run(argv: list[str]) -> str:
    """Run ``argv``; its stdout, or RuntimeError with its stderr."""
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip()


class Resources:
    """Loop devices and mounts made by this script, released by exact name, thaw first."""

    def __init__(self) -> None:
        self.devs: list[str] = []
        self.mounts: list[Path] = []

    def attach(self, image: Path) -> str:
        dev = run(["losetup", "--find", "--show", str(image)])
        self.devs.append(dev)
        return dev

    def mount(self, dev: str, target: Path, fs: str, options: list[str] | None = None) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        opts = ["-o", ",".join(options)] if options else []
        run(["mount", "-t", fs, *opts, dev, str(target)])
        self.mounts.append(target)
        return target

    def release(self, mnt: Path, dev: str) -> None:
        thaw(mnt)
        run(["umount", str(mnt)])
        self.mounts.remove(mnt)
        run(["losetup", "-d", dev])
        self.devs.remove(dev)

    def close(self) -> list[str]:
        """Release everything left; returns what could not be released."""
        problems = []
        for mnt in reversed(self.mounts):
            try:
                thaw(mnt)
                run(["umount", str(mnt)])
            except (OSError, RuntimeError) as err:
                problems.append(str(err))
        for dev in reversed(self.devs):
            try:
                run(["losetup", "-d", dev])
            except RuntimeError as err:
                problems.append(str(err))
        self.mounts.clear()
        self.devs.clear()
        for problem in problems:
            print(f"bench_snapshot: cleanup: {problem}", file=sys.stderr)
        return problems


def thaw(mnt: Path) -> None:
    """FITHAW ``mnt``, ignoring "was not frozen"."""
    fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, FITHAW, 0)
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


@dataclass
class Row:
    backend: str
    ok: bool
    note: str
    frozen_s: list[float] = field(default_factory=list)
    freeze_s: list[float] = field(default_factory=list)
    snap_s: list[float] = field(default_factory=list)
    restore_s: list[float] = field(default_factory=list)
    writer: dict[str, float] = field(default_factory=dict)


def make_pool(res: Resources, work: Path, fs: str, size: str) -> Path:
    image = work / f"pool-{fs}.img"
    run(["truncate", "-s", size, str(image)])
    run([f"mkfs.{fs}", "-q", "-f", str(image)])
    return res.mount(res.attach(image), work / f"pool-{fs}", fs)


def make_disk(res: Resources, where: Path, work: Path, data_mb: int) -> tuple[Disk, Path]:
    """A 1 GiB ext4 disk in ``where`` with ``data_mb`` MB of random data, attached and mounted."""
    image = where / "data.img"
    run(["truncate", "-s", "1G", str(image)])
    run(["mkfs.ext4", "-q", "-F", str(image)])
    disk = Disk(DiskSpec("data", "/var/lib/app", 1024, "ext4"), image)
    disk.loopdev = res.attach(image)
    mnt = res.mount(disk.loopdev, work / f"live-{where.name}", "ext4")
    with open(mnt / "data.bin", "wb") as f:
        for _ in range(data_mb):
            f.write(os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
    os.sync()
    return disk, mnt


@contextlib.contextmanager
def writer(mnt: Path, stats: dict[str, float]) -> Iterator[None]:
    """A process appending 4 KiB + fsync to ``mnt`` in a loop; its stats land in ``stats``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(mnt / "writer.log")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the writer did not start")
        time.sleep(0.3)
        yield
    finally:
        thaw(mnt)  # a writer blocked on a frozen fs cannot end before the thaw
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        if out.strip():
            stats.update(json.loads(out.strip().splitlines()[-1]))


def bench_backend(
    name: str, backend: SnapshotBackend, where: Path, work: Path, runs: int, data_mb: int
) -> Row:
    ok, reason = backend.available()
    row = Row(name, ok, reason)
    if not ok:
        return row
    res = Resources()
    try:
        disk, mnt = make_disk(res, where, work, data_mb)
        last = None
        with writer(mnt, row.writer):
            for i in range(runs):
                fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    t0 = time.perf_counter()
                    fcntl.ioctl(fd, FIFREEZE, 0)
                    try:
                        t1 = time.perf_counter()
                        snap = backend.take([disk], where.parent / f"{where.name}-snap{i}")
                        t2 = time.perf_counter()
                    finally:
                        fcntl.ioctl(fd, FITHAW, 0)
                    t3 = time.perf_counter()
                finally:
                    os.close(fd)
                row.frozen_s.append(t3 - t0)
                row.freeze_s.append(t1 - t0)
                row.snap_s.append(t2 - t1)
                if last is not None:
                    delete(last)
                last = snap
        assert last is not None
        for i in range(runs):
            t0 = time.perf_counter()
            (rdisk,) = restore(last, where.parent / f"{where.name}-restore{i}")
            dev = res.attach(rdisk.image)
            rmnt = res.mount(dev, work / f"restored-{name}-{i}", "ext4", rdisk.mount_options)
            row.restore_s.append(time.perf_counter() - t0)
            if not (rmnt / "data.bin").is_file():
                raise RuntimeError(f"{name}: the restored disk lacks data.bin")
            res.release(rmnt, dev)
            delete_restored([rdisk])
        delete(last)
    finally:
        if res.close():
            raise RuntimeError(f"{name}: could not release every loop device and mount")
    return row


def ms(values: list[float]) -> str:
    if not values:
        return "-"
    lo, mid, hi = (v * 1000 for v in (min(values), statistics.median(values), max(values)))
    return f"{mid:8.1f} ({lo:.1f}-{hi:.1f})"


def print_table(rows: list[Row], runs: int, data_mb: int) -> None:
    print(
        f"\n1 GiB ext4 disk, {data_mb} MB data, writer 4 KiB+fsync; median (min-max) of {runs}, ms"
    )
    head = (
        f"{'backend':<10} {'frozen window':>22} {'of it: FIFREEZE':>22} {'snapshot':>22} "
        f"{'restore':>22} {'writer':>20}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        if not row.ok:
            print(f"{row.backend:<10} unavailable: {row.note}")
            continue
        w = row.writer
        wtxt = f"{int(w.get('writes', 0))} w, max {w.get('max_s', 0) * 1000:.1f}"
        print(
            f"{row.backend:<10} {ms(row.frozen_s):>22} {ms(row.freeze_s):>22} "
            f"{ms(row.snap_s):>22} {ms(row.restore_s):>22} {wtxt:>20}"
        )
    for row in rows:
        if row.backend == "reflink" and row.ok:
            frozen, rest = statistics.median(row.frozen_s), statistics.median(row.restore_s)
            verdict = {True: "OK", False: "MISSED"}
            print(
                f"\nreflink targets: frozen window {frozen * 1000:.1f} ms "
                f"({verdict[frozen < TARGET_FROZEN_S]}, target < {TARGET_FROZEN_S * 1000:.0f}), "
                f"restore {rest * 1000:.1f} ms "
                f"({verdict[rest < TARGET_RESTORE_S]}, target < {TARGET_RESTORE_S * 1000:.0f})"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data-mb", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_snapshot: needs root (loop devices, mounts, fsfreeze)", file=sys.stderr)
        return 2
    for tool in ("losetup", "mkfs.ext4", "mkfs.xfs", "mkfs.btrfs", "btrfs"):
        if shutil.which(tool) is None:
            print(f"bench_snapshot: {tool} is not installed", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="vmsnap-bench-", dir=args.workdir))
    pools = Resources()
    rows: list[Row] = []
    try:
        xfs = make_pool(pools, work, "xfs", "4G")
        btr = make_pool(pools, work, "btrfs", "4G")
        host = work / "host"
        host.mkdir()
        for name in BACKENDS:
            if name == "reflink":
                where = xfs / "vm"
                where.mkdir()
            elif name == "btrfs":
                where = create_subvolume(btr / "vm")
            elif name == "copy":
                where = host / "vm"
                where.mkdir()
            else:
                where = xfs / "vm-dm"
            backend = get_backend(name, where.parent)
            rows.append(bench_backend(name, backend, where, work, args.runs, args.data_mb))
    finally:
        # Never delete through a pool that is still mounted.
        if not pools.close():
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"bench_snapshot: left {work} in place", file=sys.stderr)
    print_table(rows, args.runs, args.data_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
