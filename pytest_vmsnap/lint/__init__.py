"""``vmsnap lint``: the extension's own pre-check, plus warnings about what bites users.

Errors come from running :func:`pytest_vmsnap.framework.checks.precheck` exactly as the
extension would; each is the framework code with its docs name, message and action. Warnings
are everything the pre-check lets through but that still breaks backups in practice: bash
syntax in scripts that run under ``sh``, ignored shebangs and retries, timeouts that are
rounded or capped, params that are split into characters or crash the plugin thread, paths
other users can replace, a ``workload.conf`` that takes over, locks released before the
snapshot, and where the ``extension`` and ``documented`` profiles part ways for this config.

Every warning has a stable id (see :data:`WARNING_IDS`), a message and a recommended action.

This module reads the machine (the pre-check, the config, the scripts, the shells installed
here) and runs the checks in a fixed order, which is the order of the report; the modules
beside it hold the checks (``*_checks``, ``precheck_findings``, ``writable_paths``) and the
:class:`Finding`/:class:`LintReport` types (``report``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..framework import profiles as profiles_mod
from ..framework.checks import precheck, resolve
from ..framework.config import HOST_TIMEOUT_CAP_S, PLUGIN_CONFIG
from ..framework.profiles import DOCUMENTED, EXTENSION, Profile
from .config_checks import KNOWN_KEYS, load_config, warn_config
from .database_checks import warn_database_heuristics
from .dialect_checks import warn_bashisms, warn_checkbashisms, warn_sh_syntax
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
from .writable_paths import warn_writable

__all__ = ["ERROR", "KNOWN_KEYS", "WARNING", "WARNING_IDS", "Finding", "LintReport", "lint"]

_SCRIPT_READ_LIMIT = 1024 * 1024  # scripts are text; a larger file is judged by its head


def lint(root: str | Path = "/", profile: str | Profile = "extension") -> LintReport:
    """Lint the pre/post-script setup of the machine whose ``/`` is ``root``.

    The pre-check runs as the extension would under ``profile`` (its failure is the error);
    it also runs under the other profile to report where the two differ. Raises
    :class:`NotADirectoryError` when ``root`` is not a directory and :class:`ValueError` for
    an unknown profile name.
    """
    chosen = profiles_mod.get(profile)
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    other = DOCUMENTED if chosen.name == EXTENSION.name else EXTENSION
    results = {chosen.name: precheck(root, profile=chosen), other.name: precheck(root, other)}
    pc = results[chosen.name]
    report = LintReport(
        root=str(root),
        profile=chosen.name,
        precheck_codes={name: r.code for name, r in results.items()},
    )
    config_path = (
        pc.host.plugins[0].config_path if pc.host is not None and pc.host.plugins else PLUGIN_CONFIG
    )
    out = Collector(config_path)
    if pc.code:
        out.error(pc.code, pc.detail)

    if pc.workload_takes_over:
        warn_workload(out, pc)
        report.findings = out.findings
        return report
    warn_host_no_plugins(out, pc)

    warn_precheck_difference(out, pc, results[other.name], chosen, other)
    raw = load_config(out, resolve(root, config_path))
    if raw is not None:
        host_cap = pc.host.timeout_s if pc.host is not None else HOST_TIMEOUT_CAP_S
        warn_config(out, raw, host_cap)
        _lint_scripts(out, root, raw)
    warn_writable(out, root, raw, config_path)
    report.findings = out.findings
    return report


def _lint_scripts(out: Collector, root: Path, raw: dict[str, Any]) -> None:
    # dash is the strictest common sh (Debian/Ubuntu); fall back to whatever sh is here.
    syntax_shell = shutil.which("dash") or shutil.which("sh")
    checkbashisms = shutil.which("checkbashisms")
    # One script may serve as both pre and post (the Oracle sample does): lint it once.
    roles: dict[str, list[str]] = {}
    for which in ("pre", "post"):
        location = raw.get(f"{which}ScriptLocation")
        if isinstance(location, str) and location and "\0" not in location:
            roles.setdefault(location, []).append(which)
    for location, whiches in roles.items():
        path = resolve(root, location)
        try:
            if not path.is_file():
                continue  # the pre-check reports it (302/303)
            data = _read_head(path)
        except OSError as err:
            out.warn(
                "script-unreadable",
                f"{location} could not be read for linting: {err.strerror or err}.",
                "Check that the file is a readable regular file.",
                path=location,
            )
            continue
        text = decode_script(out, location, data)
        # Shell heuristics on a binary or on another language would only add noise.
        if text is None or not warn_shebang(out, location, text):
            continue
        shell = scan_shell(text)
        warn_bashisms(out, location, shell)
        warn_sh_syntax(out, location, path, syntax_shell)
        warn_checkbashisms(out, location, path, shell, checkbashisms)
        warn_exit_2(out, location, shell)
        warn_output_stall(out, location, shell)
        warn_background(out, location, "/".join(whiches), shell)
        warn_database_heuristics(out, location, shell, is_pre="pre" in whiches)


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(_SCRIPT_READ_LIMIT)
