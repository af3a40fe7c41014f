"""The oracle can fail: broken quiesce set-ups get a verdict below application-consistent.

Each case runs one full cycle (``cycle.run.run``: real database, recorded workload, framework
cycle, snapshot, restore, oracle) and asserts that it is judged below
``application-consistent``: no second chance, a race is built, not waited for. The evidence
(verdict, reasons, the oracle record) is printed, and in the assertion message. Every case is
marked ``catch``: ``bench/catch_rate.py`` runs them N times and prints the catch rates, which
must all be 100 %.

- MariaDB, FLUSH TABLES WITH READ LOCK in a client that exits (no ``read_only``), declared
  ``quiesce="lock"``: the quiesce probe's write is accepted and the MyISAM table restores as
  "not closed properly" (repair): crash-consistent.
- PostgreSQL with data and WAL on two disks, no freeze, snapshotted WAL disk first with a
  skew, and a checkpoint inside the skew window: the restored server cannot find its
  checkpoint record: unrecoverable. The same run in the layout order (data first) restores
  fine, which shows it is the order that hurts.
- SQLite, a ``copy`` snapshot (a non-atomic block copy) of a live ext4 image without freeze,
  which reads the database file before a checkpoint and the WAL after it (``torn_copy``):
  acknowledged writes lost, or a malformed database.
- PostgreSQL's read-only pair (the post-script forgets to undo the pre-script): liveness fails.
- Redis ``BGSAVE`` without waiting, declared ``quiesce="lock"``: the probe's write is accepted.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from appcycle import DATA, SAMPLES, TRIVIAL, cycle_settings, evidence, require

from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.evidence import oracle
from pytest_vmsnap.settings import Settings

pytestmark = pytest.mark.catch

TRIALS = 1
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
    every acknowledged write is there. The verdict is crash-consistent, or inconsistent when
    the MyISAM table was caught mid-write by both writers (CHECK TABLE: "Corrupt", its index
    one key ahead of its data).
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
    assert d["verdict"] in (oracle.CRASH, oracle.INCONSISTENT), why
    assert d["status"] == 0, why  # the framework itself saw nothing wrong
    assert o["quiesce_probe"]["result"] == "accepted" and o["quiesce_probe_ok"] is False, why
    assert o["repair_needed"] is True or o["integrity_ok"] is False, why
    assert any("vmsnap_events" in n and "closed" in n for n in o["notes"]), why
    if d["verdict"] == oracle.CRASH:
        assert any("quiesce probe" in r for r in d["reasons"]), why
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

UNBACKFILLED_MARGIN = 10
"""Frames in the WAL, and not in the database file, when the pre-script's end is noticed. At
this workload's rate (about 140 frames a second) the tenth-newest was committed, and
acknowledged, some 70 ms before: far longer than the milliseconds between the agent's event
and the hook's read."""
CONSTRUCT_TRIES = 3


def _not_constructed(at_pre_end: dict[str, int], parts: list[dict[str, Any]]) -> str | None:
    """Why a trial did not build the tear (None when it did): the database file copied while
    the WAL still held frames committed before the pre-script's end, then the checkpoint
    moved them into the database file and restarted the WAL, then the WAL copied."""
    if [p["part"] for p in parts] != ["app.db", "app.db-wal"]:
        return f"the copy's parts were {[p['part'] for p in parts]}"
    before, after = parts[0]["then"]["before"], parts[0]["then"]["after"]
    if before["seq"] != at_pre_end["seq"]:
        return "the WAL restarted between the pre-script's end and the database file's copy"
    if at_pre_end["frames"] - before["backfilled"] < UNBACKFILLED_MARGIN:
        return f"only {at_pre_end['frames'] - before['backfilled']} frames were not backfilled"
    if after["seq"] == before["seq"]:
        return "the forced checkpoint did not restart the WAL"
    return None


def test_sqlite_copy_torn_across_a_checkpoint_is_caught(
    tmp_path: Path, root_required: None
) -> None:
    """A ``copy`` snapshot (a non-atomic copy of the disk image) of a live SQLite database in
    WAL mode, no freeze, scripts that do nothing: the copy reaches the database file and its
    WAL at different moments, and SQLite checkpoints in between (``torn_copy``: the harness
    copies the database file, forces ``wal_checkpoint(RESTART)`` and one write, then copies
    the WAL and the rest).

    SQLite's WAL is crash-safe: an image of the disk at one instant restores fine. This copy
    is not one: its database file lacks the frames the checkpoint moved, and its WAL was
    restarted from its first frame under a new salt, so those frames are gone from both.
    Writes acknowledged before the pre-script ended are missing (crash-consistent), or the
    new frames land on pages of another age ("database disk image is malformed").

    The race is built, not waited for: the test checks that each trial built it (the WAL
    held at least ten frames committed before the pre-script's end that were not in the
    database file when it was copied, and the checkpoint restarted the WAL); a trial that did
    not (an automatic checkpoint fell in the milliseconds between) is run again, at most
    three times. Measured: 20 of 20 built trials caught (``bench/catch_rate.py``).
    Before ``torn_copy`` this test waited for the workload's own checkpoint to fall inside a
    plain copy of a 300 MB image: 7 of 10 trials caught, and on a fresh machine 0 of 5.
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
        torn_copy=True,
    )
    tries: list[str] = []
    for _ in range(CONSTRUCT_TRIES):
        seen: dict[str, Any] = {}

        def at_pre_end(vm: Any, seen: dict[str, Any] = seen) -> None:
            seen["wal"] = vm.call("pytest_vmsnap.apps.checkpoint:wal_state")

        d = run(settings, hooks={"at_pre_end": at_pre_end}).to_dict()
        assert d["error"] == "", evidence(d)
        why_not = _not_constructed(seen["wal"], d["snapshot_parts"])
        if why_not is None:
            break
        tries.append(why_not)
    else:
        raise AssertionError(f"the tear was not built in {CONSTRUCT_TRIES} tries: {tries}")
    why = f"{evidence(d)}\nat the pre-script's end: {seen['wal']}\nparts: {d['snapshot_parts']}"
    print(why)
    o = d["oracle"]
    assert d["verdict"] in BELOW, why
    assert d["status"] == 0 and d["freeze"]["enabled"] is False, why
    assert d["snapshot"]["backend"] == "copy" and d["snapshot"]["taken"], why
    if d["verdict"] == oracle.UNRECOVERABLE:
        assert any("malformed" in n or "not a database" in n for n in o["notes"]), why
    elif d["verdict"] == oracle.CRASH:
        assert o["acked_missing"], why
    else:  # inconsistent: integrity_check or the invariants failed
        assert o["integrity_ok"] is False or o["invariants_ok"] is False, why


# --------------------------------------------------------------------------- the window


def test_sqlite_lock_whose_watchdog_is_shorter_than_the_window_is_caught(
    tmp_path: Path, root_required: None
) -> None:
    """The correct SQLite pair, with its lock holder's watchdog set to 2 s (preScriptParams):
    the lock outlives the moment the freeze lands right after the pre-script, and is gone
    when the capture of the disks is held 6 s longer (``window_s``, the battery's worst-case
    window item): the probe at the window's end is accepted, and the post-script finds the
    lock already released. The same cycle without the window is application-consistent: it
    is the length of the window that the script does not survive, not chance.
    """
    require("sqlite")
    results = {}
    for window in (0.0, 6.0):
        (tmp_path / f"w{window:g}").mkdir()
        settings = cycle_settings(tmp_path / f"w{window:g}", "sqlite", quiesce="lock")
        assert settings.config is not None
        config = json.loads(settings.config.read_text())
        config["preScriptParams"] = ["/var/lib/app/app.db", "2"]
        settings.config.write_text(json.dumps(config))
        results[window] = run(settings.with_(window_s=window)).to_dict()
    held, window = results[0.0], results[6.0]
    assert held["verdict"] == oracle.APPLICATION, evidence(held)
    why = evidence(window)
    assert window["verdict"] == oracle.CRASH and window["error"] == "", why
    probes = [p for p in window["probes"] if p["probe"] == "quiesce"]
    assert [p["result"] for p in probes if p["at"] == "the pre-script's end"] == ["blocked"] * 2
    last = [p for p in probes if "worst case" in p["at"]]
    assert last and all(p["result"] == "accepted" for p in last), why
    assert all(p["after_pre_s"] >= 6.0 for p in last), why
    assert any("6.0" in r or "after the pre-script ended" in r for r in window["reasons"]), why
    assert window["scripts"]["post"]["exit_code"] == 1, why  # the watchdog had released it
    assert any(t["phase"] == "window" for t in window["timeline"]), why
