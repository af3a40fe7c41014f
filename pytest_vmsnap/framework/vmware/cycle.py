"""One quiesced snapshot as the vmbackup plugin runs it on Linux, state by state.

Source: vmware/open-vm-tools ``open-vm-tools/services/plugins/vmbackup/`` (HEAD of
2026-05): ``stateMachine.c`` (``VmBackupStartCommon``, ``VmBackupAsyncCallback``,
``VmBackupOnError``, ``VmBackupDoAbort``, ``VmBackupSnapshotDone``), ``scriptOps.c``
(``VmBackup_NewScriptOp``, ``VmBackupRunNextScript``, ``VmBackupScriptOpQuery``),
``syncDriverOps.c`` and ``nullProvider.c``; the README's state diagram:

    IDLE -> SCRIPT_FREEZE -> SYNC_FREEZE_WAIT -> SYNC_FREEZE -> SYNC_THAW -> SCRIPT_THAW -> IDLE
    errors: SCRIPT_FREEZE/SYNC_ERROR -> SCRIPT_ERROR (freezeFail scripts) -> IDLE;
            SYNC_FREEZE_WAIT/SYNC_FREEZE/SYNC_THAW -> SYNC_ERROR; SCRIPT_THAW -> IDLE.

The list of scripts is built once (on freeze) and one index walks it: up on ``freeze``, down
on ``thaw`` or ``freezeFail`` from where it stopped. So a failing freeze script does not get
``freezeFail`` itself, only the ones before it do, in reverse; a failing thaw script does not
stop the others and the error is sent to the host once they all ran; a failing freezeFail
script is ignored. The abort timer (``timeout``, default 900 s) runs from the first freeze
script to the end of the thaw scripts; when it fires it kills the running script and
unwinds from the current state (no later thaw script runs; freezeFail scripts have no timer).

The harness's freezer and snapshotter stand for the SyncDriver (FIFREEZE on every local
mount, thawed in ``VmBackupSnapshotDone``) and the host (``prov.snapshotCommit`` ->
snapshot -> ``vmbackup.snapshotDone``, or ``vmbackup.abort`` when the snapshot failed).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import outcome as oc
from ..interfaces import Freezer, NoOpFreezer, NoOpSnapshotter, Snapshotter
from ..scripts import FAITHFUL, Clock, Pacing, Spawn, SystemClock
from . import codes, config, discovery, environment, runner
from .runner import BOUND, EXIT, TIMER, Clockwork, Running

FREEZE, FREEZE_FAIL, THAW = "freeze", "freezeFail", "thaw"
"""The first argument of each call (``scriptOp`` in ``VmBackupRunNextScript``)."""

# Provider kinds (``VmBackupStartCommon``'s choice).
SYNC_DRIVER = "SyncDriver"
SYNC_DRIVER_ONLY = "SyncDriverOnly"
NULL = "NullProvider"

# Script-op statuses (``VmBackupOpStatus``) and the two ways a wait ends early.
FINISHED, ERROR = "finished", "error"


def provider(cfg: config.VmbackupConfig) -> str | None:
    """The sync provider ``VmBackupStartCommon`` picks for ``vmbackup.start`` on Linux.

    ``forceQuiesce`` false (its default for this RPC): the SyncDriver when
    ``enableSyncDriver``, else the null provider (``sync()`` and no freeze). ``forceQuiesce``
    true: with ``quiesceApps`` or ``quiesceFS`` only the SyncDriver without null fallback
    (and only if ``quiesceFS`` and ``enableSyncDriver``), else none: "Requested quiescing
    cannot be initialized."; with neither, the null provider.
    """
    if not cfg.force_quiesce:
        return SYNC_DRIVER if cfg.enable_sync_driver else NULL
    if cfg.quiesce_apps or cfg.quiesce_fs:
        return SYNC_DRIVER_ONLY if cfg.quiesce_fs and cfg.enable_sync_driver else None
    return NULL


@dataclass
class _Scripts:
    """``state->scripts`` and ``state->currentScript``, and the op walking them."""

    root: Path
    cfg: config.VmbackupConfig
    spawn: Spawn
    clock: Clock
    on_call: Callable[[oc.Call], None]
    paths: list[str] | None = None
    current: int = 0
    running: Running | None = None
    op: str = FREEZE
    thaw_failed: bool = False
    start_failures: list[str] = field(default_factory=list)

    def new_op(self, op: str) -> bool:
        """``VmBackup_NewScriptOp``: False when it failed (the first start failed)."""
        self.op, self.thaw_failed = op, False
        if op == FREEZE:
            slots = discovery.script_list(self.root)
            self.paths, self.current = (slots, -1) if slots else (None, 0)
        elif self.paths and self.paths[0] == discovery.LEGACY_FREEZE:
            self.paths[0] = discovery.LEGACY_THAW
        return not (self.paths is not None and self.run_next() == -1)

    def run_next(self) -> int:
        """``VmBackupRunNextScript``: 1 started, 0 none left, -1 error."""
        assert self.paths is not None
        paths = self.paths
        step = 1 if self.op == FREEZE else -1
        self.current += step
        index = self.current
        ret = 0
        while 0 <= index < len(paths):
            if discovery.is_file(self.root, paths[index]):
                if self._start(index):
                    return 1
                if self.op == FREEZE:
                    return -1
                self.thaw_failed = True
            self.current += step
            index = self.current
            if index == -1:
                # "all thaw/fail scripts failed to start": slot 0 may be a legacy script that
                # does not exist, so the entry checked is slot 1 then. Its process handle is
                # always NULL by now (freed when it ended), so this is an error whenever that
                # entry exists: a legacy pre-freeze-script without post-thaw-script plus any
                # script in backupScripts.d makes every thaw (and freezeFail) walk fail.
                fail_idx = 0 if discovery.is_file(self.root, paths[0]) else 1
                if fail_idx < len(paths):
                    ret = -1
        return ret

    def _start(self, index: int) -> bool:
        location = self.paths[index] if self.paths else ""
        host = str(discovery.host_path(self.root, location))
        argv = [environment.shell(), "-c", environment.command(host, self.op, self.cfg.script_arg)]
        result, run = runner.start(index, location, self.op, argv, self.spawn, self.clock)
        self.on_call(oc.Call(self.op, location, result))
        if run is None:
            self.start_failures.append(location)
        self.running = run
        return run is not None

    def query(self, work: Clockwork) -> str:
        """``VmBackupScriptOpQuery`` called tick after tick until it is not pending:
        :data:`FINISHED`, :data:`ERROR`, or the deadline that came first."""
        while True:
            run = self.running
            if self.paths is None or self.current < 0 or run is None:
                return FINISHED
            ended = runner.wait(run, work)
            if ended != EXIT:
                return ended  # the caller unwinds: the script was killed
            tick = work.next_tick()  # the end is noticed at the next tick
            self.running = None
            succeeded = not run.result.failed
            if not succeeded and self.op == FREEZE:
                return ERROR
            if not succeeded and self.op == THAW:
                self.thaw_failed = True
            if tick:
                return tick  # the timer fired between the script's end and the tick
            nxt = self.run_next()
            if nxt == -1:
                return ERROR
            if nxt == 0:
                return ERROR if self.thaw_failed else FINISHED


@dataclass
class Options:
    """What the engine hands the cycle."""

    harness_bound_s: float
    sync: Callable[[], None] = os.sync
    """The null provider's ``sync()``."""


def run_cycle(
    root: Path | str,
    *,
    options: Options,
    freezer: Freezer | None = None,
    snapshotter: Snapshotter | None = None,
    clock: Clock | None = None,
    spawn: Spawn | None = None,
    pacing: Pacing | None = None,
    observer: Callable[[str], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> oc.FrameworkCycle:
    """One ``vmbackup.start`` to ``req.done`` on the machine whose ``/`` is ``root``."""
    root = Path(root)
    cfg = config.load(root)
    clock = clock or SystemClock()
    freezer = freezer or NoOpFreezer()
    snapshotter = snapshotter or NoOpSnapshotter()
    kind = provider(cfg)
    result = oc.FrameworkCycle(
        "vmware",
        freezes=kind in (SYNC_DRIVER, SYNC_DRIVER_ONLY),
        real_freeze=getattr(freezer, "real", True),
        real_snapshot=getattr(snapshotter, "real", True),
    )
    tl = oc.Timeline(result, clock, observer or (lambda event: None))
    cycle = _Cycle(root, cfg, kind, options, result, tl, freezer, snapshotter)
    spawn = spawn or environment.vmtoolsd_spawn(cfg, env)
    cycle.run(spawn, clock, pacing or FAITHFUL)
    return result


@dataclass
class _Cycle:
    root: Path
    cfg: config.VmbackupConfig
    kind: str | None
    options: Options
    result: oc.FrameworkCycle
    tl: oc.Timeline
    freezer: Freezer
    snapshotter: Snapshotter
    state: str = "IDLE"
    events_sent: list[tuple[int, str]] = field(default_factory=list)

    # -- reporting -------------------------------------------------------------------------

    def send(self, code: int, message: str) -> None:
        """A ``req.error``/``req.aborted`` event to the host (``VmBackup_SendEvent``)."""
        self.events_sent.append((code, message))
        self.result.precheck_log.append(f"event to host: {codes.NAMES[code]} {message}")

    def end(self, outcome: str, message: str) -> None:
        r = self.result
        r.outcome, r.message = outcome, message
        r.pre = r.side((FREEZE,))
        r.post = r.side((THAW, FREEZE_FAIL))
        if not r.snapshot_taken:
            r.status = oc.NO_SNAPSHOT
        elif outcome == codes.SUCCESS:
            r.status = oc.APPLICATION
        else:
            r.status = oc.NOT_QUIESCED

    # -- the cycle -------------------------------------------------------------------------

    def run(self, spawn: Spawn, clock: Clock, pacing: Pacing) -> None:
        r, cfg = self.result, self.cfg
        self._config_findings()
        self.tl.notify("precheck_end")
        if self.kind is None:
            r.findings.append(
                codes.finding(
                    "QuiesceNotInitialized",
                    "forceQuiesce=true asks for file-system quiescing (quiesceApps or quiesceFS) "
                    "but the SyncDriver is not allowed (quiesceFS=false or "
                    "enableSyncDriver=false): 'Requested quiescing cannot be initialized.', "
                    "the request fails before any script runs.",
                    "Set quiesceFS=true and enableSyncDriver=true, or forceQuiesce=false.",
                )
            )
            self.end(codes.NOT_INITIALIZED, f"{codes.INIT_ERROR} No script ran, no snapshot.")
            return
        t0 = clock.monotonic()
        work = Clockwork(
            clock,
            pacing.faithful,
            t0,
            t0 + cfg.timeout_s if cfg.timeout_s else None,
            t0 + self.options.harness_bound_s,
        )
        self.work = work
        self.scripts = _Scripts(self.root, cfg, spawn, clock, r.calls.append)
        start = self.tl.now()
        self.tl.notify("pre_start")
        status = FINISHED
        if cfg.exec_scripts:
            if not self.scripts.new_op(FREEZE):
                self.send(codes.VMBACKUP_SCRIPT_ERROR, codes.START_FAILED_EVENT)
                self.tl.mark("pre", start)
                self.tl.notify("pre_end")
                self._start_failed_findings()
                self.end(
                    codes.NOT_INITIALIZED,
                    f"{codes.INIT_ERROR} The first freeze script could not be started; "
                    "no snapshot.",
                )
                return
            status = self.scripts.query(work)
        else:
            r.findings.append(
                codes.finding(
                    "ScriptsDisabled",
                    "execScripts=false in [vmbackup]: vmtoolsd runs no freeze or thaw script; "
                    "the snapshot is file-system quiesced only.",
                    "Remove execScripts=false (its default is true) to run the scripts.",
                )
            )
        self.state = "SCRIPT_FREEZE"
        self.tl.mark("pre", start)
        self.tl.notify("pre_end")
        if status == ERROR:
            self._freeze_script_failed()
            return
        if status in (TIMER, BOUND):
            self._abort(status)
            return
        self._sync_and_snapshot()

    def _freeze_script_failed(self) -> None:
        failed = [c for c in self.result.calls if c.phase == FREEZE and c.result.failed]
        where = failed[-1].path if failed else "a freeze script"
        self.send(codes.VMBACKUP_SCRIPT_ERROR, codes.SCRIPT_FAILED_EVENT)
        crashed = self._on_error()
        self._script_findings()
        self.result.findings.append(
            codes.finding(
                codes.APPLICATION_QUIESCE_FAULT,
                f"{where} failed with '{FREEZE}': vmtoolsd stopped the freeze scripts, ran "
                "the ones before it with 'freezeFail' in reverse order, and the host failed "
                "the quiesced snapshot (ApplicationQuiesceFault: 'Custom quiesce script "
                "failed.').",
                "Make the freeze script exit 0 once the application is quiesced, and non-zero "
                "only when it is not; undo on 'freezeFail' what 'freeze' did.",
                codes.VMBACKUP_SCRIPT_ERROR,
            )
        )
        if crashed:
            return
        self.end(
            codes.APPLICATION_QUIESCE_FAULT,
            f"The freeze script {where} failed: no snapshot (ApplicationQuiesceFault).",
        )

    def _sync_and_snapshot(self) -> None:
        r, work = self.result, self.work
        # SCRIPT_FREEZE -> SYNC_FREEZE_WAIT at the tick that saw the last script end.
        self.state = "SYNC_FREEZE_WAIT"
        froze = False
        if self.kind == NULL:
            self.options.sync()  # nullProvider.c VmBackupNullStart: sync(), nothing frozen
            r.findings.append(
                codes.finding(
                    "NullProvider",
                    "The null provider is in use (enableSyncDriver=false): vmtoolsd calls "
                    "sync() and freezes no file system before the snapshot.",
                    "Keep enableSyncDriver=true unless your scripts quiesce every writer "
                    "themselves.",
                )
            )
        else:
            if not oc.freeze(r, self.freezer, self.tl):
                self._sync_failed(
                    "The SyncDriver could not freeze the file systems",
                    "Look for a file system already frozen by another process (a freeze "
                    "script that ran fsfreeze?) or one that cannot be frozen; list it in "
                    "excludedFileSystems.",
                )
                return
            froze = True
        # SYNC_FREEZE_WAIT -> SYNC_FREEZE at the next tick: prov.snapshotCommit to the host.
        work.next_tick()
        self.state = "SYNC_FREEZE"
        if not oc.snapshot(r, self.snapshotter, self.tl):
            # The host aborts: VmBackupDoAbort in SYNC_FREEZE undoes the freeze, then
            # SYNC_ERROR -> freezeFail scripts.
            if froze:
                oc.thaw(r, self.freezer, self.tl)
            self.send(codes.VMBACKUP_REMOTE_ABORT, codes.CANCELED_EVENT)
            self.state = "SYNC_ERROR"
            work.next_tick()
            crashed = self._on_error()
            r.findings.append(
                codes.finding(
                    codes.REMOTE_ABORT,
                    "The snapshot failed after the file systems were frozen: the host aborted "
                    "the quiesce, vmtoolsd thawed and ran every script with 'freezeFail'.",
                    "See why the snapshot failed; the scripts' 'freezeFail' branch must undo "
                    "what 'freeze' did.",
                    codes.VMBACKUP_REMOTE_ABORT,
                )
            )
            if not crashed:
                self.end(codes.REMOTE_ABORT, "The snapshot failed: the host aborted the quiesce.")
            return
        # vmbackup.snapshotDone: the SyncDriver thaws at once (VmBackupSnapshotDone).
        if froze and not oc.thaw(r, self.freezer, self.tl):
            self.send(codes.VMBACKUP_SYNC_ERROR, codes.SYNC_NOTIFY_EVENT)
            self.state = "SYNC_ERROR"
            work.next_tick()
            crashed = self._on_error()
            r.findings.append(
                codes.finding(
                    codes.SYNC_ERROR,
                    "Thawing the file systems failed after the snapshot ('Error when notifying "
                    "the sync provider.'): vmtoolsd ran the scripts with 'freezeFail', not "
                    "'thaw'.",
                    "Find what thawed or held the file systems during the snapshot.",
                    codes.VMBACKUP_SYNC_ERROR,
                )
            )
            if not crashed:
                self.end(codes.SYNC_ERROR, "The thaw failed after the snapshot.")
            return
        self.state = "SYNC_THAW"
        reason = work.next_tick()  # SYNC_THAW -> SCRIPT_THAW at the next tick
        if reason:
            self._abort(reason)
            return
        self._thaw_scripts()

    def _thaw_scripts(self) -> None:
        r = self.result
        start = self.tl.now()
        self.tl.notify("post_start")
        status = FINISHED
        if self.cfg.exec_scripts:
            if not self.scripts.new_op(THAW):
                # VmBackupStartScripts failed in SYNC_THAW: VmBackupOnError -> SYNC_ERROR.
                self.tl.mark("post", start)
                self.tl.notify("post_end")
                self.send(codes.VMBACKUP_SCRIPT_ERROR, codes.START_FAILED_EVENT)
                self.state = "SYNC_ERROR"
                self.work.next_tick()
                if not self._on_error():
                    self._start_failed_findings()
                    self.end(codes.SCRIPT_ERROR, "A thaw script could not be started.")
                return
            self.state = "SCRIPT_THAW"
            status = self.scripts.query(self.work)
        self.tl.mark("post", start)
        self.tl.notify("post_end")
        if status in (TIMER, BOUND):
            self._abort(status, thaw_side_done=True)
            return
        if status == ERROR:
            self.send(codes.VMBACKUP_SCRIPT_ERROR, codes.SCRIPT_FAILED_EVENT)
            self._script_findings()
            failed = [c.path for c in r.calls if c.phase == THAW and c.result.failed]
            if failed:
                what = f"the thaw script(s) {', '.join(failed)} failed"
                detail = (
                    "vmtoolsd ran the other thaw scripts all the same and reported the error "
                    "to the host once they had run"
                )
            else:
                what = "the thaw walk reported an error although no thaw script failed"
                detail = (
                    f"{discovery.LEGACY_FREEZE} exists without {discovery.LEGACY_THAW}: the "
                    "slot kept for the legacy scripts is empty on thaw and "
                    "VmBackupRunNextScript reports that as a failure"
                )
            r.findings.append(
                codes.finding(
                    codes.SCRIPT_ERROR,
                    f"After the snapshot {what}: {detail} ('Custom quiesce script failed.'). "
                    "The snapshot was already taken; the host sees the quiesce as failed.",
                    "Make every thaw script exit 0 when the application runs again"
                    if failed
                    else f"Add {discovery.LEGACY_THAW} (it may just 'exit 0') or remove "
                    f"{discovery.LEGACY_FREEZE}.",
                    codes.VMBACKUP_SCRIPT_ERROR,
                )
            )
            self.end(codes.SCRIPT_ERROR, f"Snapshot taken, but {what}.")
            return
        self._script_findings()
        self.end(codes.SUCCESS, self._success_message())

    def _success_message(self) -> str:
        runs = [c for c in self.result.calls if c.result.ran]
        frozen = "frozen" if self.result.froze else "not frozen (null provider)"
        return (
            f"Quiesced snapshot taken: {len(runs)} script call(s), file systems {frozen}; "
            "vmtoolsd reported success (req.done)."
        )

    # -- errors and aborts -----------------------------------------------------------------

    def _on_error(self) -> bool:
        """``VmBackupOnError`` from SCRIPT_FREEZE or SYNC_ERROR: the freezeFail walk.
        True when it ended vmtoolsd itself (the outcome is then set here)."""
        start = self.tl.now()
        self.tl.notify("post_start")
        crashed = False
        if self.cfg.exec_scripts and self.scripts.paths is not None:
            if self.scripts.new_op(FREEZE_FAIL):
                self.state = "SCRIPT_ERROR"
                self.work.timer_fired = True  # DoAbort ignores the timer in SCRIPT_ERROR
                status = self.scripts.query(self.work)
                if status == BOUND:
                    self.tl.mark("post", start)
                    self.tl.notify("post_end")
                    self._hung("a freezeFail script", "freezeFail scripts have no timeout")
                    return True
                if status == ERROR:
                    crashed = True
            else:
                self.send(codes.VMBACKUP_SCRIPT_ERROR, codes.START_FAILED_EVENT)
        self.tl.mark("post", start)
        self.tl.notify("post_end")
        if crashed:
            self.result.findings.append(
                codes.finding(
                    codes.VMTOOLSD_ABORTED,
                    "The freezeFail walk reported an error (an empty legacy slot: "
                    f"{discovery.LEGACY_FREEZE} without {discovery.LEGACY_THAW}), and "
                    "VmBackupOnError has no case for the SCRIPT_ERROR state: g_error() ends "
                    "vmtoolsd ('Unexpected machine state on error: SCRIPT_ERROR').",
                    f"Add {discovery.LEGACY_THAW} (it may just 'exit 0') or remove "
                    f"{discovery.LEGACY_FREEZE}.",
                )
            )
            self.end(codes.VMTOOLSD_ABORTED, "vmtoolsd ended itself during the freezeFail walk.")
        return crashed

    def _sync_failed(self, what: str, action: str) -> None:
        self.send(codes.VMBACKUP_SYNC_ERROR, codes.SYNC_ENABLE_EVENT)
        self.state = "SYNC_ERROR"
        self.work.next_tick()  # EnableSync sees the error at the next tick
        self.work.next_tick()  # SYNC_ERROR -> freezeFail at the one after
        crashed = self._on_error()
        self.result.findings.append(
            codes.finding(
                codes.SYNC_ERROR,
                f"{what} ('Error when enabling the sync provider.'): vmtoolsd ran every script "
                "with 'freezeFail'; no snapshot.",
                action,
                codes.VMBACKUP_SYNC_ERROR,
            )
        )
        if not crashed:
            self.end(codes.SYNC_ERROR, f"{what}: no snapshot.")

    def _abort(self, reason: str, thaw_side_done: bool = False) -> None:
        """``VmBackupAbortTimer`` -> ``VmBackupDoAbort``: the running script was killed; from
        SCRIPT_FREEZE the freezeFail walk follows, from SCRIPT_THAW nothing more runs."""
        cfg, work = self.cfg, self.work
        if reason == BOUND and (work.timer_at is None or work.timer_at > work.bound_at):
            if cfg.timeout_s == 0:
                self._hung("a script", "timeout=0 turns vmtoolsd's abort timer off")
                return
            self.result.findings.append(
                codes.finding(
                    "HarnessBound",
                    f"The harness stopped waiting after {self.options.harness_bound_s:g} s; "
                    f"vmtoolsd would have waited until its abort timer at {cfg.timeout_s} s "
                    "and then done what follows here.",
                    "Make the scripts end well within the timeout; raise the harness bound "
                    "to watch the real timing.",
                )
            )
        work.timer_fired = True
        self.send(codes.VMBACKUP_REMOTE_ABORT, codes.CANCELED_EVENT)
        killed = [c.path for c in self.result.calls if c.result.timed_out]
        who = f" ({', '.join(killed)} killed)" if killed else ""
        if self.state == "SCRIPT_FREEZE":
            crashed = self._on_error()
            self.result.findings.append(
                codes.finding(
                    codes.REMOTE_ABORT,
                    f"The quiesce ran into vmtoolsd's abort timer ({cfg.timeout_s} s) during "
                    f"the freeze scripts{who}: 'Quiesce canceled.'; the scripts before it ran "
                    "with 'freezeFail'; no snapshot.",
                    "Make the freeze scripts return well within the timeout (a background "
                    "session holds a lock; the script must not wait for it).",
                    codes.VMBACKUP_REMOTE_ABORT,
                )
            )
            if not crashed:
                self.end(codes.REMOTE_ABORT, f"Aborted by the timeout during freeze{who}.")
            return
        self.result.findings.append(
            codes.finding(
                codes.REMOTE_ABORT,
                f"The quiesce ran into vmtoolsd's abort timer ({cfg.timeout_s} s) during the "
                f"thaw scripts{who}: 'Quiesce canceled.'; the thaw scripts not yet run never "
                "run (the application may stay quiesced).",
                "Make the thaw scripts end quickly; the timer counts from the first freeze script.",
                codes.VMBACKUP_REMOTE_ABORT,
            )
        )
        self.end(codes.REMOTE_ABORT, f"Snapshot taken, then aborted by the timeout{who}.")

    def _hung(self, what: str, why: str) -> None:
        self._script_findings()
        self.result.findings.append(
            codes.finding(
                codes.HARNESS_BOUND,
                f"{what[0].upper()}{what[1:]} did not end within the harness's bound of "
                f"{self.options.harness_bound_s:g} s and was killed; {why}: the real "
                "vmtoolsd would wait forever, and refuse every later quiesce ('Quiesce "
                "operation already in progress.').",
                "Make every script end; keep a non-zero timeout in [vmbackup].",
            )
        )
        self.end(codes.HARNESS_BOUND, f"{what} hung; vmtoolsd would wait forever.")

    # -- findings --------------------------------------------------------------------------

    def _config_findings(self) -> None:
        cfg = self.cfg
        if cfg.load_error:
            self.result.findings.append(
                codes.finding(
                    "ConfigNotLoaded",
                    f"{config.TOOLS_CONF}: {cfg.load_error}. vmtoolsd drops the whole file "
                    "and uses the default of every key.",
                    "Fix the line GLib names; every line must be a [group], key=value, blank or "
                    "a # comment.",
                )
            )
        for warning in cfg.warnings:
            self.result.findings.append(
                codes.finding(
                    "ConfigValueIgnored",
                    f"{config.TOOLS_CONF}: {warning} (the default is used).",
                    "Booleans are true/false/1/0 (lower case); timeout is whole seconds.",
                )
            )

    def _script_findings(self) -> None:
        for call in self.result.calls:
            code = call.result.exit_code
            if code is not None and code < 0 and not call.result.timed_out:
                self.result.findings.append(
                    codes.finding(
                        "ScriptKilledCountedAsSuccess",
                        f"{call.path} ('{call.phase}') was killed by signal {-code}; vmtoolsd "
                        "reads the exit code of a killed script as 0 and carried on as if it "
                        "had succeeded.",
                        "Do not rely on a crash to report a failure: exit non-zero yourself.",
                    )
                )
            if call.result.exit_code == 126 and call.result.ran:
                self.result.findings.append(
                    codes.finding(
                        "ScriptNotExecutable",
                        f"{call.path} could not be executed (status 126, 'Permission denied'): "
                        "vmtoolsd runs every regular file of the directory, executable or not.",
                        f"chmod 0755 {call.path}",
                    )
                )

    def _start_failed_findings(self) -> None:
        for location in self.scripts.start_failures:
            self.result.findings.append(
                codes.finding(
                    "ScriptNotStarted",
                    f"{location} could not be started (ProcMgr_ExecAsync failed).",
                    "Check that the machine can fork and that the shell exists.",
                )
            )
