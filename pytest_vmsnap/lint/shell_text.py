"""A shell script split into per-line views that the script heuristics search."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

BLANK = "\0"
"""What the code view puts in place of quoted data: not a space, so a quoted word stays one
word and every column still matches the line as written."""


@dataclass
class ShellText:
    """A script split into lines, with views suited to different heuristics."""

    code: list[str]
    """Per line, as long as the line: comments and here-document bodies become spaces; data
    in quotes (single-quoted text, and double-quoted text other than its $-expansions) becomes
    :data:`BLANK`. What is left is what sh itself reads as shell."""
    logic: list[str]
    """Per line: only whole-line comments blanked (quotes and here-documents kept, for SQL)."""
    source: list[str] = field(default_factory=list)
    """The lines as written."""
    heredoc_owner: list[int] = field(default_factory=list)
    """Per line: the number of the line whose command reads it as a here-document, or 0."""

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

    def heredoc_body(self, line: int) -> list[str]:
        """The here-document lines that the command on ``line`` reads."""
        owners = self.heredoc_owner
        return [text for text, owner in zip(self.logic, owners, strict=False) if owner == line]


_HEREDOC = re.compile(
    r"<<(?P<dash>-)?[ \t]*\\?(?P<q>['\"]?)(?P<delim>[A-Za-z_][A-Za-z0-9_]*)(?P=q)"
)
_PARAM = re.compile(r"\$(?:[A-Za-z_]\w*|[0-9#?@*!$-])")
# A double-quoted argument that sh runs as shell text again (eval "...", sh -c "...") is code;
# any other (mysql -e "...", psql -c "...", echo "...") is data for its program.
_RUNS_SHELL_TEXT = re.compile(
    r"(?:^|[\s;&|(`])(?:eval|(?:\S*/)?(?:sh|dash)(?:\s+-[A-Za-z]+)*?\s+-[A-Za-z]*c[A-Za-z]*)\s+$"
)


def scan_shell(text: str) -> ShellText:
    """Split shell text into views; quote and here-document state carries across lines."""
    lines = text.split("\n")
    code, owners = _Scanner().scan(lines)
    logic = ["" if re.match(r"\s*#", line) else line for line in lines]
    return ShellText(code, logic, lines, owners)


class _Scanner:
    """Quote and here-document state while the lines are read in order."""

    def __init__(self) -> None:
        self.single = self.double = self.ansi = False
        self.data = False  # the open double quote holds data, not shell text
        self.depth = 0  # ${ / $( nesting inside the open double quote
        self.backtick = False
        self.pending: list[tuple[str, bool, int]] = []
        self.heredoc: tuple[str, bool, int] | None = None

    def scan(self, lines: list[str]) -> tuple[list[str], list[int]]:
        code: list[str] = []
        owners: list[int] = []
        for number, line in enumerate(lines, 1):
            if self.heredoc is not None:
                delim, strip_tabs, owner = self.heredoc
                candidate = line.lstrip("\t") if strip_tabs else line
                if candidate.rstrip("\r") == delim:
                    self.heredoc = self.pending.pop(0) if self.pending else None
                code.append(" " * len(line))
                owners.append(owner)
                continue
            code.append(self._line(line, number))
            owners.append(0)
            if self.pending and self.heredoc is None and not (self.single or self.double):
                self.heredoc = self.pending.pop(0)
        return code, owners

    def _quoted_data(self) -> bool:
        return self.double and self.data and not self.depth and not self.backtick

    def _line(self, line: str, number: int) -> str:
        out: list[str] = []
        i = 0
        while i < len(line):
            c = line[i]
            if self.single:
                self.single = c != "'"
                out.append(BLANK if self.single else c)
                i += 1
            elif c == "\\":
                pair = line[i : i + 2]
                out.append(BLANK * len(pair) if self._quoted_data() else pair)
                i += 2
            elif self.ansi:
                self.ansi = c != "'"
                out.append(c)
                i += 1
            elif self.double:
                i = self._in_double(line, i, out)
            elif c == "#" and (i == 0 or line[i - 1] in " \t;&|()"):
                out.append(" " * (len(line) - i))
                break
            else:
                self._unquoted(line, i, out, number)
                i += 1
        return "".join(out)

    def _unquoted(self, line: str, i: int, out: list[str], number: int) -> None:
        c = line[i]
        if c == "'":
            self.ansi = i > 0 and line[i - 1] == "$"
            self.single = not self.ansi
        elif c == '"':
            self.double = True
            self.data = not _RUNS_SHELL_TEXT.search("".join(out))
        elif line.startswith("<<", i) and not line.startswith("<<<", i) and line[i - 1 : i] != "<":
            m = _HEREDOC.match(line, i)
            if m:
                self.pending.append((m.group("delim"), bool(m.group("dash")), number))
        out.append(c)

    def _in_double(self, line: str, i: int, out: list[str]) -> int:
        """Read one item inside double quotes; its $-expansions are shell, the rest data."""
        c = line[i]
        if self.depth:
            self.depth += (c in "({") - (c in ")}")
        elif self.backtick:
            self.backtick = c != "`"
        elif c == '"':
            self.double = False
        elif line.startswith(("${", "$("), i):
            self.depth = 1
            out.append(line[i : i + 2])
            return i + 2
        elif param := _PARAM.match(line, i):
            out.append(param.group())
            return param.end()
        elif c == "`":
            self.backtick = True
        elif self.data:
            c = BLANK
        out.append(c)
        return i + 1
