"""The two generations of qemu-ga's hook runner, and the words each answers a failure with.

- :data:`QEMU_7_2` (Debian 12's qemu-guest-agent 1:7.2+dfsg; the same code up to QEMU 9.0):
  ``access(hook, X_OK)`` first (``can't access fsfreeze hook '%s': <errno text>``), then
  fork, ``setsid``, stdio on ``/dev/null``, ``execle`` with the agent's environment; an
  ``execle`` that fails ends the child with ``EXIT_FAILURE``. A signal gives ``fsfreeze hook
  has terminated abnormally``, an exit status N > 0 ``fsfreeze hook has failed with status
  N`` (qemu/qemu ``qga/commands-posix.c``, ``execute_fsfreeze_hook``; the Debian binary's
  strings hold these three messages).
- :data:`QEMU_10_0` (QEMU 9.1 and later; Debian 13 ships 10.0): ``ga_run_command`` (pull
  ``qga-pull-2024-05-01``, "execute_fsfreeze_hook: use ga_run_command helper"): no
  ``access`` check, stdout and stderr on one pipe read to end-of-file, ``execvp`` (a file
  without ``#!`` runs under ``/bin/sh``; any other exec failure is ``perror``'d into the pipe
  as ``failed to exec '<hook>': <errno text>`` and exits 1). Failures read ``child process
  has failed to execute fsfreeze hook: <output>`` (or ``: exit status N`` when the hook wrote
  nothing) and ``child process has terminated abnormally[: <output>]``.

It also picks the stock wrapper the same QEMU release ships (:mod:`.wrapper`).
"""

from __future__ import annotations

import os

from .runner import NULL, PIPE, Run

QEMU_7_2 = "7.2"
QEMU_10_0 = "10.0"
VERSIONS = (QEMU_7_2, QEMU_10_0)
DEFAULT = QEMU_7_2
"""The stand-in VM is Debian 12, whose qemu-guest-agent is QEMU 7.2."""


def stdio(version: str) -> str:
    """How the agent connects the hook's stdout and stderr."""
    return NULL if version == QEMU_7_2 else PIPE


def access_error(version: str, hook: str, error: int) -> str:
    """QEMU 7.2's refusal before it forks (``access(hook, X_OK)`` failed with ``error``)."""
    return f"can't access fsfreeze hook '{hook}': {os.strerror(error)}"


def failure(version: str, hook: str, run: Run) -> str:
    """The error the freeze or thaw command returns for a hook run that did not succeed, or
    '' when the agent counts it a success."""
    result = run.result
    text = result.stdout.text() if version != QEMU_7_2 else ""
    if run.exec_errno is not None:
        if version == QEMU_7_2:
            return "fsfreeze hook has failed with status 1"
        return (
            "child process has failed to execute fsfreeze hook: "
            f"failed to exec '{hook}': {os.strerror(run.exec_errno)}"
        )
    if run.signal is not None:
        if version == QEMU_7_2:
            return "fsfreeze hook has terminated abnormally"
        return "child process has terminated abnormally" + (f": {text}" if text else "")
    if result.exit_code:
        if version == QEMU_7_2:
            return f"fsfreeze hook has failed with status {result.exit_code}"
        if text:
            return f"child process has failed to execute fsfreeze hook: {text}"
        return f"child process has failed to execute fsfreeze hook: exit status {result.exit_code}"
    return ""


def exec_exit_code(version: str) -> int:
    """The child's exit status when ``exec`` fails (both: ``_exit(EXIT_FAILURE)``)."""
    return 1
