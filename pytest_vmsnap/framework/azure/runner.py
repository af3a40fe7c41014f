"""Runs one pre- or post-script the way the extension's ``ScriptRunner`` does.

``sh <path> <params...>`` without a shell, stdout/stderr into pipes, a poll loop that sleeps P
seconds between checks and gives up after ``ceil(T/P)`` sleeps. Under the ``extension`` profile
the pipes are not read while the script runs (so a script that writes more than a pipe's buffer
stalls, as it does under the real extension), retries never re-run the script and a timed-out
script keeps running. The output is drained afterwards for the report.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from typing import Any

from ..scripts import (
    FAITHFUL,
    Clock,
    Pacing,
    Process,
    ScriptResult,
    Spawn,
    SystemClock,
    collect,
    kill_group,
    spawn_script,
    start_readers,
)
from . import codes
from .config import HOST_TIMEOUT_CAP_S, host_watchdog_s
from .profiles import EXTENSION, Profile

_F_GETPIPE_SZ = 1032
_FIONREAD = 0x541B


def run_script(
    which: str,
    argv: list[str] | None,
    *,
    timeout_s: float,
    poll_s: int,
    retries: Any,
    continue_on_failure: Any,
    profile: Profile = EXTENSION,
    clock: Clock | None = None,
    spawn: Spawn | None = None,
    pacing: Pacing = FAITHFUL,
    host_timeout_s: int = HOST_TIMEOUT_CAP_S,
) -> ScriptResult:
    """Run the ``pre`` or ``post`` script with the extension's poll loop and outcome codes.

    ``argv`` None means building it raised inside the extension's worker thread (a bad
    params value): the plugin host's watchdog then reports 310/311 without running anything.
    """
    clock = clock or SystemClock()
    spawn = spawn or spawn_script
    failed_code, timeout_code, watchdog_code = (
        (codes.PRE_FAILED, codes.PRE_TIMEOUT, codes.HOST_PRE_TIMEOUT)
        if which == "pre"
        else (codes.POST_FAILED, codes.POST_TIMEOUT, codes.HOST_POST_TIMEOUT)
    )
    result = ScriptResult(which, argv, start_s=clock.monotonic())
    if argv is None:
        return _watchdog(
            result,
            watchdog_code,
            poll_s,
            "building the argument list raised "
            "TypeError in the plugin thread (params must be a list)",
            host_timeout_s,
        )

    ratio = timeout_s / poll_s  # the extension's pollTotalCount (true division)
    result.log.append(f"Running {which}script for ScriptRunner module...")
    try:
        proc = spawn(argv)
    except OSError as err:  # no `sh` on the PATH (a script removed it), no such directory...
        return _watchdog(
            result,
            watchdog_code,
            poll_s,
            f"starting {argv[0]} raised {type(err).__name__} ({err.strerror or err}) in the "
            "plugin thread",
            host_timeout_s,
        )
    result.ran, result.attempts = True, 1
    readers = start_readers(proc, result) if profile.drain_output_live else []
    sleeps = 0
    count = 0
    while True:
        while proc.poll() is None:
            if sleeps >= ratio:
                result.timed_out = True
                result.log.append(f"{which.capitalize()}script for ScriptRunner timed out.")
                break
            sleeps += 1
            _wait_one_poll(proc, clock, poll_s, pacing)
        if not result.timed_out and proc.returncode == 0:
            break
        if result.timed_out:
            break
        try:
            give_up = count >= retries
        except TypeError:
            result.exit_code = proc.returncode
            collect(proc, result, readers)
            result.error_code = failed_code
            return _watchdog(
                result,
                watchdog_code,
                poll_s,
                f"{which}ScriptNoOfRetries {retries!r} is not a number: the "
                "retry comparison raised TypeError in the plugin thread",
                host_timeout_s,
            )
        if give_up:
            break
        result.log.append(f"{which.capitalize()}script for ScriptRunner failed. Retrying...")
        count += 1
        if profile.rerun_on_retry:
            collect(proc, result, readers)
            proc = spawn(argv)
            result.attempts += 1
            readers = start_readers(proc, result) if profile.drain_output_live else []
    result.end_s = clock.monotonic()
    result.retries_logged = count

    if result.timed_out:
        result.error_code = timeout_code
        result.continue_backup = continue_on_failure
        if profile.kill_on_timeout:
            kill_group(proc)
            collect(proc, result, readers)
        else:
            _abandon(proc, result)
        return result

    result.exit_code = proc.returncode
    collect(proc, result, readers)
    if proc.returncode == 0:
        result.log.append(f"{which.capitalize()}script for ScriptRunner successfully executed.")
    else:
        result.error_code = failed_code
        result.continue_backup = continue_on_failure
        result.log.append(
            f"{which.capitalize()}script for ScriptRunner failed with error "
            f"code: {proc.returncode} ."
        )
    return result


def _wait_one_poll(proc: Process, clock: Clock, poll_s: float, pacing: Pacing) -> None:
    """One poll period: a whole sleep (faithful), or until the process ends (prompt).

    In prompt pacing any :class:`Process` is waited on, not only a real ``Popen``, so an
    injected process (tests, remote agents) gets the same "noticed at once" behaviour.
    """
    if pacing.faithful:
        clock.sleep(poll_s)
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=poll_s)


def _watchdog(
    result: ScriptResult, code: int, poll_s: int, why: str, host_timeout_s: int
) -> ScriptResult:
    """The plugin thread died without reporting; the host gives up after ~1806 s."""
    result.error_code = code
    result.watchdog = True
    result.continue_backup = True  # the host keeps continueBackup True in this path
    waited = host_watchdog_s(poll_s, host_timeout_s)
    result.end_s = result.start_s + waited
    result.log.append(
        f"plugin thread died: {why}; the plugin host's watchdog reports "
        f"{codes.lookup(code).name} after {waited:.0f} s"
    )
    return result


_PARKED: list[tuple[Process, ScriptResult]] = []
"""Timed-out scripts whose output pipes stay open until the cycle ends (errata E1)."""


def _abandon(proc: Process, result: ScriptResult) -> None:
    """What the extension does on timeout: stop watching, leave the script running.

    Its output pipes stay open and unread (errata E1: CPython parks a running child's Popen,
    pipes and all, until the extension's process exits), so the script keeps running and
    writing until a pipe is full, then blocks; it never gets SIGPIPE. Whether it is blocked
    already is read without draining the pipe, which would give it room the real one has not.
    What it wrote is read at the cycle's end (:func:`release_parked`).
    """
    for stream in (proc.stdout, proc.stderr):
        if stream is None:
            continue
        fd = stream.fileno()
        try:
            capacity = fcntl.fcntl(fd, _F_GETPIPE_SZ)
            pending = int.from_bytes(fcntl.ioctl(fd, _FIONREAD, b"\0\0\0\0"), "little")
            result.output_stalled |= pending >= capacity
        except OSError:
            pass
    if result.output_stalled:
        result.log.append("the script was blocked writing to a full, unread output pipe")
    if proc.poll() is None:
        result.left_running.append(proc.pid)
    _PARKED.append((proc, result))


def release_parked() -> None:
    """The extension's process ends: read what the timed-out scripts wrote (for the report)
    and close their pipes; a script still writing then gets SIGPIPE, as under the real one."""
    while _PARKED:
        proc, result = _PARKED.pop()
        for stream, out in ((proc.stdout, result.stdout), (proc.stderr, result.stderr)):
            if stream is None:
                continue
            try:  # what is in the pipe now, no more: reading frees room the script would fill
                fd = stream.fileno()
                left = int.from_bytes(fcntl.ioctl(fd, _FIONREAD, b"\0\0\0\0"), "little")
                os.set_blocking(fd, False)
                while left > 0 and (chunk := os.read(fd, min(left, 65536))):
                    out.add(chunk)
                    left -= len(chunk)
            except (BlockingIOError, OSError, ValueError):
                pass
            stream.close()
