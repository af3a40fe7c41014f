"""How a DLM cycle ends, in words of the harness built from DLM's own report.

DLM has no numbered codes of its own for a scripts run. What it reports is the snapshot's
system tags ``aws:dlm:pre-script`` and ``aws:dlm:post-script`` (``SUCCESS``/``FAILED``: "you
can infer successful application-consistent snapshot creation if the snapshot is tagged with
both aws:dlm:pre-script:SUCCESS and aws:dlm:post-script:SUCCESS",
https://docs.aws.amazon.com/ebs/latest/userguide/dlm-script-tags.html), whether a snapshot
exists at all, and the script's exit code in the EventBridge event's ``cause`` (AWS's document
templates: "The Error code will also be emitted via AWS Eventbridge events in the 'cause'
field", with the template's own codes 201..206). The outcome names below say which row of
DLM's table happened; a finding's ``code`` is the failing script's exit code.
"""

from __future__ import annotations

from ..records import Finding

SUCCESS = "SUCCESS"
"""Every stage the policy runs succeeded: tagged pre-script SUCCESS (and post-script SUCCESS)."""
NO_PRE_SCRIPT = "NO_PRE_SCRIPT"
"""Stages POST only: the snapshot was taken with no pre-script (crash-consistent)."""
CRASH_CONSISTENT = "CRASH_CONSISTENT_FALLBACK"
"""The pre-script failed (retries spent) and ExecuteOperationOnScriptFailure is true: DLM took
a crash-consistent snapshot, tagged pre-script FAILED, and did not run the post-script."""
SNAPSHOT_SKIPPED = "SNAPSHOT_SKIPPED"
"""The pre-script failed and ExecuteOperationOnScriptFailure is false: no snapshot for the
instance in this run, no post-script."""
POST_SCRIPT_FAILED = "POST_SCRIPT_FAILED"
"""The snapshot exists but the post-script failed (retries spent): tagged post-script FAILED;
DLM skips it and does nothing more."""
POLICY_REJECTED = "POLICY_REJECTED"
"""The script settings break the API's rules: the policy is never created, nothing runs."""
DOCUMENT_REJECTED = "DOCUMENT_REJECTED"
"""The document is missing, unreadable, or lacks what DLM requires: nothing runs."""
NOT_MODELLED = "NOT_MODELLED"
"""A handler or document the harness does not run (Windows VSS, SAP HANA, non-shell steps)."""
SNAPSHOT_FAILED = "SNAPSHOT_FAILED"
"""The stand-in's snapshot failed (a harness or disk failure, not a DLM outcome)."""

PRE_FAILED = "PRE_SCRIPT_FAILED"
PRE_TIMED_OUT = "PRE_SCRIPT_TIMED_OUT"
POST_FAILED = "POST_SCRIPT_FAILED"
POST_TIMED_OUT = "POST_SCRIPT_TIMED_OUT"
DRY_RUN_FAILED = "DRY_RUN_FAILED"
LEFT_RUNNING = "SCRIPT_LEFT_RUNNING"
"""A command DLM stopped waiting for was still running on the instance when the cycle ended."""
TEMPLATE_CODES = {
    201: "pre-script failed during execution",
    202: "post-script failed during execution",
    203: "auto thaw occurred before the post-script was initiated",
    204: "pre-script initiated while post-script was expected",
    205: "post-script initiated while pre-script was expected",
    206: "application not ready for pre or post-script initiation",
}
"""The exit codes AWS's document templates use (automate-app-consistent-backups)."""


def finding(name: str, message: str, action: str, code: int | None = None) -> Finding:
    """One ``findings`` entry."""
    return {"code": code, "name": name, "message": message, "action": action}
