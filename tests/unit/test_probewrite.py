"""The watched probe write: its own outcome, "blocked" on confirmed lock evidence (and the
write cancelled), the timeout as the last word; SQLite's write-lock holder read from the
kernel's lock table with real SQLite processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_vmsnap.apps.probewrite import Outcome, ProbeWrite, no_connection, watch
from pytest_vmsnap.apps.sqlite import SqliteProbeWrite, write_lock_holder


class FakeWrite(ProbeWrite):
    """A write that finishes after ``takes_s`` with ``outcome`` unless abandoned; the store
    shows it waiting as ``evidence(elapsed)`` says."""

    def __init__(self, outcome: Outcome, takes_s: float, evidence=lambda t: None) -> None:
        self.outcome, self.takes_s, self.evidence = outcome, takes_s, evidence
        self.began = time.monotonic()
        self.cancelled = threading.Event()
        self.closed = False

    def attempt(self) -> Outcome:
        if self.cancelled.wait(self.takes_s):
            return "refused", "cancelled"
        return self.outcome

    def waiting_on(self) -> str | None:
        return self.evidence(time.monotonic() - self.began)

    def abandon(self) -> None:
        self.cancelled.set()

    def close(self) -> None:
        self.closed = True


def test_a_prompt_outcome_is_returned_as_is_and_the_connection_closed() -> None:
    for outcome in (("accepted", "ok"), ("refused", "read-only")):
        write = FakeWrite(outcome, 0.0)
        assert watch(write, 1.0) == outcome
        assert write.closed and not write.cancelled.is_set()


def test_confirmed_lock_evidence_blocks_early_and_cancels_the_write() -> None:
    write = FakeWrite(("accepted", "late"), 30.0, lambda t: "waiting for a lock held by 42")
    began = time.monotonic()
    result, detail = watch(write, 10.0)
    took = time.monotonic() - began
    assert result == "blocked" and "waiting for a lock held by 42" in detail
    assert took < 1.0, took
    assert write.cancelled.is_set() and write.closed


def test_evidence_that_breaks_off_is_not_enough() -> None:
    # Seen waiting now and then (a neighbour's short transaction), never for the whole
    # confirmation span: the write's own outcome decides.
    flicker = FakeWrite(("accepted", "done"), 0.4, lambda t: "held" if int(t * 100) % 3 else None)
    assert watch(flicker, 5.0, confirm_s=0.05) == ("accepted", "done")
    assert not flicker.cancelled.is_set()


def test_without_evidence_the_write_and_then_the_timeout_decide() -> None:
    own = FakeWrite(("blocked", "statement timeout"), 0.3)
    assert watch(own, 0.3) == ("blocked", "statement timeout")
    stuck = FakeWrite(("accepted", "never"), 60.0)
    stuck.abandon = lambda: None  # a write that cannot be cancelled (stuck in the kernel)
    began = time.monotonic()
    result, detail = watch(stuck, 0.2)
    assert result == "blocked" and "no answer from the server within 0.2 s" in detail
    assert time.monotonic() - began < 2.0
    assert not stuck.closed  # its connection is left to the process's exit


def test_an_observer_that_fails_does_not_decide() -> None:
    def broken(t: float) -> str:
        raise OSError("observer lost")

    assert watch(FakeWrite(("accepted", "ok"), 0.2, broken), 2.0) == ("accepted", "ok")


def test_no_connection_tells_a_refusal_from_silence() -> None:
    assert no_connection(ConnectionRefusedError("refused"), 0.01, 1.0)[0] == "refused"
    result, detail = no_connection(TimeoutError("timed out"), 1.02, 1.0)
    assert result == "blocked" and "no answer to a new connection" in detail


# --- SQLite: the kernel's lock table --------------------------------------------------------


HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("LOCKED", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
"""


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE vmsnap_probe (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL)")
    db.close()
    return path


@pytest.fixture
def holder(database: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the write lock (BEGIN IMMEDIATE), as a pre-script's does."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "LOCKED"
    yield proc
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(10)


def test_write_lock_holder_names_the_other_process(database: Path, holder) -> None:
    found = write_lock_holder(str(database))
    assert found is not None and f"PID {holder.pid}" in found and "\n" not in found
    assert sys.executable.rsplit("/", 1)[-1] in found  # its command line


def test_write_lock_holder_is_none_when_nobody_writes(database: Path) -> None:
    mine = sqlite3.connect(database, isolation_level=None)
    mine.execute("BEGIN IMMEDIATE")  # this process's own lock does not count
    try:
        assert write_lock_holder(str(database)) is None
    finally:
        mine.execute("ROLLBACK")
        mine.close()
    assert write_lock_holder(str(database / "missing")) is None


def test_write_lock_holder_ignores_the_workload(database: Path) -> None:
    workload = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "open('/proc/self/comm', 'w').write('vmsnap-workload');" + HOLDER,
            str(database),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert workload.stdout is not None and workload.stdout.readline().strip() == "LOCKED"
        assert write_lock_holder(str(database)) is None
    finally:
        assert workload.stdin is not None
        workload.stdin.close()
        workload.wait(10)


def test_write_lock_holder_reads_a_rollback_journal_lock(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "LOCKED"
        found = write_lock_holder(str(path))
        assert found is not None and f"PID {proc.pid}" in found
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def test_sqlite_probe_is_blocked_with_the_holder_named_and_lands_nothing(
    database: Path, holder
) -> None:
    began = time.monotonic()
    result, detail = watch(SqliteProbeWrite(str(database), 5.0), 5.0)
    assert result == "blocked" and f"PID {holder.pid}" in detail, detail
    assert time.monotonic() - began < 1.0
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(10)
    time.sleep(0.05)
    rows = sqlite3.connect(database).execute("SELECT COUNT(*) FROM vmsnap_probe").fetchone()[0]
    assert rows == 0
    assert watch(SqliteProbeWrite(str(database), 1.0), 1.0) == ("accepted", "the write committed")
