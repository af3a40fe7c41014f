"""One complete vmsnap cycle: build a stand-in VM, load it, run the framework, restore, judge.

This is what ``vmsnap run`` and every ``pytest --vmsnap`` cycle item call. It builds the VM's
disks in a reflink pool, installs the user's config and scripts at their real paths, provisions
the application and starts the recorded workload, runs the framework cycle inside the VM (real
freeze through the guard, snapshot taken from the host side), probes the application while it
is supposed to be quiesced and after the post-script, restores the snapshot into a fresh VM,
starts the application there and hands everything to the oracle. Every resource is released in
reverse order whatever happens, and no file system is ever left frozen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..apps import get_app
from ..apps.base import IntegrityReport
from ..evidence import oracle
from ..evidence.workload import load_history
from ..framework.cycle import run_cycle
from ..framework.profiles import get as get_profile
from ..framework.runner import FAITHFUL, PROMPT, not_run
from ..report.text import code_name, explain
from ..settings import Settings
from ..vm.errors import VmError
from ..vm.forkserver import Call
from .stage import stage

IN_VM_MODULES = ("pytest_vmsnap.evidence.workload", "pytest_vmsnap.evidence.probe")
"""Imported by a source VM's fork server before anything runs."""
QUIESCE_PROBE_TIMEOUT_S = 1.0
LIVENESS_BOUND_S = 10.0
START_DEADLINE_S = 60.0


@dataclass
class RunResult:
    """Everything about one cycle; :meth:`to_dict` is the ``vmsnap run`` JSON contract."""

    settings: Settings
    verdict: str = oracle.NOT_TAKEN
    reasons: list[str] = field(default_factory=list)
    cycle: dict[str, Any] = field(default_factory=dict)
    evidence: oracle.Evidence = field(default_factory=oracle.Evidence)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    probes: list[dict[str, Any]] = field(default_factory=list)
    latency: list[tuple[float, float, str]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""
    tag: str = ""
    """The resource tag of the cycle's stand-in VMs (empty when none was built)."""

    @property
    def ok(self) -> bool:
        return self.verdict == oracle.APPLICATION

    # Assertions for tests (the vmsnap_cycle fixture): each raises AssertionError with the
    # readable explanation of report.explain, and returns the result for chaining.

    def assert_verdict(self, verdict: str) -> RunResult:
        """The cycle's verdict is ``verdict``."""
        __tracebackhide__ = True
        if verdict not in oracle.VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; one of {', '.join(oracle.VERDICTS)}")
        if self.verdict != verdict:
            raise AssertionError(explain(self.to_dict(), verdict))
        return self

    def assert_application_consistent(self) -> RunResult:
        """The restored copy is application-consistent (and the live app was left usable)."""
        __tracebackhide__ = True
        return self.assert_verdict(oracle.APPLICATION)

    def assert_status(self, status: int, health_code: int | None = None) -> RunResult:
        """The framework's status (0, 1 or an error code) and, if given, its health code."""
        __tracebackhide__ = True
        d = self.to_dict()
        if d["status"] == status and (health_code is None or d["health_code"] == health_code):
            return self

        def health(code: int | None) -> str:
            return "0 (success)" if code == 0 else code_name(code)

        want = f"framework status {status}"
        if health_code is not None:
            want += f" with health code {health(health_code)}"
        # explain()'s first line would repeat this one: keep its why/findings/stderr lines.
        details = explain(d, want).splitlines()[1:]
        raise AssertionError(
            "\n".join(
                [
                    f"expected {want}, got status {d['status']} with health code "
                    f"{health(d['health_code'])} ({d['verdict']})",
                    *details,
                ]
            )
        )

    def assert_quiesced(self) -> RunResult:
        """A write on a fresh connection blocked or was refused while the app was quiesced."""
        __tracebackhide__ = True
        probe = self.evidence.quiesce_probe
        if probe is None:
            raise AssertionError(
                "the quiesce probe did not run (no pre-script end was reached)\n"
                + explain(self.to_dict(), "a quiesce probe")
            )
        if probe.get("result") not in ("blocked", "refused"):
            raise AssertionError(
                f"a write on a fresh connection was {probe.get('result')} between the end of "
                "the pre-script and the snapshot: the application was not held still\n"
                f"  probe: {probe.get('detail') or probe.get('error')}\n"
                "    -> Keep the lock in a session that outlives the pre-script (a background "
                "holder released by the post-script), and return from the pre-script only once "
                "the lock is held."
            )
        return self

    def assert_live(self) -> RunResult:
        """After the post-script the application accepted writes again within the bound."""
        __tracebackhide__ = True
        if self.evidence.liveness_ok is True:
            return self
        live = self.evidence.liveness or {}
        last = live.get("last") or {}
        detail = f"{last.get('result')}: {last.get('detail')}" if last else live.get("error")
        raise AssertionError(
            "after the post-script the application could not write within "
            f"{LIVENESS_BOUND_S:.0f} s: {detail or 'the liveness probe did not run'}\n"
            "    -> The post-script must undo everything the pre-script did (unlock, "
            "read_only off, unpause)."
        )

    def to_dict(self) -> dict[str, Any]:
        c = self.cycle
        s = self.settings
        return {
            "verdict": self.verdict,
            "reasons": self.reasons,
            "status": c.get("status"),
            "health_code": c.get("health_code"),
            "consistency": c.get("consistency", "none"),
            "message": c.get("message", self.error),
            "app": s.app,
            "vm": s.vm,
            "profile": s.profile,
            "quiesce": s.quiesce,
            "disks": s.disks,
            "fs": s.fs,
            "scripts": c.get("scripts", {w: not_run(w) for w in ("pre", "post")}),
            "freeze": c.get("freeze", {"enabled": False, "frozen_s": 0.0, "mounts": []}),
            "snapshot": c.get(
                "snapshot", {"backend": s.snapshot, "taken": False, "duration_s": 0.0}
            ),
            "oracle": self.evidence.to_dict(),
            "findings": c.get("findings", [])
            + (
                [
                    {
                        "code": None,
                        "name": "HarnessError",
                        "message": self.error,
                        "action": "See the message.",
                    }
                ]
                if self.error
                else []
            ),
            "timeline": self.timeline,
            "probes": self.probes,
            "latency": [
                {"t": round(t, 4), "latency_s": round(lat, 5), "op": op}
                for t, lat, op in self.latency
            ],
            "versions": self.versions,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "error": self.error,
            "tag": self.tag,
        }


class _Clock:
    """Converts monotonic times to seconds from the start of the run."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def rel(self, t: float) -> float:
        return round(t - self.t0, 4)


def run(settings: Settings, *, hooks: dict[str, Callable[..., Any]] | None = None) -> RunResult:
    """Run one cycle as ``settings`` describe; never raises for a failed cycle.

    ``hooks`` (for fault injection): ``after_freeze`` is called with the VM while frozen
    (before the snapshot); ``snapshot`` replaces the snapshot function. For building races
    on purpose: ``before_workload`` is called with the VM once the application is provisioned,
    before the recorded workload starts; ``before_snapshot`` is called with the VM when the
    framework's snapshot step begins, before any disk is copied, whether or not the file
    systems are frozen (with ``fsFreezeEnabled: false`` ``after_freeze`` never runs). Hooks
    run in the controller while the framework waits for them.
    """
    result = RunResult(settings)
    problems = settings.problems()
    if problems:
        result.error = "; ".join(problems)
        return result
    try:
        with _sigterm_unwinds():
            if settings.vm == "dir" or os.geteuid() != 0:
                _run_dir(settings, result)
            else:
                t = time.monotonic()
                try:
                    _run_vm(settings, result, hooks or {})
                finally:
                    result.timings["total_s"] = time.monotonic() - t
    except Exception as err:  # one clear line for the user; the VM was released already
        result.error = f"{type(err).__name__}: {' '.join(str(err).split())}"
        if result.verdict == oracle.APPLICATION:
            result.verdict = oracle.CRASH
    return result


class Terminated(BaseException):
    """SIGTERM arrived during a cycle: unwind (releasing every resource), then re-raise."""


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into an exception while a cycle runs, so ``finally`` blocks release the
    VM, its mounts and loop devices instead of the process dying with them in place."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_dir(settings: Settings, result: RunResult) -> None:
    """Without root: the framework cycle in a directory, no freeze, no database."""
    with tempfile.TemporaryDirectory(prefix="vmsnap-dir-") as tmp:
        assert settings.config is not None
        stage(tmp, settings.config, settings.pre, settings.post, settings.owner)
        cycle = run_cycle(
            tmp,
            profile=get_profile(settings.profile),
            pacing=FAITHFUL if settings.pacing == "faithful" else PROMPT,
        )
    result.cycle = cycle.to_dict()
    result.timeline = result.cycle["timeline"]
    result.evidence.notes.append(
        "no root: directory stand-in, no freeze, no database; the "
        "verdict is never better than crash-consistent"
    )
    verdict = oracle.decide(
        result.evidence,
        taken=False,
        status=cycle.status,
        why_not_taken="directory stand-in: nothing to restore (needs root "
        "for loop devices and fsfreeze)",
    )
    result.verdict, result.reasons = verdict.verdict, verdict.reasons


@dataclass
class StandIn:
    """A started stand-in VM with its application provisioned and running (see :func:`stand_in`)."""

    settings: Settings
    tag: str
    app: Any
    vm: Any
    disks: list[Any]
    backend: Any
    pool: Any
    workdir: Path
    versions: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def stand_in(
    settings: Settings, name: str = "source", *, timings: dict[str, float] | None = None
) -> Iterator[StandIn]:
    """Build a stand-in VM as ``settings`` describe and release it on exit, whatever happens.

    A fresh tag, the reflink pool, the snapshot backend, one disk per spec of the app's layout
    (attached), the host VM started on them, the user's config and scripts installed (when a
    config is given), the application provisioned and running. Needs root. ``timings`` (if
    given) is filled as the build goes (``vm_build_s``, ``provision_s``).
    """
    from ..vm import disks as vmdisks
    from ..vm import names, snapshot

    app = get_app(settings.app)
    tag = names.new_tag()
    specs = app.layout(settings.disks, settings.fs)
    timings = {} if timings is None else timings
    with contextlib.ExitStack() as stack:
        t = time.monotonic()
        pool_fs = "btrfs" if settings.snapshot == "btrfs" else "xfs"
        pool = vmdisks.Pool.open(names.vmsnap_home(), tag, fs=pool_fs)
        # The owner record (made by Pool.open) goes last, once everything of the tag is gone.
        stack.callback(_release_owner, names.owner_file(names.vmsnap_home(), tag))
        stack.callback(pool.close)
        backend = snapshot.select_backend(settings.snapshot, pool.path)
        workdir = pool.path / f"{tag}-run"
        workdir.mkdir()
        stack.callback(shutil.rmtree, workdir, True)
        disk_dir = pool
        if settings.snapshot == "btrfs":
            # The btrfs backend snapshots one subvolume holding all of the VM's images.
            subvol = pool.path / f"{tag}-source"
            snapshot.create_subvolume(subvol)
            stack.callback(snapshot.delete_subvolume, subvol)
            disk_dir = dataclasses.replace(pool, path=subvol)
        source_disks = []
        for spec in specs:
            disk = vmdisks.create_disk(disk_dir, tag, name, spec)
            stack.callback(_remove_image, disk)
            vmdisks.attach(disk)
            stack.callback(vmdisks.detach, disk)
            source_disks.append(disk)
        vm = _new_vm(settings, stack, name, source_disks, tag, workdir).start()
        stack.callback(vm.stop)
        # The fork server imports the workload, the probes and the client library while the
        # application is provisioned: they start warm later, when their time counts.
        vm.warm(*IN_VM_MODULES, *app.client_modules)
        timings["vm_build_s"] = time.monotonic() - t

        if settings.config is not None:
            stage(
                vm.path("/"),
                settings.config,
                settings.pre,
                settings.post,
                settings.owner,
                private=getattr(vm, "private_dirs", None),
            )
        t = time.monotonic()
        app.provision(vm)
        timings["provision_s"] = time.monotonic() - t
        versions = app.versions(vm)
        yield StandIn(
            settings, tag, app, vm, source_disks, backend, pool, workdir, versions, timings
        )


def _new_vm(
    settings: Settings,
    stack: contextlib.ExitStack,
    name: str,
    disks: list[Any],
    tag: str,
    workdir: Path,
) -> Any:
    """A stand-in VM of the kind ``settings.vm`` names (not started yet): host or container."""
    if settings.vm == "container":
        from ..vm.docker.container import ContainerVM
        from ..vm.docker.engine import Engine

        stack.enter_context(Engine())  # held for the whole run: both VMs use one engine
        return ContainerVM(name, disks, tag=tag, app=settings.app, shared=[workdir])
    from ..vm.host import HostVM

    return HostVM(name, disks, tag=tag)


def _run_vm(settings: Settings, result: RunResult, hooks: dict[str, Callable[..., Any]]) -> None:
    from ..vm import disks as vmdisks
    from ..vm import snapshot
    from .driver import Agent, drive_cycle

    clock = _Clock()
    assert settings.config is not None
    # Two stacks, the stand-in's outside: released in the same order as one stack would.
    with (
        stand_in(settings, "source", timings=result.timings) as si,
        contextlib.ExitStack() as stack,
    ):
        app, tag, vm, backend, workdir = si.app, si.tag, si.vm, si.backend, si.workdir
        source_disks = si.disks
        result.tag = tag
        result.versions = si.versions

        if "before_workload" in hooks:
            hooks["before_workload"](vm)
        history = workdir / "history.jsonl"
        stop_file = workdir / "workload.stop"
        workload = vm.submit(
            "pytest_vmsnap.evidence.workload:run", settings.app, str(history), str(stop_file)
        )
        stack.callback(_stop_workload, workload, stop_file)
        agent = Agent(vm)  # its start-up overlaps the workload's warm-up
        stack.callback(agent.end)
        _wait_first_ack(workload, history)
        time.sleep(max(0.2, settings.workload_seconds / 2))

        probe: dict[str, Any] = {}
        events: dict[str, float] = {}

        def on_event(name: str, t_event: float) -> None:
            events[name] = t_event
            if name == "pre_end" and not settings.baseline:
                began = time.monotonic()
                probe.update(_probe(vm, "probe_write", settings.app, QUIESCE_PROBE_TIMEOUT_S))
                result.timings["quiesce_probe_s"] = time.monotonic() - began
                result.probes.append({"probe": "quiesce", "at_s": clock.rel(t_event), **probe})
            if name == "frozen" and "after_freeze" in hooks:
                hooks["after_freeze"](vm)
            if name == "snapshot_start" and "before_snapshot" in hooks:
                hooks["before_snapshot"](vm)

        snaps: list[Any] = []

        def take_snapshot() -> dict[str, Any]:
            if "snapshot" in hooks:
                return hooks["snapshot"]()
            order = source_disks if settings.snapshot_order == "layout" else source_disks[::-1]
            snap = backend.take(order, workdir / "snap", skew_s=settings.skew_s)
            snaps.append(snap)
            stack.callback(snapshot.delete, snap)
            return {
                "code": 0,
                "taken": True,
                "backend": backend.name,
                "duration_s": snap.duration_s,
                "message": f"{len(snap.images)} disk(s)",
            }

        freeze_opts = {"mounts": [[d.spec.mountpoint, d.spec.fs] for d in source_disks]}
        if not backend.freeze_compatible:
            freeze_opts["note"] = "btrfs snapshot: freezing the snapshotted fs would hang"
        options = {"profile": settings.profile, "pacing": settings.pacing, "freeze": freeze_opts}
        t = time.monotonic()
        if settings.baseline:
            driven = _baseline_cycle(take_snapshot, on_event, backend.name)
        else:
            driven = drive_cycle(
                vm, snapshot=take_snapshot, options=options, on_event=on_event, agent=agent
            )
        result.timings["framework_cycle_s"] = time.monotonic() - t
        result.cycle = driven.cycle
        # The first event (precheck_end) marks the end of the timeline's first phase.
        first = driven.cycle["timeline"][0]["end_s"] if driven.cycle["timeline"] else 0.0
        t_cycle0 = driven.events[0][1] - first if driven.events else clock.t0
        result.timeline = [
            {
                "phase": p["phase"],
                "start_s": clock.rel(t_cycle0 + p["start_s"]),
                "end_s": clock.rel(t_cycle0 + p["end_s"]),
            }
            for p in driven.cycle["timeline"]
        ]

        t = time.monotonic()
        live = _probe(vm, "probe_live", settings.app, LIVENESS_BOUND_S)
        result.timings["liveness_s"] = time.monotonic() - t
        result.probes.append({"probe": "liveness", "at_s": clock.rel(time.monotonic()), **live})
        oracle.judge_probes(result.evidence, settings.quiesce, probe or None, live)
        t = time.monotonic()
        time.sleep(0.05)  # the workload's own writes after the post-script, for the timeline
        _stop_workload(workload, stop_file)
        acks = load_history(history) if history.exists() else []
        result.latency = [
            (clock.rel(a.t0), a.t1 - a.t0, a.op if not a.error else "error")
            for a in acks
            if a.op in ("append", "transfer")
        ]
        # Ending the source VM flushes its disks on unmount (a second for a database that
        # wrote much): let that run beside the restore, which uses other images.
        stopper = threading.Thread(target=vm.stop, name="vmsnap-source-stop", daemon=True)
        stopper.start()
        stack.callback(stopper.join)
        result.timings["source_stop_s"] = time.monotonic() - t

        taken = bool(snaps) and driven.cycle["snapshot"]["taken"]
        if not taken:
            verdict = oracle.decide(
                result.evidence,
                taken=False,
                status=driven.cycle["status"],
                why_not_taken=f"no snapshot: {driven.cycle['message']}",
            )
            result.verdict, result.reasons = verdict.verdict, verdict.reasons
            return

        t = time.monotonic()
        restored_disks = snapshot.restore(snaps[0], workdir / "restore")
        stack.callback(snapshot.delete_restored, restored_disks)
        for disk in restored_disks:
            vmdisks.attach(disk)
            stack.callback(vmdisks.detach, disk)
        vm2 = _new_vm(settings, stack, "restored", restored_disks, tag, workdir).start()
        stack.callback(vm2.stop)
        vm2.warm("pytest_vmsnap.evidence.probe", *app.client_modules)
        start = app.start(vm2, START_DEADLINE_S)
        result.timings["restore_start_s"] = time.monotonic() - t
        integrity: IntegrityReport | None = None
        state: dict[str, Any] | None = None
        t = time.monotonic()
        if start.started:
            integrity = app.integrity(vm2)
            state = _probe(vm2, "read_state", settings.app)
        result.timings["verify_s"] = time.monotonic() - t
        oracle.check_restore(
            result.evidence,
            start,
            integrity,
            state,
            acks,
            events.get("pre_end"),
            events.get("thawed"),
        )
        # No graceful stop of the restored copy: it is thrown away, and ending its VM ends it.
        verdict = oracle.decide(
            result.evidence,
            taken=True,
            status=driven.cycle["status"],
            ceiling=oracle.CRASH if settings.baseline else None,
            ceiling_reason="baseline: no scripts and no freeze, a crash-consistent snapshot",
        )
        result.verdict, result.reasons = verdict.verdict, verdict.reasons


def _baseline_cycle(
    take_snapshot: Callable[[], dict[str, Any]],
    on_event: Callable[[str, float], None],
    backend: str,
) -> Any:
    """The crash-consistent baseline: the same snapshot with no scripts and no freeze.

    The reference point for "acknowledged writes" is the start of the snapshot (there is no
    pre-script); the result has the shape of a framework cycle so reports read the same.
    """
    from .driver import DrivenCycle

    t0 = time.monotonic()
    on_event("pre_end", t0)
    snap = take_snapshot()
    t1 = time.monotonic()
    on_event("thawed", t1)
    taken = bool(snap.get("taken"))
    cycle = {
        "status": 1 if taken else snap.get("code", 2),
        "health_code": 0 if taken else snap.get("code", 2),
        "message": "baseline: snapshot without scripts or freeze",
        "consistency": "crash" if taken else "none",
        "profile": "baseline",
        "scripts": {w: not_run(w) for w in ("pre", "post")},
        "freeze": {
            "enabled": False,
            "real": True,
            "frozen": False,
            "frozen_s": 0.0,
            "mounts": [],
            "code": None,
            "message": "baseline: no freeze",
        },
        "snapshot": {
            "backend": backend,
            "real": True,
            "taken": taken,
            "duration_s": snap.get("duration_s", 0.0),
            "message": snap.get("message", ""),
        },
        "findings": [],
        "timeline": [{"phase": "snapshot", "start_s": 0.0, "end_s": round(t1 - t0, 4)}],
    }
    return DrivenCycle(cycle, [("pre_end", t0), ("thawed", t1)])


def _release_owner(record: Path) -> None:
    """Forget and delete the tag's owner record (cleanup then has nothing to protect)."""
    from ..vm import disks as vmdisks

    mine = [r for r in vmdisks.registered() if r.path == str(record)]
    vmdisks.REGISTRY.release(mine)


def _remove_image(disk: Any) -> None:
    """Delete a disk image the pool holds (registered by :func:`disks.create_disk`)."""
    from ..vm import disks as vmdisks

    mine = [r for r in vmdisks.registered() if r.path == str(disk.image)]
    vmdisks.REGISTRY.release(mine)


def _probe(vm: Any, fn: str, *args: Any) -> dict[str, Any]:
    """A :mod:`pytest_vmsnap.evidence.probe` function, run inside the VM; an error as data."""
    try:
        return vm.call(f"pytest_vmsnap.evidence.probe:{fn}", *args, timeout=120)
    except VmError as err:
        return {"result": "error", "error": str(err)}


def _wait_first_ack(workload: Call, history: Path, deadline_s: float = 30.0) -> None:
    """Wait until the workload has an acknowledged write: a cycle over an idle database would
    prove nothing (on a loaded machine the writers need a moment to start and connect)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if history.exists() and any(
            a.error is None and a.seq is not None for a in load_history(history)
        ):
            return
        if workload.done():
            try:
                workload.result(0)
                detail = "it returned"
            except VmError as err:
                detail = str(err)
            raise RuntimeError(f"the workload ended before its first write: {detail}")
        time.sleep(0.01)
    raise RuntimeError(f"the workload had no acknowledged write after {deadline_s:.0f} s")


def _stop_workload(workload: Call, stop_file: Path) -> None:
    if workload.done():
        return
    stop_file.touch()
    if not workload.wait(40):
        workload.kill()
        workload.wait(10)
