"""A script's simple commands as sh groups them: which run in the background (after '&', in
a group, loop or function run with '&'), which are loop conditions, and the literal values of
its variables. A heuristic reading for lint, not a parser: enough to tell a lock holder
started with '&' from a wait in the foreground."""

from __future__ import annotations

import bisect
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from .shell_text import BLANK, ShellText

_OPERATORS = ("&&", "||", ";;", ";", "&", "|", "(", ")")
_CLOSERS = {"}": "brace", "done": "loop", "fi": "if", "esac": "case"}
# Words after which the next word starts a command again.
_LEAD_INS = {"then", "do", "else", "elif", "if", "while", "until", "!", "{", "time"}
_VARIABLE = re.compile(r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)")
_ASSIGNMENT = re.compile(r"([A-Za-z_]\w*)=(.*)", re.DOTALL)
# How scripts name their own directory: all mean dirname "$0".
_SCRIPT_DIR = re.compile(
    r"\$\(\s*cd\s+\"?\$\(\s*dirname\s+(?:--\s+)?\"?\$\{?0\}?\"?\s*\)\"?\s*(?:&&|;)\s*pwd(?:\s+-P)?\s*\)"
    r"|\$\(\s*dirname\s+(?:--\s+)?\"?\$\(\s*(?:readlink|realpath)\s+(?:-\w+\s+)*\"?\$\{?0\}?\"?\s*\)\"?\s*\)"
    r"|\$\(\s*dirname\s+(?:--\s+)?\"?\$\{?0\}?\"?\s*\)"
    r"|`\s*dirname\s+\"?\$0\"?\s*`"
    r"|\$\{0%/\*\}"
)
_MAX_VALUES = 8  # a word with for-loop variables expands to at most this many paths


@dataclass(eq=False)
class Command:
    """One simple command (or the words after a closing ``done``/``}``/``)``/``fi``)."""

    line: int
    words: list[str]
    """As written, quotes kept."""
    background: bool = False
    """Runs in the background: ends with '&', or sits in a group or function run with '&'."""
    function: str | None = None
    """The function whose body holds it."""
    pipeline: int = 0
    """Commands joined by '|', '&&' or '||' share this number."""
    job: int = 0
    """For a background command: the number (from 1, in order) of the '&' that started it."""

    @property
    def name(self) -> str:
        """The first word without quotes."""
        return unquote(self.words[0]) if self.words else ""

    @property
    def args(self) -> list[str]:
        """The words after the first, quotes kept."""
        return self.words[1:]


@dataclass
class Loop:
    """A ``while``/``until`` loop with its first condition command."""

    line: int
    until: bool
    negated: bool
    condition: Command | None


@dataclass
class Script:
    """The commands and loops of one script."""

    commands: list[Command] = field(default_factory=list)
    loops: list[Loop] = field(default_factory=list)
    functions: dict[str, list[int]] = field(default_factory=dict)
    """Function name -> indices in :attr:`commands` of its body."""


def unquote(word: str) -> str:
    """``word`` with its quotes and backslashes removed (no expansion)."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(word):
        c = word[i]
        if c == "\\" and quote != "'" and i + 1 < len(word):
            out.append(word[i + 1])
            i += 2
            continue
        if c in "'\"" and quote in ("", c):
            quote = "" if quote else c
        else:
            out.append(c)
        i += 1
    return "".join(out)


def parse(shell: ShellText) -> Script:
    """Group the commands of ``shell`` (see :class:`Command`)."""
    parser = _Parser(shell)
    parser.run()
    return parser.script


def variables(
    script: Script, inherited: dict[str, list[str]] | None = None
) -> dict[str, list[str]]:
    """Literal values the script gives its variables (``NAME=value``, ``for NAME in ...``);
    a variable assigned more than once keeps its last value."""
    values = dict(inherited or {})
    for command in script.commands:
        words = command.words
        if command.name in ("export", "readonly", "local"):
            words = words[1:]
        if command.name == "for" and len(words) > 2 and words[2] == "in":
            values[words[1]] = words[3:]
            continue
        for word in words:
            found = _ASSIGNMENT.fullmatch(word)
            if not found:
                break
            values[found.group(1)] = [found.group(2)]
    return values


def expand(word: str, values: dict[str, list[str]], script_dir: str) -> list[str]:
    """The literal strings ``word`` can stand for; [] when it uses anything unknown."""

    def here(text: str) -> str:
        return unquote(_SCRIPT_DIR.sub(lambda _: script_dir, text))

    results = [here(word)]
    for _ in range(4):  # values may name other variables
        expanded: list[str] = []
        for text in results:
            found = _VARIABLE.search(text)
            if not found:
                expanded.append(text)
                continue
            name = found.group(1) or found.group(2)
            for value in values.get(name, []):
                expanded.append(text[: found.start()] + here(value) + text[found.end() :])
        results = expanded[:_MAX_VALUES]
    return [text for text in results if "$" not in text and "`" not in text]


def expand_path(word: str, values: dict[str, list[str]], script_dir: str) -> list[str]:
    """Like :func:`expand`, normalised as paths."""
    return [posixpath.normpath(path) for path in expand(word, values, script_dir) if path]


@dataclass
class _Frame:
    kind: str  # group, brace, loop, if, case
    line: int
    start: int  # index of the first command inside
    outer: list[int]  # the enclosing list's commands so far
    function: str | None = None
    until: bool = False
    negated: bool = False
    condition_end: int | None = None
    case_state: str = "head"


class _Parser:
    def __init__(self, shell: ShellText) -> None:
        self.code = "\n".join(shell.code)
        self.source = "\n".join(shell.source) if shell.source else self.code
        self.starts = [0]
        for line in shell.code[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.script = Script()
        self.frames: list[_Frame] = []
        self.current: Command | None = None
        self.listed: list[int] = []  # the commands of the list an '&' would put in background
        self.pipeline = 0
        self.jobs = 0
        self.expect_function_name = False
        self.next_function: str | None = None
        self.name_before_parens = False  # the last word was NAME in 'NAME() {'
        self.in_definition = False  # between the parentheses of NAME()
        self.negate_next = False
        self.continued = False  # the last operator was |, && or ||: a newline continues it

    def run(self) -> None:
        tokens = list(_lex(self.code))
        for index, (token, start, end) in enumerate(tokens):
            following = tokens[index + 1][0] if index + 1 < len(tokens) else ""
            if token == "word":
                self._word(self.source[start:end], self._line(start), following)
            else:
                self._operator(token, self._line(start))
        self._end_command()
        self._background_functions()

    def _line(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    # -- words -------------------------------------------------------------------------------

    def _word(self, word: str, line: int, following: str) -> None:
        if self.current is not None:
            self.current.words.append(word)
            return
        frame = self.frames[-1] if self.frames else None
        if frame is not None and frame.kind == "case" and frame.case_state != "body":
            if word == "esac" and frame.case_state == "pattern":
                self._close(line, "esac")
            elif word == "in":
                frame.case_state = "pattern"
            return
        if self.expect_function_name:
            self.expect_function_name = False
            self.next_function = word
            self.name_before_parens = following == "("
            return
        if self._keyword(word, line):
            return
        if following == "(":
            self.next_function = word  # name() { ... }: the parentheses follow
            self.name_before_parens = True
            return
        self._start_command(word, line)

    def _keyword(self, word: str, line: int) -> bool:
        if word in _CLOSERS and self.frames and self.frames[-1].kind == _CLOSERS[word]:
            self._close(line, word)
        elif word in ("while", "until"):
            self._open("loop", line, until=word == "until")
        elif word == "for":
            self._open("loop", line)
            self._start_command(word, line)  # its words are the header: for NAME in ...
        elif word in ("if", "case", "{"):
            self._open({"if": "if", "case": "case", "{": "brace"}[word], line)
        elif word == "do" and self.frames and self.frames[-1].kind == "loop":
            self.frames[-1].condition_end = len(self.script.commands)
        elif word == "function":
            self.expect_function_name = True
        elif word == "!":
            self.negate_next = True
        else:
            return word in _LEAD_INS
        return True

    def _start_command(self, word: str, line: int) -> None:
        function = next((f.function for f in reversed(self.frames) if f.function), None)
        self.current = Command(line, [word], function=function, pipeline=self.pipeline)
        frame = self.frames[-1] if self.frames else None
        if (
            frame is not None
            and frame.kind == "loop"
            and frame.condition_end is None
            and len(self.script.commands) == frame.start
        ):
            frame.negated = self.negate_next
        self.negate_next = False
        self.listed.append(len(self.script.commands))
        self.script.commands.append(self.current)

    def _end_command(self) -> None:
        self.current = None

    # -- operators and groups ----------------------------------------------------------------

    def _operator(self, token: str, line: int) -> None:
        self._end_command()
        if token == "\n" and self.continued:
            return
        self.continued = token in ("|", "&&", "||")
        definition, self.name_before_parens = self.name_before_parens, False
        frame = self.frames[-1] if self.frames else None
        in_pattern = frame is not None and frame.kind == "case" and frame.case_state != "body"
        if token == "(":
            if definition:
                self.in_definition = True
            elif not in_pattern:
                self._open("group", line)
        elif token == ")":
            if self.in_definition:
                self.in_definition = False
            elif frame is not None and frame.kind == "case":
                frame.case_state = "body"
            elif frame is not None and frame.kind == "group":
                self._close(line, ")")
        elif token == ";;" and frame is not None and frame.kind == "case":
            frame.case_state = "pattern"
        elif token == "&":
            self.jobs += 1
            for index in self.listed:
                self.script.commands[index].background = True
                self.script.commands[index].job = self.jobs
        if token in ("\n", ";", ";;", "&"):
            self.listed = []
            self.pipeline += 1

    def _open(self, kind: str, line: int, until: bool = False) -> None:
        function = self.next_function if kind == "brace" else None
        self.next_function = None
        start = len(self.script.commands)
        self.frames.append(_Frame(kind, line, start, self.listed, function, until))
        self.listed = []

    def _close(self, line: int, closer: str) -> None:
        frame = self.frames.pop()
        inside = list(range(frame.start, len(self.script.commands)))
        if frame.function:
            self.script.functions[frame.function] = inside
            self.listed = frame.outer
        else:
            self.listed = frame.outer + inside  # an '&' after the closer reaches them all
        if frame.kind == "loop" and not self._is_for(frame):
            self._add_loop(frame)
        # Words after a closer (redirections, as in 'done < fifo') form a command of their own.
        self._start_command(closer, line)

    def _is_for(self, frame: _Frame) -> bool:
        commands = self.script.commands
        return frame.start < len(commands) and commands[frame.start].name == "for"

    def _add_loop(self, frame: _Frame) -> None:
        commands = self.script.commands
        has_condition = frame.start < (frame.condition_end or frame.start)
        condition = commands[frame.start] if has_condition else None
        self.script.loops.append(Loop(frame.line, frame.until, frame.negated, condition))

    def _background_functions(self) -> None:
        commands = self.script.commands
        for _ in range(3):  # a function run with '&' may call another
            for command in commands:
                body = self.script.functions.get(command.name)
                if body and command.background and command.function != command.name:
                    for index in body:
                        commands[index].background = True
                        commands[index].job = command.job


def _lex(code: str) -> Iterator[tuple[str, int, int]]:
    """(token, start, end): token is "word", "\\n" or an operator."""
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c in " \t\r":
            i += 1
        elif c == "\n":
            yield "\n", i, i + 1
            i += 1
        else:
            operator = next((op for op in _OPERATORS if code.startswith(op, i)), None)
            if operator is not None and not (c == "&" and code[i + 1 : i + 2] == ">"):
                yield operator, i, i + len(operator)
                i += len(operator)
            else:
                end = _word_end(code, i)
                yield "word", i, end
                i = end


def _word_end(code: str, i: int) -> int:
    """Where the word starting at ``i`` ends: quotes, $(...) and ${...} belong to it."""
    n = len(code)
    start = i
    double = False
    depth = 0
    while i < n:
        c = code[i]
        if c == "\\":
            i += 2
            continue
        if c == "'" and not double:
            close = code.find("'", i + 1)
            i = n if close < 0 else close + 1
            continue
        if c == '"':
            double = not double
        elif code.startswith(("$(", "${"), i):
            depth += 1
            i += 1
        elif depth and c in "({":
            depth += 1
        elif depth and c in ")}":
            depth -= 1
        elif not (double or depth or c == BLANK) and _ends_word(code, i, start):
            break
        i += 1
    return min(i, n)


def _ends_word(code: str, i: int, start: int) -> bool:
    c = code[i]
    if c in " \t\r\n;()":
        return True
    before = code[i - 1] if i > start else ""
    if c == "|":
        return before != ">"  # '>|' is a redirection
    if c == "&":
        return before not in ("<", ">") and code[i + 1 : i + 2] != ">"
    return False
