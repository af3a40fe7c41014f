"""The verdict after restore: does the snapshot hold a consistent application, and why (not)?

Verdicts, best first: ``application-consistent``, ``crash-consistent``, ``inconsistent``,
``unrecoverable``; ``not-taken`` when the framework took no snapshot; ``error`` when the
harness could not finish the cycle (nothing is then known about the scripts). Log replay (WAL, redo,
AOF) on start is the store's designed path and is recorded, not held against the snapshot;
repair is. Every verdict comes with the evidence that decided it.

Writers come in roles (the application user, a privileged user; ``writers`` setting): the
acknowledged-write checks cover every role's writes, and each role has its own quiesce and
liveness probe. A quiesce that stops the application user only by ``read_only`` while a
privileged writer's write goes through is named as such (:data:`READ_ONLY_ONLY`); with
``quiesce = lock`` it keeps the verdict below application-consistent, otherwise it is a note.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..apps.base import (
    APP_ROLE,
    BANK_ACCOUNTS,
    BANK_TOTAL,
    PRIVILEGED_ROLE,
    IntegrityReport,
    StartReport,
)
from .workload import Ack

APPLICATION = "application-consistent"
CRASH = "crash-consistent"
INCONSISTENT = "inconsistent"
UNRECOVERABLE = "unrecoverable"
NOT_TAKEN = "not-taken"
ERROR = "error"
VERDICTS = (APPLICATION, CRASH, INCONSISTENT, UNRECOVERABLE, NOT_TAKEN, ERROR)

HELD = ("blocked", "refused")
"""Quiesce-probe results that mean the write did not land."""
READ_ONLY_ONLY = "only read_only held writers; a privileged writer went through"

ProbeRecords = dict[str, Any] | Sequence[dict[str, Any]] | None
"""One probe's answer (the application user's, unless it says its ``role``), one per role,
or none."""


@dataclass
class Evidence:
    """Everything the oracle looked at, in the shape of the ``oracle`` record of the JSON."""

    started: bool | None = None
    start_s: float | None = None
    recovery_needed: bool = False
    repair_needed: bool = False
    integrity_ok: bool | None = None
    acked_before_pre: int = 0
    acked_missing: list[int] = field(default_factory=list)
    writes_after_thaw_present: list[int] = field(default_factory=list)
    invariants_ok: bool | None = None
    bank_total: int | None = None
    acked_by_role: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per role: ``before_pre`` (acknowledged before the pre-script returned), ``missing``."""
    quiesce_probe: dict[str, Any] | None = None
    """The probe that decides: the first role's whose write went through (or could not be
    made), else the application user's."""
    quiesce_probes: list[dict[str, Any]] = field(default_factory=list)
    """Every role's quiesce probe, each with its ``role``."""
    quiesce_probe_ok: bool | None = None
    only_read_only_held: bool | None = None
    """The application user's write was refused for read-only and a privileged one went
    through (None: not both roles were probed)."""
    liveness_ok: bool | None = None
    liveness: dict[str, Any] | None = None
    """The liveness probe that decides: the first role's that failed, else the first."""
    liveness_probes: list[dict[str, Any]] = field(default_factory=list)
    probe_errors: list[str] = field(default_factory=list)
    """Probes the harness could not make (their process killed, a client library missing):
    the verdict is then ``error``."""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "start_s": None if self.start_s is None else round(self.start_s, 3),
            "recovery_needed": self.recovery_needed,
            "repair_needed": self.repair_needed,
            "integrity_ok": self.integrity_ok,
            "acked_before_pre": self.acked_before_pre,
            "acked_missing": len(self.acked_missing),
            "acked_missing_sample": self.acked_missing[:10],
            "acked_by_role": self.acked_by_role,
            "writes_after_thaw_present": len(self.writes_after_thaw_present),
            "invariants_ok": self.invariants_ok,
            "bank_total": self.bank_total,
            "quiesce_probe": self.quiesce_probe,
            "quiesce_probes": self.quiesce_probes,
            "quiesce_probe_ok": self.quiesce_probe_ok,
            "only_read_only_held": self.only_read_only_held,
            "liveness_ok": self.liveness_ok,
            "liveness": self.liveness,
            "liveness_probes": self.liveness_probes,
            "probe_errors": self.probe_errors,
            "notes": self.notes,
        }


@dataclass
class Verdict:
    """One verdict and the reasons, most important first."""

    verdict: str
    reasons: list[str]
    evidence: Evidence


def judge_probes(
    evidence: Evidence, quiesce: str, probe: ProbeRecords, liveness: ProbeRecords
) -> None:
    """Record the two probes of every role and whether they pass.

    The quiesce probes are judged only when the user declares the scripts hold a lock
    (``quiesce = lock``): every role's write must then block or be refused. Otherwise their
    results are reported, not judged, and a quiesce that held only the application user by
    read-only is a note. Liveness must pass for every role.
    """
    probes = _with_roles(probe)
    evidence.quiesce_probes = probes
    evidence.quiesce_probe = _deciding(probes, lambda p: p.get("result") in HELD)
    evidence.only_read_only_held = _only_read_only(probes)
    if probes and quiesce == "lock":
        evidence.quiesce_probe_ok = all(p.get("result") in HELD for p in probes)
    elif evidence.only_read_only_held:
        evidence.notes.append(f"{READ_ONLY_ONLY} (quiesce = {quiesce}: reported, not judged)")
    lives = _with_roles(liveness)
    evidence.liveness_probes = lives
    evidence.probe_errors = [
        f"the {kind} probe ({p['role']}{', at ' + p['at'] if p.get('at') else ''}) could not "
        f"be made: {p.get('error') or p.get('detail')}"
        for kind, records in (("quiesce", probes), ("liveness", lives))
        for p in records
        if p.get("result") == "error"
    ]
    evidence.liveness = _deciding(lives, lambda p: bool(p.get("ok")))
    if lives:
        evidence.liveness_ok = all(bool(p.get("ok")) for p in lives)


def _with_roles(records: ProbeRecords) -> list[dict[str, Any]]:
    """Copies of the probe answers, each with its role (a bare answer is the app user's)."""
    if records is None:
        return []
    if isinstance(records, dict):
        records = [records]
    return [{**r, "role": r.get("role") or APP_ROLE} for r in records]


def _deciding(
    probes: list[dict[str, Any]], passed: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    """The first probe that did not pass, else the first (None when there is none)."""
    return next((p for p in probes if not passed(p)), probes[0] if probes else None)


def _only_read_only(probes: list[dict[str, Any]]) -> bool | None:
    """Whether the application user was refused only for read-only while a privileged
    writer's write was accepted; None unless both roles were probed."""
    app = [p for p in probes if p["role"] == APP_ROLE]
    privileged = [p for p in probes if p["role"] == PRIVILEGED_ROLE]
    if not (app and privileged):
        return None
    refused = all(p.get("result") == "refused" and p.get("read_only") for p in app)
    return refused and any(p.get("result") == "accepted" for p in privileged)


def check_restore(
    evidence: Evidence,
    start: StartReport,
    integrity: IntegrityReport | None,
    state: dict[str, Any] | None,
    history: list[Ack],
    pre_end_t: float | None,
    thawed_t: float | None,
) -> None:
    """Fill the evidence from the restored copy and the workload's history."""
    evidence.started = start.started
    evidence.start_s = start.seconds
    evidence.recovery_needed = start.recovery_ran
    evidence.repair_needed = start.repair_needed
    evidence.notes.extend(start.evidence[:10])
    if not start.started:
        evidence.notes.append(f"did not start: {start.error}")
        return
    if integrity is not None:
        evidence.integrity_ok = integrity.ok
        evidence.repair_needed |= integrity.repaired
        if not integrity.ok:
            evidence.notes.extend(f"integrity: {d}" for d in integrity.details[:10])
    if state is None or "error" in state:
        evidence.invariants_ok = False
        evidence.notes.append(f"could not read the restored state: {(state or {}).get('error')}")
        return
    present = set(state["seqs"])
    acked = [a for a in history if a.op == "append" and a.error is None and a.seq is not None]
    if pre_end_t is not None:
        # Every role's writes: a privileged writer's acknowledged write must be there too.
        before = [(a.seq, a.role) for a in acked if a.seq is not None and a.t1 <= pre_end_t]
        evidence.acked_before_pre = len(before)
        evidence.acked_missing = sorted(seq for seq, _ in before if seq not in present)
        for seq, role in before:
            counts = evidence.acked_by_role.setdefault(role, {"before_pre": 0, "missing": 0})
            counts["before_pre"] += 1
            counts["missing"] += seq not in present
    if thawed_t is not None:
        # Started after the thaw: such a write cannot be in a snapshot taken before it.
        evidence.writes_after_thaw_present = sorted(
            a.seq for a in acked if a.seq is not None and a.t0 > thawed_t and a.seq in present
        )
    evidence.bank_total = state.get("bank_total")
    evidence.invariants_ok = (
        state.get("bank_total") == BANK_TOTAL
        and state.get("bank_rows") == BANK_ACCOUNTS
        and not evidence.writes_after_thaw_present
    )


def decide(
    evidence: Evidence,
    *,
    taken: bool,
    status: int,
    why_not_taken: str = "",
    ceiling: str | None = None,
    ceiling_reason: str = "directory stand-in without freeze: never better than crash-consistent",
) -> Verdict:
    """The verdict from the evidence (see the module docstring)."""
    if evidence.probe_errors:
        # The harness failed, not the scripts: nothing it would say about them is proof.
        rest = _decide(evidence, taken, status, why_not_taken, ceiling, ceiling_reason)
        without = f"without the failed probe the evidence reads {rest.verdict}"
        return Verdict(
            ERROR,
            [f"harness: {e}" for e in evidence.probe_errors]
            + [f"{without}: {'; '.join(rest.reasons[:2])}"],
            evidence,
        )
    return _decide(evidence, taken, status, why_not_taken, ceiling, ceiling_reason)


def _decide(
    evidence: Evidence,
    taken: bool,
    status: int,
    why_not_taken: str,
    ceiling: str | None,
    ceiling_reason: str,
) -> Verdict:
    if not taken:
        return Verdict(NOT_TAKEN, [why_not_taken or "the framework took no snapshot"], evidence)
    if not evidence.started:
        return Verdict(
            UNRECOVERABLE,
            ["the restored application did not start", *evidence.notes[-1:]],
            evidence,
        )
    reasons: list[str] = []
    if evidence.integrity_ok is False:
        reasons.append("integrity checks failed on the restored copy")
    if evidence.invariants_ok is False:
        if evidence.bank_total is not None and evidence.bank_total != BANK_TOTAL:
            reasons.append(f"invariant broken: bank total {evidence.bank_total} != {BANK_TOTAL}")
        if evidence.writes_after_thaw_present:
            reasons.append(
                f"{len(evidence.writes_after_thaw_present)} writes made after the "
                "thaw are in the snapshot"
            )
        if not reasons:
            reasons.append("the restored state could not be read")
    if reasons:
        return Verdict(INCONSISTENT, reasons, evidence)

    if evidence.repair_needed:
        reasons.append("the restored store needed repair (not just log replay)")
    if evidence.acked_missing:
        reasons.append(
            f"{len(evidence.acked_missing)} of {evidence.acked_before_pre} writes "
            "acknowledged before the pre-script returned are missing" + _by_role(evidence)
        )
    if evidence.quiesce_probe_ok is False:
        reasons.append(_quiesce_reason(evidence))
    if evidence.liveness_ok is False:
        role = (evidence.liveness or {}).get("role", APP_ROLE)
        who = "the application" if role == APP_ROLE else f"a {role} writer"
        reasons.append(
            _probe_reason(
                "liveness",
                evidence.liveness,
                "whether the application can write after the post-script is unproven",
                f"{who} still could not write after the post-script (left locked or read-only)",
            )
        )
    if status != 0:
        reasons.append(f"the framework reported status {status}, not application-consistent")
    if ceiling == CRASH:
        reasons.append(ceiling_reason)
    # Not judged (quiesce is not lock) but worth saying: read-only held only some writers.
    unjudged = evidence.only_read_only_held and evidence.quiesce_probe_ok is None
    noted = [f"note: {READ_ONLY_ONLY}"] if unjudged else []
    if reasons:
        return Verdict(CRASH, reasons + noted, evidence)
    note = "log replay on start (designed path)" if evidence.recovery_needed else "clean start"
    return Verdict(
        APPLICATION,
        [
            f"starts ({note}), integrity ok, all {evidence.acked_before_pre}"
            " acknowledged writes present, invariants hold",
            *noted,
        ],
        evidence,
    )


def _by_role(evidence: Evidence) -> str:
    """`` (app: 0 of 40, privileged: 3 of 38)`` when more than one role wrote."""
    if len(evidence.acked_by_role) < 2:
        return ""
    parts = [
        f"{role}: {c['missing']} of {c['before_pre']}"
        for role, c in sorted(evidence.acked_by_role.items())
    ]
    return f" ({', '.join(parts)})"


def _quiesce_reason(evidence: Evidence) -> str:
    """Why the quiesce probes keep the verdict down, naming a quiesce that was read-only."""
    probe = evidence.quiesce_probe or {}
    if evidence.only_read_only_held:
        return (
            f"quiesce probe: {READ_ONLY_ONLY} (the application user's write was refused as "
            "read-only, a privileged user's write was accepted while the scripts claimed to "
            "hold a lock)"
        )
    role = probe.get("role", APP_ROLE)
    who = "" if role == APP_ROLE else f" as the {role} user"
    return _probe_reason(
        "quiesce probe",
        probe,
        "the lock the scripts claim is unproven",
        f"a write on a fresh connection{who} was {probe.get('result')}{_when(probe)} while "
        "the scripts claimed to hold a lock",
    )


def _when(probe: dict[str, Any]) -> str:
    """Where in the window a probe ran: " at the freeze, 4.02 s after the pre-script ended"."""
    at, after = probe.get("at"), probe.get("after_pre_s")
    if not at:
        return ""
    if after is None or at == "the pre-script's end":
        return f" at {at}"
    return f" at {at}, {after:.2f} s after the pre-script ended"


def _probe_reason(name: str, probe: dict[str, Any] | None, unproven: str, failed: str) -> str:
    """Why a probe keeps the verdict down. A probe that could not be made (its process
    killed, say) proves nothing either way: the reason says so rather than blame the scripts."""
    if (probe or {}).get("result") == "error":
        return f"{name}: could not be made ({(probe or {}).get('error')}): {unproven}"
    return f"{name}: {failed}"
