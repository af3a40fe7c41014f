"""``vmsnap lint --framework gcp``: the pitfalls of Compute Engine guest-flush snapshots.

Errors are what the engine's pre-check reports (a config that does not load, snapshots not
enabled, a timeout of 0, a script missing or not executable). Warnings are what the guest
agent lets through but still breaks a backup; each rests on a fact the engine models and cites
(:mod:`pytest_vmsnap.framework.gcp`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..framework.gcp import config, discovery
from .dialect_checks import BASHISMS
from .engine_findings import database_warnings, precheck_errors, warner
from .report import Finding
from .shell_commands import Command, parse, unquote
from .shell_text import ShellText, scan_shell
from .wording import line_numbers

WARNING_IDS: tuple[str, ...] = (
    "gcp-exit-124",
    "gcp-timeout-command",
    "gcp-background-keeps-output",
    "gcp-positional-arg",
    "gcp-bashism",
    "gcp-script-freezes-fs",
    "gcp-config-overridden",
    "gcp-section-name",
    "gcp-unknown-key",
    "gcp-timeout-not-decimal",
)


_KNOWN_KEYS = ("enabled", "snapshot_service_ip", "snapshot_service_port", "timeout_in_seconds")
_EXIT_124 = re.compile(r"(?:^|[\s;&|({])(?:exit|return)\s+124(?!\d)")
_TIMEOUT_CMD = re.compile(r"(?:^|[\s;&|({!])timeout\s+(?:-[-\w=]+\s+)*\S+\s+\S")
_CONSUMED = re.compile(r"\|\||(?:^|\s)(?:if|while|until|!)\s|&&")
_POSITIONAL = re.compile(r"\$(?:\{[#!]?)?([1-9])\b|\$\{[#!]?([1-9])[:}%#/-]")
_FREEZES_FS = re.compile(r"\b(fsfreeze|xfs_freeze)\b|\bFIFREEZE\b")
_PLAIN_SH = re.compile(r"^(/usr)?/bin/(sh|dash)$")
_REDIRECT = re.compile(r"^(\d*)(&>>?|>>?\||>>?&?|>&)(.*)$")


_warn = warner(WARNING_IDS)


def lint(root: Path, engine: Any) -> list[Finding]:
    """Every finding for the machine whose ``/`` is ``root``."""
    root = Path(root)
    out = precheck_errors(engine, root)
    out += _config_warnings(root)
    for which, location in discovery.SCRIPTS.items():
        path = discovery.host_path(root, location)
        if not path.is_file():
            continue
        try:
            text = path.read_bytes().decode("utf-8", "replace").replace("\r\n", "\n")
        except OSError:
            continue
        out += script_warnings(location, which, text)
    return out


# --- config -----------------------------------------------------------------------------------


def _config_warnings(root: Path) -> list[Finding]:
    out: list[Finding] = []
    layers: list[tuple[str, dict[str, str]]] = []
    for location in config.SOURCES:
        try:
            sections = config.parse_ini(discovery.host_path(root, location).read_bytes())
        except (OSError, config.IniError):
            continue
        layers.append((location, sections.get(config.SECTION, {})))
        for name, keys in sections.items():
            if name != config.SECTION and name.strip().lower() == config.SECTION:
                out.append(
                    _warn(
                        "gcp-section-name",
                        f"{location} has a section [{name}]: the agent's ini reader keeps the "
                        "spaces inside the brackets, so it is not [Snapshots] and its "
                        f"{len(keys)} key(s) are ignored.",
                        "Write the section header as [Snapshots], without spaces.",
                        path=location,
                    )
                )
        for key, value in sections.get(config.SECTION, {}).items():
            if key not in _KNOWN_KEYS:
                near = [k for k in _KNOWN_KEYS if k.startswith(key[:5])]
                hint = f" (did you mean {near[0]}?)" if near else ""
                out.append(
                    _warn(
                        "gcp-unknown-key",
                        f"[Snapshots] {key} = {value} in {location} is not a key the agent "
                        f"reads{hint}: it is ignored.",
                        f"Use the agent's keys: {', '.join(_KNOWN_KEYS)}.",
                        path=location,
                    )
                )
        timeout = sections.get(config.SECTION, {}).get("timeout_in_seconds")
        if timeout is not None and re.fullmatch(r"[+-]?0[0-9_xXbBoO].*", timeout):
            parsed = config.go_parse_int(timeout)
            out.append(
                _warn(
                    "gcp-timeout-not-decimal",
                    f"timeout_in_seconds = {timeout} in {location}: Go's strconv.ParseInt reads "
                    "a leading 0 as octal (0x hex, 0b binary), so the agent uses "
                    f"{parsed if parsed is not None else 0} s.",
                    "Write the timeout as a plain decimal number of seconds.",
                    path=location,
                )
            )
    user = dict(layers[0][1]) if layers and layers[0][0] == config.CONFIG_PATH else {}
    for location, keys in layers:
        if location == config.CONFIG_PATH:
            continue
        for key, value in keys.items():
            if key in user and user[key] != value:
                out.append(
                    _warn(
                        "gcp-config-overridden",
                        f"[Snapshots] {key} = {value} in {location} overrides {key} = "
                        f"{user[key]} in {config.CONFIG_PATH}: the agent reads {location} "
                        "after it, and the last value wins.",
                        f"Remove {key} from {location}, or set the value you want there.",
                        path=location,
                    )
                )
    return out


# --- scripts ----------------------------------------------------------------------------------


def script_warnings(location: str, which: str, text: str) -> list[Finding]:
    """The warnings about one script (``which`` is ``pre`` or ``post``)."""
    out: list[Finding] = []
    shell = scan_shell(text)
    exits = shell.code_matches(_EXIT_124)
    if exits:
        out.append(
            _warn(
                "gcp-exit-124",
                f"{location} exits 124 ({line_numbers(exits)}): the agent maps exit code 124 "
                "to SCRIPT_TIMED_OUT (its own timeout code, run.WithOutputTimeout), so this "
                "failure is reported as a timeout.",
                "Use another non-zero code (1) for a failure; keep 124 for the agent's timeout.",
                path=location,
                line=exits[0],
            )
        )
    timeouts = [
        n
        for n in shell.code_matches(_TIMEOUT_CMD)
        if not _CONSUMED.search(shell.code[n - 1]) and "124" not in shell.code_text()
    ]
    if timeouts:
        out.append(
            _warn(
                "gcp-timeout-command",
                f"{location} runs a command under 'timeout' ({line_numbers(timeouts)}): when it "
                "expires, timeout exits 124, and if that becomes the script's exit code the "
                "agent reports SCRIPT_TIMED_OUT, as if its own timeout had fired.",
                "Catch it: 'timeout 30 cmd || { echo \"cmd timed out\" >&2; exit 1; }'.",
                path=location,
                line=timeouts[0],
            )
        )
    first_line = text.split("\n", 1)[0]
    sh_shebang = (
        bool(_PLAIN_SH.match(first_line[2:].strip().split(" ")[0]))
        if first_line.startswith("#!")
        else False
    )
    out += _background_warnings(location, which, shell, sh_shebang)
    positional = [n for n in range(1, len(shell.code) + 1) if _POSITIONAL.search(shell.code[n - 1])]
    if positional:
        out.append(
            _warn(
                "gcp-positional-arg",
                f"{location} reads positional parameters ({line_numbers(positional)}): the "
                "agent passes exactly one, the disk list ('0/1' or '1/2,3/4'), so $1 is never "
                "an option of yours and $2 and later are always empty.",
                "Take settings from variables set in the script (or a file it reads), not "
                "from $1, $2 ...",
                path=location,
                line=positional[0],
            )
        )
    first = text.split("\n", 1)[0]
    interpreter = (
        first[2:].strip().split()[0] if first.startswith("#!") and first[2:].strip() else ""
    )
    if _PLAIN_SH.match(interpreter):
        for pattern, construct, effect in BASHISMS:
            hits = shell.code_matches(pattern)
            if hits:
                out.append(
                    _warn(
                        "gcp-bashism",
                        f"{location} uses {construct} ({line_numbers(hits)}) but its '#!' line "
                        f"names {interpreter}, which is dash on Debian and Ubuntu (the agent "
                        f"executes the script, so the '#!' line decides): {effect}.",
                        "Name bash in the '#!' line (#!/bin/bash), or rewrite it in POSIX sh.",
                        path=location,
                        line=hits[0],
                    )
                )
    freezes = shell.code_matches(_FREEZES_FS)
    if freezes:
        out.append(
            _warn(
                "gcp-script-freezes-fs",
                f"{location} freezes a file system ({line_numbers(freezes)}): the agent freezes "
                "nothing, but nothing thaws either when post.sh does not run (a failed or "
                "timed-out pre.sh, a host that sends no POST_SNAPSHOT): the file system stays "
                "frozen and every writer on it hangs.",
                "Quiesce the application instead; if you must freeze, thaw in the same pre.sh "
                "after a bounded wait (timeout) as well as in post.sh.",
                path=location,
                line=freezes[0],
            )
        )
    out += database_warnings(location, shell, which == "pre")
    return out


def _background_warnings(
    location: str, which: str, shell: ShellText, plain_sh: bool
) -> list[Finding]:
    """Background jobs whose stdout or stderr is still the agent's pipe (under a plain sh,
    ``cmd &>file`` is ``cmd &`` and then ``>file``: no redirection of ``cmd`` at all)."""
    script = parse(shell)
    base = {1: "pipe", 2: "pipe"}
    exec_lines = sorted(
        (c.line, c) for c in script.commands if c.name == "exec" and not c.background
    )
    jobs: dict[int, Command] = {}
    for command in script.commands:
        if command.background and command.job:
            jobs[command.job] = command  # the last command of a job carries its outer redirects
    held: list[int] = []
    for job, command in sorted(jobs.items()):
        fds = dict(base)
        for line, ex in exec_lines:
            if line < command.line and all(_REDIRECT.match(unquote(w)) for w in ex.args):
                fds = _apply(fds, ex.args, plain_sh)
        first = min(c.line for c in script.commands if c.job == job and c.background)
        fds = _apply(fds, command.words, plain_sh)
        if "pipe" in fds.values() and not _detached(command):
            held.append(first)
    if not held:
        return []
    return [
        _warn(
            "gcp-background-keeps-output",
            f"{location} starts a background process ({line_numbers(held)}) that keeps the "
            "script's stdout or stderr: the agent reads both to end-of-file (Go's exec with a "
            "buffer, no WaitDelay), so it does not answer until that process ends. A lock "
            "holder then either ends first (its lock is released before the snapshot) or "
            "outlives the timeout (SCRIPT_TIMED_OUT, no snapshot)"
            + (", or keeps the agent from answering at all." if which == "pre" else "."),
            "Start it with its streams redirected: ( ... ) </dev/null >/dev/null 2>&1 & (or "
            "'exec >>/var/log/snapshot.log 2>&1' at the top of the script).",
            path=location,
            line=held[0],
        )
    ]


def _apply(fds: dict[int, str], words: list[str], plain_sh: bool = False) -> dict[int, str]:
    """The stdout/stderr state after the redirections among ``words``, in order."""
    fds = dict(fds)
    items = [unquote(w) for w in words]
    for i, word in enumerate(items):
        match = _REDIRECT.match(word)
        if not match:
            continue
        fd_text, op, target = match.groups()
        if not target and i + 1 < len(items):
            target = items[i + 1]
        if op.startswith("&>"):
            if not plain_sh:
                fds[1] = fds[2] = "file"
            continue
        fd = int(fd_text) if fd_text else 1
        if fd not in (1, 2):
            continue
        if op == ">&" or op.endswith("&"):
            if target in ("1", "2"):
                fds[fd] = fds[int(target)]
            elif target == "-":
                fds[fd] = "closed"
            else:
                fds[fd] = "file"
        else:
            fds[fd] = "file"
    return fds


def _detached(command: Command) -> bool:
    """Started outside the script's streams (a systemd unit)."""
    return command.name in ("systemd-run",)
