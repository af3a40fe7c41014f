"""Where vmbackup finds its scripts and in which order it keeps them.

Source: vmware/open-vm-tools ``open-vm-tools/services/plugins/vmbackup/scriptOps.c``,
``VmBackup_NewScriptOp`` (the list is built once, on freeze, and walked back on thaw and
freezeFail), ``lib/file/filePosix.c`` ``File_ListDirectory`` (every entry but ``.`` and
``..``: hidden files included) and ``lib/file/file.c`` ``File_IsFile`` (``stat``, so a
symbolic link to a regular file counts; a directory, FIFO or dangling link does not).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

SCRIPTS_DIR = "/etc/vmware-tools/backupScripts.d"
"""``<install path>/backupScripts.d``; the install path is ``/etc/vmware-tools`` on Linux
(``lib/guestApp/guestApp.c``, ``GUESTAPP_TOOLS_INSTALL_PATH``). No recursion."""
LEGACY_FREEZE = "/usr/sbin/pre-freeze-script"
LEGACY_THAW = "/usr/sbin/post-thaw-script"
"""``LEGACY_FREEZE_SCRIPT`` / ``LEGACY_THAW_SCRIPT`` (``scriptOps.c``)."""


def host_path(root: Path, location: str) -> Path:
    """``location`` (absolute, inside the VM) under ``root``."""
    return root / location.lstrip("/")


def is_file(root: Path, location: str) -> bool:
    """``File_IsFile``: ``stat`` (following links) says a regular file."""
    try:
        return stat.S_ISREG(os.stat(host_path(root, location)).st_mode)
    except OSError:
        return False


@dataclass(frozen=True)
class Skipped:
    """An entry of the scripts directory that is not run (not a regular file)."""

    location: str
    why: str


def directory_entries(root: Path) -> list[str]:
    """The names in the scripts directory in ``strcmp`` order (bytes), or [] without one."""
    directory = host_path(root, SCRIPTS_DIR)
    if not directory.is_dir():
        return []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(names, key=os.fsencode)


def script_list(root: Path | str) -> list[str]:
    """The freeze-order list of locations ``VmBackup_NewScriptOp`` builds.

    When either legacy script is a regular file, slot 0 is reserved for
    ``/usr/sbin/pre-freeze-script`` (even if only the thaw one exists: the slot is then
    skipped on freeze and renamed to the thaw script for thaw and freezeFail); then every
    regular file directly in the directory, sorted with ``strcmp``.
    """
    root = Path(root)
    slots: list[str] = []
    if is_file(root, LEGACY_FREEZE) or is_file(root, LEGACY_THAW):
        slots.append(LEGACY_FREEZE)
    for name in directory_entries(root):
        location = f"{SCRIPTS_DIR}/{name}"
        if is_file(root, location):
            slots.append(location)
    return slots


def skipped_entries(root: Path | str) -> list[Skipped]:
    """Entries of the scripts directory vmbackup passes over without a word."""
    root = Path(root)
    out = []
    for name in directory_entries(root):
        location = f"{SCRIPTS_DIR}/{name}"
        if is_file(root, location):
            continue
        path = host_path(root, location)
        if path.is_symlink() and not path.exists():
            why = "a symbolic link to nothing"
        elif path.is_dir():
            why = "a directory (vmbackup does not look into subdirectories)"
        else:
            why = "not a regular file"
        out.append(Skipped(location, why))
    return out
