"""Findings, the report that holds them (text and JSON forms), and the collector checks use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..framework.azure import codes
from ..framework.azure.config import PLUGIN_CONFIG
from .wording import plural

if TYPE_CHECKING:
    from .sources import Source

ERROR = "error"
WARNING = "warning"

# Stable warning ids: tools and tests match on these, so never rename one.
WARNING_IDS = (
    "workload-takes-over",
    "host-no-plugins",
    "bashism",
    "sh-syntax",
    "checkbashisms",
    "crlf",
    "utf8-bom",
    "shebang-ignored",
    "not-shell",
    "exit-2",
    "script-unreadable",
    "params-string",
    "params-not-list",
    "params-crash",
    "params-non-string-item",
    "params-empty-item",
    "plugin-name-not-string",
    "timeout-missing",
    "timeout-rounded",
    "timeout-capped",
    "timeout-not-positive",
    "poll-ignored",
    "poll-truncated",
    "retries-ignored",
    "retries-not-number",
    "flag-not-boolean",
    "unknown-key",
    "duplicate-key",
    "writable-path",
    "profile-difference",
    "lock-released-on-exit",
    "pg-start-backup-removed",
    "pg-backup-start-session",
    "redis-bgsave-no-wait",
    "script-freezes-fs",
    "pre-waits-on-post",
    "super-read-only",
)


@dataclass(frozen=True)
class Finding:
    """One problem: an error (a framework code the pre-check raises) or a warning (an id)."""

    severity: str
    id: str
    message: str
    action: str
    code: int | None = None
    name: str = ""
    path: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form; errors keep the ``{code, name, message, action}`` shape."""
        return {
            "severity": self.severity,
            "id": self.id,
            "code": self.code,
            "name": self.name or self.id,
            "message": self.message,
            "action": self.action,
            "path": self.path,
            "line": self.line,
        }

    def format_text(self) -> str:
        """Two lines: what is wrong, then the indented recommended action."""
        if self.severity == ERROR:
            head = f"error {self.code} {self.name}: {self.message}"
        else:
            head = f"warning {self.id}: {self.message}"
        return f"{head}\n    -> {self.action}"


@dataclass
class LintReport:
    """Everything ``lint`` found for one machine root."""

    root: str
    """The machine root linted; '' for a scratch root made of :attr:`sources`."""
    profile: str
    findings: list[Finding] = field(default_factory=list)
    precheck_codes: dict[str, int] = field(default_factory=dict)
    """The pre-check's code under each profile (0 = passes)."""
    sources: list[Source] = field(default_factory=list)
    """The user's files the root was made of (``vmsnap lint --config``, the battery), which
    the findings name; empty for a machine root given as it is."""

    @property
    def errors(self) -> list[Finding]:
        """Findings that make the extension skip the scripts (the pre-check fails)."""
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        """Findings the pre-check lets through but that break or weaken backups."""
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        """True only when there is nothing at all to report (no errors and no warnings)."""
        return not self.findings

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form of the whole report."""
        out: dict[str, object] = {
            "root": self.root,
            "profile": self.profile,
            "ok": self.ok,
            "precheck": dict(self.precheck_codes),
            "errors": [f.to_dict() for f in self.errors],
            "warnings": [f.to_dict() for f in self.warnings],
        }
        if self.sources:  # the user's files were linted, not a machine root
            out["files"] = [s.to_dict() for s in self.sources]
            out["modes_declared"] = any(s.declared for s in self.sources)
        return out

    def format_text(self) -> str:
        """Readable text: errors first, then warnings, each with its action, then a summary."""
        lines = [f"vmsnap lint {self.root} (profile {self.profile})"]
        if self.sources:
            from .sources import declared_text

            files = ", ".join(dict.fromkeys(s.path for s in self.sources))
            lines = [f"vmsnap lint {files}, installed as on the VM (profile {self.profile})"]
            if declared := declared_text(self.sources):
                lines.append(f"modes as deployed (vmsnap_modes): {declared}")
        for finding in self.errors + self.warnings:
            lines.append(finding.format_text())
        n_err, n_warn = len(self.errors), len(self.warnings)
        if self.ok:
            lines.append("no findings: the pre-check passes and nothing looks risky")
        else:
            lines.append(f"{plural(n_err, 'error')}, {plural(n_warn, 'warning')}")
        if n_err:
            lines.append(
                "(the pre-check stops at its first failure: fix it and lint again to see "
                "whether another check fails next)"
            )
        return "\n".join(lines)


class Collector:
    """Accumulates findings, dropping exact duplicates (pre and post may be the same file)."""

    def __init__(self, config_path: str = PLUGIN_CONFIG) -> None:
        self.findings: list[Finding] = []
        self.config_path = config_path
        """The JSON config's path on the VM, as named in the plugin-host file."""

    def warn(
        self, wid: str, message: str, action: str, path: str | None = None, line: int | None = None
    ) -> None:
        """Add a warning; ``wid`` must be one of :data:`WARNING_IDS`."""
        assert wid in WARNING_IDS, wid
        finding = Finding(WARNING, wid, message, action, path=path, line=line)
        if finding not in self.findings:
            self.findings.append(finding)

    def error(self, code: int, detail: str) -> None:
        """Add the pre-check's failure ``code``, worded as the framework's code table says."""
        record = codes.lookup(code).as_finding(detail)
        self.findings.append(
            Finding(
                ERROR,
                codes.lookup(code).name,
                str(record["message"]),
                str(record["action"]),
                code=code,
                name=str(record["name"]),
            )
        )
