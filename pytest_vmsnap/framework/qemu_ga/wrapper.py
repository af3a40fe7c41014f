"""The stock wrapper ``/etc/qemu/fsfreeze-hook``, played by the engine when the machine has
``fsfreeze-hook.d`` scripts but no wrapper at the hook path (the distributions install it
there; the harness writes no copy of it).

Both versions (qemu/qemu ``scripts/qemu-guest-agent/fsfreeze-hook``) run each script of
:func:`.discovery.entries` in glob order with the agent's argument (``freeze`` or ``thaw``,
the same order both times), one after the other, waiting for each, and end with ``exit 0``:
a script that fails is logged, the next one runs, and the agent is told all went well.

- QEMU 7.2 (Debian 12): each script's stdout and stderr are appended to
  ``/var/log/qga-fsfreeze-hook.log``, with a line before (``<date>: execute <file> <args>``)
  and after (``<date>: <file> finished with status=<N>``). When the log cannot be opened
  (``/var/log`` missing) dash fails the redirection and does not run the script
  (status 2).
- QEMU 10.0 (commit 85978dfb6b, "Optimize freeze-hook script logic of logging error",
  2025-01): the same with other log lines, except that it falls back to syslog when the
  log file is not writable, and ``[ ! -w "$LOGFILE" ]`` is also true when the file does not
  exist yet. On that path it runs ``"$file" "$@" 2>&1 | logger`` and reads
  ``${PIPESTATUS[0]}``, which dash (``/bin/sh`` on Debian) rejects with ``Bad
  substitution``, ending the wrapper with status 2 right after its first script: the
  agent's freeze fails once the first script has taken its lock (checked with dash;
  OpenCCU/OpenCCU#3594 replaced the wrapper for its dash incompatibility). The wrapper's
  ``touch "$LOGFILE" &>/dev/null`` creates the file (dash reads ``&>`` as ``&`` then
  ``>``), so the next call logs to the file.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..scripts import Clock, ScriptResult, Spawn, SystemClock
from . import agent
from .discovery import Entry, inside
from .runner import LOG, PIPE, Run, run

LOG_FILE = "/var/log/qga-fsfreeze-hook.log"
SYSLOG_TAG = "qemu-ga-freeze-hook"
BAD_SUBSTITUTION_LINE = 49
"""The line of ``STATUS=${PIPESTATUS[0]}`` in QEMU 10.0's wrapper (as dash names it)."""


@dataclass
class WrapperRun:
    """What the wrapper did for one verb."""

    runs: list[tuple[Entry, Run]] = field(default_factory=list)
    exit_code: int = 0
    output: str = ""
    """What the wrapper itself wrote to its stderr (the agent's pipe, under QEMU >= 9.1)."""
    timed_out: bool = False
    syslog: bool = False
    log_lines: list[str] = field(default_factory=list)


def run_wrapper(
    root: Path,
    hook: str,
    verb: str,
    scripts: list[Entry],
    *,
    version: str,
    bound_s: float,
    env: Mapping[str, str],
    cwd: str,
    clock: Clock | None = None,
    spawn: Spawn | None = None,
) -> WrapperRun:
    """Run ``scripts`` with ``verb`` as the wrapper of ``version`` does."""
    clock = clock or SystemClock()
    start = clock.monotonic()
    out = WrapperRun()
    log = inside(root, LOG_FILE)
    if version == agent.QEMU_10_0:
        out.syslog = not log.exists()  # [ ! -w "$LOGFILE" ] as root: true when it is missing
        _touch(log)  # touch "$LOGFILE" & (dash)
    for entry in scripts:
        left = bound_s - (clock.monotonic() - start)
        argv = [str(inside(root, entry.location)), verb]
        if left <= 0:
            out.timed_out = True
            break
        if out.syslog:
            one = run(
                verb,
                argv,
                stdio=PIPE,
                bound_s=left,
                env=env,
                cwd=cwd,
                clock=clock,
                spawn=spawn,
                enoexec_shell=True,
            )
        elif not log.parent.is_dir():
            one = _not_run(verb, argv, clock, f"cannot create {LOG_FILE}: Directory nonexistent")
        else:
            _log(
                log,
                version,
                f"execute {entry.location} {verb}",
                f"Executing {entry.location} {verb}",
            )
            one = run(
                verb,
                argv,
                stdio=LOG,
                bound_s=left,
                env=env,
                cwd=cwd,
                clock=clock,
                spawn=spawn,
                log_path=str(log),
                enoexec_shell=True,
            )
        _dash_exec_status(one, hook, entry)
        out.runs.append((entry, one))
        status = one.result.exit_code
        if not out.syslog and log.parent.is_dir() and not one.result.timed_out:
            if version == agent.QEMU_7_2:
                _log(log, version, f"{entry.location} finished with status={status}", "")
            elif status:
                _log(log, version, "", f"Error: {entry.location} finished with status={status}")
            else:
                _log(log, version, "", f"{entry.location} finished successfully")
        if one.result.timed_out:
            out.timed_out = True
            break
        if out.syslog:
            # STATUS=${PIPESTATUS[0]}: dash stops the wrapper here.
            out.exit_code = 2
            out.output = f"{hook}: {BAD_SUBSTITUTION_LINE}: Bad substitution"
            break
    return out


def _dash_exec_status(one: Run, hook: str, entry: Entry) -> None:
    """dash's own status when it cannot exec a script (126 not executable, 127 not found)."""
    if one.exec_errno is None:
        return
    code = 127 if one.exec_errno == errno.ENOENT else 126
    one.result.exit_code = code
    one.result.log.append(
        f"{hook}: {entry.location}: {os.strerror(one.exec_errno)} (status {code})"
    )


def _not_run(verb: str, argv: list[str], clock: Clock, why: str) -> Run:
    result = ScriptResult(verb, argv, start_s=clock.monotonic())
    result.end_s = result.start_s
    result.exit_code, result.error_code, result.start_error = 2, 1, why
    return Run(result)


def _touch(log: Path) -> None:
    try:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return
    os.close(fd)


def _log(log: Path, version: str, old: str, new: str) -> None:
    """One of the wrapper's own lines (``printf "$(date): ..."`` / ``log_message``)."""
    text = old if version == agent.QEMU_7_2 else new
    if not text:
        return
    stamp = time.strftime("%a %b %e %H:%M:%S %Z %Y")
    try:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{stamp}: {text}\n")
    except OSError:
        return
