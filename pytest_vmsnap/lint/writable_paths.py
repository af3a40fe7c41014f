"""Warnings about who can replace the config or the scripts: every directory on the way to
them (links followed as on the VM) must be root-owned and writable by root alone."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from ..framework.azure.checks import resolve
from .report import Collector


def warn_writable(out: Collector, root: Path, raw: dict[str, Any] | None, config_path: str) -> None:
    """Warn about each directory on the way to the config or a script that others can change.

    ``raw`` is the parsed config (None when unreadable: then only ``config_path`` is checked).
    """
    targets = [config_path]
    for key in ("preScriptLocation", "postScriptLocation"):
        location = (raw or {}).get(key)
        if isinstance(location, str) and location and "\0" not in location:
            targets.append(location)
    unsafe: dict[str, tuple[str, list[str]]] = {}
    for target in dict.fromkeys(targets):
        vm_path = str(resolve(Path("/"), target))
        for directory, why in _unsafe_ancestors(root, vm_path):
            unsafe.setdefault(directory, (why, []))[1].append(target)
    for directory, (why, files) in unsafe.items():
        consequence = (
            "the extension would then read their config and run the scripts it names as root"
            if config_path in files
            else "the extension would then run their file as root"
        )
        out.warn(
            "writable-path",
            f"{directory} {why}, so someone other than root can replace or rename "
            f"{' and '.join(files)}: {consequence}.",
            f"Make every directory on the way root-owned and not writable by group or other: "
            f"chown root:root {directory}; chmod go-w {directory}.",
            path=directory,
        )


def _unsafe_ancestors(root: Path, vm_path: str) -> Iterator[tuple[str, str]]:
    """(directory, why) for each directory on the way to ``vm_path`` that others can change.

    Symbolic links are followed the way the extension's ``os.stat`` would on the VM: an
    absolute target starts again at ``root``. The link's own owner does not matter (a link
    cannot be changed, only replaced through its directory).
    """
    todo = [PurePosixPath(os.path.normpath(vm_path))]
    hops = 0
    checked: set[str] = set()
    while todo and hops < 40:
        path = todo.pop()
        parts = path.parts[1:]
        current = PurePosixPath("/")
        for index in range(len(parts) + 1):
            host = root / str(current).lstrip("/")
            try:
                # The root directory stands for "/": follow it if it is itself a link.
                st = os.stat(host) if index == 0 else os.lstat(host)
            except (OSError, ValueError):
                break
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                try:
                    target = os.readlink(host)
                except OSError:
                    break
                base = PurePosixPath(target) if target.startswith("/") else current.parent / target
                rest = parts[index:]
                todo.append(PurePosixPath(os.path.normpath(str(base.joinpath(*rest)))))
                break
            if index == len(parts):
                break  # the file itself: the pre-check judges its owner and mode
            if stat.S_ISDIR(st.st_mode) and str(current) not in checked:
                checked.add(str(current))
                why = _dir_problem(st)
                if why:
                    yield str(current), why
            current = current / parts[index]


def _dir_problem(st: os.stat_result) -> str:
    if st.st_uid != 0:
        return f"is owned by {_user(st.st_uid)}"
    # In a sticky directory (like /tmp) only an entry's owner may rename or delete it.
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        return f"is writable by every user (mode {st.st_mode & 0o7777:04o})"
    if st.st_mode & stat.S_IWGRP and st.st_gid != 0 and not st.st_mode & stat.S_ISVTX:
        return f"is writable by group {_group(st.st_gid)} (mode {st.st_mode & 0o7777:04o})"
    return ""


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return f"{grp.getgrgid(gid).gr_name} (gid {gid})"
    except KeyError:
        return f"gid {gid}"
