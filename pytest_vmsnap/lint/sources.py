"""The user's own files behind a linted machine root.

``vmsnap lint --config/--pre/--post`` and the battery's lint item install the user's files into
a scratch root, as on the VM, and lint that. Its paths mean nothing to the user: findings name
their own files instead (``backup/pre.sh (installed at /etc/azure/pre.sh)``), and a mode the
pre-check refuses gets the exact fix, for every file at once (the pre-check stops at its first
failure, so the scripts' 755 would only show up after the config's 644 is fixed).

Git keeps only the modes 644 and 755, so a repository's files checked out never have the 600
and 700 the extension wants; ``vmsnap_modes`` declares the modes they have when deployed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..framework import records
from ..framework.azure import codes
from ..framework.azure.profiles import Profile

if TYPE_CHECKING:
    from .report import Finding

WANTED_MODES = {"config": 0o600, "pre": 0o700, "post": 0o700}
"""What both profiles accept (the documented one asks for exactly these)."""
MODES_EXAMPLE = "config:600 scripts:700"
_PERMISSION_CODES = {
    "config": codes.CONFIG_PERMISSION,
    "pre": codes.PRE_PERMISSION,
    "post": codes.POST_PERMISSION,
}


@dataclass(frozen=True)
class Source:
    """One file of the linted machine that was installed from a file of the user's."""

    role: str
    """``config``, ``pre`` or ``post``."""
    path: str
    """The user's file, as they would name it (relative to the working directory when under
    it)."""
    location: str
    """Where it was installed on the VM, as the config names it."""
    mode: int
    """Its mode here."""
    installed_mode: int
    """The mode it was installed with: :attr:`mode`, or the one declared (``declared``)."""
    declared: bool = False
    """``installed_mode`` was declared with ``vmsnap_modes`` (``--modes``)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "role": self.role,
            "path": self.path,
            "location": self.location,
            "mode": f"{self.mode & 0o7777:03o}",
            "installed_mode": f"{self.installed_mode & 0o7777:03o}",
            "declared": self.declared,
        }


def mode_ok(source: Source, profile: Profile) -> bool:
    """Whether the pre-check of ``profile`` accepts the mode ``source`` was installed with."""
    if source.role == "config":
        return profile.config_mode_ok(source.installed_mode)
    return profile.script_mode_ok(source.installed_mode)


def declared_text(sources: Iterable[Source]) -> str:
    """``backup/pre.sh 755 -> 700, ...``: the files whose mode ``vmsnap_modes`` changed."""
    return ", ".join(
        f"{s.path} {s.mode & 0o777:03o} -> {s.installed_mode & 0o777:03o}"
        for s in _unique(sources)
        if s.declared
    )


def modes_action(sources: Sequence[Source], profile: Profile) -> str:
    """What to do about every file whose installed mode ``profile`` refuses ('' when none)."""
    bad = [s for s in _unique(sources) if not mode_ok(s, profile)]
    if not bad:
        return ""
    parts = []
    given = [s for s in bad if not s.declared]
    if given:
        chmods = "; ".join(
            f"chmod {mode:o} {' '.join(s.path for s in given if WANTED_MODES[s.role] == mode)}"
            for mode in sorted({WANTED_MODES[s.role] for s in given})
        )
        parts.append(
            f"{chmods}. In a git repository (git keeps only 644 and 755) declare instead the "
            f'modes your deployment gives them: vmsnap_modes = "{MODES_EXAMPLE}" in the '
            f'pytest ini, --modes "{MODES_EXAMPLE}" for vmsnap run and vmsnap lint. If your '
            "deployment copies them as they are, production fails the same way: make it "
            "install them with these modes"
        )
    declared = [s for s in bad if s.declared]
    if declared:
        listed = ", ".join(f"{s.role} {s.installed_mode & 0o777:03o}" for s in declared)
        parts.append(
            f"vmsnap_modes declares {listed}, which the extension refuses: declare "
            f"{MODES_EXAMPLE} and make your deployment install the files so"
        )
    return "; ".join(parts) + "."


def modes_finding(sources: Sequence[Source], profile: Profile) -> records.Finding | None:
    """A cycle's finding (``{code, name, message, action}``) for the files installed with a
    mode the pre-check of ``profile`` refuses: the framework's own finding names the path in
    the VM, this one the user's file and the fix. None when every mode passes."""
    bad = [s for s in _unique(sources) if not mode_ok(s, profile)]
    if not bad:
        return None
    listed = "; ".join(
        f"{s.path} was installed at {s.location} with mode {s.installed_mode & 0o777:03o}"
        f"{' (declared by vmsnap_modes)' if s.declared else ', its mode here'}, which the "
        f"pre-check refuses ({_PERMISSION_CODES[s.role]})"
        for s in bad
    )
    return records.Finding(
        code=None,
        name="FileModeRefused",
        message=listed,
        action=modes_action(sources, profile),
    )


def name_sources(
    findings: Sequence[Finding], sources: Sequence[Source], profile: Profile | None
) -> list[Finding]:
    """``findings`` with the user's files named where the scratch root's locations were, and
    the exact fix on a permission error that a mode caused (Azure's rules: ``profile``; None
    for the other frameworks, whose own lint says what to do about a mode)."""
    ordered = sorted(_unique(sources), key=lambda s: -len(s.location))
    action = modes_action(sources, profile) if profile is not None else ""
    out = []
    for f in findings:
        message, path, fix = f.message, f.path, f.action
        for s in ordered:
            pattern = _location_pattern(s.location)
            named = pattern.sub(f"{s.path} (installed at {s.location})", message, count=1)
            fix = pattern.sub(s.path, fix)
            if path == s.location or (path is None and named != message):
                path = s.path
            message = named
        if action and f.code in _PERMISSION_CODES.values() and "mode" in f.message:
            fix = action
        out.append(replace(f, message=message, action=fix, path=path))
    return out


def _location_pattern(location: str) -> re.Pattern[str]:
    # The whole path only: /etc/azure/pre.sh is not a part of /etc/azure/pre.sh.old.
    return re.compile(r"(?<![\w./-])" + re.escape(location) + r"(?![\w/-])(?!\.\w)")


def _unique(sources: Iterable[Source]) -> list[Source]:
    """One entry per installed location (one script may serve as pre and post)."""
    seen: dict[str, Source] = {}
    for s in sources:
        seen.setdefault(s.location, s)
    return list(seen.values())
