"""``vmsnap lint --framework vmware``: VMware Tools' (open-vm-tools vmbackup) pitfalls.

Errors are what the engine's pre-check reports (a script without an execute bit, a
``tools.conf`` that does not parse, scripts turned off). Warnings are what vmbackup lets
through but still breaks a backup; each cites the source in the engine's modules
(:mod:`pytest_vmsnap.framework.vmware`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..framework.vmware import config, discovery
from .engine_findings import database_warnings, precheck_errors, warner
from .report import Finding
from .shell_text import scan_shell

WARNING_IDS: tuple[str, ...] = (
    "vmware-stray-file",
    "vmware-freezefail-spelling",
    "vmware-no-freezefail",
    "vmware-legacy-thaw-missing",
    "vmware-scriptarg-shell",
    "vmware-timeout-zero",
    "vmware-timeout-invalid",
    "vmware-bool-invalid",
    "vmware-unknown-key",
    "vmware-sync-driver-off",
    "vmware-script-freezes-fs",
)

_STRAY = re.compile(
    r"(^\.|~$|\.(bak|orig|old|swp|tmp|disabled|sample|example|md|txt|rst)$|"
    r"\.(dpkg|rpm|ucf)-?\w*$|^README|^LICENSE)",
    re.IGNORECASE,
)


_warn = warner(WARNING_IDS)


def lint(root: Path, engine: Any) -> list[Finding]:
    """Every finding for the machine whose ``/`` is ``root``."""
    root = Path(root)
    out = precheck_errors(engine, root)
    cfg = config.load(root)
    out += _config_warnings(cfg)
    scripts = [s for s in discovery.script_list(root) if discovery.is_file(root, s)]
    if discovery.is_file(root, discovery.LEGACY_THAW) and discovery.LEGACY_THAW not in scripts:
        scripts.append(discovery.LEGACY_THAW)
    for location in scripts:
        out += _script_warnings(root, location)
    legacy_freeze = discovery.is_file(root, discovery.LEGACY_FREEZE)
    directory = [s for s in scripts if s.startswith(discovery.SCRIPTS_DIR + "/")]
    if legacy_freeze and not discovery.is_file(root, discovery.LEGACY_THAW) and directory:
        out.append(
            _warn(
                "vmware-legacy-thaw-missing",
                f"{discovery.LEGACY_FREEZE} exists without {discovery.LEGACY_THAW} while "
                f"{discovery.SCRIPTS_DIR} holds scripts: the slot kept for the legacy pair is "
                "empty on thaw, and VmBackupRunNextScript reports that as a failed script "
                "(every snapshot ends with 'Custom quiesce script failed.'; after a failed "
                "freeze vmtoolsd can even end itself).",
                f"Add {discovery.LEGACY_THAW} (it may just 'exit 0'), or move the legacy "
                f"script into {discovery.SCRIPTS_DIR}.",
                path=discovery.LEGACY_FREEZE,
            )
        )
    return out


def _config_warnings(cfg: config.VmbackupConfig) -> list[Finding]:
    out: list[Finding] = []
    where = config.TOOLS_CONF
    for key, value in cfg.raw.items():
        if key not in config.KNOWN_KEYS:
            near = [k for k in config.KNOWN_KEYS if k.lower() == key.lower()]
            hint = f" (did you mean {near[0]}? keys are case-sensitive)" if near else ""
            out.append(
                _warn(
                    "vmware-unknown-key",
                    f"[vmbackup] {key}={value} is not a key vmbackup reads{hint}: it is ignored.",
                    "Spell the key as tools.conf's example does.",
                    path=where,
                )
            )
    for warning in cfg.warnings:
        if "timeout" in warning:
            out.append(
                _warn(
                    "vmware-timeout-invalid",
                    f"{warning}: vmtoolsd uses {config.DEFAULT_TIMEOUT_S} s.",
                    "timeout is whole seconds, 0 to 2147483 (0 turns the timer off).",
                    path=where,
                )
            )
        else:
            out.append(
                _warn(
                    "vmware-bool-invalid",
                    f"{warning}: vmtoolsd uses the key's default instead.",
                    "GLib booleans are exactly true, false, 1 or 0 (lower case).",
                    path=where,
                )
            )
    if "timeout" in cfg.raw and cfg.timeout_s == 0:
        out.append(
            _warn(
                "vmware-timeout-zero",
                "timeout=0 turns vmtoolsd's abort timer off: a script that hangs keeps the "
                "quiesce open for ever (vCenter gives up after 15 minutes; every later "
                "quiesce is refused with 'Quiesce operation already in progress.').",
                "Keep a timeout (the default is 900 s).",
                path=where,
            )
        )
    if cfg.script_arg and re.search(r'["$`\\]', cfg.script_arg):
        out.append(
            _warn(
                "vmware-scriptarg-shell",
                f"scriptArg={cfg.script_arg!r} is put unescaped inside double quotes on a "
                "bash -c command line: the shell expands $, backquotes and backslashes in it "
                "(and a double quote ends the argument).",
                "Use a plain word for scriptArg.",
                path=where,
            )
        )
    if not cfg.enable_sync_driver and not cfg.force_quiesce:
        out.append(
            _warn(
                "vmware-sync-driver-off",
                "enableSyncDriver=false: the null provider only calls sync(); no file system "
                "is frozen during the snapshot, yet vmtoolsd reports a quiesced snapshot.",
                "Keep enableSyncDriver=true unless every writer is quiesced by the scripts.",
                path=where,
            )
        )
    return out


_VERBS = re.compile(r"\b(freeze|thaw|freezeFail)\b")
_FREEZEFAIL_ANY = re.compile(
    r"(?:(?:^|[\s|(])[\"']?(freeze[-_]?fail)[\"']?\s*[)|]"  # a case pattern
    r"|[!=]=?\s*[\"']?(freeze[-_]?fail)\b)",  # a test: = freezefail, == "freezefail"
    re.IGNORECASE | re.MULTILINE,
)
_FREEZES_FS = re.compile(r"\b(fsfreeze|xfs_freeze)\b")


def _script_warnings(root: Path, location: str) -> list[Finding]:
    out: list[Finding] = []
    name = location.rsplit("/", 1)[-1]
    if location.startswith(discovery.SCRIPTS_DIR + "/") and _STRAY.search(name):
        out.append(
            _warn(
                "vmware-stray-file",
                f"{location} looks like a note or a backup copy, but vmbackup runs every "
                "regular file of the directory with 'freeze', 'thaw' and 'freezeFail'.",
                f"Move it out of {discovery.SCRIPTS_DIR}.",
                path=location,
            )
        )
    try:
        text = discovery.host_path(root, location).read_bytes().decode("utf-8", "replace")
    except OSError:
        return out
    shell = scan_shell(text)
    code = shell.code_text() + "\n" + shell.logic_text()
    verbs = set(_VERBS.findall(code))
    other = {m.group(1) or m.group(2) for m in _FREEZEFAIL_ANY.finditer(shell.logic_text())}
    other -= {"freezeFail"}
    if other:
        out.append(
            _warn(
                "vmware-freezefail-spelling",
                f"{location} tests for {', '.join(sorted(other))}, but vmtoolsd passes exactly "
                "'freezeFail' (tools.conf's comment says 'freezefail'): that branch never runs.",
                "Match freezeFail exactly (case patterns are case-sensitive).",
                path=location,
            )
        )
    if (
        location != discovery.LEGACY_FREEZE
        and "freeze" in verbs
        and "thaw" in verbs
        and "freezeFail" not in verbs
        and not other
    ):
        out.append(
            _warn(
                "vmware-no-freezefail",
                f"{location} handles 'freeze' and 'thaw' but not 'freezeFail': when a later "
                "script, the file-system freeze or the snapshot fails, vmtoolsd calls it with "
                "'freezeFail' only, so what 'freeze' took (a lock, read-only mode) is never "
                "released.",
                "Release on 'freezeFail' exactly as on 'thaw' (case \"$1\" in thaw|freezeFail).",
                path=location,
            )
        )
    freezes = shell.code_matches(_FREEZES_FS)
    if freezes:
        out.append(
            _warn(
                "vmware-script-freezes-fs",
                f"{location} freezes a file system itself (line {freezes[0]}): the SyncDriver "
                "then gets EBUSY on it and the quiesce fails ('appears locked or frozen by "
                "another process'), unless it is in excludedFileSystems.",
                "Leave freezing to vmtoolsd, or list the mount point in excludedFileSystems.",
                path=location,
                line=freezes[0],
            )
        )
    is_pre = location != discovery.LEGACY_THAW
    out += database_warnings(location, shell, is_pre)
    return out
