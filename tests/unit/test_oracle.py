"""The oracle's verdicts, from evidence built by hand (DESIGN.md, "Consistency verdicts")."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_vmsnap.apps.base import BANK_ACCOUNTS, BANK_TOTAL, IntegrityReport, StartReport
from pytest_vmsnap.evidence import oracle
from pytest_vmsnap.evidence.workload import Ack

GOOD_STATE = {"seqs": [1, 2, 3], "bank_total": BANK_TOTAL, "bank_rows": BANK_ACCOUNTS}
HISTORY = [
    Ack("append", 1, 0.0, 1.0),
    Ack("append", 2, 1.0, 2.0),
    Ack("append", 3, 2.0, 3.0),
    Ack("append", 4, 9.0, 9.5),
    Ack("append", 5, 3.1, 3.2, error="locked"),
]


def evidence(
    start: StartReport | None = None,
    integrity: IntegrityReport | None = None,
    state: dict | None = None,
    pre_end: float = 5.0,
    thawed: float = 8.0,
    history: list[Ack] = HISTORY,
) -> oracle.Evidence:
    ev = oracle.Evidence()
    oracle.check_restore(
        ev,
        start or StartReport(True, 0.3),
        integrity or IntegrityReport(True),
        GOOD_STATE if state is None else state,
        history,
        pre_end,
        thawed,
    )
    return ev


def test_clean_restore_is_application_consistent() -> None:
    """All acked-before-pre writes present, integrity ok, invariants hold -> application."""
    v = oracle.decide(evidence(), taken=True, status=0)
    assert v.verdict == oracle.APPLICATION
    assert v.evidence.acked_before_pre == 3 and v.evidence.acked_missing == []


def test_log_replay_is_not_held_against_the_snapshot() -> None:
    """WAL/redo replay on start is the designed path: still application-consistent."""
    ev = evidence(start=StartReport(True, 0.5, recovery_ran=True, evidence=["redo done"]))
    v = oracle.decide(ev, taken=True, status=0)
    assert v.verdict == oracle.APPLICATION and ev.recovery_needed
    assert "log replay" in v.reasons[0]


def test_repair_makes_it_crash_consistent() -> None:
    """A MyISAM table not closed properly needs repair -> crash-consistent."""
    ev = evidence(start=StartReport(True, 0.5, repair_needed=True))
    assert oracle.decide(ev, taken=True, status=0).verdict == oracle.CRASH


def test_missing_acknowledged_write_is_crash_consistent() -> None:
    """A write acknowledged before the pre-script returned is missing -> crash-consistent."""
    ev = evidence(state={**GOOD_STATE, "seqs": [1, 3]})
    v = oracle.decide(ev, taken=True, status=0)
    assert v.verdict == oracle.CRASH and ev.acked_missing == [2]
    assert "1 of 3" in v.reasons[0]


def test_broken_invariant_is_inconsistent() -> None:
    """The bank total changed -> inconsistent."""
    v = oracle.decide(
        evidence(state={**GOOD_STATE, "bank_total": BANK_TOTAL - 7}), taken=True, status=0
    )
    assert v.verdict == oracle.INCONSISTENT
    assert str(BANK_TOTAL - 7) in v.reasons[0]


def test_failed_integrity_is_inconsistent() -> None:
    """integrity_check failing -> inconsistent, with the details as notes."""
    ev = evidence(integrity=IntegrityReport(False, details=["page 3 is never used"]))
    assert oracle.decide(ev, taken=True, status=0).verdict == oracle.INCONSISTENT
    assert any("page 3" in n for n in ev.notes)


def test_write_after_thaw_in_snapshot_is_inconsistent() -> None:
    """A write started after the thaw cannot be in the snapshot."""
    ev = evidence(state={**GOOD_STATE, "seqs": [1, 2, 3, 4]})
    assert ev.writes_after_thaw_present == [4]
    assert oracle.decide(ev, taken=True, status=0).verdict == oracle.INCONSISTENT


def test_not_starting_is_unrecoverable() -> None:
    """The restored app does not start within its deadline -> unrecoverable."""
    ev = evidence(start=StartReport(False, 60.0, error="PANIC: could not locate checkpoint"))
    v = oracle.decide(ev, taken=True, status=0)
    assert v.verdict == oracle.UNRECOVERABLE and "checkpoint" in " ".join(v.reasons)


def test_no_snapshot_is_not_taken() -> None:
    """The framework took no snapshot -> not-taken, with the reason."""
    v = oracle.decide(oracle.Evidence(), taken=False, status=300, why_not_taken="pre failed")
    assert v.verdict == oracle.NOT_TAKEN and v.reasons == ["pre failed"]


@pytest.mark.parametrize(
    ("quiesce", "result", "judged"),
    [
        ("lock", "accepted", False),
        ("lock", "blocked", True),
        ("lock", "refused", True),
        ("none", "accepted", None),
    ],
)
def test_quiesce_probe_is_judged_only_for_lock(
    quiesce: str, result: str, judged: bool | None
) -> None:
    """The probe must block or be refused only when the scripts claim a lock."""
    ev = evidence()
    oracle.judge_probes(ev, quiesce, {"result": result}, {"ok": True})
    assert ev.quiesce_probe_ok is judged
    expected = oracle.CRASH if judged is False else oracle.APPLICATION
    assert oracle.decide(ev, taken=True, status=0).verdict == expected


def test_app_left_locked_caps_the_verdict() -> None:
    """Liveness failing keeps the verdict below application-consistent."""
    ev = evidence()
    oracle.judge_probes(ev, "none", None, {"ok": False, "last": {"result": "refused"}})
    v = oracle.decide(ev, taken=True, status=0)
    assert v.verdict == oracle.CRASH and "liveness" in v.reasons[0]


def test_framework_status_not_zero_caps_the_verdict() -> None:
    """Status 1 (a script failed) is never application-consistent, whatever the data."""
    v = oracle.decide(evidence(), taken=True, status=1)
    assert v.verdict == oracle.CRASH and "status 1" in v.reasons[0]


def test_unreadable_state_is_inconsistent() -> None:
    """The state query failed on a started store."""
    ev = evidence(state={"error": "no such table: vmsnap_log"})
    v = oracle.decide(ev, taken=True, status=0)
    assert v.verdict == oracle.INCONSISTENT


def test_a_probe_that_could_not_be_made_is_unproven_not_blamed_on_the_scripts() -> None:
    """A probe whose process died (the OOM killer, under a squeezed memory limit) keeps the
    verdict below application-consistent, and the reason says the check could not be made."""
    failed = {"result": "error", "error": "its process ended without an answer (killed by 9)"}
    ev = evidence()
    oracle.judge_probes(ev, "lock", failed, failed)
    v = oracle.decide(ev, taken=True, status=0)
    assert v.verdict == oracle.CRASH
    assert "could not be made" in v.reasons[0] and "unproven" in v.reasons[0]
    assert "could not be made" in v.reasons[1] and "left locked" not in v.reasons[1]


def test_a_harness_that_cannot_run_the_cycle_says_error_not_not_taken(tmp_path: Path) -> None:
    """not-taken is the framework's decision; a cycle the harness could not run has its own
    verdict, with the cause first among the reasons."""
    from pytest_vmsnap.cycle.run import run
    from pytest_vmsnap.settings import Settings

    d = run(Settings(config=tmp_path / "missing.json", app="sqlite")).to_dict()
    assert d["verdict"] == oracle.ERROR and oracle.ERROR in oracle.VERDICTS
    assert d["reasons"][0] == f"harness: {d['error']}" and "does not exist" in d["error"]
