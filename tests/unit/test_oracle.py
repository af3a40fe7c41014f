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


def test_a_probe_that_could_not_be_made_is_a_harness_error_not_blamed_on_the_scripts() -> None:
    """A probe whose process died (the OOM killer, under a squeezed memory limit) or whose
    client library failed is the harness's failure: the verdict is ``error``, the reasons
    say which probe could not be made and what the rest of the evidence reads."""
    failed = {"result": "error", "error": "its process ended without an answer (killed by 9)"}
    ev = evidence()
    oracle.judge_probes(ev, "lock", failed, failed)
    v = oracle.decide(ev, taken=True, status=0)
    assert v.verdict == oracle.ERROR
    assert v.reasons[0].startswith("harness: the quiesce probe (app) could not be made: its")
    assert v.reasons[1].startswith("harness: the liveness probe (app) could not be made")
    assert v.reasons[2].startswith("without the failed probe the evidence reads crash-consistent")
    assert "unproven" in v.reasons[2] and "left locked" not in v.reasons[2]
    assert ev.to_dict()["probe_errors"] == [r.removeprefix("harness: ") for r in v.reasons[:2]]


def test_a_probe_whose_client_library_fails_is_error_never_refused() -> None:
    """Issue 11: the harness's own failure (a client library that rejects an argument, a
    missing module) is not the store refusing a write, which would pass a lock check."""
    from pytest_vmsnap.apps.probewrite import no_connection, watch

    result, detail = no_connection(TypeError("unexpected keyword 'lib_name'"), 0.01, 1.0)
    assert result == "error" and "TypeError" in detail
    assert no_connection(ConnectionRefusedError("refused"), 0.01, 1.0)[0] == "refused"

    class Broken:
        def attempt(self) -> tuple[str, str]:
            raise ModuleNotFoundError("No module named 'psycopg'")

        def waiting_on(self) -> None:
            return None

        def abandon(self) -> None: ...

        def close(self) -> None: ...

    assert watch(Broken(), 1.0)[0] == "error"  # type: ignore[arg-type]


def test_a_harness_that_cannot_run_the_cycle_says_error_not_not_taken(tmp_path: Path) -> None:
    """not-taken is the framework's decision; a cycle the harness could not run has its own
    verdict, with the cause first among the reasons."""
    from pytest_vmsnap.cycle.run import run
    from pytest_vmsnap.settings import Settings

    d = run(Settings(config=tmp_path / "missing.json", app="sqlite")).to_dict()
    assert d["verdict"] == oracle.ERROR and oracle.ERROR in oracle.VERDICTS
    assert d["reasons"][0] == f"harness: {d['error']}" and "does not exist" in d["error"]


# --- writer roles: the application user and a privileged one (root/SUPER, superuser...) ------

READ_ONLY_REFUSED = {
    "role": "app",
    "result": "refused",
    "read_only": True,
    "detail": "1290 read-only (ER_OPTION_PREVENTS_STATEMENT): ... --read-only option ...",
}
PRIVILEGED_ACCEPTED = {"role": "privileged", "result": "accepted", "detail": "committed"}
LIVE = [{"role": "app", "ok": True}, {"role": "privileged", "ok": True}]


def test_read_only_that_lets_a_privileged_writer_through_is_not_a_lock() -> None:
    """quiesce = lock: the app user refused by read_only, root's write accepted -> the lock
    is not there; the reason says so in words and the deciding probe is root's."""
    ev = evidence()
    oracle.judge_probes(ev, "lock", [READ_ONLY_REFUSED, PRIVILEGED_ACCEPTED], LIVE)
    v = oracle.decide(ev, taken=True, status=0)
    assert v.verdict == oracle.CRASH
    assert ev.quiesce_probe_ok is False and ev.only_read_only_held is True
    assert ev.quiesce_probe is not None and ev.quiesce_probe["role"] == "privileged"
    assert v.reasons[0].startswith(f"quiesce probe: {oracle.READ_ONLY_ONLY}")
    assert [p["role"] for p in ev.to_dict()["quiesce_probes"]] == ["app", "privileged"]


@pytest.mark.parametrize("quiesce", ["none", "flush"])
def test_read_only_with_a_privileged_writer_through_is_a_note_without_a_lock(
    quiesce: str,
) -> None:
    """Not declared a lock: reported, not judged; the verdict stays, a note says it."""
    ev = evidence()
    oracle.judge_probes(ev, quiesce, [READ_ONLY_REFUSED, PRIVILEGED_ACCEPTED], LIVE)
    v = oracle.decide(ev, taken=True, status=0)
    assert v.verdict == oracle.APPLICATION and ev.quiesce_probe_ok is None
    assert v.reasons[1] == f"note: {oracle.READ_ONLY_ONLY}"
    assert any(n.startswith(oracle.READ_ONLY_ONLY) for n in ev.notes)


@pytest.mark.parametrize(
    ("app", "privileged", "verdict", "read_only_only"),
    [
        ("blocked", "blocked", oracle.APPLICATION, False),  # a held lock stops root too
        ({"result": "refused", "read_only": True}, "blocked", oracle.APPLICATION, False),
        ("blocked", "accepted", oracle.CRASH, False),
        ({"result": "refused", "read_only": False}, "accepted", oracle.CRASH, False),
        ("accepted", "accepted", oracle.CRASH, False),
    ],
)
def test_every_role_must_be_held_under_a_lock(
    app: str | dict, privileged: str, verdict: str, read_only_only: bool
) -> None:
    """quiesce = lock asks every role's write to block or be refused; read_only alone is
    named only when it is what refused the app user."""
    app_probe = {"result": app} if isinstance(app, str) else dict(app)
    probes = [{"role": "app", **app_probe}, {"role": "privileged", "result": privileged}]
    ev = evidence()
    oracle.judge_probes(ev, "lock", probes, LIVE)
    v = oracle.decide(ev, taken=True, status=0)
    assert v.verdict == verdict and ev.only_read_only_held is read_only_only
    if verdict == oracle.CRASH and privileged == "accepted" and app_probe["result"] != "accepted":
        assert "as the privileged user was accepted" in v.reasons[0]


def test_one_role_probed_keeps_the_old_shape() -> None:
    """A bare probe answer is the app user's (runs recorded before roles); nothing is said
    about read_only without a privileged writer to compare with."""
    ev = evidence()
    oracle.judge_probes(ev, "lock", {"result": "refused", "read_only": True}, {"ok": True})
    assert oracle.decide(ev, taken=True, status=0).verdict == oracle.APPLICATION
    assert ev.quiesce_probe == {"result": "refused", "read_only": True, "role": "app"}
    assert ev.only_read_only_held is None and ev.liveness_ok is True


def test_liveness_must_pass_for_every_role() -> None:
    """A privileged writer still locked out after the post-script keeps the verdict down, and
    the reason names it."""
    ev = evidence()
    lives = [{"role": "app", "ok": True}, {"role": "privileged", "ok": False, "last": {}}]
    oracle.judge_probes(ev, "none", None, lives)
    v = oracle.decide(ev, taken=True, status=0)
    assert v.verdict == oracle.CRASH and ev.liveness_ok is False
    assert ev.liveness is not None and ev.liveness["role"] == "privileged"
    assert "a privileged writer still could not write" in v.reasons[0]


def test_acknowledged_writes_of_every_role_must_be_present() -> None:
    """A privileged writer's write acknowledged before the pre-script returned counts like the
    app user's; the reason says which role lost writes."""
    history = [
        *HISTORY,
        Ack("append", 30_000_001, 0.5, 1.5, role="privileged"),
        Ack("append", 30_000_002, 1.5, 2.5, role="privileged"),
        Ack("append", 30_000_003, 6.0, 6.5, role="privileged"),  # after the pre-script
    ]
    ev = evidence(state={**GOOD_STATE, "seqs": [1, 2, 3, 30_000_001]}, history=history)
    v = oracle.decide(ev, taken=True, status=0)
    assert v.verdict == oracle.CRASH and ev.acked_missing == [30_000_002]
    assert ev.acked_by_role == {
        "app": {"before_pre": 3, "missing": 0},
        "privileged": {"before_pre": 2, "missing": 1},
    }
    assert v.reasons[0] == (
        "1 of 5 writes acknowledged before the pre-script returned are missing "
        "(app: 0 of 3, privileged: 1 of 2)"
    )


def test_history_lines_carry_their_role() -> None:
    from pytest_vmsnap.evidence.workload import parse_history, writer_id

    text = (
        '{"op": "append", "seq": 1, "t0": 0, "t1": 1}\n'
        '{"op": "append", "seq": 30000001, "t0": 0, "t1": 1, "role": "privileged"}\n'
    )
    assert [a.role for a in parse_history(text)] == ["app", "privileged"]
    ids = {(r, k): writer_id(r, k) for r in ("app", "privileged") for k in ("append", "transfer")}
    assert sorted(ids.values()) == [1, 2, 3, 4] and ids[("privileged", "append")] == 3


def test_read_only_refusals_are_told_from_other_refusals() -> None:
    """Each store says which of its refusals mean "read-only" (a state a privileged writer
    may ignore), as the probes write their details."""
    from pytest_vmsnap.apps import get_app

    mariadb, postgres = get_app("mariadb"), get_app("postgres")
    assert mariadb.read_only(
        "1290 read-only (ER_OPTION_PREVENTS_STATEMENT): The MariaDB server is running with "
        "the --read-only option so it cannot execute this statement"
    )
    assert mariadb.read_only("1836 read-only mode (ER_READ_ONLY_MODE): Running in read-only")
    assert not mariadb.read_only(
        "1290 read-only (ER_OPTION_PREVENTS_STATEMENT): The MariaDB server is running with "
        "the --skip-grant-tables option so it cannot execute this statement"
    )
    assert not mariadb.read_only("1142 command denied: INSERT command denied to user")
    assert postgres.read_only("25006: cannot execute INSERT in a read-only transaction")
    assert not postgres.read_only("42501: permission denied for table vmsnap_probe")
    for app in ("sqlite", "redis"):
        assert not get_app(app).read_only("ReadOnlyError: You can't write against a replica")


def test_the_framework_and_the_oracle_disagreeing_is_said_in_one_sentence() -> None:
    """Issue 11: ``consistency`` and ``message`` are the framework's words; when the oracle
    judges the restored copy lower, ``oracle_disagrees`` says both and why."""
    from pytest_vmsnap.cycle.protocol import CycleRecord
    from pytest_vmsnap.cycle.result import RunResult
    from pytest_vmsnap.report.text import explain
    from pytest_vmsnap.settings import Settings

    record = CycleRecord(0, 0, "application-consistent snapshot", consistency="application")
    r = RunResult(Settings(), cycle=record, verdict=oracle.CRASH, reasons=["quiesce probe: x"])
    d = r.to_dict()
    assert d["consistency"] == "application" and d["verdict"] == oracle.CRASH
    assert d["oracle_disagrees"] == (
        "the framework reported 'application-consistent snapshot' (status 0); the oracle "
        "judged the restored copy crash-consistent: quiesce probe: x"
    )
    assert "framework vs oracle: the framework reported" in explain(d, oracle.APPLICATION)
    agree = RunResult(Settings(), cycle=record, verdict=oracle.APPLICATION).to_dict()
    assert agree["oracle_disagrees"] == ""
    fs_only = CycleRecord(1, 0, "file-system consistent snapshot", consistency="crash")
    assert RunResult(Settings(), cycle=fs_only, verdict=oracle.CRASH).disagreement == ""
