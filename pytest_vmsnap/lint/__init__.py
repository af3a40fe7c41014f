"""``vmsnap lint``: the extension's own pre-check, plus warnings about what bites users.

Errors come from running :func:`pytest_vmsnap.framework.azure.checks.precheck` exactly as the
extension would; each is the framework code with its docs name, message and action. Warnings
are everything the pre-check lets through but that still breaks backups in practice: bash
syntax in scripts that run under ``sh``, ignored shebangs and retries, timeouts that are
rounded or capped, params that are split into characters or crash the plugin thread, paths
other users can replace, a ``workload.conf`` that takes over, locks released before the
snapshot (also in files a script sources or runs), a pre-script that waits for what only the
post-script does, MySQL-only variables on MariaDB, and where the ``extension`` and
``documented`` profiles part ways for this config.

Every warning has a stable id (see :data:`WARNING_IDS`), a message and a recommended action.

This module reads the machine (the pre-check, the config, the scripts, the shells installed
here) and runs the checks in a fixed order, which is the order of the report; the modules
beside it hold the checks (``*_checks``, ``precheck_findings``, ``writable_paths``) and the
:class:`Finding`/:class:`LintReport` types (``report``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..framework.azure import profiles as profiles_mod
from ..framework.azure.checks import OwnerName, passwd_owner_name, precheck, resolve
from ..framework.azure.config import HOST_TIMEOUT_CAP_S, PLUGIN_CONFIG
from ..framework.azure.profiles import DOCUMENTED, EXTENSION, Profile
from .config_checks import KNOWN_KEYS, load_config, warn_config
from .database_checks import warn_database_heuristics, warn_super_read_only
from .dialect_checks import warn_bashisms, warn_checkbashisms, warn_sh_syntax
from .included import included_files
from .pre_waits import warn_pre_waits_on_post
from .precheck_findings import warn_host_no_plugins, warn_precheck_difference, warn_workload
from .report import ERROR, WARNING, WARNING_IDS, Collector, Finding, LintReport
from .script_checks import (
    decode_script,
    warn_background,
    warn_exit_2,
    warn_output_stall,
    warn_shebang,
)
from .shell_text import scan_shell
from .sources import Source, name_sources
from .writable_paths import warn_writable

__all__ = [
    "ERROR",
    "KNOWN_KEYS",
    "WARNING",
    "WARNING_IDS",
    "Finding",
    "LintReport",
    "Source",
    "lint",
]

_SCRIPT_READ_LIMIT = 1024 * 1024  # scripts are text; a larger file is judged by its head
# Where a MariaDB server's program lives (Debian/Ubuntu and SUSE; RHEL).
_MARIADB_SERVERS = ("usr/sbin/mariadbd", "usr/libexec/mariadbd", "usr/bin/mariadbd")


def lint(
    root: str | Path = "/",
    profile: str | Profile = "extension",
    *,
    sources: Sequence[Source] = (),
    owner_name: OwnerName = passwd_owner_name,
) -> LintReport:
    """Lint the pre/post-script setup of the machine whose ``/`` is ``root``.

    The pre-check runs as the extension would under ``profile`` (its failure is the error);
    it also runs under the other profile to report where the two differ. Raises
    :class:`NotADirectoryError` when ``root`` is not a directory and :class:`ValueError` for
    an unknown profile name.

    ``sources``: ``root`` is a scratch root made of the user's files (``vmsnap lint
    --config``): the findings name those files, and the directories on the way, ours, are not
    judged. ``owner_name`` names a file's owner for the pre-check (see
    :func:`~pytest_vmsnap.framework.azure.checks.precheck`).
    """
    chosen = profiles_mod.get(profile)
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    other = DOCUMENTED if chosen.name == EXTENSION.name else EXTENSION
    results = {
        chosen.name: precheck(root, profile=chosen, owner_name=owner_name),
        other.name: precheck(root, other, owner_name=owner_name),
    }
    report = LintReport(
        root=str(root),
        profile=chosen.name,
        precheck_codes={name: r.code for name, r in results.items()},
        sources=list(sources),
    )
    report.findings = _lint_root(root, chosen, other, results, sources)
    if sources:
        report.findings = name_sources(report.findings, sources, chosen)
    return report


def _lint_root(
    root: Path,
    chosen: Profile,
    other: Profile,
    results: dict[str, Any],
    sources: Sequence[Source],
) -> list[Finding]:
    """The findings of :func:`lint`, in the report's order."""
    pc = results[chosen.name]
    config_path = (
        pc.host.plugins[0].config_path if pc.host is not None and pc.host.plugins else PLUGIN_CONFIG
    )
    out = Collector(config_path)
    if pc.code:
        out.error(pc.code, pc.detail)

    if pc.workload_takes_over:
        warn_workload(out, pc)
        return out.findings
    warn_host_no_plugins(out, pc)

    warn_precheck_difference(out, pc, results[other.name], chosen, other)
    raw = load_config(out, resolve(root, config_path))
    if raw is not None:
        host_cap = pc.host.timeout_s if pc.host is not None else HOST_TIMEOUT_CAP_S
        warn_config(out, raw, host_cap)
        _lint_scripts(out, root, raw)
    if not sources:  # a scratch root's directories are ours, not the VM's
        warn_writable(out, root, raw, config_path)
    return out.findings


def _lint_scripts(out: Collector, root: Path, raw: dict[str, Any]) -> None:
    tools = _Tools(
        # dash is the strictest common sh (Debian/Ubuntu); fall back to whatever sh is here.
        syntax_shell=shutil.which("dash") or shutil.which("sh"),
        checkbashisms=shutil.which("checkbashisms"),
        mariadb_server=_mariadb_server(root),
    )
    # One script may serve as both pre and post (the Oracle sample does): lint it once.
    roles: dict[str, list[str]] = {}
    for which in ("pre", "post"):
        location = raw.get(f"{which}ScriptLocation")
        if isinstance(location, str) and location and "\0" not in location:
            roles.setdefault(location, []).append(which)
    texts: dict[str, str] = {}
    for location, whiches in roles.items():
        text = _lint_script(out, root, location, whiches, tools)
        if text is not None:
            texts[location] = text
    pre, post = raw.get("preScriptLocation"), raw.get("postScriptLocation")
    # One script for both roles tells its parts apart by its arguments: nothing to compare.
    if pre in texts and post in texts and pre != post:
        warn_pre_waits_on_post(out, pre, texts[pre], texts[post])


@dataclass(frozen=True)
class _Tools:
    syntax_shell: str | None
    checkbashisms: str | None
    mariadb_server: str | None


def _lint_script(
    out: Collector, root: Path, location: str, whiches: list[str], tools: _Tools
) -> str | None:
    """Lint one script; its text when it is a shell script, else None."""
    path = resolve(root, location)
    try:
        if not path.is_file():
            return None  # the pre-check reports it (302/303)
        data = _read_head(path)
    except OSError as err:
        out.warn(
            "script-unreadable",
            f"{location} could not be read for linting: {err.strerror or err}.",
            "Check that the file is a readable regular file.",
            path=location,
        )
        return None
    text = decode_script(out, location, data)
    # Shell heuristics on a binary or on another language would only add noise.
    if text is None or not warn_shebang(out, location, text):
        return None
    shell = scan_shell(text)
    is_pre = "pre" in whiches
    warn_bashisms(out, location, shell)
    warn_sh_syntax(out, location, path, tools.syntax_shell)
    warn_checkbashisms(out, location, path, shell, tools.checkbashisms)
    warn_exit_2(out, location, shell)
    warn_output_stall(out, location, shell)
    warn_background(out, location, "/".join(whiches), shell)
    included = included_files(root, location, shell) if is_pre else []
    warn_database_heuristics(out, location, shell, is_pre=is_pre, included=included)
    warn_super_read_only(out, location, shell, tools.mariadb_server)
    return text


def _mariadb_server(root: Path) -> str | None:
    """Why this machine runs a MariaDB server (its program is installed), or None."""
    for program in _MARIADB_SERVERS:
        if os.path.lexists(root / program):
            return f"/{program} is installed"
    return None


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(_SCRIPT_READ_LIMIT)
