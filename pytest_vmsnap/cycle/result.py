"""The result of one cycle: :class:`RunResult`, its JSON contract and its test assertions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..evidence import oracle
from ..framework.records import Finding
from ..report.text import code_name, explain
from ..settings import Settings, format_modes
from .protocol import CycleRecord

LIVENESS_BOUND_S = 10.0
"""How long after the post-script the application has to accept writes again."""


@dataclass
class RunResult:
    """Everything about one cycle; :meth:`to_dict` is the ``vmsnap run`` JSON contract."""

    settings: Settings
    verdict: str = oracle.NOT_TAKEN
    reasons: list[str] = field(default_factory=list)
    cycle: CycleRecord | None = None
    """The framework cycle's record (None when no cycle ran: a usage or harness error)."""
    evidence: oracle.Evidence = field(default_factory=oracle.Evidence)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    probes: list[dict[str, Any]] = field(default_factory=list)
    snapshot_parts: list[dict[str, Any]] = field(default_factory=list)
    """A torn copy's parts (``torn_copy``): each file copied, then the checkpoint forced."""
    latency: list[tuple[float, float, str]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    """Findings of the harness's own, beside the framework's (a script that killed it)."""
    files: list[dict[str, Any]] = field(default_factory=list)
    """The user's files as installed in the VM (:meth:`~pytest_vmsnap.lint.sources.Source.
    to_dict`): path, location, mode here, mode installed, whether ``modes`` declared it."""
    error: str = ""
    tag: str = ""
    """The resource tag of the cycle's stand-in VMs (empty when none was built)."""

    @property
    def ok(self) -> bool:
        return self.verdict == oracle.APPLICATION

    # Assertions for tests (the vmsnap_cycle fixture): each raises AssertionError with the
    # readable explanation of report.explain, and returns the result for chaining.

    def assert_verdict(self, verdict: str) -> RunResult:
        """The cycle's verdict is ``verdict``."""
        __tracebackhide__ = True
        if verdict not in oracle.VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; one of {', '.join(oracle.VERDICTS)}")
        if self.verdict != verdict:
            raise AssertionError(explain(self.to_dict(), verdict))
        return self

    def assert_application_consistent(self) -> RunResult:
        """The restored copy is application-consistent (and the live app was left usable)."""
        __tracebackhide__ = True
        return self.assert_verdict(oracle.APPLICATION)

    def assert_status(self, status: int, health_code: int | None = None) -> RunResult:
        """The framework's status (0, 1 or an error code) and, if given, its health code."""
        __tracebackhide__ = True
        if self.status == status and (health_code is None or self.health_code == health_code):
            return self
        d = self.to_dict()

        def health(code: int | None) -> str:
            return "0 (success)" if code == 0 else code_name(code)

        want = f"framework status {status}"
        if health_code is not None:
            want += f" with health code {health(health_code)}"
        # explain()'s first line would repeat this one: keep its why/findings/stderr lines.
        details = explain(d, want).splitlines()[1:]
        raise AssertionError(
            "\n".join(
                [
                    f"expected {want}, got status {d['status']} with health code "
                    f"{health(d['health_code'])} ({d['verdict']})",
                    *details,
                ]
            )
        )

    def assert_quiesced(self) -> RunResult:
        """A write on a fresh connection blocked or was refused while the app was quiesced,
        for every writer role probed (the application user's and a privileged one's)."""
        __tracebackhide__ = True
        probe = self.evidence.quiesce_probe
        if probe is None:
            raise AssertionError(
                "the quiesce probe did not run (no pre-script end was reached)\n"
                + explain(self.to_dict(), "a quiesce probe")
            )
        if probe.get("result") not in oracle.HELD:
            role = probe.get("role", "app")
            who = "" if role == "app" else f" as the {role} user"
            read_only = f"{oracle.READ_ONLY_ONLY}\n" if self.evidence.only_read_only_held else ""
            raise AssertionError(
                f"{read_only}a write on a fresh connection{who} was {probe.get('result')} "
                "between the end of the pre-script and the snapshot: the application was not "
                "held still\n"
                f"  probe: {probe.get('detail') or probe.get('error')}\n"
                "    -> Keep the lock in a session that outlives the pre-script (a background "
                "holder released by the post-script), and return from the pre-script only once "
                "the lock is held."
            )
        return self

    def assert_live(self) -> RunResult:
        """After the post-script the application accepted writes again within the bound."""
        __tracebackhide__ = True
        if self.evidence.liveness_ok is True:
            return self
        live = self.evidence.liveness or {}
        last = live.get("last") or {}
        detail = f"{last.get('result')}: {last.get('detail')}" if last else live.get("error")
        raise AssertionError(
            "after the post-script the application could not write within "
            f"{LIVENESS_BOUND_S:.0f} s: {detail or 'the liveness probe did not run'}\n"
            "    -> The post-script must undo everything the pre-script did (unlock, "
            "read_only off, unpause)."
        )

    @property
    def status(self) -> int | None:
        """The framework's status: 0, 1 or an error code (None when no cycle ran)."""
        return self.cycle.status if self.cycle else None

    @property
    def health_code(self) -> int | None:
        """The framework's health code (None when no cycle ran)."""
        return self.cycle.health_code if self.cycle else None

    @property
    def disagreement(self) -> str:
        """When the framework reported an application-consistent snapshot and the oracle
        judged the restored copy lower: both, in one sentence (``consistency`` and
        ``message`` are the framework's words, never the verdict's). Empty otherwise."""
        c = self.cycle
        if (
            c is None
            or c.consistency != "application"
            or self.verdict
            in (
                oracle.APPLICATION,
                oracle.ERROR,
            )
        ):
            return ""
        why = self.reasons[0] if self.reasons else ""
        return (
            f"the framework reported {c.message!r} (status {c.status}); the oracle judged the "
            f"restored copy {self.verdict}: {why}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``vmsnap run`` JSON contract (keys are added, never renamed)."""
        s = self.settings
        c = self.cycle or CycleRecord(
            status=0,  # not shown: no cycle ran, status and health code are None
            health_code=0,
            message=self.error,
            freeze={"enabled": False, "frozen_s": 0.0, "mounts": []},
            snapshot={"backend": s.snapshot, "taken": False, "duration_s": 0.0},
        )
        return {
            "verdict": self.verdict,
            "reasons": self.reasons,
            "status": self.status,
            "health_code": self.health_code,
            "consistency": c.consistency,
            "message": c.message,
            "oracle_disagrees": self.disagreement,
            "framework": s.framework,
            "outcome": c.outcome,
            "calls": c.calls,
            "app": s.app,
            "vm": s.vm,
            "profile": s.profile,
            "pacing": s.pacing,
            "writers": s.writers,
            "quiesce": s.quiesce,
            "disks": s.disks,
            "fs": s.fs,
            "scripts": c.scripts,
            "freeze": c.freeze,
            "snapshot": c.snapshot,
            "oracle": self.evidence.to_dict(),
            "findings": list(c.findings)
            + self.findings
            + (
                [
                    {
                        "code": None,
                        "name": "HarnessError",
                        "message": self.error,
                        "action": "See the message.",
                    }
                ]
                if self.error
                else []
            ),
            "timeline": self.timeline,
            "probes": self.probes,
            "snapshot_parts": self.snapshot_parts,
            "latency": [
                {"t": round(t, 4), "latency_s": round(lat, 5), "op": op}
                for t, lat, op in self.latency
            ],
            "versions": self.versions,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "error": self.error,
            "tag": self.tag,
            "files": self.files,
            "modes_declared": format_modes(s.modes),
            "image": s.image,
        }
