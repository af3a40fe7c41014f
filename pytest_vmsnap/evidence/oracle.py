"""The verdict after restore: does the snapshot hold a consistent application, and why (not)?

Verdicts, best first: ``application-consistent``, ``crash-consistent``, ``inconsistent``,
``unrecoverable``; ``not-taken`` when the framework took no snapshot; ``error`` when the
harness could not finish the cycle (nothing is then known about the scripts). Log replay (WAL, redo,
AOF) on start is the store's designed path and is recorded, not held against the snapshot;
repair is. Every verdict comes with the evidence that decided it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..apps.base import BANK_ACCOUNTS, BANK_TOTAL, IntegrityReport, StartReport
from .workload import Ack

APPLICATION = "application-consistent"
CRASH = "crash-consistent"
INCONSISTENT = "inconsistent"
UNRECOVERABLE = "unrecoverable"
NOT_TAKEN = "not-taken"
ERROR = "error"
VERDICTS = (APPLICATION, CRASH, INCONSISTENT, UNRECOVERABLE, NOT_TAKEN, ERROR)


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
    quiesce_probe: dict[str, Any] | None = None
    quiesce_probe_ok: bool | None = None
    liveness_ok: bool | None = None
    liveness: dict[str, Any] | None = None
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
            "writes_after_thaw_present": len(self.writes_after_thaw_present),
            "invariants_ok": self.invariants_ok,
            "bank_total": self.bank_total,
            "quiesce_probe": self.quiesce_probe,
            "quiesce_probe_ok": self.quiesce_probe_ok,
            "liveness_ok": self.liveness_ok,
            "liveness": self.liveness,
            "notes": self.notes,
        }


@dataclass
class Verdict:
    """One verdict and the reasons, most important first."""

    verdict: str
    reasons: list[str]
    evidence: Evidence


def judge_probes(
    evidence: Evidence, quiesce: str, probe: dict[str, Any] | None, liveness: dict[str, Any] | None
) -> None:
    """Record the two probes and whether they pass.

    The quiesce probe is judged only when the user declares the scripts hold a lock
    (``quiesce = lock``); otherwise its result is reported, not judged.
    """
    evidence.quiesce_probe = probe
    if probe is not None and quiesce == "lock":
        evidence.quiesce_probe_ok = probe.get("result") in ("blocked", "refused")
    evidence.liveness = liveness
    if liveness is not None:
        evidence.liveness_ok = bool(liveness.get("ok"))


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
        before = [a.seq for a in acked if a.seq is not None and a.t1 <= pre_end_t]
        evidence.acked_before_pre = len(before)
        evidence.acked_missing = sorted(s for s in before if s not in present)
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
            "acknowledged before the pre-script returned are missing"
        )
    if evidence.quiesce_probe_ok is False:
        result = (evidence.quiesce_probe or {}).get("result")
        reasons.append(
            _probe_reason(
                "quiesce probe",
                evidence.quiesce_probe,
                "the lock the scripts claim is unproven",
                f"a write on a fresh connection was {result} while the scripts claimed to "
                "hold a lock",
            )
        )
    if evidence.liveness_ok is False:
        reasons.append(
            _probe_reason(
                "liveness",
                evidence.liveness,
                "whether the application can write after the post-script is unproven",
                "the application still could not write after the post-script (left locked "
                "or read-only)",
            )
        )
    if status != 0:
        reasons.append(f"the framework reported status {status}, not application-consistent")
    if ceiling == CRASH:
        reasons.append(ceiling_reason)
    if reasons:
        return Verdict(CRASH, reasons, evidence)
    note = "log replay on start (designed path)" if evidence.recovery_needed else "clean start"
    return Verdict(
        APPLICATION,
        [
            f"starts ({note}), integrity ok, all {evidence.acked_before_pre}"
            " acknowledged writes present, invariants hold"
        ],
        evidence,
    )


def _probe_reason(name: str, probe: dict[str, Any] | None, unproven: str, failed: str) -> str:
    """Why a probe keeps the verdict down. A probe that could not be made (its process
    killed, say) proves nothing either way: the reason says so rather than blame the scripts."""
    if (probe or {}).get("result") == "error":
        return f"{name}: could not be made ({(probe or {}).get('error')}): {unproven}"
    return f"{name}: {failed}"
