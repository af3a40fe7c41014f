"""Files a script brings in: shell files it sources (``. file``) or runs (``sh file``,
``./file``), and SQL files it has a database client read (``mysql < file.sql``,
``mysql -e "source file.sql"``). They are read under the lint's root, never outside it; a path
that cannot be read (unknown variables, missing, not a regular file) is skipped."""

from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..framework.azure.environment import EXTENSION_DIR
from ..vm.linux import IN_ROOT, openat2
from .shell_commands import Command, expand, expand_path, parse, unquote, variables
from .shell_text import ShellText, scan_shell

_READ_LIMIT = 1024 * 1024
_HEAD = 8192  # enough to tell a program (NUL bytes) from a script
_DEPTH = 3  # a script that runs a file that sources a file is as deep as lint follows
_SHELLS = re.compile(r"(?:sh|bash|dash|ksh|mksh|zsh)")
_CLIENTS = re.compile(r"mysql|mariadb|psql|sqlite3")
_PREFIXES = {"exec", "nohup", "setsid", "env", "nice", "ionice", "command", "time", "sudo"}
# Per client, how its SQL names a file to read: mysql's 'source f' / '\. f', psql's '\i f',
# sqlite3's '.read f'.
_SQL_READS = {
    "mysql": re.compile(r"(?:\bsource|\\\.)\s+([^\s;\"'`]+)", re.IGNORECASE),
    "mariadb": re.compile(r"(?:\bsource|\\\.)\s+([^\s;\"'`]+)", re.IGNORECASE),
    "psql": re.compile(r"\\ir?\s+([^\s;\"'`]+)"),
    "sqlite3": re.compile(r"\.read\s+([^\s;\"'`]+)"),
}


@dataclass(frozen=True)
class Included:
    """A file that a script brings in, as read under the root."""

    path: str
    """Its path on the VM."""
    text: str
    sql: bool
    """Read by a database client (else sourced or run by a shell)."""
    via: str
    """How it comes in: 'sourced on line 4', 'run on line 9 of /opt/x.sh, sourced on line 2'."""


def included_files(root: Path, location: str, shell: ShellText) -> list[Included]:
    """The files the script at ``location`` (a VM path) sources, runs or feeds to a client,
    and in turn what those shell files bring in, each once."""
    found: dict[str, Included] = {}
    location = _absolute(location)
    _collect(root, location, shell, _Context({}, posixpath.dirname(location), "", _DEPTH), found)
    found.pop(location, None)
    return list(found.values())


@dataclass(frozen=True)
class _Context:
    inherited: dict[str, list[str]]
    """Variables of the script that sources this one."""
    script_dir: str
    """The directory of $0 (a sourced file keeps its parent's)."""
    via: str
    depth: int


def _collect(
    root: Path, location: str, shell: ShellText, context: _Context, found: dict[str, Included]
) -> None:
    script = parse(shell)
    values = variables(script, context.inherited)
    for command in script.commands:
        for how, word, sql in _references(command, values, context.script_dir, shell):
            for named in expand_path(word, values, context.script_dir):
                path = _absolute(named)
                if path in found or path == location or (how == "sourced" and "/" not in named):
                    continue  # '. name' searches PATH in dash, not the directory
                text = read_in_root(root, path)
                if text is None or (how == "run" and not _is_shell_script(path, text)):
                    continue
                of = f" of {location}, {context.via}" if context.via else ""
                via = f"{how} on line {command.line}{of}"
                found[path] = Included(path, text, sql, via)
                if not sql and context.depth > 1:
                    sourced = how == "sourced"
                    inner = _Context(
                        values if sourced else {},
                        context.script_dir if sourced else posixpath.dirname(path),
                        via,
                        context.depth - 1,
                    )
                    _collect(root, path, scan_shell(text), inner, found)


def _references(
    command: Command, values: dict[str, list[str]], script_dir: str, shell: ShellText
) -> list[tuple[str, str, bool]]:
    """(how, word naming the file, is SQL) for each file ``command`` brings in."""
    words = _without_prefixes(command.words)
    if not words:
        return []
    argv = (expand(words[0], values, script_dir)[:1] or [unquote(words[0])])[0].split()
    if not argv:
        return []
    name = posixpath.basename(argv[0])
    if name in (".", "source") and len(words) > 1:
        return [("sourced", words[1], False)]
    if _SHELLS.fullmatch(name):
        return _shell_file(words[1:])
    if _CLIENTS.fullmatch(name):
        return _sql_files(name, words[1:], "\n".join(shell.heredoc_body(command.line)))
    if "/" in argv[0] and len(argv) == 1:
        return [("run", words[0], False)]
    return []


def _without_prefixes(words: list[str]) -> list[str]:
    """The words from the command that actually runs (after nohup, setsid, exec, ...)."""
    i = 0
    while i < len(words) and unquote(words[i]) in _PREFIXES:
        i += 1
        while i < len(words) and (words[i].startswith("-") or "=" in words[i]):
            i += 1  # their options, env's assignments
    return words[i:]


def _shell_file(args: list[str]) -> list[tuple[str, str, bool]]:
    for arg in args:
        if arg.startswith("-"):
            if "c" in arg.lstrip("-") and arg != "--":
                return []  # sh -c 'text': no file
            continue
        return [("run", arg, False)]
    return []


def _sql_files(client: str, args: list[str], heredoc: str) -> list[tuple[str, str, bool]]:
    found: list[tuple[str, str, bool]] = []
    for i, arg in enumerate(args):
        redirect = re.fullmatch(r"0?<([^<&>].*)?", arg)
        if redirect:
            target = redirect.group(1) or (args[i + 1] if i + 1 < len(args) else "")
            found.append((f"fed to {client}", target, True))
        elif client == "psql" and arg in ("-f", "--file") and i + 1 < len(args):
            found.append(("run by psql", args[i + 1], True))
        elif client == "psql" and arg.startswith(("--file=", "-f")) and len(arg) > 2:
            found.append(("run by psql", arg.split("=", 1)[-1].removeprefix("-f"), True))
    sql = " ".join(args) + "\n" + heredoc
    found += [(f"sourced by {client}", m.group(1), True) for m in _SQL_READS[client].finditer(sql)]
    return [item for item in found if item[1]]


def _is_shell_script(path: str, text: str) -> bool:
    first = text.split("\n", 1)[0]
    if first.startswith("#!"):
        return bool(re.search(r"\b(sh|bash|dash|ksh|mksh|zsh)\b", first))
    return path.endswith(".sh")


def _absolute(path: str) -> str:
    """A script's path as the extension's working directory makes it."""
    return posixpath.normpath(posixpath.join(EXTENSION_DIR, path))


def read_in_root(root: Path, path: str, limit: int = _READ_LIMIT) -> str | None:
    """The text of the regular file ``path`` on the machine whose ``/`` is ``root``: links and
    '..' are resolved as a process chrooted there would (they never leave ``root``). None when
    it cannot be read or is binary."""
    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY
        fd = openat2(root_fd, path.lstrip("/") or ".", flags, resolve=IN_ROOT)
    except OSError:
        return None
    finally:
        os.close(root_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = _read_up_to(fd, _HEAD)
        if b"\0" in head:
            return None  # a program, not a script
        data = head + _read_up_to(fd, limit - len(head))
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace").replace("\r\n", "\n")


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
