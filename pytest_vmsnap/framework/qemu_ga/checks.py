"""What qemu-ga refuses or passes over before any hook runs, in its own words, with the fix.

qemu-ga has no numeric codes: each finding's ``code`` is None and its ``name`` one of the
upper-case names below, the harness's names for the agent's own conditions.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

from ..records import Finding
from . import agent
from .config import CONF, DEFAULT_HOOK, DEFAULTS_FILE, MINIMAL_CONF, AgentConfig, read_config
from .discovery import DIRECT, MISSING, WRAPPER, HookPlan, executable_by_root, inside, plan
from .wrapper import LOG_FILE

AGENT_NOT_STARTING = "AGENT_NOT_STARTING"
HOOK_NOT_ENABLED = "HOOK_NOT_ENABLED"
HOOK_NOT_FOUND = "HOOK_NOT_FOUND"
HOOK_NOT_EXECUTABLE = "HOOK_NOT_EXECUTABLE"
HOOK_SCRIPT_SKIPPED = "HOOK_SCRIPT_SKIPPED"
NO_HOOK_SCRIPT = "NO_HOOK_SCRIPT"
WRAPPER_BAD_SUBSTITUTION = "WRAPPER_BAD_SUBSTITUTION"

ENABLE_ACTION = (
    f"Enable the hook in {CONF}: write the two lines '[general]' and "
    f"'fsfreeze-hook={DEFAULT_HOOK}' (Debian's qemu-guest-agent.service starts qemu-ga with "
    "no options, so -F elsewhere is not seen), then restart qemu-guest-agent."
)


def finding(name: str, message: str, action: str) -> Finding:
    return {"code": None, "name": name, "message": message, "action": action}


@dataclass(frozen=True)
class Precheck:
    """The agent's config, the hook's plan, and the findings from them."""

    config: AgentConfig
    plan: HookPlan | None
    findings: list[Finding]


def precheck(root: Path | str, version: str = agent.DEFAULT) -> Precheck:
    """Read ``root`` as qemu-ga of ``version`` will when the host asks it to freeze."""
    root = Path(root)
    cfg = read_config(root)
    found: list[Finding] = []
    if not cfg.starts:
        found.append(
            finding(
                AGENT_NOT_STARTING,
                f"{cfg.error}: qemu-ga exits at start-up, so no freeze (and no hook) can run",
                f"Fix {CONF}: a '[general]' line first, then 'key=value' lines, '#' for "
                "comments; or delete it.",
            )
        )
        return Precheck(cfg, None, found)
    if cfg.hook is None:
        message = (
            f"qemu-ga runs no fsfreeze hook: neither -F nor the fsfreeze-hook key of {CONF} "
            "enables one. The file systems are still frozen, without any quiesce of yours."
        )
        if cfg.daemon_args_hook:
            message += (
                f" DAEMON_ARGS in {DEFAULTS_FILE} has -F, but only the SysV init script reads "
                "that file; the systemd unit ignores it."
            )
        found.append(finding(HOOK_NOT_ENABLED, message, ENABLE_ACTION))
        return Precheck(cfg, None, found)
    hook_plan = plan(root, cfg.hook)
    found.extend(_plan_findings(root, hook_plan, version))
    return Precheck(cfg, hook_plan, found)


def _plan_findings(root: Path, hook_plan: HookPlan, version: str) -> list[Finding]:
    hook = hook_plan.hook
    out: list[Finding] = []
    if hook_plan.kind == MISSING:
        said = (
            agent.access_error(version, hook, errno.ENOENT)
            if version == agent.QEMU_7_2
            else f"failed to exec '{hook}': No such file or directory"
        )
        out.append(
            finding(
                HOOK_NOT_FOUND,
                f"{said}: the freeze command fails and the host takes no quiesced snapshot",
                f"Install the stock wrapper at {hook} (apt install qemu-guest-agent) and put "
                f"your scripts in {hook_plan.directory}/, or put your own hook at {hook}.",
            )
        )
    elif hook_plan.kind == DIRECT and not executable_by_root(inside(root, hook)):
        said = (
            agent.access_error(version, hook, errno.EACCES)
            if version == agent.QEMU_7_2
            else f"failed to exec '{hook}': Permission denied"
        )
        out.append(
            finding(
                HOOK_NOT_EXECUTABLE,
                f"{said}: the freeze command fails and the host takes no quiesced snapshot",
                f"chmod 755 {hook}",
            )
        )
    elif hook_plan.kind == WRAPPER:
        for entry in hook_plan.entries:
            if entry.skipped:
                out.append(
                    finding(
                        HOOK_SCRIPT_SKIPPED,
                        f"the fsfreeze-hook wrapper passes over {entry.location}: {entry.skipped}",
                        "Give it the exec bit (chmod 755) and a name that does not end in "
                        "~, .bak, .orig, .sample, .rpm* or .dpkg-*.",
                    )
                )
        if not hook_plan.scripts:
            out.append(
                finding(
                    NO_HOOK_SCRIPT,
                    f"the fsfreeze-hook wrapper finds no script to run in "
                    f"{hook_plan.directory}: it exits 0 and the freeze goes ahead without "
                    "any quiesce",
                    f"Put an executable script in {hook_plan.directory}/.",
                )
            )
        elif version == agent.QEMU_10_0 and not inside(root, LOG_FILE).exists():
            first = hook_plan.scripts[0].location
            out.append(
                finding(
                    WRAPPER_BAD_SUBSTITUTION,
                    f"{LOG_FILE} does not exist, so QEMU 10.0's wrapper logs to syslog: "
                    f"under dash it runs {first} and then stops at ${{PIPESTATUS[0]}} (Bad "
                    "substitution, status 2). The freeze fails after that script took its "
                    "quiesce, and the host never sends the thaw that would release it.",
                    f"Create the log file before the first backup (touch {LOG_FILE}), or "
                    "install a wrapper that runs under dash.",
                )
            )
    return out


def minimal_config() -> bytes:
    """The config the harness writes when the user gave none (:data:`.config.MINIMAL_CONF`)."""
    return MINIMAL_CONF.encode()
