"""The guest agent's error codes, and the outcomes the harness names where the agent has none.

``AgentErrorCode`` comes from ``google_guest_agent/snapshot_service/snapshot_service.proto``
(GoogleCloudPlatform/guest-agent): the agent answers each PRE_SNAPSHOT / POST_SNAPSHOT request
with one of these and the script's return code. ``INVALID_CONFIG`` is in the proto, but the
agent's code never sends it (``snapshot_listener.go`` sets only the other four).
"""

from __future__ import annotations

from ..records import Finding

NO_ERROR = 0
INVALID_CONFIG = 1
SCRIPT_NOT_FOUND = 2
SCRIPT_TIMED_OUT = 3
UNHANDLED_SCRIPT_ERROR = 4

AGENT_ERROR_CODES: dict[int, str] = {
    NO_ERROR: "NO_ERROR",
    INVALID_CONFIG: "INVALID_CONFIG",
    SCRIPT_NOT_FOUND: "SCRIPT_NOT_FOUND",
    SCRIPT_TIMED_OUT: "SCRIPT_TIMED_OUT",
    UNHANDLED_SCRIPT_ERROR: "UNHANDLED_SCRIPT_ERROR",
}
"""``AgentErrorCode`` of the proto, number to name."""

TIMEOUT_EXIT = 124
"""``run.WithOutputTimeout`` sets the exit code to 124 "by convention" when its deadline passed
(``google_guest_agent/run/run.go``); ``runScript`` maps exactly 124 to SCRIPT_TIMED_OUT, so a
script that exits 124 itself is reported as a timeout too."""

# Outcomes with no agent code: the agent never answers, or the harness's own step failed.
SNAPSHOTS_NOT_ENABLED = "SNAPSHOTS_NOT_ENABLED"
"""``[Snapshots] enabled`` is false: the agent starts no snapshot listener
(``instance_setup.go`` ``agentInit``), so no script runs and the host gets no answer."""
CONFIG_LOAD_FAILED = "CONFIG_LOAD_FAILED"
"""The config cannot be read: ``main.go`` prints "Failed to load configuration" and exits 1
(systemd restarts it, and it fails the same way), so no listener runs."""
NO_RESPONSE = "NO_RESPONSE"
"""The agent is still waiting on a script (its output pipes never closed): it never answers
the host. The harness gives up after its own bound."""
SNAPSHOT_FAILED = "SNAPSHOT_FAILED"
"""The stand-in's snapshot step failed (a harness fault, not the agent's)."""
PIPES_HELD_OPEN = "PIPES_HELD_OPEN"
"""A note: the agent waited for a script's output pipes well after the script exited."""

ACTIONS: dict[str, str] = {
    "SCRIPT_NOT_FOUND": "Install the script at its fixed path (/etc/google/snapshots/pre.sh "
    "and post.sh); an empty one that exits 0 is fine for a phase with nothing to do.",
    "SCRIPT_TIMED_OUT": "Make the script finish well inside timeout_in_seconds (or raise it in "
    "[Snapshots]), never exit 124 yourself, and send every background process's stdout and "
    "stderr away from the agent (>/dev/null 2>&1) so that it does not wait for them.",
    "UNHANDLED_SCRIPT_ERROR": "Make the script exit 0 when it did its job; the agent executes "
    "it directly, so it needs a '#!' line naming an installed interpreter and an exec bit.",
    SNAPSHOTS_NOT_ENABLED: "Add '[Snapshots]' with 'enabled = true' to "
    "/etc/default/instance_configs.cfg and restart google-guest-agent.",
    CONFIG_LOAD_FAILED: "Fix the config so that it parses (every line 'key = value', every "
    "section '[Name]'); until then the agent does not start at all.",
    NO_RESPONSE: "Start background processes with their output redirected (</dev/null "
    ">/dev/null 2>&1 &): the agent waits until every holder of the script's stdout and "
    "stderr has closed them, timeout or not.",
    SNAPSHOT_FAILED: "The stand-in's snapshot failed: see the snapshot message (a harness "
    "fault, not the scripts').",
    PIPES_HELD_OPEN: "Redirect the background process's stdout and stderr (>/dev/null 2>&1) "
    "so that the agent answers as soon as the script exits.",
}


def name(code: int) -> str:
    """The proto's name of an ``AgentErrorCode``."""
    return AGENT_ERROR_CODES.get(code, f"AgentErrorCode({code})")


def finding(outcome: str | int, message: str, action: str = "") -> Finding:
    """A finding for an agent code (``code`` is its number) or a harness outcome (None)."""
    if isinstance(outcome, int):
        return {
            "code": outcome,
            "name": name(outcome),
            "message": message,
            "action": action or ACTIONS.get(name(outcome), ""),
        }
    return {"code": None, "name": outcome, "message": message, "action": action or ACTIONS[outcome]}
