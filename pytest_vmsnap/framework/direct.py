"""Runs a script the way most agents do: executed directly (its shebang decides the
interpreter), its output read while it runs, given up on after a timeout.

GCP's guest agent, VMware Tools, qemu-ga and the SSM agent all start the script file itself
(no ``sh`` in front, unlike Azure): a script without a shebang fails to start
(``Exec format error``) and one without the exec bit is refused (``Permission denied``). What
each does on a timeout, and which code it reports, is the engine's business; this runner says
what happened.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping, Sequence

from .scripts import (
    Clock,
    Process,
    ScriptResult,
    Spawn,
    SystemClock,
    collect,
    kill_group,
    start_readers,
)

STEP_S = 0.02
"""How often the runner looks whether the script ended (an agent's wait returns at once)."""


def spawner(
    env: Mapping[str, str],
    cwd: str = "/",
    *,
    output: bool = True,
) -> Spawn:
    """Start scripts as an agent does: no shell, ``env`` as the whole environment, ``cwd``;
    stdout and stderr into pipes that are read while it runs (``output`` False: to
    ``/dev/null``, as qemu-ga does). Each script gets its own process group so that a
    timed-out one and its children can be ended by exact group id."""
    stream = subprocess.PIPE if output else subprocess.DEVNULL

    def spawn(argv: Sequence[str]) -> Process:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=stream,
            cwd=cwd,
            env=dict(env),
            process_group=0,
        )

    return spawn


def run_direct(
    which: str,
    argv: list[str],
    *,
    timeout_s: float | None,
    spawn: Spawn,
    clock: Clock | None = None,
    kill_on_timeout: bool = True,
) -> ScriptResult:
    """Run ``argv`` once; wait at most ``timeout_s`` (None: until it ends).

    The result's ``error_code`` is 1 when the script failed, timed out or could not start
    (engines replace it with their own code); ``exit_code`` is the script's, None when it did
    not end. A timed-out script is killed with its process group when ``kill_on_timeout``
    (the agents cancel it), else left running (``left_running``).
    """
    clock = clock or SystemClock()
    result = ScriptResult(which, list(argv), start_s=clock.monotonic())
    try:
        proc = spawn(argv)
    except OSError as err:
        result.end_s = clock.monotonic()
        result.error_code = 1
        result.start_error = f"{err.strerror or err} ({os.path.basename(argv[0])})"
        result.log.append(f"could not start {argv[0]}: {result.start_error}")
        return result
    result.ran, result.attempts = True, 1
    readers = start_readers(proc, result)
    while proc.poll() is None:
        if timeout_s is not None and clock.monotonic() - result.start_s >= timeout_s:
            result.timed_out = True
            break
        _wait(proc, clock)
    result.end_s = clock.monotonic()
    if result.timed_out:
        result.error_code = 1
        result.log.append(f"{which} timed out after {timeout_s:g} s")
        if kill_on_timeout:
            kill_group(proc)
            result.log.append("killed with its process group")
        elif proc.poll() is None:
            result.left_running.append(proc.pid)
        collect(proc, result, readers)
        return result
    result.exit_code = proc.returncode
    collect(proc, result, readers)
    if proc.returncode != 0:
        result.error_code = 1
    return result


def _wait(proc: Process, clock: Clock) -> None:
    if isinstance(clock, SystemClock):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STEP_S)
        return
    clock.sleep(STEP_S)  # an injected clock: time moves only when told
