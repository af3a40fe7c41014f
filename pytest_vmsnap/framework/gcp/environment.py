"""The environment and working directory the guest agent gives ``pre.sh`` and ``post.sh``.

``run.execCommand`` (GoogleCloudPlatform/guest-agent ``google_guest_agent/run/run.go``) sets
neither ``Env`` nor ``Dir`` nor ``Stdin`` on the ``exec.Cmd``: the script inherits the agent's
environment and working directory, and reads ``/dev/null``. Its stdout and stderr go to pipes
the agent reads to the end (``bytes.Buffer``). The agent is the systemd service
``google-guest-agent.service`` (repository root): ``Type=notify``, no ``User=``, no
``Environment=``, no ``WorkingDirectory=``, so systemd gives it ``/`` as its directory and
only its own variables: ``PATH`` (systemd's default), the system locale's ``LANG``,
``INVOCATION_ID``, ``JOURNAL_STREAM`` (its output goes to the journal), ``NOTIFY_SOCKET``
(``Type=notify``) and ``SYSTEMD_EXEC_PID``. No ``HOME``, ``USER``, ``LOGNAME``, ``SHELL`` or
``TERM``: systemd sets those only for a service with ``User=``. The agent itself sets no
variable and never changes directory (no ``os.Setenv`` / ``os.Chdir`` in its code).

Not modelled: the service's umask (systemd's default 0022; the harness's spawner keeps its
own) and its process group (the harness starts each script in a group of its own, so that it
can find what a script left behind; the agent kills only the script's own process).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..direct import spawner
from ..scripts import Spawn

CWD = "/"
"""systemd's default working directory for a system service without ``WorkingDirectory=``."""

SCRIPT_ENV: dict[str, str] = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "INVOCATION_ID": "5f0c1c2d3e4f40a18b9c0d1e2f3a4b5c",
    "JOURNAL_STREAM": "8:24601",
    "NOTIFY_SOCKET": "/run/systemd/notify",
}
"""What a script finds in its environment under the agent (``SYSTEMD_EXEC_PID`` is added with
the running process's id; the two systemd ids are stand-in values)."""


def script_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """:data:`SCRIPT_ENV` (with ``SYSTEMD_EXEC_PID``) and the user's ``extra`` on top."""
    return {**SCRIPT_ENV, "SYSTEMD_EXEC_PID": str(os.getpid()), **(extra or {})}


def agent_spawn(extra: Mapping[str, str] | None = None) -> Spawn:
    """Start scripts as the agent does: executed directly, stdin ``/dev/null``, stdout and
    stderr into pipes, :data:`CWD`, :func:`script_env` and nothing of the caller's."""
    return spawner(script_env(extra), CWD, output=True)
