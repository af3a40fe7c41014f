"""A pre-script that waits for something only the post-script does.

The extension runs the post-script only after the pre-script has returned (and the snapshot
is taken). A pre-script that waits for its own lock holder (a bare ``wait``), for a flag file
the post-script removes or creates, for a process the post-script kills, or for a FIFO the
post-script writes, never returns by itself: it runs into its timeout on every backup, however
large the timeout is.

:func:`waits_on_post` is pure (two texts in, one sentence out) so a run-time finding can reuse
it when a pre-script times out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

from .report import Collector
from .shell_commands import Command, Loop, Script, expand_path, parse, unquote, variables
from .shell_text import ShellText, scan_shell

# $(dirname "$0") is one placeholder in both scripts, which usually share a directory.
_SCRIPT_DIR = "{script dir}"
_CLIENT = re.compile(r"mysql|mariadb|psql|sqlite3|sqlplus|redis-cli")
_LOCKS = re.compile(
    r"FLUSH\s+TABLES\b[^;]*\bWITH\s+READ\s+LOCK|\bLOCK\s+TABLES?\b|\bBEGIN\s+(IMMEDIATE|EXCLUSIVE)\b|"
    r"\bBACKUP\s+(STAGE|LOCK)\b|pg_backup_start|pg_start_backup",
    re.IGNORECASE,
)
_SLEEPS = re.compile(r"\bSLEEP\s*\(|pg_sleep", re.IGNORECASE)
_SQL_KILL = re.compile(
    r"\bKILL\s+(?:QUERY\s+|CONNECTION\s+)?[\d$@(]|pg_terminate_backend|pg_cancel_backend",
    re.IGNORECASE,
)
_FILE_TESTS = {"-e", "-f", "-s", "-d", "-p", "-S", "-h", "-L", "-r", "-w"}
_REDIRECT_OUT = re.compile(r"[0-9]*(?:>>?|>\|)(?!&)(.*)")
_REDIRECT_IN = re.compile(r"[0-9]*<(?![<&>])(.*)")


@dataclass(frozen=True)
class Wait:
    """What a pre-script waits for, and where."""

    sentence: str
    line: int
    """The pre-script's line that waits."""


class _Side:
    """One script as the checks read it."""

    def __init__(self, text: str) -> None:
        self.shell: ShellText = scan_shell(text)
        self.script: Script = parse(self.shell)
        self.values = variables(self.script)

    def paths(self, word: str) -> list[str]:
        return expand_path(word, self.values, _SCRIPT_DIR)

    @cached_property
    def commands(self) -> list[Command]:
        return [c for c in self.script.commands if c.words]

    def foreground(self) -> Iterator[Command]:
        return (c for c in self.commands if not c.background)

    def is_client(self, command: Command) -> bool:
        first = (self.paths(command.words[0])[:1] or [command.name])[0].split()
        return bool(first) and bool(_CLIENT.fullmatch(first[0].rsplit("/", 1)[-1]))

    def sql_of(self, command: Command) -> str:
        """The text a client command is given: its pipeline's words and its here-document."""
        words = [w for c in self.commands if c.pipeline == command.pipeline for w in c.words]
        body = self.shell.heredoc_body(command.line)
        return " ".join(words) + "\n" + "\n".join(body)


def waits_on_post(pre_text: str, post_text: str) -> str | None:
    """One sentence on what the pre-script waits for that only the post-script ends (or
    that never ends while the pre-script runs), or None when nothing is found.

    Heuristic, with few false positives: a pre-script that starts its lock holder in the
    background and returns gives None.
    """
    found = find_wait(pre_text, post_text)
    return found.sentence if found else None


def find_wait(pre_text: str, post_text: str) -> Wait | None:
    """Like :func:`waits_on_post`, with the pre-script's line where it waits."""
    pre, post = _Side(pre_text), _Side(post_text)
    finders: tuple[Callable[[_Side, _Side], Wait | None], ...] = (
        _wait_on_holder,
        _loop_on_file,
        _loop_on_process,
        _read_fifo,
        _sleeper_in_foreground,
    )
    for finder in finders:
        found = finder(pre, post)
        if found:
            return found
    return None


WAITS_ON_POST_ACTION = (
    "Start the session that holds the lock in the background and return: for example "
    "'nohup setsid mysql ... &' (or a client fed through a FIFO), write its pid to a file, "
    "and exit 0 once the lock is held; the post-script reads that pid file and ends the "
    "session. Raising timeoutInSeconds does not help."
)


def warn_pre_waits_on_post(
    out: Collector, pre_location: str, pre_text: str, post_text: str
) -> None:
    """Warn when the pre-script waits for something only the post-script does."""
    found = find_wait(pre_text, post_text)
    if found is None:
        return
    out.warn(
        "pre-waits-on-post",
        f"{pre_location}: {found.sentence} The extension runs the post-script only after the "
        "pre-script has returned, so the pre-script cannot return in time: it runs until "
        "timeoutInSeconds and fails as timed out (308, Pre-ScriptTimeout) on every backup, "
        "however large the timeout.",
        WAITS_ON_POST_ACTION,
        path=pre_location,
        line=found.line,
    )


# -- the pre-script waits for its own background holder --------------------------------------


def _wait_on_holder(pre: _Side, post: _Side) -> Wait | None:
    logic = pre.shell.logic_text()
    if not (_LOCKS.search(logic) or _SLEEPS.search(logic)):
        return None
    commands = pre.commands
    for index, command in enumerate(commands):
        if command.name != "wait" or command.background:
            continue
        holder = _waited_holder(pre, index, command.args)
        if holder is not None:
            kill = _kill_line(post)
            ends = f"the post-script ends it (post-script line {kill})" if kill else "it is ended"
            return Wait(
                f"The pre-script waits ('{' '.join(command.words)}' on line {command.line}) for "
                f"the {_client_name(pre, holder)} session it started in the background on line "
                f"{holder.line}, which keeps its lock until {ends}.",
                command.line,
            )
    return None


def _waited_holder(pre: _Side, index: int, args: list[str]) -> Command | None:
    """The background client session that a ``wait`` (at ``index``, with ``args``) waits for."""
    if not args:  # a bare wait waits for every job started so far
        jobs = {c.job for c in pre.commands[:index] if c.background and c.function is None}
        return _client_in_jobs(pre, jobs)
    pid = unquote(args[0])
    if pid in ("$!", "${!}"):
        return _client_in_jobs(pre, {_last_job(pre, index)})
    name = re.fullmatch(r"\$\{?([A-Za-z_]\w*)\}?", pid)
    for at, command in enumerate(pre.commands[:index]):
        if name and command.words and unquote(command.words[0]) == f"{name.group(1)}=$!":
            return _client_in_jobs(pre, {_last_job(pre, at)})
    return None


def _last_job(pre: _Side, index: int) -> int:
    """The job that '$!' names at ``index``: the last one started before it."""
    jobs = [c.job for c in pre.commands[:index] if c.background and c.function is None]
    return max(jobs, default=0)


def _client_in_jobs(pre: _Side, jobs: set[int]) -> Command | None:
    return next(
        (c for c in pre.commands if c.background and c.job in jobs and pre.is_client(c)), None
    )


def _client_name(side: _Side, command: Command) -> str:
    for word in [command.words[0], *side.paths(command.words[0])]:
        for token in unquote(word).split():
            name = token.rsplit("/", 1)[-1]
            if _CLIENT.fullmatch(name):
                return name
    return "database"


def _is_kill(command: Command) -> bool:
    if command.name == "kill":
        return bool(command.args) and unquote(command.args[0]) != "-0"
    return command.name in ("pkill", "killall")


def _kill_line(side: _Side) -> int | None:
    for command in side.commands:
        if _is_kill(command):
            return command.line
    kills = side.shell.logic_matches(_SQL_KILL.pattern)
    return kills[0] if kills else None


# -- loops on a flag file, a process, or a FIFO read ------------------------------------------


def _foreground_loops(pre: _Side) -> Iterator[tuple[Loop, Command, bool]]:
    """(loop, condition, loops while the condition holds) for the loops the pre-script runs."""
    for loop in pre.script.loops:
        condition = loop.condition
        if condition is None or condition.background or not condition.words:
            continue
        yield loop, condition, loop.until == loop.negated


def _file_test(condition: Command) -> tuple[str, bool] | None:
    """(path word, test is negated) for '[ -f path ]' / 'test ! -e path'."""
    if condition.name not in ("[", "[[", "test"):
        return None
    args = [a for a in condition.args if a not in ("]", "]]")]
    negated = bool(args) and args[0] == "!"
    args = args[1:] if negated else args
    if len(args) == 2 and args[0] in _FILE_TESTS:
        return args[1], negated
    return None


def _loop_on_file(pre: _Side, post: _Side) -> Wait | None:
    for loop, condition, while_true in _foreground_loops(pre):
        test = _file_test(condition)
        if test is None or test[0].startswith(("/proc/", '"/proc/')):
            continue
        waits_for_removal = while_true != test[1]  # loops while the file exists
        act = _removes if waits_for_removal else _creates
        for path in pre.paths(test[0]):
            line = next((c.line for c in post.commands if act(post, c, path)), None)
            if line is None or any(act(pre, c, path) for c in pre.commands if c.background):
                continue  # the pre-script's own background work ends the wait
            what = "is removed" if waits_for_removal else "exists"
            does = "removes it" if waits_for_removal else "creates it"
            return Wait(
                f"The pre-script loops (line {loop.line}) until {path} {what}, and only the "
                f"post-script {does} (post-script line {line}).",
                loop.line,
            )
    return None


def _loop_on_process(pre: _Side, post: _Side) -> Wait | None:
    kill = _kill_line(post)
    if kill is None:
        return None
    for loop, condition, while_true in _foreground_loops(pre):
        process = _process_test(condition)
        if process is None or not while_true:
            continue
        if any(_is_kill(c) for c in pre.foreground() if c.line < loop.line):
            continue  # the pre-script ends an old holder itself and waits for it to go
        return Wait(
            f"The pre-script loops (line {loop.line}) until process {process} has exited, "
            f"which happens only when the post-script kills it (post-script line {kill}).",
            loop.line,
        )
    return None


def _process_test(condition: Command) -> str | None:
    """What process a loop condition asks about: 'kill -0 PID', '[ -d /proc/PID ]', pgrep."""
    args = [unquote(a) for a in condition.args if not re.match(r"[0-9]*>", a)]
    if condition.name == "kill" and args[:1] == ["-0"] and len(args) > 1:
        return args[1]
    if condition.name in ("pgrep", "pidof") and args:
        return args[-1]
    test = _file_test(condition)
    if test is not None and not test[1] and unquote(test[0]).startswith("/proc/"):
        return unquote(test[0]).split("/")[2]
    return None


def _read_fifo(pre: _Side, post: _Side) -> Wait | None:
    fifos = {
        path
        for side in (pre, post)
        for c in side.commands
        if c.name == "mkfifo"
        for arg in c.args
        if not arg.startswith("-")
        for path in side.paths(arg)
    }
    for command in pre.foreground():
        for path in _reads(pre, command):
            if path not in fifos:
                continue
            line = next((c.line for c in post.commands if path in _writes(post, c)), None)
            if line is not None:
                return Wait(
                    f"The pre-script reads the FIFO {path} (line {command.line}), which blocks "
                    f"until the post-script writes to it (post-script line {line}).",
                    command.line,
                )
    return None


def _sleeper_in_foreground(pre: _Side, post: _Side) -> Wait | None:
    kill = _kill_line(post)
    if kill is None:
        return None
    for command in pre.foreground():
        sql = pre.sql_of(command) if pre.is_client(command) else ""
        if _SLEEPS.search(sql) and _LOCKS.search(sql):
            return Wait(
                f"The pre-script's {_client_name(pre, command)} session on line {command.line} "
                "sleeps in the foreground while it holds the lock, and only the post-script "
                f"ends it (post-script line {kill}).",
                command.line,
            )
    return None


# -- what a command does to a path ------------------------------------------------------------


def _operands(side: _Side, command: Command) -> list[str]:
    """The paths a command names as plain arguments (no options, no redirections)."""
    words = [a for a in command.args if not a.startswith("-") and not re.match(r"[0-9]*[<>]", a)]
    return [path for word in words for path in side.paths(word)]


def _redirects(side: _Side, command: Command, pattern: re.Pattern[str]) -> list[str]:
    targets: list[str] = []
    words = command.words
    for i, word in enumerate(words):
        found = pattern.fullmatch(word)
        if found:
            target = found.group(1) or (words[i + 1] if i + 1 < len(words) else "")
            targets += side.paths(target)
    return targets


def _writes(side: _Side, command: Command) -> list[str]:
    written = _redirects(side, command, _REDIRECT_OUT)
    if command.name == "tee":
        written += _operands(side, command)
    return written


def _reads(side: _Side, command: Command) -> list[str]:
    read = _redirects(side, command, _REDIRECT_IN)
    if command.name in ("cat", "head", "tail"):
        read += _operands(side, command)
    return read


def _removes(side: _Side, command: Command, path: str) -> bool:
    if command.name in ("rm", "unlink", "rmdir"):
        return path in _operands(side, command)
    if command.name == "mv":
        return _operands(side, command)[:1] == [path]
    return False


def _creates(side: _Side, command: Command, path: str) -> bool:
    if command.name in ("touch", "mkdir", "mkfifo"):
        return path in _operands(side, command)
    if command.name in ("mv", "cp", "ln"):
        return _operands(side, command)[-1:] == [path]
    return path in _writes(side, command)
