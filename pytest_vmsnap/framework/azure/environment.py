"""The environment the real extension gives a pre- or post-script (errata E9).

The extension's daemon runs the scripts with its own environment and working directory
(``ScriptRunner`` passes no ``env`` and no ``cwd``). The daemon is started by the Azure Linux
agent, which runs extension commands with ``cwd`` = the extension's directory and its own
environment plus four variables of its own (WALinuxAgent ``ExtHandlerInstance.
launch_command``: ``AZURE_GUEST_AGENT_EXTENSION_PATH``, ``..._EXTENSION_VERSION``,
``..._WIRE_PROTOCOL_ADDRESS``, ``ConfigSequenceNumber``). The agent is a systemd service, whose
environment is systemd's: ``PATH`` and the system locale, and no ``HOME``, ``USER``,
``LOGNAME``, ``SHELL`` or ``TERM`` (systemd sets those only for a service with ``User=``).

So a script that reads ``~/.my.cnf``, relies on ``$HOME``, or on a variable of the shell it
was tested from, fails under the extension: the harness gives it this environment and nothing
of the caller's, whichever stand-in runs it. Users add variables on purpose with ``extra``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..scripts import Spawn, spawn_script

EXTENSION_VERSION = "1.0.9225.0"
EXTENSION_NAME = "Microsoft.Azure.RecoveryServices.VMSnapshotLinux"
EXTENSION_DIR = f"/var/lib/waagent/{EXTENSION_NAME}-{EXTENSION_VERSION}"
"""The daemon's working directory, which the scripts inherit."""
WIRE_SERVER = "168.63.129.16"

SCRIPT_ENV: dict[str, str] = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "AZURE_GUEST_AGENT_EXTENSION_PATH": EXTENSION_DIR,
    "AZURE_GUEST_AGENT_EXTENSION_VERSION": EXTENSION_VERSION,
    "AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS": WIRE_SERVER,
    "ConfigSequenceNumber": "0",
}
"""What a script finds in its environment under the real extension (the documented set)."""


def script_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """:data:`SCRIPT_ENV` with the user's ``extra`` variables on top."""
    return {**SCRIPT_ENV, **(extra or {})}


def extension_spawn(extra: Mapping[str, str] | None = None) -> Spawn:
    """Start scripts as the extension's daemon does: its working directory and environment,
    nothing of the caller's (the directory is made when missing, as the agent would have)."""
    os.makedirs(EXTENSION_DIR, exist_ok=True)
    env = script_env(extra)
    return lambda argv: spawn_script(argv, cwd=EXTENSION_DIR, env=env)
