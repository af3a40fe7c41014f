"""Where the agent finds the two scripts, and what would stop it executing them.

``snapshot_listener.go`` (GoogleCloudPlatform/guest-agent): ``scriptsDir`` is
``/etc/google/snapshots/``; a PRE_SNAPSHOT request runs ``pre.sh`` in it, a POST_SNAPSHOT
request ``post.sh``: one file per phase, no ``.d`` directory, no other name. ``runScript``
only asks ``os.Stat`` whether the file exists (``os.IsNotExist``: SCRIPT_NOT_FOUND) and then
executes it directly; there is no owner or mode check of its own. Whatever the kernel refuses
at ``execve`` (no exec bit, no ``#!`` line, a missing interpreter) comes back as a start error:
``run.execCommand`` returns exit code -1, which ``runScript`` reports as
UNHANDLED_SCRIPT_ERROR. ``startSnapshotListener`` creates the directory with mode 0700 when it
does not exist (``os.MkdirAll``, so a missing ``/etc/google`` gets 0700 too).
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

SCRIPTS_DIR = "/etc/google/snapshots"
PRE = f"{SCRIPTS_DIR}/pre.sh"
POST = f"{SCRIPTS_DIR}/post.sh"
SCRIPTS = {"pre": PRE, "post": POST}
DIR_MODE = 0o700


def host_path(root: Path | str, location: str) -> Path:
    """``location`` (absolute, inside the machine) under ``root``."""
    return Path(root) / location.lstrip("/")


def ensure_dir(root: Path | str) -> bool:
    """Create the scripts' directory as the agent does at listener start (mode 0700, parents
    too); True when it was made."""
    target = host_path(root, SCRIPTS_DIR)
    try:
        os.stat(target)
        return False
    except FileNotFoundError:
        pass
    except OSError:
        return False  # os.IsNotExist is false: the agent leaves it alone
    missing = []
    p = target
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    with contextlib.suppress(OSError):
        for d in reversed(missing):
            d.mkdir(mode=DIR_MODE)
            os.chmod(d, DIR_MODE)  # MkdirAll's mode, less a umask of 022: still 0700
    return True


def missing(root: Path | str, location: str) -> bool:
    """``os.IsNotExist(os.Stat(path))``: no such file (a dangling symlink counts, a path
    through a regular file does not: that is ENOTDIR, and the agent goes on to execute it)."""
    try:
        os.stat(host_path(root, location))
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


@dataclass(frozen=True)
class ExecProblem:
    """Why ``execve`` would refuse the script, in Go's words (``fork/exec PATH: ...``)."""

    errno_text: str
    why: str


def exec_problem(root: Path | str, location: str) -> ExecProblem | None:
    """What the kernel would refuse when the agent (root) executes the script, or None.

    Root may execute a regular file with any exec bit set; a file without ``#!`` and not ELF
    is ENOEXEC (Go never falls back to a shell); a ``#!`` naming a missing interpreter is ENOENT.
    """
    path = host_path(root, location)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None  # SCRIPT_NOT_FOUND, not an exec problem
    except OSError as err:
        return ExecProblem((err.strerror or str(err)).lower(), f"{location} cannot be reached")
    if stat.S_ISDIR(st.st_mode):
        return ExecProblem("permission denied", f"{location} is a directory")
    if not st.st_mode & 0o111:
        mode = stat.S_IMODE(st.st_mode)
        return ExecProblem("permission denied", f"{location} has no exec bit (mode {mode:04o})")
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    if head.startswith(b"\x7fELF"):
        return None
    if not head.startswith(b"#!"):
        return ExecProblem(
            "exec format error",
            f"{location} has no '#!' line: the agent executes it directly and no shell is "
            "tried instead",
        )
    interpreter = shebang_interpreter(head)
    # Only on a whole machine's root: a scratch root of the user's files (lint) has no /usr.
    if interpreter.startswith("/") and host_path(root, "/usr/bin").is_dir():
        target = host_path(root, interpreter)
        if not target.exists():
            return ExecProblem(
                "no such file or directory",
                f"{location} names {interpreter} in its '#!' line, which is not installed",
            )
    return None


def shebang_interpreter(head: bytes) -> str:
    """The interpreter path of a ``#!`` line ('' when there is none)."""
    if not head.startswith(b"#!"):
        return ""
    first = head[2:].split(b"\n", 1)[0].strip()
    parts = first.split()
    return parts[0].decode("utf-8", "replace") if parts else ""
