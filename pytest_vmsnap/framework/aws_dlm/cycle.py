"""One DLM schedule run for one instance: dry-run, pre-script, snapshot, post-script.

DLM's side, from its documentation (the service's code is not public):

- "Amazon Data Lifecycle Manager initiates the pre script action by calling the SSM document
  and passing the pre-script parameter", then initiates snapshot creation, then "initiates the
  post script action by calling the SSM document and passing the post-script parameter"
  (https://docs.aws.amazon.com/ebs/latest/userguide/script-flow.html, steps 1..7). The post
  script runs "after the pre script succeeds and the snapshot creation has been initiated";
  "If the pre script fails, Amazon Data Lifecycle Manager will not run the post script"
  (automate-app-consistent-backups, Shared responsibility). DLM never freezes a file system:
  the document does whatever quiesce there is.
- ``ExecutionTimeout``: "after which Amazon Data Lifecycle Manager fails the script run attempt
  if it has not completed ... applies to the pre and post scripts individually" (API_Script).
  DLM's managed policy (AWSDataLifecycleManagerSSMFullAccess) grants SendCommand,
  GetCommandInvocation, ListCommands, DescribeInstanceInformation, GetDocument and
  DescribeDocument, not CancelCommand: DLM stops waiting but the command runs on under the
  agent until the step's own ``timeoutSeconds`` (default 3600 s) kills it (inference from
  that policy; modelled so).
- Pre failure table (script-flow.html, step 3): retry "until it succeeds or retries are
  exhausted" (``MaximumRetryCount``: "If the pre script fails, Amazon Data Lifecycle Manager
  retries the entire snapshot creation process, including running the pre and post scripts");
  then "Create crash-consistent snapshots, and do not run post script" when
  ExecuteOperationOnScriptFailure is true, "Skip snapshot creation for the target instance,
  and do not run post script" when false.
- Post failure table (step 7): "Retry post script until it succeeds or retries are exhausted",
  then "Skip post script"; the snapshot may exist. The snapshot is tagged
  ``aws:dlm:post-script=FAILED``, so DLM does not report it application-consistent
  (dlm-script-tags.html).
- ``dry-run``: the templates say it "is intended for validating the document execution without
  triggering any commands on the instance". When DLM sends it is not documented; the engine
  sends it once before the pre-script (``dry_run=False`` skips it) and reports a failure as a
  finding without changing the outcome (what DLM then does is not documented either).

No documented delay separates these steps (DLM's polling interval is not published): the
pacing changes nothing.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..interfaces import NoOpSnapshotter, Snapshotter
from ..outcome import APPLICATION, NO_SNAPSHOT, NOT_QUIESCED, Call, FrameworkCycle, Timeline
from ..outcome import snapshot as take_snapshot
from ..scripts import Clock, ScriptResult, SystemClock
from . import codes
from .agent import Command, Starter, step_timeout
from .document import DOCUMENT_PATH, Document, read_document
from .policy import POLICY_PATH, ScriptSettings, read_policy

FRAMEWORK = "aws-dlm"


def precheck_findings(root: Path) -> tuple[list[codes.Finding], ScriptSettings, Document | None]:
    """What stops DLM before anything runs: a policy the API refuses, a document it refuses."""
    policy = read_policy(root)
    doc = read_document(root)
    out = []
    if policy.error:
        out.append(
            codes.finding(
                codes.POLICY_REJECTED,
                f"DLM's API refuses these script settings ({POLICY_PATH}): {policy.error}",
                "fix the Script settings: Stages PRE and/or POST, ExecutionTimeout 10..120, "
                "MaximumRetryCount 0..3, ExecuteOperationOnScriptFailure true/false",
            )
        )
    elif policy.unsupported:
        out.append(
            codes.finding(
                codes.NOT_MODELLED,
                policy.unsupported,
                "test a custom SSM document (ExecutionHandler = your document's name)",
            )
        )
    if doc.document is None:
        out.append(
            codes.finding(
                codes.DOCUMENT_REJECTED,
                doc.error,
                "write a Command document (schemaVersion 2.2) whose parameter command has "
                "allowedValues pre-script, post-script and dry-run, with an aws:runShellScript "
                "step that acts on {{ command }}",
            )
        )
    return out, policy.settings, doc.document


@dataclass
class _Sent:
    phase: str
    value: str
    command: Command
    result: ScriptResult


@dataclass
class Dlm:
    """DLM's side of one run: sends the document with a ``command`` value and waits for it
    at most ``ExecutionTimeout``; what it stopped waiting for runs on (:attr:`inflight`)."""

    root: Path
    document: Document
    settings: ScriptSettings
    starter: Starter
    env: Mapping[str, str]
    clock: Clock
    time_scale: float = 1.0
    execution_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    inflight: list[_Sent] = field(default_factory=list)

    def send(self, phase: str, value: str) -> ScriptResult:
        """One SendCommand and DLM's wait for its status."""
        res = ScriptResult(phase, None, start_s=self.clock.monotonic())
        res.attempts = 1
        args = self.document.arguments(value, self.execution_id)
        if isinstance(args, str):
            res.end_s = self.clock.monotonic()
            res.error_code = 1
            res.start_error = args
            res.log.append(f"SendCommand command={value} refused by Systems Manager: {args}")
            return res
        cmd = Command(
            self.root,
            self.document,
            args,
            res,
            self.starter,
            self.env,
            self.clock,
            time_scale=self.time_scale,
        )
        cmd.start()
        limit = self.settings.timeout_s
        if cmd.wait(limit * self.time_scale):
            res.end_s = cmd.end_s
            res.exit_code = cmd.exit_code
            status = cmd.status
            if status != "Success":
                res.error_code = 1
                res.timed_out = status == "TimedOut"
            res.log.append(f"command={value}: {status}")
            return res
        res.end_s = self.clock.monotonic()
        res.timed_out = True
        res.error_code = 1
        if cmd.current is not None:
            res.left_running.append(cmd.current.pid)
        res.log.append(
            f"command={value}: not complete after ExecutionTimeout {limit} s: DLM fails the "
            "attempt; the command keeps running on the instance"
        )
        self.inflight.append(_Sent(phase, value, cmd, res))
        return res

    def end(self) -> list[codes.Finding]:
        """The cycle is over: commands DLM gave up on either finished meanwhile or are ended
        now (the harness's bound; the agent would wait for the step's own timeout)."""
        out = []
        for sent in self.inflight:
            if sent.command.done.is_set():
                sent.result.log.append(
                    f"the command finished later, on its own: {sent.command.status} "
                    f"(exit {sent.command.exit_code})"
                )
                continue
            pid = sent.command.cancel()
            agent_limit = max((step_timeout(s.timeout) for s in self.document.steps), default=3600)
            sent.result.log.append("still running when the cycle ended: ended by the harness")
            out.append(
                codes.finding(
                    codes.LEFT_RUNNING,
                    f"the {sent.phase} command (command={sent.value}"
                    f"{f', pid {pid}' if pid else ''}) "
                    f"was still running when the cycle ended. DLM had stopped waiting after "
                    f"{self.settings.timeout_s} s; the SSM agent lets it run until the step's "
                    f"timeoutSeconds ({agent_limit} s) and then kills its process group. The "
                    "harness ended it at the end of the cycle: on AWS whatever it holds "
                    "(a lock, a frozen file system) lasts that long",
                    "make the script finish well within ExecutionTimeout (and redirect the "
                    "output of anything it leaves in the background), or raise ExecutionTimeout "
                    "(up to 120 s)",
                )
            )
        return out


def run_cycle(
    root: Path,
    *,
    starter: Starter,
    env: Mapping[str, str],
    snapshotter: Snapshotter | None = None,
    clock: Clock | None = None,
    observer: Callable[[str], None] | None = None,
    dry_run: bool = True,
    time_scale: float = 1.0,
) -> FrameworkCycle:
    """Run one schedule run of the policy on the machine whose ``/`` is ``root``."""
    snapshotter = snapshotter or NoOpSnapshotter()
    clock = clock or SystemClock()
    notify = observer or (lambda event: None)
    result = FrameworkCycle(FRAMEWORK, freezes=False)
    result.real_freeze = False  # DLM never freezes: nothing of the harness's freezer is used
    result.real_snapshot = bool(getattr(snapshotter, "real", True))
    tl = Timeline(result, clock, notify)

    start = tl.now()
    problems, settings, document = precheck_findings(root)
    result.precheck_log.append(
        f"policy: Stages {'+'.join(settings.stages) or '-'}, ExecutionTimeout "
        f"{settings.timeout_s} s, MaximumRetryCount {settings.retries}, "
        f"ExecuteOperationOnScriptFailure {str(settings.crash_fallback).lower()}"
        + ("" if settings.given else " (DLM's defaults: no policy file)")
    )
    tl.mark("precheck", start)
    notify("precheck_end")
    if problems or document is None:
        result.findings += problems
        result.status = NO_SNAPSHOT
        result.outcome = problems[0]["name"] if problems else codes.DOCUMENT_REJECTED
        result.message = f"{result.outcome}: no script ran and no snapshot was taken. " + (
            problems[0]["message"] if problems else ""
        )
        return result

    dlm = Dlm(root, document, settings, starter, env, clock, time_scale=time_scale)
    try:
        _run(result, dlm, settings, snapshotter, tl, dry_run)
    finally:
        result.findings += dlm.end()
    return result


def _send(result: FrameworkCycle, dlm: Dlm, tl: Timeline, phase: str, value: str) -> ScriptResult:
    start = tl.now()
    res = dlm.send(phase, value)
    result.calls.append(Call(phase, DOCUMENT_PATH, res))
    tl.mark(phase, start)
    return res


def _side(runs: list[ScriptResult]) -> ScriptResult | None:
    """The side's record for ``scripts.pre``/``post``: the last attempt, counting them all."""
    if not runs:
        return None
    return dataclasses.replace(runs[-1], attempts=len(runs), retries_logged=len(runs) - 1)


def _run(
    result: FrameworkCycle,
    dlm: Dlm,
    settings: ScriptSettings,
    snapshotter: Snapshotter,
    tl: Timeline,
    dry_run: bool,
) -> None:
    if dry_run:
        res = _send(result, dlm, tl, "dry-run", "dry-run")
        if res.failed:
            result.findings.append(
                codes.finding(
                    codes.DRY_RUN_FAILED,
                    f"the document failed with command=dry-run ({_how(res, settings)}): a "
                    "validation run of the document fails",
                    "handle dry-run in the document: take no action and exit 0",
                    _code(res),
                )
            )

    pre_runs: list[ScriptResult] = []
    if settings.pre:
        tl.notify("pre_start")
        for _ in range(settings.retries + 1):
            pre_runs.append(_send(result, dlm, tl, "pre", "pre-script"))
            if not pre_runs[-1].failed:
                break
        tl.notify("pre_end")
        result.pre = _side(pre_runs)

    if pre_runs and pre_runs[-1].failed:
        last = pre_runs[-1]
        name = codes.PRE_TIMED_OUT if last.timed_out else codes.PRE_FAILED
        tries = f"{len(pre_runs)} attempt{'s' if len(pre_runs) > 1 else ''}"
        if settings.crash_fallback:
            if not take_snapshot(result, snapshotter, tl):
                _snapshot_failed(result)
                return
            result.status, result.outcome = NOT_QUIESCED, codes.CRASH_CONSISTENT
            result.message = (
                f"the pre-script failed ({_how(last, settings)}, {tries}): DLM took a "
                "crash-consistent snapshot (ExecuteOperationOnScriptFailure true), tagged "
                "aws:dlm:pre-script=FAILED, and did not run the post-script"
            )
        else:
            result.status, result.outcome = NO_SNAPSHOT, codes.SNAPSHOT_SKIPPED
            result.message = (
                f"the pre-script failed ({_how(last, settings)}, {tries}): DLM skipped the "
                "snapshot for this instance (ExecuteOperationOnScriptFailure false) and did "
                "not run the post-script"
            )
        result.findings.insert(
            0,
            codes.finding(
                name,
                result.message + ". Whatever the pre-script had done (a lock, a freeze) is not "
                "undone by DLM",
                "make the pre-script succeed within ExecutionTimeout, and undo its own work "
                "(unlock, thaw) before it exits with an error",
                _code(last),
            ),
        )
        return

    if not take_snapshot(result, snapshotter, tl):
        _snapshot_failed(result)
        # DLM's docs do not say whether it runs the post-script when snapshot creation cannot
        # be initiated; the engine runs it so that a harness failure leaves nothing held.
        if settings.post:
            _post(result, dlm, settings, tl)
        return

    post_ok = _post(result, dlm, settings, tl) if settings.post else True
    if not post_ok:
        post = result.post
        assert post is not None
        last = post
        result.status, result.outcome = NOT_QUIESCED, codes.POST_SCRIPT_FAILED
        result.message = (
            f"the snapshot was taken but the post-script failed ({_how(last, settings)}, "
            f"{last.attempts} attempt{'s' if last.attempts > 1 else ''}): DLM tags it "
            "aws:dlm:post-script=FAILED and skips the post-script"
        )
        result.findings.insert(
            0,
            codes.finding(
                codes.POST_TIMED_OUT if last.timed_out else codes.POST_FAILED,
                result.message + "; the application may still be quiesced",
                "make the post-script succeed within ExecutionTimeout; release what the "
                "pre-script holds even when it finds nothing to release",
                _code(last),
            ),
        )
        return
    if not settings.pre:
        result.status, result.outcome = NOT_QUIESCED, codes.NO_PRE_SCRIPT
        result.message = (
            "the policy runs no pre-script (Stages POST): the snapshot is crash-consistent"
            + ("; the post-script succeeded" if settings.post else "")
        )
        return
    result.status, result.outcome = APPLICATION, codes.SUCCESS
    tags = "aws:dlm:pre-script=SUCCESS" + (
        " and aws:dlm:post-script=SUCCESS" if settings.post else ""
    )
    result.message = f"the scripts succeeded: DLM tags the snapshot {tags}"


def _post(result: FrameworkCycle, dlm: Dlm, settings: ScriptSettings, tl: Timeline) -> bool:
    runs: list[ScriptResult] = []
    tl.notify("post_start")
    for _ in range(settings.retries + 1):
        runs.append(_send(result, dlm, tl, "post", "post-script"))
        if not runs[-1].failed:
            break
    tl.notify("post_end")
    result.post = _side(runs)
    return not runs[-1].failed


def _snapshot_failed(result: FrameworkCycle) -> None:
    snap = result.snapshot
    result.status, result.outcome = NO_SNAPSHOT, codes.SNAPSHOT_FAILED
    result.message = f"the snapshot failed: {snap.message if snap else 'no result'}"
    result.findings.append(
        codes.finding(
            codes.SNAPSHOT_FAILED,
            result.message,
            "a failure of the stand-in's snapshot, not of the scripts: see its message",
        )
    )


def _how(res: ScriptResult, settings: ScriptSettings) -> str:
    if res.start_error:
        return res.start_error
    if res.timed_out and res.exit_code is None:
        return f"not complete within ExecutionTimeout {settings.timeout_s} s"
    if res.timed_out:
        return f"timed out on the instance (exit {res.exit_code})"
    meaning = codes.TEMPLATE_CODES.get(res.exit_code or 0)
    return f"exit {res.exit_code}" + (f": {meaning}" if meaning else "")


def _code(res: ScriptResult) -> int | None:
    return res.exit_code if res.exit_code not in (None, 0) else None
