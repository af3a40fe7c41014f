"""``vmsnap lint --framework aws-dlm``: pitfalls of DLM pre/post scripts run by SSM.

Errors are what the engine's pre-check reports (a policy DLM's API refuses, a document DLM
refuses). Warnings are what DLM and the SSM agent let through but still break a backup; each
cites its source in the engine's modules (:mod:`pytest_vmsnap.framework.aws_dlm`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..framework.aws_dlm.document import COMMAND_VALUES, DOCUMENT_PATH, Document, read_document
from ..framework.aws_dlm.policy import POLICY_PATH, ScriptSettings, read_policy
from . import report
from .engine_findings import database_warnings, precheck_errors
from .report import Finding
from .shell_text import ShellText, scan_shell

WARNING_IDS: tuple[str, ...] = (
    "aws-dlm-allowed-value-missing",
    "aws-dlm-command-unused",
    "aws-dlm-dry-run-not-handled",
    "aws-dlm-background-holds-output",
    "aws-dlm-sleep-exceeds-timeout",
    "aws-dlm-bash-without-shebang",
    "aws-dlm-freeze-without-auto-thaw",
    "aws-dlm-home-unset",
    "aws-dlm-fallback-without-pre",
)


_COMMAND = re.compile(r"\{\{\s*command\s*\}\}")
_BACKGROUND = re.compile(r"(?<![&>|<0-9])&(?![&>])")
_SLEEP = re.compile(r"\bsleep\s+(\d+)\b(?!\s*&)")
_BASHISM = re.compile(r"\[\[|\bfunction\s+\w+|\$\{\w+//|\bsource\s|\(\(|<<<|\bdeclare\b")
_FREEZE = re.compile(r"\bfsfreeze\s+(-f|--freeze)\b|\bxfs_freeze\s+-f\b")
_HOME = re.compile(r"(?:^|[\s=\"'])~/|\$\{?HOME\b")


def _warn(wid: str, message: str, action: str, line: int | None = None) -> Finding:
    assert wid in WARNING_IDS, wid
    return Finding(report.WARNING, wid, message, action, path=DOCUMENT_PATH, line=line)


def lint(root: Path, engine: Any) -> list[Finding]:
    """Every finding for the machine whose ``/`` is ``root``."""
    root = Path(root)
    out = precheck_errors(engine, root)
    settings = read_policy(root).settings
    out += _policy(settings)
    doc = read_document(root).document
    if doc is not None:
        out += _document(doc, settings)
    return out


def _policy(settings: ScriptSettings) -> list[Finding]:
    if settings.given and not settings.pre and settings.stages:
        # API_Script: "This parameter is supported only if you run a pre script."
        return [
            Finding(
                report.WARNING,
                "aws-dlm-fallback-without-pre",
                "the policy runs no pre-script (Stages POST): every snapshot is "
                "crash-consistent, and ExecuteOperationOnScriptFailure has no effect.",
                "Add PRE to Stages if the document quiesces the application.",
                path=POLICY_PATH,
            )
        ]
    return []


def _document(doc: Document, settings: ScriptSettings) -> list[Finding]:
    out: list[Finding] = []
    missing = doc.missing_commands
    if missing:
        out.append(
            _warn(
                "aws-dlm-allowed-value-missing",
                f"parameter command does not allow {', '.join(missing)}: Systems Manager "
                "refuses DLM's call with that value, and DLM treats it as a failed execution "
                "(a missing pre-script or post-script fails every run).",
                f"List all three in allowedValues: {', '.join(COMMAND_VALUES)}.",
            )
        )
    texts = ["\n".join(step.run_command) for step in doc.steps]
    whole = "\n".join(texts)
    # Whole-line comments do not count: a comment that says "dry-run" handles nothing.
    logic = "\n".join(scan_shell(t).logic_text() for t in texts)
    if not _COMMAND.search(logic):
        out.append(
            _warn(
                "aws-dlm-command-unused",
                "no step reads {{ command }}: the document does the same thing for dry-run, "
                "pre-script and post-script (it locks or freezes again where it should thaw).",
                'Dispatch on it: case "{{ command }}" in pre-script) ... ;; post-script) ... ;; '
                "dry-run) exit 0 ;; esac.",
            )
        )
    elif "dry-run" not in logic:
        line = _line(whole, _COMMAND)
        out.append(
            _warn(
                "aws-dlm-dry-run-not-handled",
                "the steps never mention dry-run: DLM's validation call (command=dry-run) "
                "falls into whatever branch handles other values, which may lock or freeze "
                "with no post-script to undo it.",
                "Add a dry-run branch that takes no action and exits 0.",
                line,
            )
        )
    offset = 0
    for step, text in zip(doc.steps, texts, strict=True):
        out += _step(step.name, text, offset, settings)
        offset += text.count("\n") + 1
    if _FREEZE.search(whole) and not _BACKGROUND.search(_strip_comments(whole)):
        out.append(
            _warn(
                "aws-dlm-freeze-without-auto-thaw",
                "the document freezes a file system and starts nothing that would thaw it on "
                "its own: DLM does not run the post-script after a failed or timed-out "
                "pre-script (script-flow.html), so the file system can stay frozen.",
                "Start a background auto-thaw in the pre-script (output redirected, e.g. "
                "'(sleep 60; fsfreeze -u /data) >/dev/null 2>&1 &'), and cancel it in the "
                "post-script, as AWS's templates do.",
                _line(whole, _FREEZE),
            )
        )
    return out


def _step(name: str, text: str, offset: int, settings: ScriptSettings) -> list[Finding]:
    shell: ShellText = scan_shell(text)
    out: list[Finding] = []
    for number in shell.code_matches(_BACKGROUND):
        code = shell.code[number - 1]
        stdout = re.search(r"(?:^|[^2&])>\s*\S", code)
        if (stdout and re.search(r"2>&1|2>\s*\S", code)) or "&>" in code:
            continue
        out.append(
            _warn(
                "aws-dlm-background-holds-output",
                f"step {name}, line {number}: a background job keeps the script's stdout or "
                "stderr open. The SSM agent waits for end-of-file on both (Go's Wait), so the "
                "command is not complete until that job ends: DLM fails the attempt after "
                f"ExecutionTimeout ({settings.timeout_s} s).",
                "Redirect the job's output: '... >/dev/null 2>&1 &' (or to a log file).",
                offset + number,
            )
        )
    for number in shell.code_matches(_SLEEP):
        match = _SLEEP.search(shell.code[number - 1])
        if match and int(match.group(1)) >= settings.timeout_s:
            out.append(
                _warn(
                    "aws-dlm-sleep-exceeds-timeout",
                    f"step {name}, line {number}: 'sleep {match.group(1)}' in the foreground "
                    f"is as long as ExecutionTimeout ({settings.timeout_s} s) or longer: DLM "
                    "fails the attempt before the script ends.",
                    "Keep each stage well under ExecutionTimeout (10 s by default, 120 s at "
                    "most in the policy); hold locks in a background session instead.",
                    offset + number,
                )
            )
    if not text.startswith("#!") and _BASHISM.search(shell.code_text()):
        out.append(
            _warn(
                "aws-dlm-bash-without-shebang",
                f"step {name} uses bash syntax but its runCommand does not start with "
                "'#!/bin/bash': the agent runs _script.sh with 'sh -c', so sh (dash on "
                "Debian/Ubuntu) runs it and the bash syntax fails.",
                "Make '#!/bin/bash' the first line of runCommand, or write POSIX sh.",
                offset + shell.code_matches(_BASHISM)[0],
            )
        )
    homes = shell.code_matches(_HOME)
    if homes:
        out.append(
            _warn(
                "aws-dlm-home-unset",
                f"step {name}, line {homes[0]} relies on $HOME or ~: the SSM agent is a systemd "
                "service without HOME, so its scripts have none (and ~/.my.cnf is not read).",
                "Name files explicitly (mariadb --defaults-extra-file=/root/.my.cnf, "
                "PGPASSFILE=/root/.pgpass) or use socket/peer authentication as root.",
                offset + homes[0],
            )
        )
    out += database_warnings(f"{DOCUMENT_PATH} (step {name})", shell, True)
    return out


def _line(text: str, pattern: re.Pattern[str]) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.search(line):
            return number
    return None


def _strip_comments(text: str) -> str:
    return "\n".join(
        line.split("#", 1)[0] if not line.startswith("#!") else "" for line in text.splitlines()
    )
