"""A shell script split into per-line views that the script heuristics search."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass
class ShellText:
    """A script split into lines, with views suited to different heuristics."""

    code: list[str]
    """Per line: comments removed, single-quoted text and here-document bodies blanked."""
    logic: list[str]
    """Per line: only whole-line comments blanked (quotes and here-documents kept, for SQL)."""

    def code_matches(self, pattern: re.Pattern[str]) -> list[int]:
        """Numbers (from 1) of the lines whose code view matches ``pattern``."""
        return [n for n, text in enumerate(self.code, 1) if pattern.search(text)]

    def logic_matches(self, pattern: str) -> list[int]:
        """Numbers (from 1) of the lines whose logic view matches ``pattern``, ignoring case."""
        compiled = re.compile(pattern, re.IGNORECASE)
        return [n for n, text in enumerate(self.logic, 1) if compiled.search(text)]

    def logic_text(self) -> str:
        """The logic view as one text."""
        return "\n".join(self.logic)

    def code_text(self) -> str:
        """The code view as one text."""
        return "\n".join(self.code)


_HEREDOC = re.compile(
    r"<<(?P<dash>-)?[ \t]*\\?(?P<q>['\"]?)(?P<delim>[A-Za-z_][A-Za-z0-9_]*)(?P=q)"
)


def scan_shell(text: str) -> ShellText:
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
    return ShellText(code, logic)
