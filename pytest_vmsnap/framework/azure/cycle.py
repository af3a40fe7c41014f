"""The classic flow of the extension's daemon: pre-check, pre, freeze, snapshot, thaw, post.

Then the status (0 application-consistent, 1 file-system consistent, else the error code) and
the health code (the first non-success code set during the run) follow the outcome table of the
extension's ``handle.py`` row by row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import Observer
from ..interfaces import (
    Freezer,
    FreezeResult,
    NoOpFreezer,
    NoOpSnapshotter,
    SnapshotResult,
    Snapshotter,
    ThawResult,
)
from ..outcome import Phase, freeze_record, snapshot_record
from ..records import CycleRecordJson, Finding
from ..scripts import FAITHFUL, Clock, Pacing, ScriptResult, Spawn, SystemClock, not_run
from . import codes
from .checks import Precheck, precheck
from .config import HOST_TIMEOUT_CAP_S
from .profiles import EXTENSION, Profile
from .runner import release_parked, run_script

FREEZE_THREAD_SLEEP_S = 3.0
"""The extension's freeze thread sleeps this long before it starts the freeze helper."""
FROZEN_POLL_S = 2.0
"""The extension's main thread checks for the helper's "frozen" signal in steps this long."""


class _HealthCode:
    """``SetExtErrorCode`` semantics: the first writer wins."""

    def __init__(self) -> None:
        self.value = 0

    def set(self, code: int) -> None:
        if self.value == 0 and code not in (0, codes.SUCCESS):
            self.value = code


@dataclass
class CycleResult:
    """The outcome of one framework cycle, with the evidence behind it."""

    status: int
    health_code: int
    message: str
    profile: str
    precheck: Precheck
    pre: ScriptResult | None = None
    post: ScriptResult | None = None
    freeze: FreezeResult | None = None
    thaw: ThawResult | None = None
    snapshot: SnapshotResult | None = None
    froze: bool = False
    frozen_s: float = 0.0
    frozen_window: tuple[float, float] | None = None
    """When the file systems were frozen, in seconds from the start of the cycle (when the
    freezer measured it): the timeline's frozen window, whose length is ``frozen_s``."""
    timeline: list[Phase] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    real_freeze: bool = True
    real_snapshot: bool = True

    @property
    def snapshot_taken(self) -> bool:
        return self.snapshot is not None and self.snapshot.taken

    @property
    def consistency(self) -> str:
        """``application``, ``filesystem``, ``crash`` or ``none`` — what the snapshot really is.

        Status 1 without a freeze is reported by the extension as file-system consistent, but
        it is only crash-consistent; we say what it is.
        """
        if not self.snapshot_taken or self.status not in (0, 1):
            return "none"
        if self.status == 0:
            return "application"
        return "filesystem" if self.froze else "crash"

    def to_dict(self) -> CycleRecordJson:
        """The framework part of the ``vmsnap run`` JSON contract."""
        return {
            "status": self.status,
            "health_code": self.health_code,
            "message": self.message,
            "consistency": self.consistency,
            "profile": self.profile,
            "precheck": {
                "code": self.precheck.code,
                "detail": self.precheck.detail,
                "log": self.precheck.log,
            },
            "scripts": {
                "pre": self.pre.to_dict() if self.pre else not_run("pre"),
                "post": self.post.to_dict() if self.post else not_run("post"),
            },
            "freeze": freeze_record(self, enabled=bool(self.precheck.fs_freeze)),
            "snapshot": snapshot_record(self),
            "findings": self.findings,
            "timeline": [p.to_dict() for p in self.timeline],
            "framework": "azure",
            "outcome": codes.lookup(self.status).name,
            "calls": [
                {**script.to_dict(), "phase": script.which, "path": (script.argv or ["", ""])[1]}
                for script in (self.pre, self.post)
                if script is not None and script.ran
            ],
        }


def run_cycle(
    root: Path | str = "/",
    *,
    freezer: Freezer | None = None,
    snapshotter: Snapshotter | None = None,
    profile: Profile = EXTENSION,
    clock: Clock | None = None,
    spawn: Spawn | None = None,
    pacing: Pacing = FAITHFUL,
    observer: Observer | None = None,
    pre: Precheck | None = None,
    **precheck_args: Any,
) -> CycleResult:
    """Run one complete framework cycle on the machine whose ``/`` is ``root``.

    ``freezer`` and ``snapshotter`` default to no-op implementations (the result says so).
    ``pre`` lets a caller pass a pre-check it already ran (the extension runs it once).
    """
    try:
        return _run_cycle(
            root, freezer, snapshotter, profile, clock, spawn, pacing, observer, pre, precheck_args
        )
    finally:
        release_parked()  # the extension's process ends: timed-out scripts' pipes close


def _run_cycle(
    root: Path | str,
    freezer: Freezer | None,
    snapshotter: Snapshotter | None,
    profile: Profile,
    clock: Clock | None,
    spawn: Spawn | None,
    pacing: Pacing,
    observer: Observer | None,
    pre: Precheck | None,
    precheck_args: dict[str, Any],
) -> CycleResult:
    freezer = freezer or NoOpFreezer()
    snapshotter = snapshotter or NoOpSnapshotter()
    clock = clock or SystemClock()
    notify = observer or (lambda event: None)
    t0 = clock.monotonic()
    timeline: list[Phase] = []
    health = _HealthCode()

    def mark(name: str, start: float) -> None:
        timeline.append(Phase(name, start - t0, clock.monotonic() - t0))

    start = clock.monotonic()
    pc = pre if pre is not None else precheck(root, profile=profile, **precheck_args)
    mark("precheck", start)
    notify("precheck_end")
    result = CycleResult(
        status=codes.SUCCESS,
        health_code=0,
        message="",
        profile=profile.name,
        precheck=pc,
        timeline=timeline,
        real_freeze=getattr(freezer, "real", True),
        real_snapshot=getattr(snapshotter, "real", True),
    )
    if pc.workload_takes_over:
        result.findings.append(_workload_finding(pc))
        return _snapshot_only(result, freezer, snapshotter, clock, t0, notify, health, pacing)

    code = pc.code
    if code:
        result.findings.append(codes.lookup(code).as_finding(pc.detail))

    cfg = pc.config
    dobackup: Any = pc.dobackup
    fs_freeze = pc.fs_freeze
    poll = cfg.poll_s if cfg else 3
    # Errata E8: the host's watchdog counts with the host file's own timeout.
    host_timeout = pc.host.timeout_s if pc.host is not None else HOST_TIMEOUT_CAP_S

    if code == 0 and cfg is not None:
        start = clock.monotonic()
        notify("pre_start")
        result.pre = _run(cfg, "pre", pc.pre_path, profile, clock, spawn, pacing, host_timeout)
        _host_wait(clock, start, poll, pacing)
        mark("pre", start)
        notify("pre_end")
        if result.pre.failed:
            result.findings.append(_script_finding(result.pre))
            crash = _and_raises(result.pre, cfg.continue_on_failure)
            if crash:
                result.findings.append(crash)
                return _finish(result, codes.ERROR, health, crash["message"])
        dobackup = _combined(result.pre.continue_backup)
        if fs_freeze == False and result.pre.failed:  # noqa: E712 - the extension compares == False
            dobackup = False

    snapshot_error = 0
    if dobackup:
        snapshot_error = _freeze_snapshot_thaw(
            result, freezer, snapshotter, bool(fs_freeze), clock, t0, notify, pacing
        )
        # Errata E3: the "snapshots are inconsistent" path (a failed thaw) writes "success"
        # as the health code, a no-op: a failed script's code, written later, wins.
        if snapshot_error and not _thaw_inconsistent(result):
            health.set(snapshot_error)

    if code == 0 and cfg is not None:
        start = clock.monotonic()
        notify("post_start")
        result.post = _run(cfg, "post", pc.post_path, profile, clock, spawn, pacing, host_timeout)
        _host_wait(clock, start, poll, pacing)
        mark("post", start)
        notify("post_end")
        if result.post.failed:
            result.findings.append(_script_finding(result.post))
            crash = _and_raises(result.post, cfg.continue_on_failure)
            if crash:
                result.findings.append(crash)
                return _finish(result, codes.ERROR, health, crash["message"])
        if not _combined(result.post.continue_backup):
            dobackup = False
        if fs_freeze == False and result.post.failed:  # noqa: E712
            dobackup = False

    # handle.py writes the pre-check and script codes only now, after the freeze/snapshot
    # step has written its own: with first-writer-wins a freeze or snapshot error is the health
    # code even when a script failed before it.
    if code and _reported(code, profile):
        health.set(code)
    for script in (result.pre, result.post):
        if script is not None and script.failed:
            health.set(script.error_code)

    if snapshot_error:
        return _finish(result, snapshot_error, health, codes.lookup(snapshot_error).message)
    if not dobackup:
        if code:
            return _finish(
                result,
                code,
                health,
                f"Plugin Host Precheck Failed StatusCode.{codes.lookup(code).name},",
            )
        first = result.pre if result.pre and result.pre.failed else result.post
        which = "PreScript" if first is result.pre else "PostScript"
        err = first.error_code if first else codes.ERROR
        return _finish(
            result,
            err,
            health,
            f"{which} failed for the plugin ScriptRunner StatusCode.{codes.lookup(err).name},",
        )
    # handle.py upgrades to 0 when the pre-check returned 0 and no script reported a failure;
    # with numberOfPlugins 0 that holds although no script ran at all.
    scripts_clean = code == 0 and not any(
        script is not None and script.failed for script in (result.pre, result.post)
    )
    if scripts_clean and result.snapshot_taken:
        return _finish(
            result,
            codes.SUCCESS_APP_CONSISTENT,
            health,
            "application-consistent snapshot"
            if result.pre is not None
            else "reported application-consistent, but no script plugin is loaded "
            "(numberOfPlugins 0): no script ran",
        )
    return _finish(
        result,
        codes.SUCCESS,
        health,
        "file-system consistent snapshot" if result.froze else "snapshot taken without a freeze",
    )


def _run(
    cfg: Any,
    which: str,
    path: Path | None,
    profile: Profile,
    clock: Clock,
    spawn: Spawn | None,
    pacing: Pacing,
    host_timeout_s: int,
) -> ScriptResult:
    argv = cfg.argv(which)
    if argv is not None and path is not None:
        argv[1] = str(path)  # the location as resolved under the root directory
    return run_script(
        which,
        argv,
        timeout_s=cfg.timeout_s,
        poll_s=cfg.poll_s,
        retries=cfg.retries(which),
        continue_on_failure=cfg.continue_on_failure,
        profile=profile,
        clock=clock,
        spawn=spawn,
        pacing=pacing,
        host_timeout_s=host_timeout_s,
    )


def _host_wait(clock: Clock, start: float, poll_s: int, pacing: Pacing) -> None:
    """The plugin host checks its plugin threads every P seconds, the first time after one P.

    So a phase lasts at least P and ends on a multiple of P (the watchdog case is modelled by
    the runner, not waited for).
    """
    if not pacing.faithful:
        return
    elapsed = clock.monotonic() - start
    target = max(1, math.ceil(elapsed / poll_s - 1e-9)) * poll_s
    if target > elapsed:
        clock.sleep(target - elapsed)


def _freeze_snapshot_thaw(
    result: CycleResult,
    freezer: Freezer,
    snapshotter: Snapshotter,
    do_freeze: bool,
    clock: Clock,
    t0: float,
    notify: Observer,
    pacing: Pacing = FAITHFUL,
) -> int:
    """Freeze (iff F) -> snapshot -> thaw; returns 0 or the error code, which takes precedence.

    Faithful pacing keeps the extension's delays (errata E5, ``fsfreezer.py``): its freeze
    thread sleeps 3 s before it starts the helper, and the main thread, which waits for the
    helper's "frozen" signal in 2 s steps counted from the start, notices it only on its next
    step; the snapshot starts then. A lock with a fixed lifetime must outlast all of it.
    """
    if do_freeze:
        start = clock.monotonic()
        notify("freeze_start")
        if pacing.faithful:
            clock.sleep(FREEZE_THREAD_SLEEP_S)
            result.timeline.append(Phase("freeze-wait", start - t0, clock.monotonic() - t0))
        notify("freeze_call")  # the moment the application's disks are captured
        called = clock.monotonic()
        result.freeze = freezer.freeze()
        result.timeline.append(Phase("freeze", called - t0, clock.monotonic() - t0))
        if result.freeze.code:
            result.findings.append(
                codes.lookup(result.freeze.code).as_finding(result.freeze.message)
            )
            return result.freeze.code  # no snapshot; the helper's own timer is the thaw
        result.froze = True
        notify("frozen")
        if pacing.faithful:
            frozen = clock.monotonic()
            elapsed = frozen - start
            steps = max(1, math.ceil(elapsed / FROZEN_POLL_S - 1e-9))
            clock.sleep(max(0.0, steps * FROZEN_POLL_S - elapsed))
            result.timeline.append(Phase("frozen-poll", frozen - t0, clock.monotonic() - t0))
    try:
        start = clock.monotonic()
        notify("snapshot_start")
        result.snapshot = snapshotter.snapshot()
        result.timeline.append(Phase("snapshot", start - t0, clock.monotonic() - t0))
        notify("snapshot_end")
    finally:
        if do_freeze:
            start = clock.monotonic()
            result.thaw = freezer.thaw()
            result.timeline.append(Phase("thaw", start - t0, clock.monotonic() - t0))
            result.frozen_s = max(result.thaw.frozen_s.values(), default=0.0)
            if result.thaw.window is not None:
                a, b = result.thaw.window
                result.frozen_window = (a - t0, b - t0)
            notify("thawed")
    if result.snapshot.code:
        result.findings.append(
            codes.lookup(result.snapshot.code).as_finding(result.snapshot.message)
        )
        return result.snapshot.code
    if result.thaw is not None and result.thaw.code:
        result.findings.append(codes.lookup(result.thaw.code).as_finding(result.thaw.message))
        return result.thaw.code
    return 0


def _snapshot_only(
    result: CycleResult,
    freezer: Freezer,
    snapshotter: Snapshotter,
    clock: Clock,
    t0: float,
    notify: Observer,
    health: _HealthCode,
    pacing: Pacing,
) -> CycleResult:
    # The enhanced workload flow always freezes (OnApp*DoFsFreeze parse quirk).
    error = _freeze_snapshot_thaw(result, freezer, snapshotter, True, clock, t0, notify, pacing)
    if error:
        health.set(error)
        return _finish(result, error, health, codes.lookup(error).message)
    return _finish(
        result,
        codes.SUCCESS,
        health,
        "workload flow: the JSON scripts were not used (not emulated)",
    )


def _reported(code: int, profile: Profile) -> bool:
    """Whether a pre-check code becomes the health code.

    The extension only logs 304/305/313/314/316. The documented profile reports the docs'
    IncorrectPluginhostFile / IncorrectJSONConfigFile errors (304/305/313/314), but never 316:
    a VM without a script config is the normal, unconfigured state in the docs too.
    """
    if codes.lookup(code).reported:
        return True
    return profile.report_config_errors and code != codes.CONFIG_NOT_FOUND


def _combined(continue_backup: Any) -> Any:
    """The plugin host's ``True & continueBackup`` (errata E2): an even integer gives 0, so
    ``2`` stops the backup like ``false``. Other types never get here (:func:`_and_raises`)."""
    if type(continue_backup) in (bool, int):
        return bool(True & continue_backup)
    return continue_backup


def _thaw_inconsistent(result: CycleResult) -> bool:
    """The freeze/snapshot step's error came from the thaw, not the freeze or the snapshot."""
    return (
        result.thaw is not None
        and bool(result.thaw.code)
        and not (result.freeze is not None and result.freeze.code)
        and not (result.snapshot is not None and result.snapshot.code)
    )


def _and_raises(script: ScriptResult, continue_on_failure: Any) -> Finding | None:
    """``True & continueBackupOnFailure`` in the plugin host raises for non-bool, non-int values.

    The daemon then fails the whole run with error 2 and never runs what comes after. When the
    plugin host's watchdog fired (310/311) the plugin never reported a result, so its
    ``continueBackup`` stays True and nothing is combined with the config value.
    """
    if script.watchdog or type(continue_on_failure) in (bool, int):
        return None
    return {
        "code": codes.ERROR,
        "name": "error",
        "message": (
            f"continueBackupOnFailure is {continue_on_failure!r}; after the "
            f"{script.which}-script failed the plugin host computed True & "
            f"{continue_on_failure!r}, which raises TypeError: the extension aborts the "
            "backup (error 2) and runs nothing after this point"
        ),
        "action": 'Use a JSON boolean: "continueBackupOnFailure": true or false.',
    }


def _script_finding(script: ScriptResult) -> Finding:
    detail = ""
    if script.exit_code is not None and not script.timed_out:
        detail = f"(exit code {script.exit_code})"
    if script.output_stalled:
        detail += " The script was blocked writing more output than a pipe holds."
    if script.left_running:
        detail += f" It was left running (pid {', '.join(map(str, script.left_running))})."
    if script.watchdog:
        detail += " " + script.log[-1]
    return codes.lookup(script.error_code).as_finding(detail.strip())


def _workload_finding(pc: Precheck) -> Finding:
    name = pc.workload.workload_name if pc.workload else ""
    return {
        "code": 0,
        "name": "WorkloadConfTakesOver",
        "message": (
            f"/etc/azure/workload.conf names the workload {name!r}: the extension runs "
            "its built-in enhanced flow and ignores VMSnapshotScriptPluginConfig.json"
        ),
        "action": "Empty workload_name in /etc/azure/workload.conf to use your own scripts.",
    }


def _finish(result: CycleResult, status: int, health: _HealthCode, message: str) -> CycleResult:
    result.status = status
    if status not in (codes.SUCCESS_APP_CONSISTENT, codes.SUCCESS):
        health.set(status)
    result.health_code = health.value
    result.message = message
    return result
