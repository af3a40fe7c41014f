"""Lint the user's files as ``vmsnap run`` would install them: ``vmsnap lint --config/--pre/
--post`` and the battery's lint item.

The files are installed into a scratch root by :func:`~pytest_vmsnap.cycle.stage.stage`, the
way a cycle installs them into its VM (the config at ``/etc/azure``, the scripts at the
config's locations, the declared modes, owned by root), then linted; the findings name the
user's files, not the scratch root, which is gone when this returns.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..framework import engines
from ..framework.azure.checks import passwd_owner_name
from ..framework.engine import Given
from ..lint import LintReport, lint
from ..lint.frameworks import lint_framework
from .stage import Modes, stage, stage_hosted


def lint_files(
    config: Path | str,
    pre: Path | str | None = None,
    post: Path | str | None = None,
    *,
    profile: str = "extension",
    owner: str | None = None,
    modes: Modes = (),
    at: tuple[str | None, str | None] = (None, None),
) -> LintReport:
    """Install ``config``, ``pre`` and ``post`` into a scratch root as a cycle would, lint it.

    Raises :class:`~pytest_vmsnap.cycle.stage.StageError` when a file cannot be installed
    (one line: a missing file, a directory) and :class:`ValueError` for an unknown profile.
    """
    intended = owner or "root"
    me = os.geteuid()

    def owner_name(uid: int) -> str:
        # Without root the files cannot be given to root (or to ``owner``): they are ours
        # here and the intended owner's on the VM, which is what the pre-check must judge.
        if me != 0 and uid == me:
            return intended
        return passwd_owner_name(uid)

    with tempfile.TemporaryDirectory(prefix="vmsnap-lint-") as root:
        staged = stage(root, config, pre, post, owner, at=at, modes=modes)
        report = lint(root, profile=profile, sources=staged.sources, owner_name=owner_name)
    report.root = ""  # gone: the report names the user's files (``sources``) instead
    return report


def lint_hosted(
    framework: str, files: dict[str, Path], *, owner: str | None = None, modes: Modes = ()
) -> LintReport:
    """The same for a framework other than Azure: ``files`` by role (``config``, ``pre``,
    ``post``, ``hook``, ``document``) installed where that framework looks for them, and the
    files it needs that were not given, then linted with its rules.

    Raises :class:`~pytest_vmsnap.cycle.stage.StageError` when the framework cannot host the
    files as given, or one cannot be installed (one line)."""
    hosting = engines.get(framework).host(Given.of(files))
    with tempfile.TemporaryDirectory(prefix="vmsnap-lint-") as root:
        staged = stage_hosted(root, hosting, files, owner, modes=modes)
        report = lint_framework(root, framework, sources=staged.sources)
    report.root = ""
    return report
