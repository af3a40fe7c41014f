"""SQLite in WAL mode at ``/var/lib/app/app.db`` (the embedded default).

SQLite always keeps ``app.db-wal`` and ``app.db-shm`` beside the database and refuses a WAL
that is a symlink ("unable to open database file"), so the database and its WAL cannot be
split over two disks. Extra disks of a SQLite VM are mounted at ``/srv/diskN`` and stay empty.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from typing import ClassVar

from ..vm.model import DiskSpec
from .base import (
    APP_USER,
    BANK_ACCOUNTS,
    BANK_TOTAL,
    App,
    Client,
    IntegrityReport,
    StartReport,
    State,
    VmLike,
)

DB = "/var/lib/app/app.db"

SCHEMA = f"""
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS vmsnap_log (seq INTEGER PRIMARY KEY, writer INTEGER, at REAL);
CREATE TABLE IF NOT EXISTS vmsnap_bank (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vmsnap_probe (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {BANK_ACCOUNTS})
INSERT OR IGNORE INTO vmsnap_bank (id, balance) SELECT i, {BANK_TOTAL // BANK_ACCOUNTS} FROM n;
"""


def _tool(vm: VmLike, *args: str, timeout: float = 60) -> str:
    """Run this module's helper commands inside the VM (see :func:`main`)."""
    done = vm.run([sys.executable, "-m", __name__, *args], timeout=timeout)
    return done.stdout.decode()


class SqliteClient(Client):
    """A connection to the app database; ``timeout_s`` is SQLite's busy timeout."""

    def __init__(self, timeout_s: float = 10.0, path: str = DB) -> None:
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

    def probe_write(self, timeout_s: float) -> tuple[str, str]:
        self.db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        try:
            self.db.execute("INSERT INTO vmsnap_probe (at) VALUES (?)", (time.time(),))
        except sqlite3.OperationalError as err:
            text = str(err)
            if "locked" in text or "busy" in text:
                return "blocked", f"no write lock within {timeout_s:.1f} s: {text}"
            return "refused", text
        return "accepted", "the write committed"

    def read_state(self) -> State:
        seqs = {row[0] for row in self.db.execute("SELECT seq FROM vmsnap_log")}
        total, rows = self.db.execute("SELECT SUM(balance), COUNT(*) FROM vmsnap_bank").fetchone()
        return State(seqs, total, rows)

    def close(self) -> None:
        self.db.close()


class SqliteApp(App):
    """SQLite as used by an embedded application."""

    name: ClassVar[str] = "sqlite"

    def layout(self, disks: int, fs: str) -> list[DiskSpec]:
        specs = [DiskSpec("data", "/var/lib/app", 512, fs)]  # type: ignore[arg-type]
        for i in range(2, disks + 1):
            specs.append(DiskSpec(f"disk{i}", f"/srv/disk{i}", 512, fs))  # type: ignore[arg-type]
        return specs

    def provision(self, vm: VmLike) -> None:
        _tool(vm, "provision")

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
            _tool(vm, "open", timeout=deadline_s)
        except Exception as err:
            return StartReport(False, time.monotonic() - began, recovery, False, evidence, str(err))
        return StartReport(True, time.monotonic() - began, recovery, False, evidence)

    def stop(self, vm: VmLike) -> None:
        return None  # embedded: nothing runs

    def integrity(self, vm: VmLike) -> IntegrityReport:
        out = _tool(vm, "integrity").strip().splitlines()
        return IntegrityReport(ok=out == ["ok"], details=out[:20])

    def versions(self, vm: VmLike) -> dict[str, str]:
        cli = vm.run(["sqlite3", "--version"], check=False).stdout.decode().split()
        return {"sqlite_library": sqlite3.sqlite_version, "sqlite3_cli": cli[0] if cli else "?"}

    def client(self, timeout_s: float = 10.0) -> Client:
        return SqliteClient(timeout_s)


APP = SqliteApp()


def main(argv: list[str]) -> int:
    """Helper commands run inside the VM: provision, open, integrity."""
    import os
    import pwd
    import subprocess

    cmd = argv[0]
    if cmd == "provision":
        subprocess.run(["useradd", "--system", "--no-create-home", APP_USER], capture_output=True)
        entry = pwd.getpwnam(APP_USER)
        db = sqlite3.connect(DB, isolation_level=None)
        db.executescript(SCHEMA)
        db.close()
        for path in ("/var/lib/app", DB):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return 0
    if cmd == "open":
        db = sqlite3.connect(DB, isolation_level=None)
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        db.close()
        return 0
    if cmd == "integrity":
        db = sqlite3.connect(DB, isolation_level=None)
        for (line,) in db.execute("PRAGMA integrity_check"):
            print(line)
        db.close()
        return 0
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
