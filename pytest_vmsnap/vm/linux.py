"""Linux basics in one place: the freeze and clone ioctls, one command runner, the mount table,
the file-system type of a path.

Standard library only and cheap to import: code that runs inside a VM (``vm/guest``: the VM's
init and the freeze guard, started with ``python -S``) uses it too.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import VmError

log = logging.getLogger(__name__)

# <linux/fs.h>: _IOWR('X', 119, int), _IOWR('X', 120, int), _IOW(0x94, 9, int).
FIFREEZE = 0xC0045877
FITHAW = 0xC0045878
FICLONE = 0x40049409


class CommandError(VmError):
    """A command failed: carries its argv, exit code and what it printed on stderr."""

    def __init__(self, argv: Sequence[str], stderr: str, returncode: int | None) -> None:
        self.argv = list(argv)
        self.stderr = stderr
        self.returncode = returncode
        detail = stderr.strip() or f"exit code {returncode}"
        super().__init__(f"{' '.join(self.argv)}: {detail}")


def run(argv: Sequence[str], timeout: float | None = 120) -> str:
    """Run a command (argument list, no shell, no input); its stdout, or :class:`CommandError`
    (not installed, timed out, or a non-zero exit with its stderr, else its stdout)."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as err:
        raise CommandError(argv, f"{argv[0]} is not installed", None) from err
    except subprocess.TimeoutExpired as err:
        raise CommandError(argv, f"did not finish in {timeout} s", None) from err
    if done.returncode:
        raise CommandError(argv, done.stderr or done.stdout, done.returncode)
    return done.stdout


# --- freeze and clone -----------------------------------------------------------------------


def thaw(path: str | os.PathLike[str], *, strict: bool = False) -> bool:
    """FITHAW the file system holding ``path``; True if it was frozen.

    Linux cannot say whether a file system is frozen without side effects (FIFREEZE would
    freeze it); FITHAW is the honest probe: it thaws a frozen one and fails with EINVAL on one
    that is not, so "was it frozen?" and "thaw it" are one call. A path that is gone, or a file
    system that cannot be frozen, was not frozen. Any other failure raises OSError with
    ``strict``; otherwise it is logged and counts as not thawed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as err:
        return _thaw_failed(path, err, strict, "open")
    try:
        fcntl.ioctl(fd, FITHAW, 0)
        return True
    except OSError as err:
        if err.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTTY):
            return False
        return _thaw_failed(path, err, strict, "FITHAW")
    finally:
        os.close(fd)


def _thaw_failed(path: str | os.PathLike[str], err: OSError, strict: bool, what: str) -> bool:
    if strict:
        raise err
    log.warning("%s %s: %s", what, path, err.strerror or err)
    return False


def reflink(src_fd: int, dst_fd: int) -> None:
    """FICLONE: make the file ``dst_fd`` share all of ``src_fd``'s extents (no data copied).
    OSError (EOPNOTSUPP, EXDEV, EINVAL...) where the file system cannot clone."""
    fcntl.ioctl(dst_fd, FICLONE, src_fd)


# --- paths resolved inside a root -----------------------------------------------------------

# <linux/openat2.h>
# <linux/fiemap.h>: _IOWR('f', 11, struct fiemap); struct fiemap is 32 bytes, each
# struct fiemap_extent 56 (logical, physical, length, 2 reserved u64; flags, 3 reserved u32).
FS_IOC_FIEMAP = 0xC020660B
FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_UNKNOWN = 0x2
FIEMAP_EXTENT_DELALLOC = 0x4
FIEMAP_EXTENT_ENCODED = 0x8
_FIEMAP_HEAD = struct.Struct("=QQIIII")
_FIEMAP_EXTENT = struct.Struct("=QQQQQIIII")
_FIEMAP_BATCH = 128


def extents(fd: int) -> list[tuple[int, int]]:
    """Where an open file's data lies on its file system's device: ``(offset, length)`` in
    bytes, in the file's order (FS_IOC_FIEMAP). Extents without a place yet (delayed
    allocation) or whose place is not a plain device offset are left out."""
    found: list[tuple[int, int]] = []
    start = 0
    while True:
        buf = bytearray(_FIEMAP_HEAD.size + _FIEMAP_BATCH * _FIEMAP_EXTENT.size)
        _FIEMAP_HEAD.pack_into(buf, 0, start, 2**64 - 1 - start, 0, 0, _FIEMAP_BATCH, 0)
        fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
        mapped = _FIEMAP_HEAD.unpack_from(buf, 0)[3]
        if not mapped:
            return found
        last = False
        for i in range(mapped):
            logical, physical, length, _, _, flags, *_ = _FIEMAP_EXTENT.unpack_from(
                buf, _FIEMAP_HEAD.size + i * _FIEMAP_EXTENT.size
            )
            hidden = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_ENCODED
            if not flags & hidden:
                found.append((physical, length))
            start = logical + length
            last = bool(flags & FIEMAP_EXTENT_LAST)
        if last:
            return found


RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
"""Resolve as a process chrooted in the directory would, and no ``/proc`` magic links: how
the harness opens anything inside a VM from this host."""
_SYS_OPENAT2 = 437  # the same number on every architecture (the generic syscall table)


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """``openat2(2)``: open ``path`` relative to ``dirfd`` under the ``resolve`` rules; with
    ``RESOLVE_IN_ROOT`` every ``..`` and absolute symlink stays inside ``dirfd``, as if it
    were ``/`` (what a process chrooted there would see). OSError on failure."""
    import ctypes  # only here: the VM's init and the freeze guard never need it

    class OpenHow(ctypes.Structure):
        _fields_ = [
            ("flags", ctypes.c_uint64),
            ("mode", ctypes.c_uint64),
            ("resolve", ctypes.c_uint64),
        ]

    how = OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = int(
        libc.syscall(_SYS_OPENAT2, dirfd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


def mount_id(fd: int) -> int:
    """The id of the mount that holds the open file ``fd`` (the first field of a
    mountinfo line names the same id)."""
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "mnt_id":
            return int(value)
    raise OSError(f"no mnt_id for descriptor {fd}")


# --- mount(2) without mount(8) ------------------------------------------------------------

# <linux/mount.h>
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 1 << 18
MNT_DETACH = 0x2
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}


def _libc() -> Any:
    import ctypes  # only here: the freeze guard never needs it

    return ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str, path: str | os.PathLike[str]) -> None:
    if ret < 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", os.fspath(path))


def mount(
    source: str, target: str | os.PathLike[str], fstype: str = "", flags: int = 0, data: str = ""
) -> None:
    """``mount(2)``: no canonicalisation, no escaping (overlay layers may be
    ``/proc/self/fd/N``), none of mount(8)'s start-up cost. OSError naming ``target``."""
    ret = _libc().mount(
        os.fsencode(source),
        os.fsencode(target),
        os.fsencode(fstype) if fstype else None,
        flags,
        os.fsencode(data) if data else None,
    )
    _check(ret, f"mount {fstype or 'bind'}", target)


def umount(target: str | os.PathLike[str], flags: int = 0) -> None:
    """``umount2(2)``; OSError naming ``target``."""
    _check(_libc().umount2(os.fsencode(target), flags), "umount", target)


def pivot_root_here() -> None:
    """Make the current directory this mount namespace's root and drop the old root (the
    ``pivot_root(".", ".")`` recipe of pivot_root(2)); every process of the namespace whose
    root was the old one now sees the new one."""
    import platform

    nr = _SYS_PIVOT_ROOT.get(platform.machine())
    if nr is None:
        raise OSError(f"pivot_root: unknown system call number on {platform.machine()}")
    _check(_libc().syscall(nr, b".", b"."), "pivot_root", ".")
    umount(".", MNT_DETACH)
    os.chdir("/")


# --- the mount table ------------------------------------------------------------------------


@dataclass(frozen=True)
class MountEntry:
    """One line of a ``/proc/<pid>/mountinfo`` (paths unescaped)."""

    target: str
    source: str
    fstype: str
    majmin: str
    mount_id: int = 0


_ESCAPED = re.compile(r"\\([0-7]{3})")


def unescape(field: str) -> str:
    """A mountinfo path field as the path it names (space, tab, newline, backslash are
    written as octal escapes)."""
    return _ESCAPED.sub(lambda m: chr(int(m[1], 8)), field)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """Parse the text of a ``/proc/<pid>/mountinfo`` file, in mount-table order."""
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf, rf = left.split(), right.split()
        if len(lf) < 5 or len(rf) < 2:
            continue
        out.append(MountEntry(unescape(lf[4]), unescape(rf[1]), rf[0], lf[2], int(lf[0])))
    return out


def read_mounts(pid: int | str = "self") -> list[MountEntry]:
    """The mounts of ``pid``'s mount namespace (this process's by default); OSError if the
    process is gone."""
    return parse_mountinfo(Path(f"/proc/{pid}/mountinfo").read_text(errors="surrogateescape"))


def fs_type(path: str | os.PathLike[str]) -> str:
    """The type of the file system holding ``path`` (``ext4``, ``xfs``, ``btrfs``...), from the
    innermost mount above it (``stat -f`` cannot tell ext4 from ext2); VmError if unknown."""
    p = os.path.realpath(path)
    try:
        mounts = read_mounts()
    except OSError as err:
        raise VmError(f"cannot read the mount table: {err.strerror}") from err
    above = [m for m in mounts if p == m.target or p.startswith(m.target.rstrip("/") + "/")]
    if not above:
        raise VmError(f"no mount holds {p}")
    return max(above, key=lambda m: len(m.target)).fstype
