"""The environment and working directory a hook gets under qemu-ga.

qemu-ga does not clear or extend its environment for the hook: QEMU 7.2 passes ``environ``
to ``execle``, QEMU >= 9.1 calls ``execvp``, which passes it too (qemu/qemu
``qga/commands-posix.c``). The agent is a systemd service (Debian:
``qemu-guest-agent.service``, no ``User=``, no ``Environment=``, no ``WorkingDirectory=``),
so that environment is systemd's for a system service: ``PATH`` and the system locale, and no
``HOME``, ``USER``, ``LOGNAME`` or ``SHELL`` (systemd.exec(5): those are set only with
``User=``); the working directory is ``/``. A hook that reads ``~/.my.cnf`` or relies on a
variable of the shell it was tested from fails under the agent.
"""

from __future__ import annotations

from collections.abc import Mapping

WORKING_DIRECTORY = "/"
SCRIPT_ENV: dict[str, str] = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}


def script_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """:data:`SCRIPT_ENV` with the user's ``extra`` variables on top."""
    return {**SCRIPT_ENV, **(extra or {})}
