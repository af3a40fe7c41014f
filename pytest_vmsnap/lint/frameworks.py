"""``vmsnap lint --framework NAME`` for the frameworks other than Azure.

Each framework's pitfalls live in ``<framework>_lint.py`` beside this module (``gcp_lint``,
``vmware_lint``, ``qemu_ga_lint``, ``aws_dlm_lint``): its errors are what the framework's own
engine would refuse before running anything, its warnings what it lets through but still
breaks a backup. Azure's lint is :func:`pytest_vmsnap.lint.lint`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from ..framework import engines
from .report import LintReport
from .sources import Source, name_sources


def module(framework: str) -> ModuleType:
    """The lint module of ``framework`` (not Azure)."""
    if framework not in engines.NAMES or framework == "azure":
        raise ValueError(f"no separate lint module for framework {framework!r}")
    return importlib.import_module(f"{__package__}.{framework.replace('-', '_')}_lint")


def warning_ids() -> tuple[str, ...]:
    """Every framework's stable warning ids (Azure's are :data:`.report.WARNING_IDS`)."""
    return tuple(i for name in engines.NAMES[1:] for i in module(name).WARNING_IDS)


def lint_framework(
    root: str | Path, framework: str, *, sources: Sequence[Source] = ()
) -> LintReport:
    """Lint the machine whose ``/`` is ``root`` for ``framework``'s rules."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    engine = engines.get(framework)
    report = LintReport(root=str(root), profile=framework, sources=list(sources))
    findings = module(framework).lint(root, engine)
    report.precheck_codes = {framework: 1 if any(f.severity == "error" for f in findings) else 0}
    # The user's files named where the scratch root's locations were (no Azure mode rules).
    report.findings = name_sources(findings, sources, None) if sources else list(findings)
    return report
