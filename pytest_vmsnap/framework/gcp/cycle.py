"""One guest-flush snapshot as the guest agent and the host run it, and its outcome table.

The agent's side is code (GoogleCloudPlatform/guest-agent): at start it loads the config
(``main.go``; a load error ends the agent), starts the snapshot listener only when
``[Snapshots] enabled`` (``instance_setup.go`` ``agentInit``), creates
``/etc/google/snapshots`` (0700) if missing, and then answers each request by running one
script (``snapshot_listener.go`` ``getSnapshotResponse`` / ``runScript``): PRE_SNAPSHOT runs
``pre.sh``, POST_SNAPSHOT ``post.sh``, each with the request's disk list as its one argument,
and the answer is an ``AgentErrorCode`` with the script's return code. The agent freezes
nothing and never calls fsfreeze: the harness's freezer is never used.

The host's side is not in the agent's code. The docs (Compute Engine, "Create Linux
application consistent disk snapshots") say "no snapshot is created in the event of a script
error or timeout" and that consistency is "guaranteed only by the behavior of your custom pre
and post snapshot scripts". They do not say whether the host sends POST_SNAPSHOT after a failed
pre-script, nor what happens to a guest-flush request when the agent does not answer. The
engine takes the conservative reading of each, and says so in the result's message:

- any PRE_SNAPSHOT answer other than NO_ERROR: no snapshot, and ``post.sh`` is not run;
- any POST_SNAPSHOT answer other than NO_ERROR: the snapshot taken before it is discarded
  (the docs' sentence is not limited to the pre-script);
- no answer (listener disabled, the agent not running, a script whose pipes never close):
  no snapshot;
- a failed snapshot step (the stand-in's, not the agent's): ``post.sh`` still runs (the host
  ends the operation with POST_SNAPSHOT), no snapshot.

Pacing: neither the agent nor the docs have a delay between the PRE answer, the snapshot and
the POST request, so ``FAITHFUL`` and ``PROMPT`` run the same.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..interfaces import NoOpSnapshotter, Snapshotter
from ..outcome import APPLICATION, NO_SNAPSHOT, Call, FrameworkCycle, Timeline, snapshot
from ..scripts import Clock, ScriptResult, Spawn, SystemClock
from . import codes, config, discovery
from .codes import (
    NO_ERROR,
    SCRIPT_NOT_FOUND,
    SCRIPT_TIMED_OUT,
    TIMEOUT_EXIT,
    UNHANDLED_SCRIPT_ERROR,
)
from .runner import AgentRun, run_script

NAME = "gcp"
PIPES_NOTE_S = 0.5
"""A wait this long for a script's pipes after it exited is worth a finding."""
HOST_SIDE_PRE = (
    "post.sh was not run: whether the host sends POST_SNAPSHOT after a failed pre-script is "
    "not documented, and the harness assumes it does not (so pre.sh must undo its own "
    "quiesce when it fails)"
)
HOST_SIDE_POST = (
    "the snapshot taken before it is treated as not created: the docs say no snapshot is "
    "created on a script error or timeout without limiting that to pre.sh, and the harness "
    "takes that reading"
)


def run_cycle(
    root: Path | str,
    *,
    disks: str,
    hang_bound_s: float,
    snapshotter: Snapshotter | None = None,
    clock: Clock | None = None,
    spawn: Spawn,
    observer: Callable[[str], None] | None = None,
) -> FrameworkCycle:
    """One PRE_SNAPSHOT, snapshot, POST_SNAPSHOT cycle on the machine whose ``/`` is
    ``root`` (see the module doc for the outcome table)."""
    root = Path(root)
    clock = clock or SystemClock()
    snapshotter = snapshotter or NoOpSnapshotter()
    result = FrameworkCycle(NAME, freezes=False, real_freeze=False)
    result.real_snapshot = bool(getattr(snapshotter, "real", True))
    tl = Timeline(result, clock, observer or (lambda _event: None))
    start = tl.now()

    try:
        cfg = config.load(root)
    except config.ConfigError as err:
        result.precheck_log.append(str(err))
        tl.mark("precheck", start)
        tl.notify("precheck_end")
        return _no_answer(
            result,
            codes.CONFIG_LOAD_FAILED,
            f"No snapshot: the guest agent cannot load its config and exits ({err}); no "
            "script ran and the host got no answer.",
        )
    result.precheck_log.extend(cfg.ignored)
    if not cfg.enabled:
        tl.mark("precheck", start)
        tl.notify("precheck_end")
        why = f"enabled = {cfg.values['enabled'].raw!r} from {cfg.source('enabled')}"
        return _no_answer(
            result,
            codes.SNAPSHOTS_NOT_ENABLED,
            f"No snapshot: [Snapshots] is not enabled ({why}), so the guest agent runs no "
            "snapshot listener: no script ran and a --guest-flush request gets no answer "
            "from the guest (the harness assumes the host then creates no snapshot).",
        )
    result.precheck_log.append("Snapshot listener enabled")
    if discovery.ensure_dir(root):
        result.precheck_log.append(f"created {discovery.SCRIPTS_DIR} (mode 0700)")
    tl.mark("precheck", start)
    tl.notify("precheck_end")

    def side(which: str) -> tuple[AgentRun | None, int]:
        tl.notify(f"{which}_start")
        begin = tl.now()
        run, code = _run_one(root, which, cfg, disks, spawn, clock, hang_bound_s)
        result.calls.append(
            Call(which, discovery.SCRIPTS[which], run.result if run else _nf(which))
        )
        tl.mark(which, begin)
        tl.notify(f"{which}_end")
        return run, code

    pre_run, pre_code = side("pre")
    result.pre = result.side(("pre",))
    if pre_run is not None and pre_run.hung:
        return _hung(result, "pre", pre_run, cfg, hang_bound_s, HOST_SIDE_PRE)
    _note_pipes(result, "pre", pre_run)
    if pre_code != NO_ERROR:
        detail = _script_detail("pre", pre_run, pre_code, cfg)
        result.findings.append(codes.finding(pre_code, detail))
        return _end(
            result, NO_SNAPSHOT, codes.name(pre_code), f"No snapshot: {detail}; {HOST_SIDE_PRE}."
        )

    taken = snapshot(result, snapshotter, tl)

    post_run, post_code = side("post")
    result.post = result.side(("post",))
    if post_run is not None and post_run.hung:
        return _hung(result, "post", post_run, cfg, hang_bound_s, HOST_SIDE_POST)
    _note_pipes(result, "post", post_run)
    if not taken:
        snap = result.snapshot
        why = snap.message if snap else "no result"
        result.findings.append(
            codes.finding(codes.SNAPSHOT_FAILED, f"The stand-in's snapshot failed: {why}")
        )
        return _end(
            result,
            NO_SNAPSHOT,
            codes.SNAPSHOT_FAILED,
            f"No snapshot: the snapshot step failed ({why}); post.sh ran after it "
            f"({codes.name(post_code)}).",
        )
    if post_code != NO_ERROR:
        detail = _script_detail("post", post_run, post_code, cfg)
        result.findings.append(codes.finding(post_code, detail))
        _discard(result)
        return _end(
            result,
            NO_SNAPSHOT,
            codes.name(post_code),
            f"No snapshot kept: {detail}; {HOST_SIDE_POST}.",
        )
    return _end(
        result,
        APPLICATION,
        codes.name(NO_ERROR),
        "pre.sh and post.sh both answered NO_ERROR and the snapshot was taken between them; "
        "the agent froze nothing, so its consistency rests on what the scripts did.",
    )


def _run_one(
    root: Path,
    which: str,
    cfg: config.SnapshotsConfig,
    disks: str,
    spawn: Spawn,
    clock: Clock,
    hang_bound_s: float,
) -> tuple[AgentRun | None, int]:
    """``runScript``: SCRIPT_NOT_FOUND, else run it; 124 is SCRIPT_TIMED_OUT, any other
    non-zero UNHANDLED_SCRIPT_ERROR."""
    location = discovery.SCRIPTS[which]
    if discovery.missing(root, location):
        return None, SCRIPT_NOT_FOUND
    argv = [str(discovery.host_path(root, location)), disks]
    run = run_script(
        which, argv, timeout_ns=cfg.timeout_ns, spawn=spawn, clock=clock, hang_bound_s=hang_bound_s
    )
    if run.hung:
        # Were the agent ever to return, it would be after the deadline: 124, a timeout.
        run.result.error_code = SCRIPT_TIMED_OUT
        return run, SCRIPT_TIMED_OUT
    code = run.exit_code
    agent = (
        NO_ERROR
        if code == 0
        else SCRIPT_TIMED_OUT
        if code == TIMEOUT_EXIT
        else UNHANDLED_SCRIPT_ERROR
    )
    run.result.error_code = agent
    return run, agent


def _nf(which: str) -> ScriptResult:
    result = ScriptResult(which, None, error_code=SCRIPT_NOT_FOUND)
    result.log.append(f"os.stat({discovery.SCRIPTS[which]}) failed: no such file or directory")
    return result


def _script_detail(which: str, run: AgentRun | None, code: int, cfg: config.SnapshotsConfig) -> str:
    """What happened to the script, in one clause, with the agent's code."""
    name = f"{which}.sh"
    tag = codes.name(code)
    if run is None:
        return f"{discovery.SCRIPTS[which]} does not exist ({tag}, return code -1)"
    r = run.result
    if not run.started and r.start_error == "context deadline exceeded":
        return (
            f"timeout_in_seconds is {cfg.timeout_in_seconds} (a deadline of {cfg.timeout_s:g} s), "
            f"so the agent's deadline had passed before {name} could start: it never ran ({tag})"
        )
    if not run.started:
        return f"the agent could not execute {name}: {r.start_error} ({tag}, return code -1)"
    took = run.exited_after_s or 0.0
    status = run.script_status
    if code == SCRIPT_TIMED_OUT:
        if run.killed:
            return (
                f"{name} was still running at the agent's {cfg.timeout_s:g} s timeout and was "
                f"killed (SIGKILL to the script alone; its children live on) ({tag})"
            )
        if status == TIMEOUT_EXIT and (run.returned_after_s or 0) < run.deadline_s:
            return (
                f"{name} exited 124 itself after {took:.1f} s, which the agent cannot tell from "
                f"its own timeout ({tag}; its timeout is {cfg.timeout_s:g} s)"
            )
        return (
            f"{name} exited {status} after {took:.1f} s, but a process it started kept its "
            f"stdout/stderr open, so the agent's wait only returned after "
            f"{run.returned_after_s or 0:.1f} s, past its {cfg.timeout_s:g} s timeout ({tag})"
        )
    if status is not None and status < 0:
        return f"{name} was killed by signal {-status}: the agent reports return code -1 ({tag})"
    return f"{name} exited {status} after {took:.1f} s ({tag})"


def _note_pipes(result: FrameworkCycle, which: str, run: AgentRun | None) -> None:
    """A finding when the agent waited on a script's pipes long after it exited (and still
    answered in time): the script's background process inherited them."""
    if run is None or run.exited_after_s is None or run.returned_after_s is None:
        return
    waited = run.returned_after_s - run.exited_after_s
    if waited < PIPES_NOTE_S or run.exit_code == TIMEOUT_EXIT:
        return
    result.findings.append(
        codes.finding(
            codes.PIPES_HELD_OPEN,
            f"{which}.sh exited after {run.exited_after_s:.1f} s, but the agent waited "
            f"{waited:.1f} s more for its stdout/stderr to close: a process it started in the "
            "background holds them, and the agent answered only when that process ended (a "
            "lock holder that ends there has released its lock before the snapshot).",
        )
    )


def _hung(
    result: FrameworkCycle,
    which: str,
    run: AgentRun,
    cfg: config.SnapshotsConfig,
    bound: float,
    host_side: str,
) -> FrameworkCycle:
    took = run.exited_after_s
    ended = f"exited after {took:.1f} s" if took is not None else "was killed at the timeout"
    message = (
        f"{which}.sh {ended}, but a process it started still holds its stdout/stderr "
        f"{bound:g} s after the agent's {cfg.timeout_s:g} s timeout: the real agent keeps waiting "
        "until every process holding them has ended (for ever, if none ends) and only then "
        "answers the host (the harness stopped waiting at "
        "its bound, hang_bound_s)"
    )
    result.findings.append(codes.finding(codes.NO_RESPONSE, message + "."))
    if which == "post":
        _discard(result)
    return _end(result, NO_SNAPSHOT, codes.NO_RESPONSE, f"No snapshot: {message}; {host_side}.")


def _discard(result: FrameworkCycle) -> None:
    """The snapshot the stand-in took is not one the framework reports as created."""
    snap = result.snapshot
    if snap is not None and snap.taken:
        snap.taken = False
        snap.detail["captured_then_discarded"] = True
        snap.message = (snap.message + " " if snap.message else "") + (
            "(captured, then discarded: the post-script failed)"
        )


def _no_answer(result: FrameworkCycle, outcome: str, message: str) -> FrameworkCycle:
    result.findings.append(codes.finding(outcome, message))
    return _end(result, NO_SNAPSHOT, outcome, message)


def _end(result: FrameworkCycle, status: int, outcome: str, message: str) -> FrameworkCycle:
    result.status, result.outcome, result.message = status, outcome, message
    return result
