"""Warnings read off the pre-check's result: workload.conf taking over, a plugin host that
loads no plugin, and where the ``extension`` and ``documented`` profiles' pre-checks differ."""

from __future__ import annotations

from ..framework.azure import codes
from ..framework.azure.checks import Precheck
from ..framework.azure.config import WORKLOAD_CONF
from ..framework.azure.profiles import Profile
from .report import Collector

# The extension only logs these; the docs present them as reported errors. 316 is excluded:
# an unconfigured VM is the normal state in the docs too.
_LOGGED_ONLY_DOCUMENTED = codes.LOGGED_ONLY - {codes.CONFIG_NOT_FOUND}


def warn_workload(out: Collector, pc: Precheck) -> None:
    """Warn that workload.conf replaces the scripts (nothing else is checked then)."""
    name = pc.workload.workload_name if pc.workload else ""
    out.warn(
        "workload-takes-over",
        f"{WORKLOAD_CONF} sets workload_name = {name}: the extension runs its built-in "
        f"('enhanced') {name} flow instead and never reads VMSnapshotScriptPluginConfig.json, "
        "so your pre- and post-scripts do not run. The JSON config and scripts were not "
        "checked.",
        f"To use your own scripts, empty workload_name in {WORKLOAD_CONF} (or delete the "
        "file), then run vmsnap lint again.",
        path=WORKLOAD_CONF,
    )


def warn_host_no_plugins(out: Collector, pc: Precheck) -> None:
    """Warn when the pre-check passes only because the plugin host never loads the plugin."""
    if pc.code == 0 and pc.host is not None and not pc.host.plugins:
        out.warn(
            "host-no-plugins",
            "VMSnapshotPluginHost.conf loads no plugin (numberOfPlugins is 0 or missing): "
            "the extension never reads the JSON config and never runs the scripts.",
            "Delete /etc/azure/VMSnapshotPluginHost.conf so the extension's own copy is used, "
            "or set numberOfPlugins: 1 with pluginName0: ScriptRunner.",
        )


def warn_precheck_difference(
    out: Collector, pc: Precheck, other_pc: Precheck, chosen: Profile, other: Profile
) -> None:
    """Warn where the pre-check's outcome under ``chosen`` and ``other`` tells a different story."""
    if other_pc.code != pc.code:
        if other_pc.code:
            entry = codes.lookup(other_pc.code)
            what = f"fails with {other_pc.code} {entry.docs_name or entry.name} ({other_pc.detail})"
        else:
            what = "passes"
        mine = "passes" if pc.code == 0 else f"fails with {pc.code}"
        out.warn(
            "profile-difference",
            f"Pre-check: under the {chosen.name} profile it {mine}; under the {other.name} "
            f"profile it {what}.",
            "To satisfy both the extension's code and Microsoft's docs, give the scripts "
            "mode 700 and the config mode 600, all owned by root.",
        )
    if pc.code in _LOGGED_ONLY_DOCUMENTED:
        out.warn(
            "profile-difference",
            f"Code {pc.code}: the real extension (profile extension) only writes it to its log "
            "and takes a file-system consistent backup that reports success; the documented "
            "profile reports it as the backup's health code.",
            "Fix the error above; do not count on the backup status to reveal it.",
        )
