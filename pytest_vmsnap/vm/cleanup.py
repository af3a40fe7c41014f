"""Find and release what crashed runs left behind, by tag (this backs ``vmsnap cleanup``).

A leftover is a loop device whose backing file carries a tag, a mount whose source or target
carries one (or that sits on such a loop device, or under such a mount), or a tagged entry in
``VMSNAP_HOME``. Tags whose owner process still runs (see :func:`names.owner_alive`) are left
alone unless asked; a tag with no owner record counts as abandoned.

Release order: thaw every mount (a frozen file system is never unmounted), unmount deepest
first, detach loop devices once nothing uses them (repairing a superblock that was unmounted
while frozen, recipe R10), then delete the files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import disks, names
from .disks import LoopDevice
from .errors import VmError
from .linux import MountEntry, read_mounts


@dataclass
class Leftovers:
    """What :func:`find_leftovers` found."""

    loops: list[LoopDevice] = field(default_factory=list)
    mounts: list[MountEntry] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    """Images, owner records, pool and mount dirs in the home directory."""
    tags: list[str] = field(default_factory=list)
    """Tags these belong to."""
    live: list[str] = field(default_factory=list)
    """Tags that were skipped because their owner process still runs."""

    def __bool__(self) -> bool:
        return bool(self.loops or self.mounts or self.files)


@dataclass
class Report:
    """What :func:`release` did, one line per action, and what it could not do."""

    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def find_leftovers(
    home: str | os.PathLike[str] | None = None,
    tag_prefix: str = names.TAG_PREFIX,
    *,
    include_live: bool = False,
) -> Leftovers:
    """Loop devices, mounts and files whose tag starts with ``tag_prefix``.

    ``home`` defaults to ``$VMSNAP_HOME``; it is where files and owner records are looked for
    (loop devices and mounts are found wherever they are).
    """
    home_p = Path(os.path.realpath(home or names.vmsnap_home()))

    def tag(text: str) -> str | None:
        return next((t for t in names.TAG_RE.findall(text) if t.startswith(tag_prefix)), None)

    loops: dict[LoopDevice, str] = {}
    for loop in disks.list_loops():
        t = tag(loop.back_file)
        if t:
            loops[loop] = t
    mounts: dict[MountEntry, str] = {}
    # Shallow first, so a mount under a tagged mount inherits its tag (it blocks the umount).
    for m in sorted(read_mounts(), key=lambda m: _depth(m.target)):
        t = tag(m.source) or tag(m.target)
        t = t or next((lt for lo, lt in loops.items() if _on_loop(m, lo)), None)
        t = t or next((mt for p, mt in mounts.items() if _under(m.target, p.target)), None)
        if t:
            mounts[m] = t
    files: dict[Path, str] = {}
    if home_p.is_dir():
        for entry in sorted(os.scandir(home_p), key=lambda e: e.name):
            t = tag(entry.name)
            if t:
                files[Path(entry.path)] = t
    found = Leftovers()
    for t in sorted({*loops.values(), *mounts.values(), *files.values()}):
        if not include_live and names.owner_alive(home_p, t):
            found.live.append(t)
        else:
            found.tags.append(t)
    keep = set(found.tags)
    found.loops = [lo for lo, t in loops.items() if t in keep]
    found.mounts = [m for m, t in mounts.items() if t in keep]
    found.files = [p for p, t in files.items() if t in keep]
    return found


def release(leftovers: Leftovers) -> Report:
    """Thaw, unmount (deepest first), detach, delete; goes on past failures."""
    report = Report()
    mounts = sorted(leftovers.mounts, key=lambda m: _depth(m.target), reverse=True)
    loops = list(leftovers.loops)
    for m in mounts:
        try:
            if disks.thaw_fully(m.target):
                report.actions.append(f"thawed {m.target}")
        except VmError as err:
            report.errors.append(str(err))
    progress = True
    while (mounts or loops) and progress:
        progress = False
        for m in list(mounts):
            # A pool stays busy while a mount below it or a loop device backed by a file in it
            # remains: those go first.
            if any(o is not m and _under(o.target, m.target) for o in mounts):
                continue
            if any(_under(lo.back_file, m.target) for lo in loops):
                continue
            _attempt(report, disks.umount, m.target)
            mounts.remove(m)
            progress = True
        for lo in list(loops):
            if any(_on_loop(m, lo) for m in mounts):
                continue
            _attempt(report, disks.detach_device, lo.name, lo.back_file)
            loops.remove(lo)
            progress = True
    report.errors += [f"{m.target}: not unmounted (something below it stays)" for m in mounts]
    report.errors += [f"{lo.name}: not detached (still mounted)" for lo in loops]
    _remove_files(report, leftovers.files)
    return report


def cleanup(
    home: str | os.PathLike[str] | None = None,
    tag_prefix: str = names.TAG_PREFIX,
    *,
    include_live: bool = False,
) -> tuple[Leftovers, Report]:
    """Find and release in one go."""
    found = find_leftovers(home, tag_prefix, include_live=include_live)
    return found, release(found)


def _attempt(report: Report, fn: Callable[..., list[str]], *args: str) -> None:
    try:
        report.actions += fn(*args)
    except VmError as err:
        report.errors.append(str(err))


def _remove_files(report: Report, files: list[Path]) -> None:
    loops = disks.list_loops()
    mounts = read_mounts()
    for path in files:
        p = str(path)
        busy = [lo.name for lo in loops if lo.back_file == p or _under(lo.back_file, p)]
        busy += [m.target for m in mounts if m.target == p or _under(m.target, p)]
        if busy:
            report.errors.append(f"{p}: kept, still in use by {', '.join(busy)}")
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                _remove_tree(path)
            else:
                path.unlink(missing_ok=True)
            report.actions.append(f"removed {p}")
        except OSError as err:
            report.errors.append(f"{p}: {err.strerror}")


def _remove_tree(top: Path) -> None:
    # Nothing is mounted below (checked just before), so this stays on one file system.
    for root, dirs, files in os.walk(top, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            sub = os.path.join(root, name)
            if os.path.islink(sub):
                os.unlink(sub)
            else:
                os.rmdir(sub)
    os.rmdir(top)


def _depth(path: str) -> int:
    return path.rstrip("/").count("/")


def _under(path: str, top: str) -> bool:
    """Is ``path`` strictly below directory ``top``?"""
    return path.startswith(top.rstrip("/") + "/")


def _on_loop(m: MountEntry, lo: LoopDevice) -> bool:
    # btrfs reports an anonymous device number in mountinfo: match the source path as well.
    return m.source == lo.name or (bool(lo.majmin) and m.majmin == lo.majmin)
