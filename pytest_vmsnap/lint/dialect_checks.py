"""Warnings about bash in scripts that the extension runs with ``sh`` (dash on Debian/Ubuntu):
a table of common bashisms, ``sh -n``, and ``checkbashisms`` when it is installed."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .report import Collector
from .shell_text import ShellText
from .wording import line_numbers

_SYNTAX_CHECK_TIMEOUT_S = 10

# (pattern, construct, what happens under dash)
BASHISMS: tuple[tuple[re.Pattern[str], str, str], ...] = (
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


def warn_bashisms(out: Collector, location: str, shell: ShellText) -> None:
    """One warning per bashism in the table, with the lines that use it."""
    for pattern, construct, effect in BASHISMS:
        hits = shell.code_matches(pattern)
        if hits:
            out.warn(
                "bashism",
                f"{location} uses {construct} ({line_numbers(hits)}), which bash has but POSIX sh "
                "has not. The extension runs the script with sh, which is dash on Debian and "
                f"Ubuntu: {effect}.",
                "Rewrite it in POSIX sh (check with: dash -n <script>, or checkbashisms).",
                path=location,
                line=hits[0],
            )


def warn_sh_syntax(out: Collector, location: str, path: Path, shell: str | None) -> None:
    """Warn when ``shell -n`` rejects the script (nothing to do when ``shell`` is None)."""
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


def warn_checkbashisms(
    out: Collector, location: str, path: Path, shell: ShellText, tool: str | None
) -> None:
    """Pass on what ``tool`` (checkbashisms, when installed) finds beyond the table's hits."""
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
    # A line the table already flagged needs no second finding.
    already = {n for pattern, _, _ in BASHISMS for n in shell.code_matches(pattern)}
    output = (proc.stderr + proc.stdout).decode("utf-8", "replace")
    for match in re.finditer(r"possible bashism in .*? line (\d+) \((.+?)\):", output):
        line = int(match.group(1))
        if line in already:
            continue
        out.warn(
            "checkbashisms",
            f"checkbashisms reports {match.group(2)} in {location} (line {line}); the "
            "extension runs the script with sh, which may be dash.",
            "Rewrite that line in POSIX sh.",
            path=location,
            line=line,
        )
