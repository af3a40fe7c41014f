"""``vmsnap compare``: the same scripts under every framework that can host them.

Each framework gets the scripts where it looks for them and, where it needs a config to run
them at all, the smallest one a user would write (its defaults otherwise); then one full
cycle, judged like any other. A framework that cannot run the scripts as given (a pre/post
pair where it calls one hook with a verb) gets a row that says why instead of a cycle.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..framework import engines
from ..framework.engine import Hosting
from ..settings import Settings
from .result import RunResult
from .run import run

log = logging.getLogger(__name__)


@dataclass
class Row:
    """One framework's line of the comparison."""

    framework: str
    title: str
    calls: str
    """How the framework called the scripts (or would have)."""
    refused: str = ""
    """Why the framework cannot host these scripts ('' when it ran them)."""
    result: dict[str, Any] | None = None
    """The cycle's ``vmsnap run`` JSON."""

    @property
    def verdict(self) -> str:
        return "cannot host" if self.refused else str((self.result or {}).get("verdict", "?"))

    @property
    def outcome(self) -> str:
        """The framework's own words for its result (Azure: status and its code's name)."""
        if self.refused or self.result is None:
            return "-"
        r = self.result
        if self.framework == "azure":
            return f"status {r.get('status')} ({r.get('outcome')})"
        return str(r.get("outcome") or r.get("status"))

    @property
    def why(self) -> str:
        """The first reason for the verdict, or why the framework cannot host the scripts."""
        if self.refused:
            return self.refused
        reasons = (self.result or {}).get("reasons") or []
        why = str(reasons[0]) if reasons else ""
        said = _failed_script_said(self.result or {})
        return f"{why} (the script said: {said})" if why and said else why

    def to_dict(self) -> dict[str, Any]:
        return {
            "framework": self.framework,
            "title": self.title,
            "calls": self.calls,
            "refused": self.refused,
            "verdict": self.verdict,
            "outcome": self.outcome,
            "why": self.why,
            "result": self.result,
        }


def _failed_script_said(result: dict[str, Any]) -> str:
    """The last line a failed script wrote to stderr: often the plainest why (``pre: no
    database at 0/1`` when the framework passed what the script took for its own argument)."""
    scripts = result.get("calls") or list((result.get("scripts") or {}).values())
    for call in scripts:
        failed = call.get("exit_code") not in (0, None) or call.get("timed_out")
        lines = str(call.get("stderr") or "").strip().splitlines()
        if failed and lines:
            return lines[-1][:200]
    return ""


def compare(settings: Settings, frameworks: Sequence[str] = engines.NAMES) -> list[Row]:
    """One row per framework, in ``frameworks``' order: the scripts of ``settings``
    (``pre``/``post`` or ``hook``) run under each that can host them."""
    rows = []
    for name in frameworks:
        engine = engines.get(name, profile=settings.profile)
        s = settings.with_(framework=name, config=None)
        hosting = engine.host(s.given())
        row = Row(name, engine.title, hosting.calls, refused=hosting.refused)
        if not hosting.refused:
            log.info("compare: %s", engine.title)
            with tempfile.TemporaryDirectory(prefix="vmsnap-compare-") as tmp:
                row.result = _run(s, hosting, Path(tmp)).to_dict()
        rows.append(row)
    return rows


def _run(s: Settings, hosting: Hosting, tmp: Path) -> RunResult:
    """A cycle under one framework. Azure's staging reads its config: the generated one is
    written here and the scripts go where it names them (a hook as both pre and post)."""
    if s.framework == "azure":
        gen = hosting.generated[0]
        config = tmp / "VMSnapshotScriptPluginConfig.json"
        config.write_bytes(gen.content)
        config.chmod(gen.mode)
        if s.hook is not None:
            s = s.with_(pre=s.hook, post=s.hook, hook=None)
        s = s.with_(config=config)
    return run(s)
