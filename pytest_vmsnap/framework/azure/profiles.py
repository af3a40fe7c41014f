"""Fidelity profiles: what the extension's code does versus what Microsoft's docs say.

Every behaviour where the two differ is one field here, so the engine reads a switch instead
of testing the profile name in scattered places.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """One set of framework semantics."""

    name: str
    rerun_on_retry: bool
    """Retries start the script again (docs) or only log 'Retrying...' (code)."""
    kill_on_timeout: bool
    """A timed-out script's process group is killed (docs) or left running (code)."""
    default_timeout_s: float
    """timeoutInSeconds when the key is absent: 10 in the code, 30 in the README."""
    script_mode_exact: int | None
    """None: group and other digits must be 0 (code). Otherwise the exact mode the docs ask."""
    config_mode_exact: int | None
    """None: no owner-execute, group and other 0 (code). Otherwise the docs' exact mode."""
    report_config_errors: bool
    """Report 304/305/313/314 as the health code (docs) or only log them (code)."""
    drain_output_live: bool
    """Read script output while it runs (no stall). The code never reads the pipes."""

    def script_mode_ok(self, mode: int) -> bool:
        """The permission rule for the pre- and post-script (last three octal digits)."""
        if self.script_mode_exact is not None:
            return mode & 0o777 == self.script_mode_exact
        return mode & 0o077 == 0

    def config_mode_ok(self, mode: int) -> bool:
        """The permission rule for VMSnapshotScriptPluginConfig.json."""
        if self.config_mode_exact is not None:
            return mode & 0o777 == self.config_mode_exact
        return mode & 0o177 == 0


EXTENSION = Profile(
    name="extension",
    rerun_on_retry=False,
    kill_on_timeout=False,
    default_timeout_s=10,
    script_mode_exact=None,
    config_mode_exact=None,
    report_config_errors=False,
    drain_output_live=False,
)

DOCUMENTED = Profile(
    name="documented",
    rerun_on_retry=True,
    kill_on_timeout=True,
    default_timeout_s=30,
    script_mode_exact=0o700,
    config_mode_exact=0o600,
    report_config_errors=True,
    drain_output_live=True,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (EXTENSION, DOCUMENTED)}


def get(name: str | Profile) -> Profile:
    """Look a profile up by name (a :class:`Profile` is returned as is)."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}") from None
