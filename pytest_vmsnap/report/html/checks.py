"""What a session's checks expected of each cycle, and how they ended: the typed data the
pytest plugin hands the page (:func:`~pytest_vmsnap.report.html.write_html`'s ``checks`` and
``expected``), so the page says pass or fail first.

The plugin builds them on the pytest workers and sends them to the controller as plain data
(:meth:`Expected.to_dict`, :meth:`Expected.from_dict`); a page without them (``vmsnap run``)
leads with the verdict instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ExpectedKind = Literal["verdict", "outcome", "restored"]
Outcome = Literal["passed", "failed", "skipped"]

APPLICATION = "application-consistent"
_NO_SNAPSHOT = ("not-taken", "error")


@dataclass(frozen=True)
class Expected:
    """What a check expected of one cycle.

    ``verdict``: that verdict (the main cycle: application-consistent). ``outcome``: the
    framework's row of the outcome table, ``status`` and ``health_code`` (a fault: status 1,
    the file-system-consistent fallback, with the fault's code). ``restored``: only that a
    snapshot was taken and restored, whatever its verdict (the crash-consistent baseline).
    """

    kind: ExpectedKind
    verdict: str = ""
    status: int | None = None
    health_code: int | None = None
    word: str = ""
    """The frameworks other than Azure: their own word for the row (``outcome`` in the JSON),
    which the status alone does not tell apart."""

    @classmethod
    def verdict_is(cls, verdict: str) -> Expected:
        return cls("verdict", verdict=verdict)

    @classmethod
    def outcome(cls, status: int, health_code: int) -> Expected:
        return cls("outcome", status=status, health_code=health_code)

    @classmethod
    def framework_outcome(cls, status: int, word: str) -> Expected:
        """A framework other than Azure: its row by status and its own word."""
        return cls("outcome", status=status, health_code=status, word=word)

    @classmethod
    def restored(cls) -> Expected:
        return cls("restored")

    def text(self) -> str:
        """``application-consistent``, ``fallback 308``, ``status 2, health code 2``."""
        if self.kind == "verdict":
            return self.verdict
        if self.kind == "outcome":
            if self.word:
                return self.word
            if self.status == 1:
                return f"fallback {self.health_code}"
            return f"status {self.status}, health code {self.health_code}"
        return "a snapshot taken and restored"

    def got(self, run: Mapping[str, Any]) -> str:
        """What the cycle gave, in the words of :meth:`text`."""
        verdict = str(run.get("verdict") or "not-taken")
        if self.kind != "outcome":
            return verdict
        status, health = run.get("status"), run.get("health_code")
        if status is None:
            return f"no framework outcome ({verdict})"
        if self.word:
            return str(run.get("outcome") or status)
        if status == self.status == 1:
            return str(health)
        return f"status {status}, health code {health}"

    def met(self, run: Mapping[str, Any]) -> bool:
        """Whether the cycle gave what was expected (the checks may ask for more: a check's
        own outcome, when known, decides)."""
        if self.kind == "verdict":
            return run.get("verdict") == self.verdict
        if self.kind == "outcome" and self.word:
            return (run.get("status"), run.get("outcome")) == (self.status, self.word)
        if self.kind == "outcome":
            return (run.get("status"), run.get("health_code")) == (self.status, self.health_code)
        return run.get("verdict") not in _NO_SNAPSHOT and not run.get("error")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "verdict": self.verdict,
            "status": self.status,
            "health_code": self.health_code,
            "word": self.word,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Expected:
        kind = data.get("kind")
        if kind not in ("verdict", "outcome", "restored"):
            raise ValueError(f"unknown expectation kind {kind!r}")
        status, health = data.get("status"), data.get("health_code")
        return cls(
            kind,
            verdict=str(data.get("verdict") or ""),
            status=status if isinstance(status, int) else None,
            health_code=health if isinstance(health, int) else None,
            word=str(data.get("word") or ""),
        )


@dataclass(frozen=True)
class CheckResult:
    """One test item of the session (a check of the battery, or a test that ran a cycle):
    how it ended and which cycles (by their names on the page) it ran or looked at."""

    name: str
    """Its node ID (``vmsnap::main``, ``tests/test_backup.py::test_cycle``)."""
    outcome: Outcome
    cycles: tuple[str, ...] = ()
    detail: str = ""
    """The first line of its failure, or its skip reason."""
    title: str = ""
    """What it checks, in words (a battery item's title)."""


@dataclass(frozen=True)
class CycleOutcome:
    """One cycle's line: what was expected, what it gave, and whether that passed."""

    name: str
    expected: Expected | None
    got: str
    passed: bool | None
    """True or False; None when nothing says (no check used it and nothing was expected)."""
    checks: tuple[CheckResult, ...] = field(default=())

    def word(self) -> str:
        """``pass``, ``as expected`` (a fault or baseline that did what it should), ``FAIL``."""
        if self.passed is None:
            return "not judged"
        if not self.passed:
            return "FAIL"
        return "pass" if self.expected is None or self.expected.kind == "verdict" else "as expected"

    def line(self) -> str:
        """``fault-pre-hangs: expected fallback 308, got 308 — as expected``."""
        if self.expected is None:
            return f"{self.name}: got {self.got} — {self.word()}"
        return f"{self.name}: expected {self.expected.text()}, got {self.got} — {self.word()}"


def cycle_outcome(
    name: str,
    run: Mapping[str, Any],
    expected: Expected | None,
    checks: Sequence[CheckResult],
) -> CycleOutcome:
    """The line of cycle ``name``: the checks that used it decide when there are any (one
    that failed fails the cycle), else the expectation does."""
    users = tuple(c for c in checks if name in c.cycles)
    got = expected.got(run) if expected else str(run.get("verdict") or "not-taken")
    passed: bool | None
    if any(c.outcome == "failed" for c in users):
        passed = False
    elif any(c.outcome == "passed" for c in users):
        passed = True
    elif expected is not None:
        passed = expected.met(run)
    else:
        passed = None
    return CycleOutcome(name, expected, got, passed, users)


def tally(checks: Sequence[CheckResult]) -> dict[str, int]:
    """``{"passed": n, "failed": n, "skipped": n}``."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for c in checks:
        counts[c.outcome] = counts.get(c.outcome, 0) + 1
    return counts
