"""What every framework's lint but Azure's shares: the engine's own refusals as errors, and
the database heuristics whose wording holds for any framework."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from . import report
from .database_checks import warn_database_heuristics
from .report import Collector, Finding
from .shell_text import ShellText

REUSED_DATABASE_IDS = frozenset(
    {
        "lock-released-on-exit",
        "pg-start-backup-removed",
        "pg-backup-start-session",
        "redis-bgsave-no-wait",
        "super-read-only",
    }
)
"""The database heuristics of :mod:`.database_checks` that hold under any framework (their
ids are kept)."""


def precheck_errors(engine: Any, root: Path) -> list[Finding]:
    """What the framework's engine would refuse before running anything, as lint errors."""
    return [
        Finding(
            report.ERROR,
            str(f["name"]),
            str(f["message"]),
            str(f["action"]),
            code=f["code"],
            name=str(f["name"]),
        )
        for f in engine.precheck(Path(root))
    ]


def database_warnings(location: str, shell: ShellText, quiesce_side: bool) -> list[Finding]:
    """The database heuristics for the script text at ``location`` (``quiesce_side``: it
    runs on the freeze side, where a lock must be taken and kept)."""
    collector = Collector()
    warn_database_heuristics(collector, location, shell, quiesce_side)
    return [f for f in collector.findings if f.id in REUSED_DATABASE_IDS]


Warn = Callable[..., Finding]


def warner(ids: Collection[str]) -> Warn:
    """``warn(wid, message, action, path=None, line=None)``: a warning with one of ``ids``
    (a stable id: an unknown one is a bug in the lint module)."""

    def warn(
        wid: str, message: str, action: str, path: str | None = None, line: int | None = None
    ) -> Finding:
        assert wid in ids, wid
        return Finding(report.WARNING, wid, message, action, path=path, line=line)

    return warn
