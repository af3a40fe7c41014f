"""``vmsnap lint --framework qemu-ga``: qemu-guest-agent fsfreeze-hook pitfalls.

Errors are what the engine's pre-check reports (the hook not enabled, a config qemu-ga
cannot load, a hook it cannot run, scripts the stock wrapper passes over). Warnings are what
the agent lets through but still breaks a backup; each cites its source in the engine's
modules (:mod:`pytest_vmsnap.framework.qemu_ga`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..framework.qemu_ga import config, discovery
from ..framework.qemu_ga.wrapper import LOG_FILE
from .engine_findings import database_warnings, precheck_errors, warner
from .report import Finding
from .shell_text import ShellText, scan_shell

WARNING_IDS: tuple[str, ...] = (
    "qemu-ga-daemon-args-ignored",
    "qemu-ga-f-space",
    "qemu-ga-no-shebang",
    "qemu-ga-verb-ignored",
    "qemu-ga-failure-hidden",
    "qemu-ga-output-lost",
    "qemu-ga-background-holds-output",
    "qemu-ga-home-unset",
)


_VERB = re.compile(r"\$\{?1\b|\$\{?@|\$\*|\bfreeze\b|\bthaw\b")
_FAIL_EXIT = re.compile(r"\bexit\s+[1-9]|\bset\s+-[a-z]*e")
_PRINT = re.compile(r"^\s*(?:echo|printf)\b(?!.*>)")
_BACKGROUND = re.compile(r"(?<![&>|<0-9])&(?![&>])")
_REDIRECTED = re.compile(r">\s*\S|>&")
_HOME = re.compile(r"(?:^|[\s=\"'])~/|\$\{?HOME\b|\.my\.cnf|\.pgpass")


_warn = warner(WARNING_IDS)


def lint(root: Path, engine: Any) -> list[Finding]:
    """Every finding for the machine whose ``/`` is ``root``."""
    root = Path(root)
    out = precheck_errors(engine, root)
    cfg = config.read_config(root)
    out += _daemon_args(cfg)
    if cfg.hook is None or not cfg.starts:
        return out
    hook_plan = discovery.plan(root, cfg.hook)
    if hook_plan.kind == discovery.DIRECT:
        out += _script(root, cfg.hook, direct=True)
    elif hook_plan.kind == discovery.WRAPPER:
        for entry in hook_plan.scripts:
            if discovery.inside(root, entry.location).is_file():
                out += _script(root, entry.location, direct=False)
    return out


def _daemon_args(cfg: config.AgentConfig) -> list[Finding]:
    out: list[Finding] = []
    if cfg.daemon_args_hook and cfg.hook is None:
        out.append(
            _warn(
                "qemu-ga-daemon-args-ignored",
                f"{config.DEFAULTS_FILE} has -F in DAEMON_ARGS, but only the SysV init script "
                "reads that file: Debian's qemu-guest-agent.service starts qemu-ga with no "
                "options, so no hook is enabled.",
                f"Put '[general]' and 'fsfreeze-hook={cfg.daemon_args_hook}' in {config.CONF}.",
                path=config.DEFAULTS_FILE,
            )
        )
    if cfg.daemon_args_space:
        out.append(
            _warn(
                "qemu-ga-f-space",
                "DAEMON_ARGS has '-F <path>' with a space: -F takes its argument only "
                "attached (getopt 'F::'), so qemu-ga runs the default hook "
                f"{config.DEFAULT_HOOK} and ignores the path.",
                "Write -F/path/to/hook or --fsfreeze-hook=/path/to/hook, or use the config "
                f"key in {config.CONF}.",
                path=config.DEFAULTS_FILE,
            )
        )
    return out


def _script(root: Path, location: str, *, direct: bool) -> list[Finding]:
    try:
        data = discovery.inside(root, location).read_bytes()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace")
    shell = scan_shell(text)
    out: list[Finding] = []
    if direct and not text.startswith("#!"):
        out.append(
            _warn(
                "qemu-ga-no-shebang",
                f"{location} has no '#!' line: QEMU up to 9.0 (Debian 12) execs it directly, "
                "the exec fails and the freeze fails ('fsfreeze hook has failed with status "
                "1'); QEMU 9.1 and later run it with /bin/sh.",
                "Start it with #!/bin/sh.",
                path=location,
                line=1,
            )
        )
    if not _VERB.search(shell.code_text()):
        out.append(
            _warn(
                "qemu-ga-verb-ignored",
                f"{location} never reads its argument: qemu-ga runs it with 'freeze' before "
                "the freeze and again with 'thaw' after, so it does the same thing twice.",
                'Dispatch on the verb: case "$1" in freeze) ... ;; thaw) ... ;; esac.',
                path=location,
            )
        )
    if not direct and _FAIL_EXIT.search(shell.code_text()):
        line = shell.code_matches(_FAIL_EXIT)[0]
        out.append(
            _warn(
                "qemu-ga-failure-hidden",
                f"{location} can exit non-zero, but the stock fsfreeze-hook wrapper logs the "
                f"status to {LOG_FILE} and exits 0: the freeze and the snapshot go ahead as "
                "if the quiesce had worked.",
                "Watch the log after each backup, or install a hook of your own at the hook "
                "path that exits non-zero when a script fails (libvirt then takes no snapshot).",
                path=location,
                line=line,
            )
        )
    prints = shell.code_matches(_PRINT)
    if prints and not _FAIL_EXIT.search(shell.code_text()):
        # It prints and never fails: whatever went wrong is only in what it printed.
        where = f"to {LOG_FILE} only" if not direct else "to /dev/null (QEMU <= 9.0)"
        out.append(
            _warn(
                "qemu-ga-output-lost",
                f"{location} never exits non-zero and reports only on stdout/stderr (line "
                f"{prints[0]}): under qemu-ga that goes {where}; neither qemu-ga's log nor the "
                "host's backup task shows it, and the freeze goes ahead.",
                "Log with 'logger -t <name>' (the journal), and make a failure an exit "
                "status, not a message.",
                path=location,
                line=prints[0],
            )
        )
    out += _background(location, shell, direct)
    if shell.code_matches(_HOME) or re.search(r"\.my\.cnf|\.pgpass", shell.logic_text()):
        homes = shell.code_matches(_HOME)
        home_line = homes[0] if homes else None
        out.append(
            _warn(
                "qemu-ga-home-unset",
                f"{location} relies on a home directory (~, $HOME, .my.cnf, .pgpass): qemu-ga "
                "runs as a systemd service without HOME, so the file is not found.",
                "Name the file explicitly (mariadb --defaults-extra-file=/root/.my.cnf, "
                "PGPASSFILE=/root/.pgpass) or use peer/socket authentication as root.",
                path=location,
                line=home_line,
            )
        )
    out += database_warnings(location, shell, True)
    return out


def _background(location: str, shell: ShellText, direct: bool) -> list[Finding]:
    for number in shell.code_matches(_BACKGROUND):
        text = shell.code[number - 1]
        after = text[text.rfind(")") :] if ")" in text else text
        if _REDIRECTED.search(after) and "/dev/null" in shell.logic[number - 1]:
            continue
        return [
            _warn(
                "qemu-ga-background-holds-output",
                f"{location} leaves a process in the background (line {number}) with its "
                "stdout/stderr still the hook's: QEMU 9.1 and later read the hook's output to "
                "the end, so the freeze command does not return while it lives (the same "
                "with QEMU 10.0's wrapper when it logs through logger).",
                "Start it with its streams redirected: ( ... ) </dev/null >/dev/null 2>&1 &",
                path=location,
                line=number,
            )
        ]
    return []
