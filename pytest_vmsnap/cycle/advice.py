"""Findings the harness adds from what the scripts did, where the framework's own advice
would mislead."""

from __future__ import annotations

from ..framework.azure import codes
from ..framework.records import Finding
from ..lint.pre_waits import WAITS_ON_POST_ACTION, waits_on_post
from ..settings import Settings
from .protocol import CycleRecord


def pre_waits_on_post(settings: Settings, cycle: CycleRecord) -> list[Finding]:
    """A pre-script that ran into its timeout because it waits on what only the post-script
    does: the timeout's advice (raise timeoutInSeconds) would not help, so it is replaced."""
    pre = cycle.scripts.get("pre") or {}
    if not pre.get("timed_out") or settings.pre is None or settings.post is None:
        return []
    try:
        why = waits_on_post(
            settings.pre.read_text(errors="replace"), settings.post.read_text(errors="replace")
        )
    except OSError:
        return []
    if why is None:
        return []
    for finding in cycle.findings:
        if finding.get("code") == codes.PRE_TIMEOUT:
            finding["action"] = "Raising timeoutInSeconds does not help: see PreScriptWaitsOnPost."
    return [
        {
            "code": None,
            "name": "PreScriptWaitsOnPost",
            "message": f"The pre-script ran until its timeout: {why} The extension starts "
            "the post-script only after the pre-script has returned.",
            "action": WAITS_ON_POST_ACTION,
        }
    ]
