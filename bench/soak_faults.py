#!/usr/bin/env python3
"""Fault soak (issue 12): many `vmsnap run` cycles with broken scripts, killed controllers and
a squeezed memory limit; after each, count what is left of its tag. Root; outside the
default run.

Usage: ``python3 bench/soak_faults.py [--cycles 200] [--max-minutes 40] [--vm host|container]
[--seed N] [--each]`` (``make soak``). Each cycle is one ``vmsnap run`` process on the bundled
SQLite example (prompt pacing, a 2 s script timeout), with one of these scripts or faults,
shuffled by ``--seed``:

- correct pair; pre-script that fails; that hangs past the timeout; that floods its output;
  that leaves daemons (``setsid``, ``nohup``, a double fork); that kills its parent (the
  framework's process); that leaves a writer on the VM's disk blocked by the freeze; that fills
  the VM's disk to ENOSPC first; that changes its own mode and the config's; a post-script that
  fails;
- one tenth of the cycles (correct scripts) killed at a random moment (SIGKILL, SIGTERM,
  SIGINT), one tenth run in a memory cgroup squeezed below what the run uses.

After each cycle it counts, for the cycle's tag: mounts, loop devices and files (pool image,
pool directory, owner record); processes carrying the tag, in a namespace that did not exist
before the soak, or left in the memory cgroup; containers labelled with the tag; and file
systems found frozen (FITHAW on every mount). A cycle's verdict is wrong when it differs from
what its script does (a correct pair is application-consistent, a script that never quiesces
gives at best crash-consistent, killing the framework gives no snapshot); a traceback anywhere
in the output counts too. Prints one table per scenario and the three totals (target: 0, 0, 0).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_vmsnap import data  # noqa: E402
from pytest_vmsnap.evidence import oracle  # noqa: E402
from pytest_vmsnap.vm import cleanup, names  # noqa: E402
from pytest_vmsnap.vm.linux import read_mounts, thaw  # noqa: E402

SAMPLES = data.sample_scripts("sqlite")
PRE = (SAMPLES / "pre.sh").read_text()
POST = (SAMPLES / "post.sh").read_text()
DB = "/var/lib/app/app.db"
NO_QUIESCE = frozenset({oracle.CRASH})
QUIESCED = frozenset({oracle.APPLICATION})
MEMORY_CGROUP = Path("/sys/fs/cgroup/memory")
MEMORY_LIMIT = 28 << 20
"""For the VM's processes only (the controller stays outside): they peak at about 34 MiB
unsqueezed, so the kernel reclaims their page cache and at times OOM-kills one of them (the
run then says so in its error, which is not counted as a wrong verdict)."""


BEFORE: set[str] = set()
"""Tags with something on this machine before the soak started (not the soak's)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    pre: str
    post: str = POST
    expect: frozenset[str] | None = QUIESCED
    """The verdicts the script's behaviour allows; None: no verdict (the run is killed)."""
    kill: signal.Signals | None = None
    squeeze: bool = False


def _pre_then(extra: str) -> str:
    """The correct pre-script, then ``extra`` (after the lock is held)."""
    return PRE.rstrip("\n") + "\n" + extra.strip("\n") + "\nexit 0\n"


SCENARIOS: list[tuple[Scenario, int]] = [
    (Scenario("correct", PRE), 20),
    (Scenario("pre fails", "#!/bin/sh\necho 'pre: no' >&2\nexit 3\n", expect=NO_QUIESCE), 16),
    (Scenario("pre hangs", "#!/bin/sh\nsleep 30\n", expect=NO_QUIESCE), 16),
    (Scenario("pre floods", "#!/bin/sh\nhead -c 4000000 /dev/zero\n", expect=NO_QUIESCE), 16),
    (
        Scenario(
            "pre leaves daemons",
            _pre_then(
                "setsid sleep 600 </dev/null >/dev/null 2>&1 &\n"
                "nohup sleep 600 </dev/null >/dev/null 2>&1 &\n"
                "( sleep 600 </dev/null >/dev/null 2>&1 & ) &"
            ),
        ),
        16,
    ),
    (
        Scenario(
            "pre kills parent",
            "#!/bin/sh\nkill -9 $PPID\nsleep 1\n",
            expect=frozenset({oracle.NOT_TAKEN}),  # the backup job dies with the framework
        ),
        16,
    ),
    (
        Scenario(
            "writer blocked by freeze",
            _pre_then(
                "( while :; do echo x >> /var/lib/app/background.log; sleep 0.01; done ) "
                "</dev/null >/dev/null 2>&1 &"
            ),
        ),
        16,
    ),
    (
        Scenario(
            "disk filled to ENOSPC",
            "#!/bin/sh\navail=$(df -B1 --output=avail /var/lib/app | tail -1)\n"
            'fallocate -l "$((avail - 65536))" /var/lib/app/fill\n'
            "dd if=/dev/zero of=/var/lib/app/fill2 bs=64K 2>/dev/null\n"
            "sleep 0.3\nrm -f /var/lib/app/fill /var/lib/app/fill2\n" + PRE.split("\n", 1)[1],
        ),
        16,
    ),
    (
        Scenario(
            "changes modes",
            _pre_then('chmod 000 "$0"; chmod 777 /etc/azure/VMSnapshotScriptPluginConfig.json'),
        ),
        16,
    ),
    # The extension then reports the backup as not application-consistent (status 1).
    (Scenario("post fails", PRE, POST.rstrip("\n") + "\nexit 4\n", expect=NO_QUIESCE), 12),
    (Scenario("killed: SIGKILL", PRE, expect=None, kill=signal.SIGKILL), 7),
    (Scenario("killed: SIGTERM", PRE, expect=None, kill=signal.SIGTERM), 7),
    (Scenario("killed: SIGINT", PRE, expect=None, kill=signal.SIGINT), 6),
    (Scenario("memory squeezed", PRE, squeeze=True), 20),
]


@dataclass
class Outcome:
    scenario: str
    tag: str | None
    verdict: str | None
    wrong: bool
    traceback: bool
    left: list[str] = field(default_factory=list)
    seconds: float = 0.0
    release_s: float | None = None
    note: str = ""


def _config(work: Path) -> Path:
    config = json.loads((data.example("sqlite") / data.CONFIG_NAME).read_text())
    config.update(timeoutInSeconds=2, ScriptsExecutionPollTimeSeconds=1)
    path = work / "VMSnapshotScriptPluginConfig.json"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def _scripts(work: Path, s: Scenario) -> tuple[Path, Path]:
    pre, post = work / "pre.sh", work / "post.sh"
    for path, text in ((pre, s.pre), (post, s.post)):
        path.write_text(text)
        path.chmod(0o700)
    return pre, post


def _namespaces() -> set[str]:
    found = set()
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError):
                found.add(os.readlink(p / "ns" / "mnt"))
    return found


def _tag_of_owner(home: Path, pid: int) -> str | None:
    for record in home.glob("vmsnap-*.owner"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            if int(json.loads(record.read_text())["pid"]) == pid:
                return record.name.removesuffix(".owner")
    return None


def _tags_present() -> set[str]:
    """The tags that have a mount, loop device or file on this machine now."""
    return set(cleanup.find_leftovers(include_live=True).tags)


def _left(tag: str | None, host_ns: set[str], cgroup: Path | None, vm: str) -> list[str]:
    """Everything of ``tag`` still there (see the module's docstring). Without a tag (a run
    killed before it chose one), everything of any tag the soak did not start with."""
    if tag is None:
        return [f"tag {t}" for t in sorted(_tags_present() - BEFORE)] + _foreign(None, host_ns)
    found = cleanup.find_leftovers(tag_prefix=tag, include_live=True)
    left = [
        *(f"mount {m.target}" for m in found.mounts),
        *(f"loop {lo.name}" for lo in found.loops),
        *(f"file {f}" for f in found.files),
    ]
    left += _foreign(tag, host_ns)
    if cgroup is not None and cgroup.is_dir():
        left += [f"process {pid} (cgroup)" for pid in (cgroup / "cgroup.procs").read_text().split()]
    if vm == "container":
        from pytest_vmsnap.vm.docker.engine import list_ours, ping

        client = ping()
        if client is not None:
            left += [f"container {c['name']}" for c in list_ours(tag, client)]
    left += [f"frozen {m.target}" for m in read_mounts() if thaw(m.target)]
    return left


def _foreign(tag: str | None, host_ns: set[str]) -> list[str]:
    """Processes that carry ``tag`` or live in a mount namespace the soak did not start with."""
    left = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if tag and tag.encode() in (p / "cmdline").read_bytes():
                left.append(f"process {p.name} (tag)")
            elif os.readlink(p / "ns" / "mnt") not in host_ns:
                left.append(f"process {p.name} (namespace)")
    return left


@contextlib.contextmanager
def _squeezing(cgroup: Path, proc: subprocess.Popen[bytes], host_ns: set[str]) -> Iterator[None]:
    """Move the VM's processes (those in a mount namespace the soak did not start with: the
    VM's init, its fork server and what it forks, the database) into ``cgroup`` while
    ``proc`` runs; the controller stays outside, as the harness would on a real host."""
    stop = threading.Event()

    def mover() -> None:
        moved: set[int] = set()
        while not stop.is_set() and proc.poll() is None:
            for p in Path("/proc").iterdir():
                if not p.name.isdigit() or int(p.name) in moved:
                    continue
                with contextlib.suppress(OSError):
                    if os.readlink(p / "ns" / "mnt") not in host_ns:
                        (cgroup / "cgroup.procs").write_text(p.name)
                        moved.add(int(p.name))
            stop.wait(0.01)

    thread = threading.Thread(target=mover, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def _memory_cgroup(name: str) -> Iterator[Path]:
    path = MEMORY_CGROUP / name
    path.mkdir()
    try:
        (path / "memory.limit_in_bytes").write_text(str(MEMORY_LIMIT))
        yield path
    finally:
        for _ in range(50):  # its last processes are leaving
            with contextlib.suppress(OSError):
                path.rmdir()
                break
            time.sleep(0.1)


def _one(s: Scenario, work: Path, host_ns: set[str], vm: str, rng: random.Random) -> Outcome:
    config = _config(work)
    pre, post = _scripts(work, s)
    out = work / "result.json"
    out.unlink(missing_ok=True)
    argv = [
        sys.executable, "-m", "pytest_vmsnap.cli", "run", "--config", str(config),
        "--pre", str(pre), "--post", str(post), "--app", "sqlite", "--pacing", "prompt",
        "--workload-seconds", "0.3", "--vm", vm, "--json", str(out),
    ]  # fmt: skip
    home = names.vmsnap_home()
    with contextlib.ExitStack() as stack:
        cgroup = None
        if s.squeeze:
            cgroup = stack.enter_context(_memory_cgroup(f"vmsnap-soak-{os.getpid()}"))
        t0 = time.monotonic()
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if cgroup is not None:
            stack.enter_context(_squeezing(cgroup, proc, host_ns))
        # The tag, from the owner record while the run lives: a run that dies has no result.
        found: list[str] = []

        def watch_tag() -> None:
            while not found and proc.poll() is None:
                tag = _tag_of_owner(home, proc.pid)
                if tag:
                    found.append(tag)
                time.sleep(0.01)

        watcher = threading.Thread(target=watch_tag, daemon=True)
        watcher.start()
        release_s = None
        if s.kill is not None:
            at = rng.uniform(0.05, 1.5)  # a whole cycle takes about 1.2 s
            while time.monotonic() - t0 < at and proc.poll() is None:
                time.sleep(0.01)
            t_kill = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, s.kill)
        try:
            stdout, stderr = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            return Outcome(s.name, None, None, True, False, ["the run hung past 180 s"])
        seconds = time.monotonic() - t0
        text = stdout.decode(errors="replace") + stderr.decode(errors="replace")
        d: dict = {}
        with contextlib.suppress(OSError, ValueError):
            d = json.loads(out.read_text())
        watcher.join()
        tag = d.get("tag") or (found[0] if found else None)
        verdict = d.get("verdict")
        left: list[str] = []
        if tag or s.kill is not None:
            # A killed controller's reaper needs a moment: wait up to 10 s for nothing left.
            deadline = time.monotonic() + (10 if s.kill else 0)
            while True:
                left = _left(tag, host_ns, cgroup, vm)
                if not left or time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
            if s.kill is not None:
                release_s = time.monotonic() - t_kill
        else:
            left = ["no tag found"]
        if cgroup is not None:
            peak = int((cgroup / "memory.max_usage_in_bytes").read_text()) >> 20
            fails = int((cgroup / "memory.failcnt").read_text())
    # Squeezed, the kernel may kill one of the VM's processes (a probe, the agent): a run
    # that then says what it could not check (an error, a probe that could not be made) is
    # honest.
    said = bool(d.get("error")) or verdict == "error"
    wrong = s.expect is not None and verdict not in s.expect and not (s.squeeze and said)
    why = d.get("error") or "; ".join(d.get("reasons", []))
    note = f"got {verdict}: {why[:160]}" if wrong else ""
    if s.squeeze:
        note += f" (memory peak {peak} MiB of {MEMORY_LIMIT >> 20}, limit hit {fails} times)"
    return Outcome(
        s.name, tag, verdict, wrong, "Traceback" in text or "Traceback" in json.dumps(d),
        left, seconds, release_s, note,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--max-minutes", type=float, default=40.0)
    parser.add_argument("--vm", choices=["host", "container"], default="host")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--each", action="store_true", help="one cycle per scenario (a smoke)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("soak: needs root", file=sys.stderr)
        return 2
    plan = [s for s, n in SCENARIOS for _ in range(n)]
    rng = random.Random(args.seed)
    rng.shuffle(plan)
    plan = (plan * (args.cycles // len(plan) + 1))[: args.cycles]
    if args.each:
        plan = [s for s, _ in SCENARIOS]
        args.cycles = len(plan)
    host_ns = _namespaces()
    BEFORE.update(_tags_present())
    outcomes: list[Outcome] = []
    end = time.monotonic() + args.max_minutes * 60
    with tempfile.TemporaryDirectory(prefix="vmsnap-soak-") as tmp:
        for i, s in enumerate(plan, 1):
            if time.monotonic() > end:
                print(f"soak: time bound reached after {i - 1} cycles", file=sys.stderr)
                break
            o = _one(s, Path(tmp), host_ns, args.vm, rng)
            outcomes.append(o)
            flag = " WRONG" if o.wrong else ""
            flag += " TRACEBACK" if o.traceback else ""
            flag += f" LEFT {o.left}" if o.left else ""
            print(f"{i:4} {o.scenario:26} {o.verdict or '-':24} {o.seconds:6.1f} s{flag} {o.note}")
    _table(outcomes)
    wrong = sum(o.wrong for o in outcomes)
    tracebacks = sum(o.traceback for o in outcomes)
    left = sum(bool(o.left) for o in outcomes)
    print(f"\ncycles {len(outcomes)}: wrong verdicts {wrong}, tracebacks {tracebacks}, "
          f"cycles with leftovers {left}")  # fmt: skip
    return 0 if len(outcomes) == args.cycles and not (wrong or tracebacks or left) else 1


def _table(outcomes: list[Outcome]) -> None:
    by: dict[str, list[Outcome]] = collections.defaultdict(list)
    for o in outcomes:
        by[o.scenario].append(o)
    print(f"\n{'scenario':26} {'n':>3} {'verdicts':40} {'wrong':>5} {'tb':>3} {'left':>4} "
          f"{'median s':>8} {'release s (med/max)':>20}")  # fmt: skip
    for name, group in by.items():
        verdicts = collections.Counter(o.verdict or "-" for o in group)
        shown = ", ".join(f"{v} {n}" for v, n in verdicts.most_common())
        secs = sorted(o.seconds for o in group)
        rel = sorted(o.release_s for o in group if o.release_s is not None)
        rel_s = f"{rel[len(rel) // 2]:.2f}/{rel[-1]:.2f}" if rel else "-"
        print(f"{name:26} {len(group):3} {shown[:40]:40} {sum(o.wrong for o in group):5} "
              f"{sum(o.traceback for o in group):3} {sum(bool(o.left) for o in group):4} "
              f"{secs[len(secs) // 2]:8.1f} {rel_s:>20}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
