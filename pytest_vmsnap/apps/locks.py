"""The kernel's table of POSIX byte-range locks (``/proc/locks``), as records: how the
harness sees who holds SQLite's locks from outside the process (the quiesce probe's
observer, the torn copy's moment between two transactions)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Lock:
    """One granted POSIX lock: who holds it, on which file, which bytes."""

    pid: int
    kind: str
    """``READ`` or ``WRITE``."""
    device: tuple[int, int]
    inode: int
    start: int
    end: int
    """The last byte (``EOF`` is read as 2**63)."""

    def covers(self, file: tuple[tuple[int, int], int], first: int, last: int) -> bool:
        """Whether this lock is on ``file`` (device, inode) and overlaps bytes first..last."""
        return (self.device, self.inode) == file and self.start <= last and self.end >= first


def file_key(path: str) -> tuple[tuple[int, int], int] | None:
    """``path``'s (device, inode) as the lock table names files; None when it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.major(st.st_dev), os.minor(st.st_dev)), st.st_ino


def lock_table(text: str) -> list[Lock]:
    """The granted POSIX locks of a ``/proc/locks`` text (waiters, marked ``->``, left out)."""
    out = []
    for line in text.splitlines():
        # "1: POSIX  ADVISORY  WRITE 9263 fe:00:2146368 120 120"
        f = line.split()
        if len(f) < 8 or f[1] != "POSIX":
            continue
        try:
            major, minor, inode = f[5].split(":")
            end = (1 << 63) if f[7] == "EOF" else int(f[7])
            device = (int(major, 16), int(minor, 16))
            out.append(Lock(int(f[4]), f[3], device, int(inode), int(f[6]), end))
        except ValueError:
            continue
    return out


def read_lock_table(path: str = "/proc/locks") -> list[Lock]:
    """This kernel's lock table now."""
    with open(path) as f:
        return lock_table(f.read())
