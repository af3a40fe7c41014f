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

from ..framework.azure.checks import passwd_owner_name
from ..lint import LintReport, lint
from .stage import Modes, stage


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
