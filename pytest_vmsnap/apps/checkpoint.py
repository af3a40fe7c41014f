"""Each application's own checkpoint, forced from outside, and the files it rewrites: what
the torn-copy construction (``torn_copy``) copies part by part, checkpointing between parts.

Runs inside the VM (through its fork server). ``force(app, workload_pid)`` stops the recorded
workload (with its children) at a moment it holds none of the application's locks,
checkpoints, and leaves it stopped, so that nothing rewrites the files before the copy's next
part is read; ``resume(workload_pid)`` lets it go on. An application without an entry here
cannot have its copy torn on purpose.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .locks import file_key, read_lock_table
from .sqlite import DB as SQLITE_DB

STOP_TRIES = 500
"""How often to catch the workload between two of its transactions (2 ms apart)."""


@dataclass(frozen=True)
class Checkpoint:
    """The files, in the order a file-by-file reader meets them, the lock bytes a writer or
    reader holds in the middle of a transaction (file, first, last), and the checkpoint."""

    files: tuple[str, ...]
    busy_locks: tuple[tuple[str, int, int], ...]
    force: Callable[[], dict[str, Any]]


def _busy(pids: set[int], spans: tuple[tuple[str, int, int], ...]) -> bool:
    """Whether one of ``pids`` holds a lock inside one of ``spans``: inside a transaction."""
    wanted = [(key, first, last) for path, first, last in spans if (key := file_key(path))]
    return any(
        lock.pid in pids and lock.covers(key, first, last)
        for lock in read_lock_table()
        for key, first, last in wanted
    )


def family(pid: int) -> set[int]:
    """``pid`` and its descendants (the workload forks its privileged writer)."""
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split() if int(c) not in found]
            except OSError:
                continue
    return found


def _stopped(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except OSError:
        return True  # gone: it writes nothing either


def _signal_all(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _stop_between_transactions(pid: int, spans: tuple[tuple[str, int, int], ...]) -> int:
    """SIGSTOP ``pid`` and its descendants at a moment none of them holds a lock in
    ``spans``; how many tries it took."""
    for tries in range(1, STOP_TRIES + 1):
        pids = family(pid)
        _signal_all(pids, signal.SIGSTOP)
        while not all(_stopped(p) for p in pids):
            time.sleep(0.0005)
        if family(pid) == pids and not _busy(pids, spans):
            return tries
        _signal_all(pids, signal.SIGCONT)
        time.sleep(0.002)
    raise RuntimeError(f"the workload held a lock at each of {STOP_TRIES} tries")


def wal_state(db: str = SQLITE_DB) -> dict[str, int]:
    """The WAL's position as its header and the wal-index show it: ``seq`` (the checkpoint
    sequence, which grows when the WAL restarts), ``frames`` (valid frames since the restart)
    and ``backfilled`` (how many of them are in the database file). -1 for what cannot be
    read."""
    state = {"seq": -1, "frames": -1, "backfilled": -1}
    try:
        with open(db + "-wal", "rb") as wal:
            header = wal.read(32)
        with open(db + "-shm", "rb") as shm:
            index = shm.read(100)
    except OSError:
        return state
    if len(header) == 32:
        state["seq"] = struct.unpack(">I", header[12:16])[0]
    if len(index) == 100:  # two 48-byte index headers, then the checkpoint info (native order)
        state["frames"] = struct.unpack("=I", index[16:20])[0]
        state["backfilled"] = struct.unpack("=I", index[96:100])[0]
    return state


def _sqlite_checkpoint() -> dict[str, Any]:
    """Move the WAL into the database file (``wal_checkpoint(RESTART)``), then make one
    write, which starts the WAL again from its first frame under a new salt: the frames a
    reader of the old WAL expects are overwritten in place."""
    before = wal_state()
    db = sqlite3.connect(SQLITE_DB, timeout=10, isolation_level=None)
    try:
        busy, frames, moved = db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        db.execute("INSERT INTO vmsnap_probe (at) VALUES (?)", (time.time(),))
    finally:
        db.close()
    after = wal_state()
    restarted = after["seq"] != before["seq"]
    said = f"wal_checkpoint(RESTART): busy {busy}, {moved} of {frames} frames moved; " + (
        "the next write restarted the WAL" if restarted else "the WAL did not restart"
    )
    return {"said": said, "before": before, "after": after}


CHECKPOINTS = {
    # wal.c: bytes 120-127 of the -shm file are the WAL's write, checkpoint, recovery and
    # five read-mark locks; a connection holds one of them only inside a transaction.
    "sqlite": Checkpoint(
        (SQLITE_DB, SQLITE_DB + "-wal"), ((SQLITE_DB + "-shm", 120, 127),), _sqlite_checkpoint
    ),
}


def supported(app: str) -> bool:
    """Whether ``app``'s copy can be torn on purpose."""
    return app in CHECKPOINTS


def files(app: str) -> list[str]:
    """``app``'s files that a checkpoint rewrites, in the order a reader meets them."""
    return list(CHECKPOINTS[app].files)


def force(app: str, workload_pid: int) -> dict[str, Any]:
    """Stop the workload (and its children) between two of its transactions, then force
    ``app``'s checkpoint: what it did in one line (``said``), the application's state before
    and after, and how many tries stopping took. The workload stays stopped until
    :func:`resume`."""
    entry = CHECKPOINTS[app]
    tries = _stop_between_transactions(workload_pid, entry.busy_locks)
    try:
        answer = entry.force()
    except BaseException:
        resume(workload_pid)
        raise
    return {**answer, "stop_tries": tries}


def resume(workload_pid: int) -> None:
    """Let the workload and its children go on (no-op for those that have ended)."""
    _signal_all(family(workload_pid), signal.SIGCONT)
