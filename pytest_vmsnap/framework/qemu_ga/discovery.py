"""Which program runs on ``freeze``/``thaw``: the hook itself, or the stock wrapper's
``fsfreeze-hook.d`` scripts, and in which order.

qemu-ga runs the one hook path it was given. The distributions install the stock wrapper at
``/etc/qemu/fsfreeze-hook`` (Debian's qemu-guest-agent ships it, with an empty
``/etc/qemu/fsfreeze-hook.d/``: package 1:7.2+dfsg-7+deb12u18; packages.debian.org lists
``/etc/qemu/fsfreeze-hook`` for buster to sid). When the file at the hook path exists in the
machine root the engine runs it as the agent does; when it does not but ``fsfreeze-hook.d``
scripts do, the engine plays the wrapper itself (:mod:`.wrapper`), as a machine with the
package installed would run it.

The wrapper (qemu/qemu ``scripts/qemu-guest-agent/fsfreeze-hook``) finds its directory next
to the path it was called by (``FSFREEZE_D=$(dirname -- "$0")/fsfreeze-hook.d``; qemu-ga
passes the hook path as ``argv[0]``), loops over ``"$FSFREEZE_D"/*`` for ``freeze`` and
``thaw`` alike (the same order both times), skips backup and package-manager leftovers
(``is_ignored_file``) and anything ``[ -x ]`` rejects.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

HOOK_DIR_NAME = "fsfreeze-hook.d"

IGNORED_SUFFIXES = (
    "~",
    ".bak",
    ".orig",
    ".rpmnew",
    ".rpmorig",
    ".rpmsave",
    ".sample",
    ".dpkg-old",
    ".dpkg-new",
    ".dpkg-tmp",
    ".dpkg-dist",
    ".dpkg-bak",
    ".dpkg-backup",
    ".dpkg-remove",
)
"""``is_ignored_file``'s patterns (the same list in QEMU 7.2 and 10.x)."""

DIRECT, WRAPPER, MISSING = "direct", "wrapper", "missing"


def inside(root: Path, location: str) -> Path:
    """``location`` (absolute, inside the VM) under the machine root."""
    return root / location.lstrip("/")


def executable_by_root(path: Path) -> bool:
    """``access(path, X_OK)`` and ``[ -x path ]`` as root: a directory always, a file when
    any execute bit is set (root needs no owner bit). Follows symlinks."""
    try:
        st = path.stat()
    except OSError:
        return False
    if stat.S_ISDIR(st.st_mode):
        return True
    return bool(st.st_mode & 0o111)


@dataclass(frozen=True)
class Entry:
    """One name the wrapper's glob yields, and what the wrapper does with it."""

    name: str
    location: str
    """Inside the VM."""
    skipped: str = ""
    """Why the wrapper passes over it (``ignored name``, ``not executable``), or ''."""

    @property
    def runs(self) -> bool:
        return not self.skipped


@dataclass(frozen=True)
class HookPlan:
    """What qemu-ga will execute for one hook path on the machine whose ``/`` is a root."""

    hook: str
    """The configured hook path, inside the VM."""
    kind: str
    """:data:`DIRECT` (run the file), :data:`WRAPPER` (the stock wrapper, played by the
    engine, over :attr:`entries`) or :data:`MISSING` (nothing at the path, no scripts)."""
    directory: str = ""
    entries: tuple[Entry, ...] = field(default_factory=tuple)

    @property
    def scripts(self) -> list[Entry]:
        """The entries the wrapper runs, in its order."""
        return [e for e in self.entries if e.runs]


def glob_names(directory: Path) -> list[str]:
    """``"$dir"/*`` under dash: names not starting with a dot, sorted byte-wise (dash sorts
    its glob results with ``strcmp``, whatever the locale)."""
    try:
        names = [n for n in os.listdir(directory) if not n.startswith(".")]
    except OSError:
        return []
    return sorted(names, key=lambda n: os.fsencode(n))


def entries(root: Path, directory: str) -> tuple[Entry, ...]:
    """Every name in the wrapper's directory with the wrapper's verdict on it."""
    found = []
    for name in glob_names(inside(root, directory)):
        location = f"{directory.rstrip('/')}/{name}"
        if name.endswith(IGNORED_SUFFIXES):
            found.append(Entry(name, location, "ignored name (is_ignored_file)"))
        elif not executable_by_root(inside(root, location)):
            found.append(Entry(name, location, "not executable ([ -x ] fails)"))
        else:
            found.append(Entry(name, location))
    return tuple(found)


def plan(root: Path | str, hook: str) -> HookPlan:
    """The hook path's plan on ``root``: the file itself, or the wrapper's scripts."""
    root = Path(root)
    directory = f"{os.path.dirname(hook.rstrip('/')) or '/'}".rstrip("/") + f"/{HOOK_DIR_NAME}"
    path = inside(root, hook)
    if hook and (path.exists() or path.is_symlink()):
        return HookPlan(hook, DIRECT)
    if glob_names(inside(root, directory)):
        return HookPlan(hook, WRAPPER, directory, entries(root, directory))
    return HookPlan(hook, MISSING, directory)
