"""``vmsnap lint``: the extension's own pre-check, plus warnings about what bites users.

Errors come from running :func:`pytest_vmsnap.framework.checks.precheck` exactly as the
extension would; each is the framework code with its docs name, message and action. Warnings
are everything the pre-check lets through but that still breaks backups in practice: bash
syntax in scripts that run under ``sh``, ignored shebangs and retries, timeouts that are
rounded or capped, params that are split into characters or crash the plugin thread, paths
other users can replace, a ``workload.conf`` that takes over, locks released before the
snapshot, and where the ``extension`` and ``documented`` profiles part ways for this config.

Every warning has a stable id (see :data:`WARNING_IDS`), a message and a recommended action.
"""

from __future__ import annotations

import difflib
import grp
import json
import math
import os
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .framework import codes
from .framework import profiles as profiles_mod
from .framework.checks import Precheck, precheck, resolve
from .framework.config import (
    DEFAULT_POLL_S,
    HOST_TIMEOUT_CAP_S,
    PLUGIN_CONFIG,
    WORKLOAD_CONF,
    host_watchdog_s,
    timeout_budget,
)
from .framework.profiles import DOCUMENTED, EXTENSION, Profile

ERROR = "error"
WARNING = "warning"

# Stable warning ids: tools and tests match on these, so never rename one.
WARNING_IDS = (
    "workload-takes-over",
    "host-no-plugins",
    "bashism",
    "sh-syntax",
    "checkbashisms",
    "crlf",
    "utf8-bom",
    "shebang-ignored",
    "not-shell",
    "exit-2",
    "script-unreadable",
    "params-string",
    "params-not-list",
    "params-crash",
    "params-non-string-item",
    "params-empty-item",
    "plugin-name-not-string",
    "timeout-missing",
    "timeout-rounded",
    "timeout-capped",
    "timeout-not-positive",
    "poll-ignored",
    "poll-truncated",
    "retries-ignored",
    "retries-not-number",
    "flag-not-boolean",
    "unknown-key",
    "duplicate-key",
    "writable-path",
    "profile-difference",
    "lock-released-on-exit",
    "pg-start-backup-removed",
    "pg-backup-start-session",
    "redis-bgsave-no-wait",
    "script-freezes-fs",
)

KNOWN_KEYS = (
    "pluginName",
    "appName",
    "preScriptLocation",
    "postScriptLocation",
    "preScriptParams",
    "postScriptParams",
    "preScriptNoOfRetries",
    "postScriptNoOfRetries",
    "timeoutInSeconds",
    "continueBackupOnFailure",
    "fsFreezeEnabled",
    "ScriptsExecutionPollTimeSeconds",
)

# The extension only logs these; the docs present them as reported errors. 316 is excluded:
# an unconfigured VM is the normal state in the docs too.
_LOGGED_ONLY_DOCUMENTED = codes.LOGGED_ONLY - {codes.CONFIG_NOT_FOUND}

_SCRIPT_READ_LIMIT = 1024 * 1024  # scripts are text; a larger file is judged by its head
_SYNTAX_CHECK_TIMEOUT_S = 10
_MAX_LINES_SHOWN = 5


# --------------------------------------------------------------------------------------------
# Findings and the report


@dataclass(frozen=True)
class Finding:
    """One problem: an error (a framework code the pre-check raises) or a warning (an id)."""

    severity: str
    id: str
    message: str
    action: str
    code: int | None = None
    name: str = ""
    path: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form; errors keep the ``{code, name, message, action}`` shape."""
        return {
            "severity": self.severity,
            "id": self.id,
            "code": self.code,
            "name": self.name or self.id,
            "message": self.message,
            "action": self.action,
            "path": self.path,
            "line": self.line,
        }

    def format_text(self) -> str:
        """Two lines: what is wrong, then the indented recommended action."""
        if self.severity == ERROR:
            head = f"error {self.code} {self.name}: {self.message}"
        else:
            head = f"warning {self.id}: {self.message}"
        return f"{head}\n    -> {self.action}"


@dataclass
class LintReport:
    """Everything ``lint`` found for one machine root."""

    root: str
    profile: str
    findings: list[Finding] = field(default_factory=list)
    precheck_codes: dict[str, int] = field(default_factory=dict)
    """The pre-check's code under each profile (0 = passes)."""

    @property
    def errors(self) -> list[Finding]:
        """Findings that make the extension skip the scripts (the pre-check fails)."""
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        """Findings the pre-check lets through but that break or weaken backups."""
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        """True only when there is nothing at all to report (no errors and no warnings)."""
        return not self.findings

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form of the whole report."""
        return {
            "root": self.root,
            "profile": self.profile,
            "ok": self.ok,
            "precheck": dict(self.precheck_codes),
            "errors": [f.to_dict() for f in self.errors],
            "warnings": [f.to_dict() for f in self.warnings],
        }

    def format_text(self) -> str:
        """Readable text: errors first, then warnings, each with its action, then a summary."""
        lines = [f"vmsnap lint {self.root} (profile {self.profile})"]
        for finding in self.errors + self.warnings:
            lines.append(finding.format_text())
        n_err, n_warn = len(self.errors), len(self.warnings)
        if self.ok:
            lines.append("no findings: the pre-check passes and nothing looks risky")
        else:
            lines.append(f"{_plural(n_err, 'error')}, {_plural(n_warn, 'warning')}")
        if n_err:
            lines.append(
                "(the pre-check stops at its first failure: fix it and lint again to see "
                "whether another check fails next)"
            )
        return "\n".join(lines)


class _Collector:
    """Accumulates findings, dropping exact duplicates (pre and post may be the same file)."""

    def __init__(self, config_path: str = PLUGIN_CONFIG) -> None:
        self.findings: list[Finding] = []
        self.config_path = config_path
        """The JSON config's path on the VM, as named in the plugin-host file."""

    def warn(
        self, wid: str, message: str, action: str, path: str | None = None, line: int | None = None
    ) -> None:
        assert wid in WARNING_IDS, wid
        finding = Finding(WARNING, wid, message, action, path=path, line=line)
        if finding not in self.findings:
            self.findings.append(finding)

    def error(self, code: int, detail: str) -> None:
        record = codes.lookup(code).as_finding(detail)
        self.findings.append(
            Finding(
                ERROR,
                codes.lookup(code).name,
                str(record["message"]),
                str(record["action"]),
                code=code,
                name=str(record["name"]),
            )
        )


# --------------------------------------------------------------------------------------------
# Entry point


def lint(root: str | Path = "/", profile: str | Profile = "extension") -> LintReport:
    """Lint the pre/post-script setup of the machine whose ``/`` is ``root``.

    The pre-check runs as the extension would under ``profile`` (its failure is the error);
    it also runs under the other profile to report where the two differ. Raises
    :class:`NotADirectoryError` when ``root`` is not a directory and :class:`ValueError` for
    an unknown profile name.
    """
    chosen = profiles_mod.get(profile)
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    other = DOCUMENTED if chosen.name == EXTENSION.name else EXTENSION
    results = {chosen.name: precheck(root, profile=chosen), other.name: precheck(root, other)}
    pc = results[chosen.name]
    report = LintReport(
        root=str(root),
        profile=chosen.name,
        precheck_codes={name: r.code for name, r in results.items()},
    )
    config_path = (
        pc.host.plugins[0].config_path if pc.host is not None and pc.host.plugins else PLUGIN_CONFIG
    )
    out = _Collector(config_path)
    if pc.code:
        out.error(pc.code, pc.detail)

    if pc.workload_takes_over:
        _warn_workload(out, pc)
        report.findings = out.findings
        return report
    if pc.code == 0 and pc.host is not None and not pc.host.plugins:
        out.warn(
            "host-no-plugins",
            "VMSnapshotPluginHost.conf loads no plugin (numberOfPlugins is 0 or missing): "
            "the extension never reads the JSON config and never runs the scripts.",
            "Delete /etc/azure/VMSnapshotPluginHost.conf so the extension's own copy is used, "
            "or set numberOfPlugins: 1 with pluginName0: ScriptRunner.",
        )

    _warn_precheck_difference(out, pc, results[other.name], chosen, other)
    raw = _load_json(out, resolve(root, config_path))
    if raw is not None:
        host_cap = pc.host.timeout_s if pc.host is not None else HOST_TIMEOUT_CAP_S
        _warn_config(out, raw, host_cap)
        _warn_scripts(out, root, raw)
    _warn_writable(out, root, raw, config_path)
    report.findings = out.findings
    return report


# --------------------------------------------------------------------------------------------
# workload.conf and the pre-check under both profiles


def _warn_workload(out: _Collector, pc: Precheck) -> None:
    name = pc.workload.workload_name if pc.workload else ""
    out.warn(
        "workload-takes-over",
        f"{WORKLOAD_CONF} sets workload_name = {name}: the extension runs its built-in "
        f"('enhanced') {name} flow instead and never reads VMSnapshotScriptPluginConfig.json, "
        "so your pre- and post-scripts do not run. The JSON config and scripts were not "
        "checked.",
        f"To use your own scripts, empty workload_name in {WORKLOAD_CONF} (or delete the "
        "file), then run vmsnap lint again.",
        path=WORKLOAD_CONF,
    )


def _warn_precheck_difference(
    out: _Collector, pc: Precheck, other_pc: Precheck, chosen: Profile, other: Profile
) -> None:
    if other_pc.code != pc.code:
        if other_pc.code:
            entry = codes.lookup(other_pc.code)
            what = f"fails with {other_pc.code} {entry.docs_name or entry.name} ({other_pc.detail})"
        else:
            what = "passes"
        mine = "passes" if pc.code == 0 else f"fails with {pc.code}"
        out.warn(
            "profile-difference",
            f"Pre-check: under the {chosen.name} profile it {mine}; under the {other.name} "
            f"profile it {what}.",
            "To satisfy both the extension's code and Microsoft's docs, give the scripts "
            "mode 700 and the config mode 600, all owned by root.",
        )
    if pc.code in _LOGGED_ONLY_DOCUMENTED:
        out.warn(
            "profile-difference",
            f"Code {pc.code}: the real extension (profile extension) only writes it to its log "
            "and takes a file-system consistent backup that reports success; the documented "
            "profile reports it as the backup's health code.",
            "Fix the error above; do not count on the backup status to reveal it.",
        )


# --------------------------------------------------------------------------------------------
# The JSON config


def _load_json(out: _Collector, path: Path) -> dict[str, Any] | None:
    """The config as a dict (None when absent or unparsable: the pre-check reports that)."""
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    try:
        if not path.is_file():
            return None
        raw = json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=pairs)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(raw, dict):
        return None
    for key in dict.fromkeys(duplicates):
        out.warn(
            "duplicate-key",
            f"The config sets {key} more than once; only the last value counts.",
            f"Keep a single {key} entry.",
            path=out.config_path,
        )
    return raw


def _warn_config(out: _Collector, raw: dict[str, Any], host_cap: int) -> None:
    for key in raw:
        if key in KNOWN_KEYS:
            continue
        match = [k for k in KNOWN_KEYS if k.lower() == key.lower()] or difflib.get_close_matches(
            key, KNOWN_KEYS, n=1, cutoff=0.75
        )
        if match:
            out.warn(
                "unknown-key",
                f"The config key {_show(key)} is not one the extension reads (key names are "
                f'case-sensitive), so its value is ignored; "{match[0]}" was probably meant.',
                f'Rename {_show(key)} to "{match[0]}".',
                path=out.config_path,
            )
    poll = _warn_poll(out, raw)
    _warn_timeout(out, raw, host_cap, poll)
    plugin_name = raw.get("pluginName", "ScriptRunner")
    if not isinstance(plugin_name, str):
        out.warn(
            "plugin-name-not-string",
            f"pluginName is {_show(plugin_name)}, not a string: the plugin thread raises "
            "while writing its first log line, never runs the scripts, and the plugin host "
            f"gives up only after about {host_watchdog_s(poll) / 60:.0f} minutes (310).",
            'Use "pluginName": "ScriptRunner" (the value only appears in log lines).',
            path=out.config_path,
        )
    for which in ("pre", "post"):
        _warn_params(out, which, raw, poll)
        _warn_retries(out, which, raw, poll)
    for key in ("continueBackupOnFailure", "fsFreezeEnabled"):
        if key in raw:
            _warn_flag(out, key, raw[key])


def _warn_poll(out: _Collector, raw: dict[str, Any]) -> int:
    """Check ScriptsExecutionPollTimeSeconds; return the poll period the extension uses."""
    if "ScriptsExecutionPollTimeSeconds" not in raw:
        return DEFAULT_POLL_S
    value = raw["ScriptsExecutionPollTimeSeconds"]
    try:
        poll = int(value)
    except (TypeError, ValueError, OverflowError):
        return DEFAULT_POLL_S  # the pre-check reports 304/305 for these
    if not 1 <= poll <= 5:
        out.warn(
            "poll-ignored",
            f"ScriptsExecutionPollTimeSeconds is {_show(value)}: the extension uses it only "
            f"when it is between 1 and 5, so the default of {DEFAULT_POLL_S} s applies.",
            "Use a whole number from 1 to 5, or remove the key.",
            path=out.config_path,
        )
        return DEFAULT_POLL_S
    if isinstance(value, float) and value != poll:
        out.warn(
            "poll-truncated",
            f"ScriptsExecutionPollTimeSeconds is {value}: the extension truncates it to {poll}.",
            f"Write {poll} (a whole number from 1 to 5).",
            path=out.config_path,
        )
    return poll


def _warn_timeout(out: _Collector, raw: dict[str, Any], host_cap: int, poll: int) -> None:
    if "timeoutInSeconds" not in raw:
        ext = timeout_budget(EXTENSION.default_timeout_s, poll)[1]
        doc = timeout_budget(DOCUMENTED.default_timeout_s, poll)[1]
        out.warn(
            "timeout-missing",
            "timeoutInSeconds is not set: the extension's code then allows "
            f"{EXTENSION.default_timeout_s:g} s per script (the template and the README say "
            f"{DOCUMENTED.default_timeout_s:g}).",
            "Set timeoutInSeconds explicitly, to what the slower script really needs plus a "
            "margin (at most 1800).",
            path=out.config_path,
        )
        out.warn(
            "profile-difference",
            f"timeoutInSeconds is absent: the extension profile gives each script {ext:g} s "
            f"before it times out, the documented profile {doc:g} s.",
            "Set timeoutInSeconds explicitly.",
            path=out.config_path,
        )
        timeout: float = EXTENSION.default_timeout_s
    else:
        value = raw["timeoutInSeconds"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return  # a non-number is the pre-check's 304
        if isinstance(value, float) and math.isnan(value):
            return  # NaN never times out; nothing sensible to say beyond "use a number"
        if value > host_cap:
            out.warn(
                "timeout-capped",
                f"timeoutInSeconds is {_show(value)}, but the extension never waits more than "
                f"{host_cap} s for a script: it uses {host_cap}.",
                f"A quiesce that needs more than {host_cap} s will time out (308/309): make "
                "the pre-script shorter, and set at most 1800.",
                path=out.config_path,
            )
        timeout = min(value, host_cap)
        if timeout <= 0:
            out.warn(
                "timeout-not-positive",
                f"timeoutInSeconds is {_show(value)}: the extension declares a timeout at its "
                "very first check, unless the script has already exited.",
                "Set a positive timeout, what the slower script needs plus a margin.",
                path=out.config_path,
            )
            return
    effective = timeout_budget(timeout, poll)[1]
    if effective != timeout:
        out.warn(
            "timeout-rounded",
            f"The timeout of {timeout:g} s is not a multiple of the {poll} s poll period: the "
            f"extension checks only every {poll} s, so a script times out after "
            f"{effective:g} s (ceil({timeout:g}/{poll})*{poll}), and a script that ends "
            "sooner is noticed only at the next check.",
            f"Use a timeoutInSeconds that is a multiple of {poll} (for example "
            f"{effective:g}), or a smaller ScriptsExecutionPollTimeSeconds.",
            path=out.config_path,
        )


def _warn_params(out: _Collector, which: str, raw: dict[str, Any], poll: int) -> None:
    key = f"{which}ScriptParams"
    if key not in raw:
        return
    value = raw[key]
    watchdog = 310 if which == "pre" else 311
    if isinstance(value, str):
        if value:
            chars = ", ".join(repr(c) for c in value[:6]) + (", ..." if len(value) > 6 else "")
            out.warn(
                "params-string",
                f"{key} is a JSON string, not a list: the extension passes each character as "
                f"its own argument ({chars}).",
                f'Make it a list of strings: "{key}": [{json.dumps(value)}].',
                path=out.config_path,
            )
        return
    if isinstance(value, dict):
        out.warn(
            "params-not-list",
            f"{key} is a JSON object: the extension passes only its keys as arguments "
            f"({_show(list(value))}), never the values.",
            f"Make {key} a list of strings.",
            path=out.config_path,
        )
        return
    if not isinstance(value, list):
        out.warn(
            "params-crash",
            f"{key} is {_show(value)}, not a list: building the command line raises inside "
            f"the plugin thread, the {which}-script never runs, and the plugin host gives up "
            f"only after about {host_watchdog_s(poll) / 60:.0f} minutes ({watchdog}).",
            f'Make it a list of strings, for example "{key}": [] for no arguments.',
            path=out.config_path,
        )
        return
    odd = [item for item in value if not isinstance(item, str)]
    if odd:
        shown = ", ".join(f"{_show(item)} -> {_as_arg(item)}" for item in odd[:_MAX_LINES_SHOWN])
        out.warn(
            "params-non-string-item",
            f"{key} holds values that are not strings; the extension passes Python's str() of "
            f"each ({shown}), so true arrives as 'True' and null as 'None'.",
            "Quote every parameter as a JSON string, spelled exactly as the script expects.",
            path=out.config_path,
        )
    if any(item == "" for item in value):
        out.warn(
            "params-empty-item",
            f"{key} contains empty strings (as the template does): each is passed as an empty "
            f"argument, so the {which}-script sees $# = {len(value)} and empty positional "
            "parameters.",
            "Remove the empty entries (use [] for no arguments) unless the script expects them.",
            path=out.config_path,
        )


def _warn_retries(out: _Collector, which: str, raw: dict[str, Any], poll: int) -> None:
    key = f"{which}ScriptNoOfRetries"
    if key not in raw:
        return
    value = raw[key]
    if not isinstance(value, int | float):
        watchdog = 310 if which == "pre" else 311
        out.warn(
            "retries-not-number",
            f"{key} is {_show(value)}, not a number: when the {which}-script fails, comparing "
            "the retry counter with it raises inside the plugin thread, and the plugin host "
            f"gives up only after about {host_watchdog_s(poll) / 60:.0f} minutes ({watchdog}) "
            "instead of reporting the failure.",
            f'Use a number: "{key}": 0.',
            path=out.config_path,
        )
        return
    if value > 0:
        out.warn(
            "retries-ignored",
            f"{key} is {_show(value)}, but the extension never runs a failed script again: it "
            "only logs 'Retrying...' and keeps the first result.",
            f"Retry inside the {which}-script itself if an attempt can fail transiently, and "
            f"set {key} to 0 so the config says what happens.",
            path=out.config_path,
        )
        finite = isinstance(value, int) or math.isfinite(value)
        attempts = f"{math.ceil(value) + 1} times" if finite else "again and again"
        out.warn(
            "profile-difference",
            f"{key} is {_show(value)}: the documented profile runs a failing {which}-script "
            f"{attempts}; the extension profile (the real code) runs it once.",
            f"Retry inside the {which}-script and set {key} to 0: then both agree.",
            path=out.config_path,
        )


def _warn_flag(out: _Collector, key: str, value: Any) -> None:
    if isinstance(value, bool) or (value in (0, 1) and isinstance(value, int)):
        return
    if isinstance(value, str):
        why = f"any non-empty string is true for the extension, so {json.dumps(value)} acts as "
        why += "true" if value else "false"
    else:
        why = f"the extension tests its truthiness, so {_show(value)} acts as "
        why += "true" if value else "false"
    if key == "continueBackupOnFailure":
        if isinstance(value, int):
            why += f"; yet combined with a boolean (True & {value}) it gives {True & value}"
        else:
            why += (
                "; and when a script fails the plugin host combines it with a boolean "
                "(True & value), which raises: the whole backup then fails with error 2"
            )
    out.warn(
        "flag-not-boolean",
        f"{key} is {_show(value)}, not a JSON boolean: {why}.",
        f'Write a bare JSON boolean: "{key}": true or "{key}": false.',
        path=out.config_path,
    )


# --------------------------------------------------------------------------------------------
# Script contents


@dataclass
class _ShellText:
    """A script split into lines, with views suited to different heuristics."""

    lines: list[str]
    code: list[str]
    """Per line: comments removed, single-quoted text and here-document bodies blanked."""
    logic: list[str]
    """Per line: only whole-line comments blanked (quotes and here-documents kept, for SQL)."""

    def code_matches(self, pattern: re.Pattern[str]) -> list[int]:
        return [n for n, text in enumerate(self.code, 1) if pattern.search(text)]

    def logic_text(self) -> str:
        return "\n".join(self.logic)

    def code_text(self) -> str:
        return "\n".join(self.code)


_HEREDOC = re.compile(
    r"<<(?P<dash>-)?[ \t]*\\?(?P<q>['\"]?)(?P<delim>[A-Za-z_][A-Za-z0-9_]*)(?P=q)"
)


def _scan_shell(text: str) -> _ShellText:
    """Split shell text into views; quote and here-document state carries across lines."""
    lines = text.split("\n")
    code: list[str] = []
    in_single = in_double = in_ansi = False
    pending: list[tuple[str, bool]] = []
    heredoc: tuple[str, bool] | None = None
    for line in lines:
        if heredoc is not None:
            delim, strip_tabs = heredoc
            candidate = line.lstrip("\t") if strip_tabs else line
            if candidate.rstrip("\r") == delim:
                heredoc = pending.pop(0) if pending else None
            code.append("")
            continue
        kept: list[str] = []
        i = 0
        while i < len(line):
            c = line[i]
            if in_single:
                if c == "'":
                    in_single = False
                    kept.append(c)
                i += 1
                continue
            if c == "\\":
                kept.append(line[i : i + 2])
                i += 2
                continue
            if in_ansi:
                in_ansi = c != "'"
            elif in_double:
                in_double = c != '"'
            elif c == "'":
                in_ansi = i > 0 and line[i - 1] == "$"
                in_single = not in_ansi
            elif c == '"':
                in_double = True
            elif c == "#" and (i == 0 or line[i - 1] in " \t;&|()"):
                break
            elif (
                line.startswith("<<", i)
                and not line.startswith("<<<", i)
                and line[i - 1 : i] != "<"
            ):
                m = _HEREDOC.match(line, i)
                if m:
                    pending.append((m.group("delim"), bool(m.group("dash"))))
            kept.append(c)
            i += 1
        code.append("".join(kept))
        if pending and heredoc is None and not (in_single or in_double):
            heredoc = pending.pop(0)
    logic = ["" if re.match(r"\s*#", line) else line for line in lines]
    return _ShellText(lines, code, logic)


# (pattern, construct, what happens under dash)
_BASHISMS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(r"(?:^|[\s;&|(!])\[\[(?=\s)"),
        "[[ ... ]]",
        "dash has no [[: it looks for a program named '[[', does not find it, and the "
        "condition is simply false",
    ),
    (
        re.compile(r"(?:^|[\s;&|(!])(?:\[|test)\s[^\]]*?\s==\s"),
        "== inside [ ]",
        "dash's test only knows '=': '==' is an 'unexpected operator' and the condition is false",
    ),
    (
        re.compile(r"^\s*function\s+[A-Za-z_]\w*"),
        "function NAME",
        "dash has no 'function' keyword: the script stops there with a syntax error (exit code 2)",
    ),
    (
        re.compile(r"(?:^|[\s;&|])(?:local\s+|readonly\s+|export\s+)?[A-Za-z_]\w*=\("),
        "array assignment NAME=(...)",
        "dash has no arrays: the script stops there with a syntax error (exit code 2)",
    ),
    (
        re.compile(r"\$\{#?[A-Za-z_]\w*\["),
        "array expansion ${NAME[...]}",
        "dash has no arrays: 'Bad substitution' stops the script there",
    ),
    (
        re.compile(r"(?:^|[\s;&|])(?:declare|typeset|readarray|mapfile)\s"),
        "declare/typeset/readarray/mapfile",
        "these builtins do not exist in dash ('not found')",
    ),
    (
        re.compile(r"\$'"),
        "$'...' quoting",
        "dash does not expand escapes in $'...': you get a '$' followed by the literal text",
    ),
    (
        re.compile(r"<<<"),
        "<<< here-string",
        "dash has no here-strings: the script stops there with a syntax error (exit code 2)",
    ),
    (
        re.compile(r"(?<![>&])&>"),
        "&> redirection",
        "dash reads 'cmd &> file' as 'cmd &' (run in the background) then '> file': the "
        "command is detached and its output is not redirected",
    ),
    (
        re.compile(r"(?:^|[;&|{(]|\bthen|\bdo|\belse)\s*source\s+\S"),
        "source FILE",
        "dash has no 'source' ('not found'): the file is not read",
    ),
    (
        re.compile(r"\$\{[A-Za-z_]\w*/"),
        "${VAR/pattern/replacement}",
        "dash: 'Bad substitution' stops the script there",
    ),
    (
        re.compile(r"\$\{[A-Za-z_]\w*:[\d$ ]"),
        "${VAR:offset:length}",
        "dash: 'Bad substitution' stops the script there",
    ),
    (
        re.compile(r"\$\{[A-Za-z_]\w*(?:\^|,)"),
        "${VAR^^} / ${VAR,,}",
        "dash: 'Bad substitution' stops the script there",
    ),
    (
        re.compile(r"\bPIPESTATUS\b"),
        "PIPESTATUS",
        "dash has no PIPESTATUS: it expands to nothing",
    ),
    (
        re.compile(r"(?:^|[\s;&|])set\s[^;&|]*\bpipefail\b"),
        "set -o pipefail",
        "dash 0.5.12 (Debian 12's sh) has no pipefail: 'set: Illegal option -o pipefail', and "
        "as set is a special builtin the script stops right there with exit code 2",
    ),
    (
        re.compile(r"^\s*\(\("),
        "(( arithmetic ))",
        "dash reads '((' as two nested subshells: nothing is computed or assigned",
    ),
    (
        re.compile(r"(?:^|[\s;&|])let\s+\w"),
        "let",
        "dash has no 'let' ('not found'): use x=$((...))",
    ),
    (
        re.compile(r"(?:^|[\s;&|])echo\s+-e\b"),
        "echo -e",
        "dash's echo prints '-e' literally (and always interprets backslash escapes)",
    ),
    (
        re.compile(r"\$\{?(?:EUID|UID|BASH_SOURCE|BASH_VERSION|RANDOM|SECONDS)\b"),
        "bash-only variable ($EUID, $UID, $RANDOM, ...)",
        "dash does not set it: it expands to an empty string",
    ),
)

_NOT_SHELL_INTERPRETERS = re.compile(r"\b(python[\d.]*|perl|ruby|node|php|lua|tclsh)\b")
_PLAIN_SH = re.compile(r"^(/usr)?/bin/(sh|dash)$|^/usr/bin/env\s+(sh|dash)$")
_BACKGROUND = re.compile(r"(?<![&>|<0-9])&(?![&>])")
_HOLDS_SESSION = re.compile(
    r"(?<![&>|<0-9])&(?![&>])|\bmkfifo\b|\bcoproc\b|\bnohup\b|\bsetsid\b|\bsystemd-run\b",
)
_SELF_BOUNDED = re.compile(r"\btimeout\s|\bSLEEP\s*\(|\bpg_sleep\b", re.IGNORECASE)


def _warn_scripts(out: _Collector, root: Path, raw: dict[str, Any]) -> None:
    # One script may serve as both pre and post (the Oracle sample does): lint it once.
    roles: dict[str, list[str]] = {}
    for which in ("pre", "post"):
        location = raw.get(f"{which}ScriptLocation")
        if isinstance(location, str) and location and "\0" not in location:
            roles.setdefault(location, []).append(which)
    for location, which in roles.items():
        path = resolve(root, location)
        try:
            if not path.is_file():
                continue  # the pre-check reports it (302/303)
            data = _read_head(path)
        except OSError as err:
            out.warn(
                "script-unreadable",
                f"{location} could not be read for linting: {err.strerror or err}.",
                "Check that the file is a readable regular file.",
                path=location,
            )
            continue
        _lint_script(out, location, path, data, "/".join(which), is_pre="pre" in which)


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(_SCRIPT_READ_LIMIT)


def _lint_script(
    out: _Collector, location: str, path: Path, data: bytes, which: str, is_pre: bool
) -> None:
    if data.startswith(b"\x7fELF") or b"\0" in data[:8192]:
        out.warn(
            "not-shell",
            f"{location} is a binary file, but the extension runs it as 'sh {location}': sh "
            "reads it as shell text and fails.",
            f"Keep a small sh script at {location} that runs the program: "
            'exec /path/to/program "$@".',
            path=location,
        )
        return
    had_bom = data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8", errors="replace")
    if had_bom:
        text = text[1:]
        out.warn(
            "utf8-bom",
            f"{location} starts with a UTF-8 byte-order mark: sh takes it as part of the first "
            "word, so the first line fails (or a shebang is not recognised).",
            "Save the file as UTF-8 without a BOM.",
            path=location,
            line=1,
        )
    crlf = [n for n, line in enumerate(text.split("\n"), 1) if line.endswith("\r")]
    if crlf:
        out.warn(
            "crlf",
            f"{location} has Windows (CRLF) line endings on {_plural(len(crlf), 'line')}: sh "
            "keeps the carriage return as part of the last word, so 'then\\r' is no keyword, "
            "'file\\r' is another file name, and commands fail in odd ways.",
            f"Convert it to Unix line endings: sed -i 's/\\r$//' {location} (or dos2unix).",
            path=location,
            line=crlf[0],
        )
        text = text.replace("\r\n", "\n")
    if not _warn_shebang(out, location, text):
        return  # not a shell script: shell heuristics would only add noise
    shell = _scan_shell(text)
    _warn_bashisms(out, location, shell)
    _warn_sh_syntax(out, location, path)
    _warn_checkbashisms(out, location, path, shell)
    exits = shell.code_matches(re.compile(r"(?:^|[\s;&|])exit\s+2(?!\d)"))
    if exits:
        out.warn(
            "exit-2",
            f"{location} uses 'exit 2' ({_lines(exits)}). Early versions of the extension took "
            "2 as 'succeeded with a warning'; today every exit code other than 0 is a failure "
            "(300/301).",
            "Exit 0 when the script did its job, and non-zero only when it did not.",
            path=location,
            line=exits[0],
        )
    _warn_output_stall(out, location, shell)
    _warn_background(out, location, which, shell)
    _warn_database_heuristics(out, location, shell, is_pre)


def _warn_shebang(out: _Collector, location: str, text: str) -> bool:
    """Warn about the first line; False when the file is not a shell script at all."""
    first = text.split("\n", 1)[0]
    if first.startswith("#!"):
        interpreter = first[2:].strip()
        parts = interpreter.split()
        command = " ".join(parts[:2]) if parts[:1] == ["/usr/bin/env"] else " ".join(parts[:1])
        options = parts[2:] if parts[:1] == ["/usr/bin/env"] else parts[1:]
        if _PLAIN_SH.match(command) and options:
            out.warn(
                "shebang-ignored",
                f"{location} starts with '{first}', but the extension runs 'sh {location}': "
                f"the shebang line is ignored, so the options {' '.join(options)} never apply.",
                f"Put them in the script itself, for example 'set {' '.join(options)}' on the "
                "second line.",
                path=location,
                line=1,
            )
        elif not _PLAIN_SH.match(command):
            out.warn(
                "shebang-ignored",
                f"{location} starts with '{first}', but the extension runs 'sh {location}': "
                "the shebang is ignored and the file is read by sh (dash on Debian and "
                "Ubuntu, bash on RHEL and SUSE).",
                "Write the script for POSIX sh and start it with #!/bin/sh, or keep a small "
                "sh wrapper that execs the real interpreter.",
                path=location,
                line=1,
            )
        found = _NOT_SHELL_INTERPRETERS.search(interpreter)
        if found:
            _warn_not_shell(out, location, found.group(1))
            return False
        return True
    if re.search(r"^(import \w|from [\w.]+ import )", text, re.MULTILINE):
        _warn_not_shell(out, location, "python")
        return False
    return True


def _warn_not_shell(out: _Collector, location: str, language: str) -> None:
    out.warn(
        "not-shell",
        f"{location} looks like a {language} program, but the extension runs it as "
        f"'sh {location}': sh reads {language} as shell commands and fails.",
        f"Keep a small sh script at {location} that runs the program: "
        f'exec /usr/bin/{language} /path/to/program "$@".',
        path=location,
    )


def _warn_bashisms(out: _Collector, location: str, shell: _ShellText) -> None:
    for pattern, construct, effect in _BASHISMS:
        hits = shell.code_matches(pattern)
        if hits:
            out.warn(
                "bashism",
                f"{location} uses {construct} ({_lines(hits)}), which bash has but POSIX sh "
                "has not. The extension runs the script with sh, which is dash on Debian and "
                f"Ubuntu: {effect}.",
                "Rewrite it in POSIX sh (check with: dash -n <script>, or checkbashisms).",
                path=location,
                line=hits[0],
            )


def _syntax_shell() -> str | None:
    # dash is the strictest common sh (Debian/Ubuntu); fall back to whatever sh is here.
    return shutil.which("dash") or shutil.which("sh")


def _warn_sh_syntax(out: _Collector, location: str, path: Path) -> None:
    shell = _syntax_shell()
    if shell is None:
        return
    try:
        proc = subprocess.run(
            [shell, "-n", str(path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_SYNTAX_CHECK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return
    if proc.returncode == 0:
        return
    error = proc.stderr.decode("utf-8", "replace").replace(str(path), location).strip()
    error = " ".join(error.split()) or f"exit code {proc.returncode}"
    line = re.search(r": (\d+): ", error)
    out.warn(
        "sh-syntax",
        f"'{os.path.basename(shell)} -n' rejects {location}: {error}. sh runs the commands "
        "before that point, then stops with exit code 2, which the extension reports as a "
        "script failure (300/301).",
        "Fix the syntax for POSIX sh; check with: dash -n <script>.",
        path=location,
        line=int(line.group(1)) if line else None,
    )


def _warn_checkbashisms(out: _Collector, location: str, path: Path, shell: _ShellText) -> None:
    tool = shutil.which("checkbashisms")
    if tool is None:
        return  # optional (Debian package devscripts)
    try:
        proc = subprocess.run(
            [tool, "--force", str(path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_SYNTAX_CHECK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return
    reported = {f.line for f in out.findings if f.id == "bashism" and f.path == location}
    already = {n for pattern, _, _ in _BASHISMS for n in shell.code_matches(pattern)}
    output = (proc.stderr + proc.stdout).decode("utf-8", "replace")
    for match in re.finditer(r"possible bashism in .*? line (\d+) \((.+?)\):", output):
        line = int(match.group(1))
        if line in already or line in reported:
            continue
        out.warn(
            "checkbashisms",
            f"checkbashisms reports {match.group(2)} in {location} (line {line}); the "
            "extension runs the script with sh, which may be dash.",
            "Rewrite that line in POSIX sh.",
            path=location,
            line=line,
        )


def _warn_output_stall(out: _Collector, location: str, shell: _ShellText) -> None:
    code = shell.code_text()
    redirected = re.search(r"(?:^|[\s;&|])exec\s[^\n]*>", code, re.MULTILINE)
    if redirected:
        return
    reasons = []
    xtrace = shell.code_matches(re.compile(r"(?:^|[\s;&|])set\s+(?:-[a-wyz]*x|-o\s+xtrace)"))
    if xtrace:
        reasons.append(f"set -x traces every command to stderr ({_lines(xtrace)})")
    dumps = [
        n
        for n, text in enumerate(shell.code, 1)
        if re.search(r"\b(mysqldump|mariadb-dump|pg_dump|pg_dumpall|mongodump)\b", text)
        and not re.search(r">|\||\s(-f|-r|--file|--result-file|--out)\b", text)
    ]
    if dumps:
        reasons.append(f"a database dump writes to stdout ({_lines(dumps)})")
    if reasons:
        out.warn(
            "profile-difference",
            f"{location}: {'; '.join(reasons)}. The real extension (profile extension) never "
            "reads a script's output: after about 64 KiB the next write blocks and the script "
            "hangs until its timeout (308/309). The documented profile reads the output as "
            "it comes, so the same script finishes.",
            "Send the output to a log file: add 'exec >>/var/log/vmsnap-script.log 2>&1' near "
            "the top of the script.",
            path=location,
            line=(xtrace or dumps)[0],
        )


def _warn_background(out: _Collector, location: str, which: str, shell: _ShellText) -> None:
    background = shell.code_matches(_BACKGROUND)
    if not background or _SELF_BOUNDED.search(shell.logic_text()):
        return
    out.warn(
        "profile-difference",
        f"{location} starts a background process ({_lines(background)}) with no time limit "
        f"of its own. If the {which}-script times out, the documented profile kills its whole "
        "process group, that process included; the real extension kills nothing, so whatever "
        "it holds (a lock, a read-only mode) stays held.",
        "Bound the background process itself (for example 'timeout 600 <command> &', or "
        "SELECT SLEEP(600) in the holding session) so it ends even if the post-script never "
        "runs.",
        path=location,
        line=background[0],
    )


def _warn_database_heuristics(
    out: _Collector, location: str, shell: _ShellText, is_pre: bool
) -> None:
    logic = shell.logic_text()
    held = _HOLDS_SESSION.search(shell.code_text()) or re.search(
        r"\bSLEEP\s*\(|\bpg_sleep\b", logic, re.IGNORECASE
    )
    removed = _logic_lines(shell, r"\bpg_(start|stop)_backup\s*\(")
    if removed:
        out.warn(
            "pg-start-backup-removed",
            f"{location} calls pg_start_backup()/pg_stop_backup() ({_lines(removed)}): "
            "PostgreSQL 15 removed them (exclusive backup mode is gone), so the call fails.",
            "PostgreSQL recovers correctly from a snapshot taken of all its disks at once, "
            "without any backup call; a CHECKPOINT in the pre-script shortens that recovery. "
            "If you need a labelled backup, pg_backup_start()/pg_backup_stop() must run in one "
            "session that stays open from pre to post.",
            path=location,
            line=removed[0],
        )
    if not is_pre:
        return
    locks = _logic_lines(
        shell,
        r"FLUSH\s+TABLES\s+WITH\s+READ\s+LOCK|\bLOCK\s+TABLES?\s+\w|"
        r"\bBEGIN\s+(IMMEDIATE|EXCLUSIVE)\b",
    )
    if locks and not held:
        out.warn(
            "lock-released-on-exit",
            f"{location} takes a lock ({_lines(locks)}) in a database client that exits when "
            "its command is done, and nothing keeps that session open. Such locks belong to "
            "the session: the lock is gone when the client exits, before the snapshot. "
            "(Heuristic.)",
            "Hold the lock in a background session that outlives the pre-script (for MariaDB/"
            "MySQL: a client that runs FLUSH TABLES WITH READ LOCK then SELECT SLEEP(<max>), "
            "fed through a FIFO or started with &), return only once the lock is held, and "
            "release it in the post-script.",
            path=location,
            line=locks[0],
        )
    starts = _logic_lines(shell, r"\bpg_backup_start\s*\(")
    if starts and not held:
        out.warn(
            "pg-backup-start-session",
            f"{location} calls pg_backup_start() ({_lines(starts)}) from a psql that exits: "
            "the backup belongs to that session and PostgreSQL aborts it when the session "
            "ends, so nothing is in backup mode during the snapshot and the post-script's "
            "pg_backup_stop() (another session) fails. (Heuristic.)",
            "For a snapshot of all PostgreSQL's disks at once no backup call is needed (crash "
            "recovery is correct; CHECKPOINT first to shorten it). Otherwise keep one psql "
            "session open in the background from pre to post, fed through a FIFO.",
            path=location,
            line=starts[0],
        )
    bgsave = _logic_lines(shell, r"\bBGSAVE\b")
    waits = re.search(
        r"\bLASTSAVE\b|rdb_bgsave_in_progress|\bINFO\s+persistence\b", logic, re.IGNORECASE
    )
    if bgsave and not waits:
        out.warn(
            "redis-bgsave-no-wait",
            f"{location} runs BGSAVE ({_lines(bgsave)}) and does not wait for it: BGSAVE "
            "returns at once and a forked child writes the dump later, so the snapshot can "
            "hold the previous dump.rdb and a half-written temporary file. (Heuristic.)",
            "Wait for the save: poll 'redis-cli INFO persistence' until rdb_bgsave_in_progress "
            "is 0 and rdb_last_bgsave_status is ok (or compare LASTSAVE before and after), "
            "and fail the script if it does not finish in time.",
            path=location,
            line=bgsave[0],
        )
    freezes = shell.code_matches(re.compile(r"\b(fsfreeze|xfs_freeze)\s+(-f|--freeze)\b"))
    if freezes:
        out.warn(
            "script-freezes-fs",
            f"{location} freezes a file system itself ({_lines(freezes)}). The extension "
            "freezes every file system right after the pre-script: one already frozen makes "
            "its freeze fail, and anything that writes there (the extension's own log "
            "included) blocks until someone thaws it.",
            "Leave freezing to the extension (fsFreezeEnabled: true); quiesce the "
            "application in the pre-script instead.",
            path=location,
            line=freezes[0],
        )


def _logic_lines(shell: _ShellText, pattern: str) -> list[int]:
    compiled = re.compile(pattern, re.IGNORECASE)
    return [n for n, text in enumerate(shell.logic, 1) if compiled.search(text)]


# --------------------------------------------------------------------------------------------
# Who can replace the scripts and the config


def _warn_writable(
    out: _Collector, root: Path, raw: dict[str, Any] | None, config_path: str
) -> None:
    targets = [config_path]
    for key in ("preScriptLocation", "postScriptLocation"):
        location = (raw or {}).get(key)
        if isinstance(location, str) and location and "\0" not in location:
            targets.append(location)
    unsafe: dict[str, tuple[str, list[str]]] = {}
    for target in dict.fromkeys(targets):
        vm_path = str(resolve(Path("/"), target))
        for directory, why in _unsafe_ancestors(root, vm_path):
            unsafe.setdefault(directory, (why, []))[1].append(target)
    for directory, (why, files) in unsafe.items():
        consequence = (
            "the extension would then read their config and run the scripts it names as root"
            if config_path in files
            else "the extension would then run their file as root"
        )
        out.warn(
            "writable-path",
            f"{directory} {why}, so someone other than root can replace or rename "
            f"{' and '.join(files)}: {consequence}.",
            f"Make every directory on the way root-owned and not writable by group or other: "
            f"chown root:root {directory}; chmod go-w {directory}.",
            path=directory,
        )


def _unsafe_ancestors(root: Path, vm_path: str) -> Iterator[tuple[str, str]]:
    """(directory, why) for each directory on the way to ``vm_path`` that others can change.

    Symbolic links are followed the way the extension's ``os.stat`` would on the VM: an
    absolute target starts again at ``root``. The link's own owner does not matter (a link
    cannot be changed, only replaced through its directory).
    """
    todo = [PurePosixPath(os.path.normpath(vm_path))]
    hops = 0
    checked: set[str] = set()
    while todo and hops < 40:
        path = todo.pop()
        parts = path.parts[1:]
        current = PurePosixPath("/")
        for index in range(len(parts) + 1):
            host = root / str(current).lstrip("/")
            try:
                # The root directory stands for "/": follow it if it is itself a link.
                st = os.stat(host) if index == 0 else os.lstat(host)
            except (OSError, ValueError):
                break
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                try:
                    target = os.readlink(host)
                except OSError:
                    break
                base = PurePosixPath(target) if target.startswith("/") else current.parent / target
                rest = parts[index:]
                todo.append(PurePosixPath(os.path.normpath(str(base.joinpath(*rest)))))
                break
            if index == len(parts):
                break  # the file itself: the pre-check judges its owner and mode
            if stat.S_ISDIR(st.st_mode) and str(current) not in checked:
                checked.add(str(current))
                why = _dir_problem(st)
                if why:
                    yield str(current), why
            current = current / parts[index]


def _dir_problem(st: os.stat_result) -> str:
    if st.st_uid != 0:
        return f"is owned by {_user(st.st_uid)}"
    # In a sticky directory (like /tmp) only an entry's owner may rename or delete it.
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        return f"is writable by every user (mode {st.st_mode & 0o7777:04o})"
    if st.st_mode & stat.S_IWGRP and st.st_gid != 0 and not st.st_mode & stat.S_ISVTX:
        return f"is writable by group {_group(st.st_gid)} (mode {st.st_mode & 0o7777:04o})"
    return ""


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return f"{grp.getgrgid(gid).gr_name} (gid {gid})"
    except KeyError:
        return f"gid {gid}"


# --------------------------------------------------------------------------------------------
# Small helpers


def _show(value: Any, limit: int = 80) -> str:
    """A value as the user wrote it in JSON, shortened for a one-line message."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_arg(value: Any) -> str:
    """What the extension's ``str(param)`` turns a JSON value into."""
    try:
        return _show(str(value))
    except (ValueError, RecursionError):
        return "<not printable>"


def _lines(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:_MAX_LINES_SHOWN]))
    more = f" and {len(numbers) - _MAX_LINES_SHOWN} more" if len(numbers) > _MAX_LINES_SHOWN else ""
    return f"line {shown}{more}" if len(numbers) == 1 else f"lines {shown}{more}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
