"""The oracle can fail: broken quiesce set-ups get a verdict below application-consistent.

Each case runs full cycles (``cycle.run.run``: real database, recorded workload, framework cycle,
snapshot, restore, oracle) until one is judged below ``application-consistent``, at most
``TRIALS`` times, and asserts that it happened. The evidence of every trial (verdict, reasons,
the oracle record) is printed, and the failing trial's evidence is in the assertion message.
Most cases are deterministic and are caught by the first trial; the SQLite torn copy is a race
and may need a few.

- MariaDB, FLUSH TABLES WITH READ LOCK in a client that exits (no ``read_only``), declared
  ``quiesce="lock"``: the quiesce probe's write is accepted and the MyISAM table restores as
  "not closed properly" (repair): crash-consistent.
- PostgreSQL with data and WAL on two disks, no freeze, snapshotted WAL disk first with a
  skew, and a checkpoint inside the skew window: the restored server cannot find its
  checkpoint record: unrecoverable. The same run in the layout order (data first) restores
  fine, which shows it is the order that hurts.
- SQLite, a ``copy`` snapshot (a non-atomic block copy) of a live ext4 image without freeze,
  started as an automatic WAL checkpoint falls due: the copy holds a WAL torn across the
  checkpoint's restart of the WAL: acknowledged writes lost, or a malformed database.
- PostgreSQL's read-only pair (the post-script forgets to undo the pre-script): liveness fails.
- Redis ``BGSAVE`` without waiting, declared ``quiesce="lock"``: the probe's write is accepted.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appcycle import DATA, SAMPLES, TRIVIAL, cycle_settings, evidence, require

from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.evidence import oracle
from pytest_vmsnap.settings import Settings

TRIALS = 5
BELOW = (oracle.CRASH, oracle.INCONSISTENT, oracle.UNRECOVERABLE)


def until_caught(
    settings: Settings,
    *,
    hooks: Callable[[], dict[str, Callable[..., Any]]] | None = None,
    trials: int = TRIALS,
    label: str = "",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run cycles until one is judged below application-consistent (at most ``trials``).

    Returns the last cycle's result and all of them. A cycle that ends in a harness error
    stops the loop at once: that is a broken harness, not a catch.
    """
    results: list[dict[str, Any]] = []
    for i in range(1, trials + 1):
        d = run(settings, hooks=hooks() if hooks else None).to_dict()
        results.append(d)
        print(f"\n{label} trial {i}/{trials}: {d['verdict']}\n{evidence(d)}")
        assert d["error"] == "", f"trial {i}: the harness failed\n{evidence(d)}"
        if d["verdict"] != oracle.APPLICATION:
            break
    return results[-1], results


def caught(d: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The assertion message: how many trials, and the evidence of the last one."""
    verdicts = ", ".join(r["verdict"] for r in results)
    return f"after {len(results)} trial(s) ({verdicts}):\n{evidence(d)}"


# --------------------------------------------------------------------------- MariaDB


def test_mariadb_ftwrl_released_on_exit_is_caught(tmp_path: Path, root_required: None) -> None:
    """FLUSH TABLES WITH READ LOCK in a ``mariadb -e`` that exits (the session's lock ends with
    it) and no ``read_only``, declared ``quiesce="lock"``, with the workload writing InnoDB
    rows and the MyISAM table ``vmsnap_events`` all along.

    Two independent pieces of evidence: the quiesce probe's write on a fresh connection is
    accepted between the pre-script and the snapshot (the lock the user declared is not
    there), and the restored MyISAM table is reported by CHECK TABLE as "not closed properly"
    (it was open for writing when the file system was frozen: MyISAM has no crash recovery,
    only repair). InnoDB replays its redo log (recorded, not held against the snapshot) and
    every acknowledged write is there, so the verdict is crash-consistent, not worse.
    """
    require("mariadb")
    settings = cycle_settings(
        tmp_path,
        "mariadb",
        DATA / "mariadb-pre-ftwrl-exits-no-readonly.sh",
        SAMPLES / "mariadb" / "post.sh",
        quiesce="lock",
    )
    d, results = until_caught(settings, label="mariadb FTWRL released on exit")
    why = caught(d, results)
    o = d["oracle"]
    assert d["verdict"] == oracle.CRASH, why
    assert d["status"] == 0, why  # the framework itself saw nothing wrong
    assert o["quiesce_probe"]["result"] == "accepted" and o["quiesce_probe_ok"] is False, why
    assert any("quiesce probe" in r for r in d["reasons"]), why
    assert o["repair_needed"] is True, why
    assert any("vmsnap_events" in n and "closed" in n for n in o["notes"]), why
    assert o["acked_missing"] == 0 and o["invariants_ok"] is True, why


# --------------------------------------------------------------------------- PostgreSQL


def _checkpoint_in_skew_window(skew_s: float, log: list[dict[str, Any]]) -> Callable[[], dict]:
    """Hooks that issue a CHECKPOINT a quarter of the skew after the snapshot step begins.

    ``before_snapshot`` runs before the first disk is copied (the copy of a reflink is
    milliseconds), so the checkpoint lands between the first disk's copy and the second's
    (``skew_s`` later). It runs in a thread so the snapshot is not held up; its timing and
    output go to ``log``.
    """
    from pytest_vmsnap.apps.postgres import APP

    def hooks() -> dict[str, Callable[..., Any]]:
        def before_snapshot(vm: Any) -> None:
            began = time.monotonic()
            entry: dict[str, Any] = {}

            def checkpoint() -> None:
                time.sleep(skew_s / 4)
                entry["start_s"] = time.monotonic() - began
                try:
                    entry["out"] = APP.psql(vm, "CHECKPOINT; SELECT pg_current_wal_lsn();")
                except Exception as err:
                    entry["error"] = " ".join(str(err).split())[:300]
                entry["end_s"] = time.monotonic() - began

            thread = threading.Thread(target=checkpoint, name="vmsnap-test-checkpoint")
            entry["thread"] = thread
            log.append(entry)
            thread.start()

        return {"before_snapshot": before_snapshot}

    return hooks


def _postgres_split_settings(tmp_path: Path, order: str, skew_s: float) -> Settings:
    return cycle_settings(
        tmp_path,
        "postgres",
        TRIVIAL,
        TRIVIAL,
        freeze=False,
        disks=2,
        skew_s=skew_s,
        snapshot_order=order,
        quiesce="none",
    )


def _checkpoints_done(log: list[dict[str, Any]], skew_s: float) -> list[dict[str, Any]]:
    """Wait for the checkpoint threads; each must have run inside the skew window."""
    for entry in log:
        entry.pop("thread").join(timeout=60)
        assert "error" not in entry, f"the injected CHECKPOINT failed: {entry}"
        assert entry["start_s"] > 0 and entry["end_s"] < skew_s, (
            f"the CHECKPOINT did not run inside the {skew_s} s skew window: {entry}"
        )
    return log


def test_postgres_wal_disk_first_with_checkpoint_in_skew_window_is_caught(
    tmp_path: Path, root_required: None
) -> None:
    """Data and WAL on two disks, snapshotted one after the other, WAL disk first, 1 s apart,
    no freeze (``fsFreezeEnabled: false``) and scripts that do nothing.

    Mechanism. PostgreSQL writes data pages and ``global/pg_control`` (on the data disk) at a
    checkpoint, after the checkpoint record is in the WAL. Between two checkpoints the data
    files change only through the buffer pool's occasional writes, so a skewed snapshot of a
    lightly loaded server is usually harmless: three plain runs of exactly this set-up (no
    checkpoint in the window) were all application-consistent, WAL replay ending in the WAL
    disk's copy. Snapshotting the WAL disk first is harmful the moment a checkpoint (the
    timed one every ``checkpoint_timeout``, one forced by WAL volume, or one a script issues)
    completes inside the skew window: the data disk's copy then holds a pg_control pointing
    at a checkpoint record the WAL disk's copy, taken earlier, does not contain. Here the
    checkpoint is issued on purpose inside the window (the ``before_snapshot`` hook), so the
    race is hit every time. The restored server stops with "invalid primary checkpoint
    record" / "PANIC: could not locate a valid checkpoint record": unrecoverable.
    """
    require("postgres")
    skew = 1.0
    log: list[dict[str, Any]] = []
    settings = _postgres_split_settings(tmp_path, "reverse", skew)
    d, results = until_caught(
        settings,
        hooks=_checkpoint_in_skew_window(skew, log),
        label="postgres WAL first + checkpoint in the skew window",
    )
    _checkpoints_done(log, skew)
    why = caught(d, results) + f"\ncheckpoints: {log}"
    print(f"checkpoints: {log}")
    o = d["oracle"]
    assert d["verdict"] in BELOW, why
    assert d["status"] == 0 and d["freeze"]["enabled"] is False, why
    assert d["snapshot"]["taken"] and d["snapshot"]["duration_s"] >= skew, why
    assert d["verdict"] == oracle.UNRECOVERABLE and o["started"] is False, why
    assert any("could not locate a valid checkpoint record" in n for n in o["notes"]), why


def test_postgres_data_disk_first_with_checkpoint_in_skew_window_restores(
    tmp_path: Path, root_required: None
) -> None:
    """The control of the case above: the same skew, no freeze and the same checkpoint inside
    the window, but the data disk is copied first. The WAL disk's copy is then the newer one
    and holds every record the data disk's pg_control can point to; replay brings the data
    forward: application-consistent. So it is the order, not the injected checkpoint, that
    breaks the other case."""
    require("postgres")
    skew = 1.0
    log: list[dict[str, Any]] = []
    settings = _postgres_split_settings(tmp_path, "layout", skew)
    d = run(settings, hooks=_checkpoint_in_skew_window(skew, log)()).to_dict()
    _checkpoints_done(log, skew)
    why = evidence(d) + f"\ncheckpoints: {log}"
    print(f"\npostgres data first + checkpoint in the skew window:\n{why}")
    assert d["verdict"] == oracle.APPLICATION, why
    assert d["oracle"]["acked_missing"] == 0 and d["oracle"]["integrity_ok"] is True, why


def test_postgres_left_read_only_fails_liveness(tmp_path: Path, root_required: None) -> None:
    """``pre-sets-readonly.sh`` (ALTER SYSTEM SET default_transaction_read_only = on) with
    ``post-leaves-readonly.sh`` (never resets it): the snapshot itself restores, but after the
    post-script the application's writes are refused for the whole liveness bound, so the
    verdict is held at crash-consistent."""
    require("postgres")
    settings = cycle_settings(
        tmp_path,
        "postgres",
        SAMPLES / "postgres" / "pre-sets-readonly.sh",
        SAMPLES / "postgres" / "post-leaves-readonly.sh",
        quiesce="none",
    )
    d, results = until_caught(settings, label="postgres left read-only")
    why = caught(d, results)
    o = d["oracle"]
    assert d["verdict"] == oracle.CRASH, why
    assert o["liveness_ok"] is False, why
    assert o["liveness"]["last"]["result"] == "refused", why
    assert "read-only" in o["liveness"]["last"]["detail"], why
    assert any(r.startswith("liveness") for r in d["reasons"]), why
    assert o["started"] is True and o["acked_missing"] == 0 and o["integrity_ok"] is True, why


# --------------------------------------------------------------------------- Redis


def test_redis_bgsave_without_waiting_is_caught(tmp_path: Path, root_required: None) -> None:
    """``pre-bgsave-nowait.sh`` (BGSAVE and exit 0 at once, nothing holds writes) declared as a
    lock: the quiesce probe's write is accepted, so crash-consistent. The AOF (fsynced on
    every write) still restores every acknowledged write."""
    require("redis")
    settings = cycle_settings(
        tmp_path,
        "redis",
        SAMPLES / "redis" / "pre-bgsave-nowait.sh",
        SAMPLES / "redis" / "post.sh",
        quiesce="lock",
    )
    d, results = until_caught(settings, label="redis BGSAVE without waiting")
    why = caught(d, results)
    o = d["oracle"]
    assert d["verdict"] == oracle.CRASH, why
    assert o["quiesce_probe"]["result"] == "accepted" and o["quiesce_probe_ok"] is False, why
    assert any("quiesce probe" in r for r in d["reasons"]), why
    assert o["acked_missing"] == 0 and o["liveness_ok"] is True, why


# --------------------------------------------------------------------------- SQLite

SQLITE_DB = "/var/lib/app/app.db"
ARCHIVE_MB = 300
CHECKPOINT_FRAMES = 1000  # SQLite's default wal_autocheckpoint
DUE_FRAMES = CHECKPOINT_FRAMES - 2


def _wal_state(vm: Any) -> tuple[int, int]:
    """(checkpoint sequence, frames in the WAL since its last restart) of the live database,
    read from the host side: the WAL header, and ``mxFrame`` of the wal-index header in the
    ``-shm`` file (native byte order). (-1, 0) while there is no WAL yet."""
    try:
        with open(vm.path(SQLITE_DB + "-wal"), "rb") as wal:
            header = wal.read(32)
        with open(vm.path(SQLITE_DB + "-shm"), "rb") as shm:
            index = shm.read(48)
    except OSError:
        return (-1, 0)
    if len(header) < 32 or len(index) < 48:
        return (-1, 0)
    ckpt_seq = struct.unpack(">I", header[12:16])[0]
    max_frame = struct.unpack("=I", index[16:20])[0]
    return ckpt_seq, max_frame


def _torn_copy_hooks(log: list[dict[str, Any]]) -> Callable[[], dict]:
    def hooks() -> dict[str, Callable[..., Any]]:
        entry: dict[str, Any] = {}
        log.append(entry)

        def before_workload(vm: Any) -> None:
            # Other data on the application's disk, written before the application writes:
            # ext4 gives the WAL's first 16 blocks a small gap near its directory and the rest
            # of it a place after this file, so the WAL's head and its body end up 300 MB
            # apart in the disk image.
            began = time.monotonic()
            with open(vm.path("/var/lib/app/archive.bin"), "wb") as archive:
                for _ in range(ARCHIVE_MB):
                    archive.write(os.urandom(1 << 20))
                archive.flush()
                os.fsync(archive.fileno())
            entry["archive_s"] = round(time.monotonic() - began, 2)

        def before_snapshot(vm: Any) -> None:
            # Start the copy when SQLite's next automatic checkpoint is due (the WAL is a
            # frame or two short of wal_autocheckpoint): a backup starts at an arbitrary
            # moment, this picks the moment that puts a checkpoint inside the copy.
            began = time.monotonic()
            state = _wal_state(vm)
            while time.monotonic() - began < 30 and state[1] < DUE_FRAMES:
                time.sleep(0.005)
                state = _wal_state(vm)
            entry["waited_s"] = round(time.monotonic() - began, 2)
            entry["wal_at_copy_start"] = state

        return {"before_workload": before_workload, "before_snapshot": before_snapshot}

    return hooks


def test_sqlite_copy_of_live_image_torn_across_checkpoint_is_caught(
    tmp_path: Path, root_required: None
) -> None:
    """A ``copy`` snapshot (``cp`` of the disk image, block after block, while it changes) of a
    live SQLite database in WAL mode, no freeze, scripts that do nothing.

    SQLite's WAL is crash-safe: an atomic image of the disk at any instant restores fine
    (every frame is checksummed and salted, a torn tail is ignored). A non-atomic copy is not
    an image of any instant. What goes wrong: when the WAL reaches 1000 pages, the committing
    writer checkpoints it into the database file, and the next writer restarts the WAL from
    its beginning with a new salt, overwriting the old frames in place. If the copy reads the
    WAL's head before that restart and its later frames after the new frames have overwritten
    them, the copied WAL is valid only up to the first overwritten frame (a salt or checksum
    break), and the database file's copy may hold pages from before or after the
    checkpoint: commits are lost (acknowledged writes missing: crash-consistent) or the
    database holds pages of different ages ("database disk image is malformed":
    unrecoverable).

    Making a trial likely to hit it (nothing is done to SQLite itself, and the workload is the
    ordinary one):
    - more data: a 300 MB file of other data is written to the disk before the application
      starts writing, so the WAL's head and body are 300 MB apart in the image and the copy
      needs a few hundred milliseconds between them;
    - the copy starts when the workload's own next automatic checkpoint is due (the WAL two
      frames short of 1000), so the checkpoint and the WAL restart fall inside the copy.
    Measured while writing this test: 7 of 10 trials below application-consistent (4
    crash-consistent with most acknowledged writes missing, 3 unrecoverable, malformed).
    Without the other data (a 200 MB database instead, WAL head and body adjacent), 0 of 12
    trials failed although the checkpoint and the restart fell inside the copy each time;
    with the default small database, the copy takes 5 to 20 ms and no checkpoint falls in
    it (every ~7 s at this workload's rate).
    """
    require("sqlite")
    settings = cycle_settings(
        tmp_path,
        "sqlite",
        TRIVIAL,
        TRIVIAL,
        freeze=False,
        snapshot="copy",
        quiesce="none",
        workload_seconds=2.0,
    )
    log: list[dict[str, Any]] = []
    d, results = until_caught(settings, hooks=_torn_copy_hooks(log), label="sqlite torn copy")
    why = caught(d, results) + f"\ntrials: {log}"
    print(f"trials: {log}")
    o = d["oracle"]
    assert d["verdict"] in BELOW, why
    assert d["status"] == 0 and d["freeze"]["enabled"] is False, why
    assert d["snapshot"]["backend"] == "copy" and d["snapshot"]["taken"], why
    if d["verdict"] == oracle.UNRECOVERABLE:
        assert any("malformed" in n or "not a database" in n for n in o["notes"]), why
    elif d["verdict"] == oracle.CRASH:
        assert o["acked_missing"] > 0, why
    else:  # inconsistent: integrity_check or the invariants failed
        assert o["integrity_ok"] is False or o["invariants_ok"] is False, why
