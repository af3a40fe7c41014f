"""The battery's fault checks for the frameworks other than Azure (Azure's are in
:mod:`.battery`): each fault mapped onto the framework's own failure modes.

A fault replaces the user's script for one side (a pair's pre- or post-script) or the whole
hook (a script called with ``freeze``/``thaw``, keeping its name: the order of a ``.d``
directory is the names' order) with one that hangs or fails there, or injects a snapshot
failure with the user's own scripts; where the framework's timeout can be set, a config sets
it short so the cycle stays lean. Each framework's expected row (its status on the common
scale and its own word) comes from its outcome table, with the source in the engine beside the
rule (``docs/frameworks/<name>.md``).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..cycle.result import RunResult
from ..framework.interfaces import SnapshotResult
from ..framework.outcome import APPLICATION, NO_SNAPSHOT, NOT_QUIESCED
from ..report.html.checks import Expected
from ..settings import Settings
from .battery import Check, Context, fail_row


@dataclass(frozen=True)
class Row:
    """What a fault gets from one framework: the status, the framework's word, and the
    config that makes its timeout short (the fault that hangs), when it has one."""

    status: int
    outcome: str
    config: str | None = None
    """The config's text for this fault (replacing the user's: it sets the timeout short)."""
    config_name: str = "config"


HANG_S = 30
"""How long a hanging script sleeps: past every short timeout below, never reached."""

ROWS: dict[str, dict[str, Row]] = {
    # framework/vmware/cycle.py (open-vm-tools stateMachine.c, scriptOps.c).
    "vmware": {
        "pre-hangs": Row(
            NO_SNAPSHOT, "VMBACKUP_REMOTE_ABORT", "[vmbackup]\ntimeout = 3\n", "tools.conf"
        ),
        "pre-fails": Row(NO_SNAPSHOT, "ApplicationQuiesceFault"),
        "post-fails": Row(NOT_QUIESCED, "VMBACKUP_SCRIPT_ERROR"),
        "snapshot-fails": Row(NO_SNAPSHOT, "VMBACKUP_REMOTE_ABORT"),
    },
    # framework/gcp/cycle.py (guest-agent snapshot_listener.go; the docs: no snapshot on a
    # script error or timeout).
    "gcp": {
        "pre-hangs": Row(
            NO_SNAPSHOT,
            "SCRIPT_TIMED_OUT",
            "[Snapshots]\nenabled = true\ntimeout_in_seconds = 2\n",
            "instance_configs.cfg",
        ),
        "pre-fails": Row(NO_SNAPSHOT, "UNHANDLED_SCRIPT_ERROR"),
        "post-fails": Row(NO_SNAPSHOT, "UNHANDLED_SCRIPT_ERROR"),
        "post-missing": Row(NO_SNAPSHOT, "SCRIPT_NOT_FOUND"),
        "snapshot-fails": Row(NO_SNAPSHOT, "SNAPSHOT_FAILED"),
    },
    # framework/qemu_ga/engine.py (qga commands-posix.c; the stock wrapper exits 0 whatever its
    # scripts did: the failure is hidden, and the verdict says so).
    "qemu-ga": {
        "pre-fails": Row(APPLICATION, "HOOK_FAILURE_HIDDEN"),
        "post-fails": Row(APPLICATION, "HOOK_FAILURE_HIDDEN"),
        "snapshot-fails": Row(NO_SNAPSHOT, "SNAPSHOT_FAILED"),
    },
    # framework/aws_dlm/cycle.py (DLM's script flow: the crash-consistent fallback by default;
    # ExecutionTimeout's least value, 10 s, is its default).
    "aws-dlm": {
        "pre-hangs": Row(NOT_QUIESCED, "CRASH_CONSISTENT_FALLBACK"),
        "pre-fails": Row(NOT_QUIESCED, "CRASH_CONSISTENT_FALLBACK"),
        "post-fails": Row(NOT_QUIESCED, "POST_SCRIPT_FAILED"),
        "snapshot-fails": Row(NO_SNAPSHOT, "SNAPSHOT_FAILED"),
    },
}
"""Each framework's rows, by fault (a fault a framework has no row for is not collected).

qemu-ga has no ``pre-hangs`` row: qga puts no timeout on its hook, so the real agent waits
for ever (its conformance suite and lint cover it; a cycle would only wait for the harness's
bound)."""

TITLES = {
    "pre-hangs": "fault: the freeze side hangs past the framework's timeout",
    "pre-fails": "fault: the freeze side fails",
    "post-fails": "fault: the thaw side fails",
    "post-missing": "fault: the post-script is missing",
    "snapshot-fails": "fault: the snapshot fails after the freeze side ran",
}

# ``exec``: the hanging process is the script itself, so a framework that kills the script
# (and not its children) ends it, and no child holds its output open.
_HOOK = {
    "pre-hangs": f'case "$1" in freeze) exec sleep {HANG_S} ;; esac\nexit 0\n',
    "pre-fails": 'case "$1" in freeze) echo "simulated failure" >&2; exit 1 ;; esac\nexit 0\n',
    "post-fails": 'case "$1" in thaw) echo "simulated failure" >&2; exit 3 ;; esac\nexit 0\n',
}
"""A hook replaced whole: it does its fault on its verb and nothing else (no lock taken, so
nothing is left to release)."""


def checks(settings: Settings) -> list[Check]:
    """The fault checks of ``settings.framework`` for the shape of the user's files."""
    rows = ROWS.get(settings.framework, {})
    out = []
    for fault, row in rows.items():
        whole = settings.hook is not None or settings.document is not None
        if whole and fault == "post-missing":
            continue  # a hook or a document has no separate post-script to lose
        out.append(Check(f"fault-{fault}", TITLES[fault], _check(fault, row)))
    return out


def _check(fault: str, row: Row) -> Callable[[Context], None]:
    def check(ctx: Context) -> None:
        s = ctx.settings
        hooks = {}
        if fault == "snapshot-fails":
            hooks["snapshot"] = lambda: SnapshotResult(
                2, False, "injected", message="snapshot failure injected after the freeze side"
            )
        else:
            s = _faulty(ctx, fault, row)
        key = f"fault-{fault}"
        r = ctx.cycle(key, s, hooks, expected=Expected.framework_outcome(row.status, row.outcome))
        _expect(r, row, TITLES[fault].removeprefix("fault: "))

    check.__doc__ = (
        f"{TITLES[fault].removeprefix('fault: ').capitalize()}: the framework's row of its "
        "outcome table (its status and its own word for it), and the application is left "
        "writable."
    )
    return check


def _faulty(ctx: Context, fault: str, row: Row) -> Settings:
    """Settings with the fault's script (and config) in place of the user's."""
    s = ctx.settings
    tmp = ctx.fault_dir()
    if s.document is not None:  # AWS DLM: the document is the script
        document = tmp / s.document.name
        _write(document, _fault_document(fault))
        s = s.with_(document=document)
    elif s.hook is not None:
        hook = tmp / s.hook.name
        _write(hook, "#!/bin/sh\n" + _HOOK[fault])
        s = s.with_(hook=hook)
    else:
        which = "pre" if fault.startswith("pre") else "post"
        script = tmp / f"{which}.sh"
        _write(script, "#!/bin/sh\n" + _pair_body(s, fault))
        s = s.with_(**{which: None if fault == "post-missing" else script})
    if row.config is not None:
        config = tmp / row.config_name
        config.write_text(row.config)
        config.chmod(0o644)
        s = s.with_(config=config)
    return s


def _pair_body(s: Settings, fault: str) -> str:
    if fault == "pre-hangs":
        return f"exec sleep {HANG_S}\n"
    if fault == "pre-fails":
        return "echo 'simulated failure' >&2\nexit 1\n"
    # post-fails: the user's own post-script first (it releases what the pre-script holds),
    # then the failure: what is tested is the framework's handling of a failed post-script.
    body = "exit 3\n"
    if s.post is not None:
        text = Path(s.post).read_text(errors="replace")
        body = f'sh -c {shlex.quote(text)} post.sh "$@"\nexit 3\n'
    return body


def _fault_document(fault: str) -> str:
    """An SSM command document that does the fault for its command and nothing else."""
    verb = {"pre-hangs": "pre-script", "pre-fails": "pre-script", "post-fails": "post-script"}
    what = {
        "pre-hangs": f"exec sleep {HANG_S}",
        "pre-fails": "echo 'simulated failure' >&2; exit 1",
        "post-fails": "echo 'simulated failure' >&2; exit 3",
    }
    document = {
        "schemaVersion": "2.2",
        "description": f"vmsnap fault: {fault}",
        "parameters": {
            "command": {
                "type": "String",
                "allowedValues": ["pre-script", "post-script", "dry-run"],
            }
        },
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": "fault",
                "inputs": {
                    "runCommand": [
                        "#!/bin/sh",
                        f'case "{{{{ command }}}}" in {verb[fault]}) {what[fault]} ;; esac',
                        "exit 0",
                    ]
                },
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _expect(r: RunResult, row: Row, label: str) -> None:
    wrong = ""
    if (r.status, r.cycle.outcome if r.cycle else "") != (row.status, row.outcome):
        got = r.cycle.outcome if r.cycle else "no cycle"
        wrong = f"expected {row.outcome} (status {row.status}), got {got} (status {r.status})"
    fail_row(r, wrong, label)
