"""SQLite in WAL mode at ``/var/lib/app/app.db`` (the embedded default).

SQLite always keeps ``app.db-wal`` and ``app.db-shm`` beside the database and refuses a WAL
that is a symlink ("unable to open database file"), so the database and its WAL cannot be
split over two disks. Extra disks of a SQLite VM are mounted at ``/srv/diskN`` and stay empty.

SQLite has no users: its privileged writer (a cron job, an admin tool) is another process
writing the same file, with the same client; the workload runs it as a process of its own.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import ClassVar

from ..vm.model import DiskSpec
from .base import (
    APP_ROLE,
    APP_USER,
    BANK_ACCOUNTS,
    BANK_TOTAL,
    WORKLOAD_PROCESS_NAME,
    App,
    Client,
    IntegrityReport,
    Role,
    StartReport,
    State,
    VmLike,
)
from .locks import file_key, read_lock_table
from .probewrite import ProbeWrite

DB = "/var/lib/app/app.db"

SCHEMA = f"""
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS vmsnap_log (seq INTEGER PRIMARY KEY, writer INTEGER, at REAL);
CREATE TABLE IF NOT EXISTS vmsnap_bank (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vmsnap_probe (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {BANK_ACCOUNTS})
INSERT OR IGNORE INTO vmsnap_bank (id, balance) SELECT i, {BANK_TOTAL // BANK_ACCOUNTS} FROM n;
"""


class SqliteClient(Client):
    """A connection to the app database; ``timeout_s`` is SQLite's busy timeout."""

    def __init__(self, timeout_s: float = 10.0, path: str = DB) -> None:
        self.path = path
        self.db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)

    def append(self, seq: int, writer: int) -> None:
        self.db.execute(
            "INSERT INTO vmsnap_log (seq, writer, at) VALUES (?, ?, ?)", (seq, writer, time.time())
        )

    def transfer(self, src: int, dst: int, amount: int) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "UPDATE vmsnap_bank SET balance = balance - ? WHERE id = ?", (amount, src)
            )
            self.db.execute(
                "UPDATE vmsnap_bank SET balance = balance + ? WHERE id = ?", (amount, dst)
            )
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def new_probe_write(self, timeout_s: float) -> ProbeWrite:
        return SqliteProbeWrite(self.path, timeout_s)

    def read_state(self) -> State:
        seqs = {row[0] for row in self.db.execute("SELECT seq FROM vmsnap_log")}
        total, rows = self.db.execute("SELECT SUM(balance), COUNT(*) FROM vmsnap_bank").fetchone()
        return State(seqs, total, rows)

    def close(self) -> None:
        self.db.close()


class SqliteProbeWrite(ProbeWrite):
    """An INSERT on a fresh connection that tries for the write lock without SQLite's busy
    handler, so it can stop at once when abandoned; the lock's holder is read from the
    kernel's lock table (SQLite's locks are POSIX byte-range locks)."""

    RETRY_S = 0.005

    def __init__(self, path: str, timeout_s: float) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.db = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        self.stop = threading.Event()

    def attempt(self) -> tuple[str, str]:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                self.db.execute("INSERT INTO vmsnap_probe (at) VALUES (?)", (time.time(),))
                return "accepted", "the write committed"
            except sqlite3.OperationalError as err:
                text = str(err)
                if "locked" not in text and "busy" not in text:
                    return "refused", text
                if time.monotonic() >= deadline:
                    return "blocked", f"no write lock within {self.timeout_s:.1f} s: {text}"
            if self.stop.wait(self.RETRY_S):
                return "blocked", "abandoned while waiting for the write lock"

    def waiting_on(self) -> str | None:
        return write_lock_holder(self.path)

    def abandon(self) -> None:
        self.stop.set()

    def close(self) -> None:
        self.db.close()


# Byte-range locks SQLite takes for writing (sqlite3.c, os_unix.c): in WAL mode the WAL write
# lock is byte 120 of the -shm file; with a rollback journal, PENDING, RESERVED and the
# exclusive SHARED range sit at 0x40000000 of the database file.
_WRITE_LOCKS = {"-shm": (120, 120), "": (0x40000000, 0x40000001 + 510)}


def write_lock_holder(db: str, locks: str = "/proc/locks") -> str | None:
    """Which other process holds ``db``'s write lock, from the kernel's lock table; None when
    none does. This process and the workload (whose transactions take the lock for a moment
    each) do not count."""
    spans = [(key, span) for suffix, span in _WRITE_LOCKS.items() if (key := file_key(db + suffix))]
    if not spans:
        return None
    for lock in read_lock_table(locks):
        if lock.kind != "WRITE" or lock.pid <= 0 or lock.pid == os.getpid():
            continue
        if not any(lock.covers(key, *span) for key, span in spans):
            continue
        try:
            if Path(f"/proc/{lock.pid}/comm").read_text().strip() == WORKLOAD_PROCESS_NAME:
                continue
            cmd = Path(f"/proc/{lock.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # it just ended
        return f"the write lock of {db} is held by PID {lock.pid} ({' '.join(cmd.split())[:120]})"
    return None


class SqliteApp(App):
    """SQLite as used by an embedded application."""

    name: ClassVar[str] = "sqlite"
    client_modules: ClassVar[tuple[str, ...]] = (__name__,)

    def layout(self, disks: int, fs: str) -> list[DiskSpec]:
        specs = [DiskSpec("data", "/var/lib/app", 512, fs)]  # type: ignore[arg-type]
        for i in range(2, disks + 1):
            specs.append(DiskSpec(f"disk{i}", f"/srv/disk{i}", 512, fs))  # type: ignore[arg-type]
        return specs

    def provision(self, vm: VmLike) -> None:
        vm.call(f"{__name__}:provision_db")

    def start(self, vm: VmLike, deadline_s: float) -> StartReport:
        began = time.monotonic()
        wal = vm.path(DB + "-wal")
        evidence = []
        recovery = False
        if wal.exists() and wal.stat().st_size > 0:
            recovery = True
            evidence.append(
                f"{DB}-wal holds {wal.stat().st_size} bytes: SQLite replays it "
                "when the database is opened"
            )
        try:
            vm.call(f"{__name__}:open_db", timeout=deadline_s)
        except Exception as err:
            return StartReport(False, time.monotonic() - began, recovery, False, evidence, str(err))
        return StartReport(True, time.monotonic() - began, recovery, False, evidence)

    def stop(self, vm: VmLike) -> None:
        return None  # embedded: nothing runs

    def integrity(self, vm: VmLike) -> IntegrityReport:
        out = vm.call(f"{__name__}:integrity_check")
        return IntegrityReport(ok=out == ["ok"], details=out[:20])

    def versions(self, vm: VmLike) -> dict[str, str]:
        cli = vm.run(["sqlite3", "--version"], check=False).stdout.decode().split()
        return {"sqlite_library": sqlite3.sqlite_version, "sqlite3_cli": cli[0] if cli else "?"}

    def client(self, timeout_s: float = 10.0, role: Role = APP_ROLE) -> Client:
        return SqliteClient(timeout_s)  # the same file and client in either role


APP = SqliteApp()


# --- run inside the VM (through its fork server) -------------------------------------------------


def provision_db() -> None:
    """Create the application user, the database and its schema, owned by that user."""
    import pwd
    import subprocess

    subprocess.run(["useradd", "--system", "--no-create-home", APP_USER], capture_output=True)
    entry = pwd.getpwnam(APP_USER)
    db = sqlite3.connect(DB, isolation_level=None)
    db.executescript(SCHEMA)
    db.close()
    for path in ("/var/lib/app", DB):
        os.chown(path, entry.pw_uid, entry.pw_gid)


def open_db() -> None:
    """Open the database as the application does (replaying its WAL) and read its schema."""
    db = sqlite3.connect(DB, isolation_level=None)
    db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    db.close()


def integrity_check() -> list[str]:
    """``PRAGMA integrity_check``: ``["ok"]``, or the problems it found."""
    db = sqlite3.connect(DB, isolation_level=None)
    try:
        return [line for (line,) in db.execute("PRAGMA integrity_check")]
    finally:
        db.close()
