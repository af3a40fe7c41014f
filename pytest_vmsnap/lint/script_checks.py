"""Warnings about a script as the extension runs it (``sh <script>``, output never read, no
cleanup on timeout): encoding and line endings, the shebang, ``exit 2``, output that fills the
pipe, and background processes without a time limit."""

from __future__ import annotations

import re

from .report import Collector
from .shell_text import ShellText
from .wording import line_numbers, plural

_NOT_SHELL_INTERPRETERS = re.compile(r"\b(python[\d.]*|perl|ruby|node|php|lua|tclsh)\b")
_PLAIN_SH = re.compile(r"^(/usr)?/bin/(sh|dash)$|^/usr/bin/env\s+(sh|dash)$")
_BACKGROUND = re.compile(r"(?<![&>|<0-9])&(?![&>])")
_SELF_BOUNDED = re.compile(r"\btimeout\s|\bSLEEP\s*\(|\bpg_sleep\b", re.IGNORECASE)


def decode_script(out: Collector, location: str, data: bytes) -> str | None:
    """The script as text with any BOM and CRLF removed (warned about); None for a binary."""
    if data.startswith(b"\x7fELF") or b"\0" in data[:8192]:
        out.warn(
            "not-shell",
            f"{location} is a binary file, but the extension runs it as 'sh {location}': sh "
            "reads it as shell text and fails.",
            f"Keep a small sh script at {location} that runs the program: "
            'exec /path/to/program "$@".',
            path=location,
        )
        return None
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
            f"{location} has Windows (CRLF) line endings on {plural(len(crlf), 'line')}: sh "
            "keeps the carriage return as part of the last word, so 'then\\r' is no keyword, "
            "'file\\r' is another file name, and commands fail in odd ways.",
            f"Convert it to Unix line endings: sed -i 's/\\r$//' {location} (or dos2unix).",
            path=location,
            line=crlf[0],
        )
        text = text.replace("\r\n", "\n")
    return text


def warn_shebang(out: Collector, location: str, text: str) -> bool:
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


def _warn_not_shell(out: Collector, location: str, language: str) -> None:
    out.warn(
        "not-shell",
        f"{location} looks like a {language} program, but the extension runs it as "
        f"'sh {location}': sh reads {language} as shell commands and fails.",
        f"Keep a small sh script at {location} that runs the program: "
        f'exec /usr/bin/{language} /path/to/program "$@".',
        path=location,
    )


def warn_exit_2(out: Collector, location: str, shell: ShellText) -> None:
    """Warn about ``exit 2``, once meant as "succeeded with a warning"."""
    exits = shell.code_matches(re.compile(r"(?:^|[\s;&|])exit\s+2(?!\d)"))
    if exits:
        out.warn(
            "exit-2",
            f"{location} uses 'exit 2' ({line_numbers(exits)}). Early versions of the extension "
            "took 2 as 'succeeded with a warning'; today every exit code other than 0 is a "
            "failure (300/301).",
            "Exit 0 when the script did its job, and non-zero only when it did not.",
            path=location,
            line=exits[0],
        )


def warn_output_stall(out: Collector, location: str, shell: ShellText) -> None:
    """Warn about output that can fill the pipe the real extension never reads."""
    code = shell.code_text()
    redirected = re.search(r"(?:^|[\s;&|])exec\s[^\n]*>", code, re.MULTILINE)
    if redirected:
        return
    reasons = []
    xtrace = shell.code_matches(re.compile(r"(?:^|[\s;&|])set\s+(?:-[a-wyz]*x|-o\s+xtrace)"))
    if xtrace:
        reasons.append(f"set -x traces every command to stderr ({line_numbers(xtrace)})")
    dumps = [
        n
        for n, text in enumerate(shell.code, 1)
        if re.search(r"\b(mysqldump|mariadb-dump|pg_dump|pg_dumpall|mongodump)\b", text)
        and not re.search(r">|\||\s(-f|-r|--file|--result-file|--out)\b", text)
    ]
    if dumps:
        reasons.append(f"a database dump writes to stdout ({line_numbers(dumps)})")
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


def warn_background(out: Collector, location: str, which: str, shell: ShellText) -> None:
    """Warn about background processes that outlive a timed-out script (no time limit)."""
    background = shell.code_matches(_BACKGROUND)
    if not background or _SELF_BOUNDED.search(shell.logic_text()):
        return
    out.warn(
        "profile-difference",
        f"{location} starts a background process ({line_numbers(background)}) with no time "
        f"limit of its own. If the {which}-script times out, the documented profile kills its "
        "whole process group, that process included; the real extension kills nothing, so "
        "whatever it holds (a lock, a read-only mode) stays held.",
        "Bound the background process itself (for example 'timeout 600 <command> &', or "
        "SELECT SLEEP(600) in the holding session) so it ends even if the post-script never "
        "runs.",
        path=location,
        line=background[0],
    )
