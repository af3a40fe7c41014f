"""How vmtoolsd starts a script: the command line, the shell, the environment, the streams.

Sources (vmware/open-vm-tools, ``open-vm-tools/``):
- ``services/plugins/vmbackup/scriptOps.c`` ``VmBackupRunNextScript``: the command is the
  string ``"<path>" <op>`` or ``"<path>" <op> "<scriptArg>"`` given to
  ``ProcMgr_ExecAsync(cmd, NULL)`` (no environment, no working directory of its own);
- ``lib/procMgr/procMgrPosix.c`` ``ProcMgrStartProcess``: ``/bin/bash -c <cmd>`` when
  ``/bin/bash`` exists, else ``/bin/sh -c <cmd>``, with vmtoolsd's own environment and
  working directory; ``ProcMgr_ExecAsync`` keeps fds 0-2 (vmtoolsd's) and closes the rest.

vmtoolsd is the systemd service ``open-vm-tools.service`` (Debian 12's package:
``ExecStart=/usr/bin/vmtoolsd``, no ``User=``, ``WorkingDirectory=`` or ``Environment=``):
working directory ``/``, standard input ``/dev/null``, output to the journal, and systemd's
environment (``PATH`` and the system locale; no ``HOME``, ``USER``, ``SHELL``, ``TERM``),
changed by ``tools.conf``'s ``[unsetenvironment]``/``[setenvironment]``. A script's output
is never read by vmtoolsd, so it cannot stall it; the harness reads it for the report.

bash runs a single simple command by ``exec``: the script itself is the process vmtoolsd
waits for and kills. A file without ``#!`` (``ENOEXEC``) is then read by bash itself as a
bash script; a file without any execute bit fails with "Permission denied", status 126.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..direct import spawner
from ..scripts import Spawn
from .config import VmbackupConfig

BASH = "/bin/bash"
SH = "/bin/sh"
WORKING_DIRECTORY = "/"
SERVICE_ENV: dict[str, str] = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
"""What systemd gives a system service without ``Environment=`` on Debian 12 (``LANG`` from
``/etc/default/locale``, as the stand-in VM has it)."""


def shell(machine_root: str = "/") -> str:
    """``ProcMgrStartProcess``: bash when ``/bin/bash`` exists (checked in the child, on the
    machine that runs the script), else ``/bin/sh``."""
    return BASH if os.path.exists(os.path.join(machine_root, BASH.lstrip("/"))) else SH


def command(path: str, op: str, script_arg: str | None) -> str:
    """The command string ``VmBackupRunNextScript`` builds: the path and ``scriptArg`` in
    double quotes, unescaped (the shell expands ``$``, backquotes and ``\\`` inside them)."""
    if script_arg:
        return f'"{path}" {op} "{script_arg}"'
    return f'"{path}" {op}'


def argv(path: str, op: str, script_arg: str | None) -> list[str]:
    """What vmtoolsd's child executes."""
    return [shell(), "-c", command(path, op, script_arg)]


def script_env(cfg: VmbackupConfig, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """:data:`SERVICE_ENV` changed by ``tools.conf``'s environment groups, then ``extra``."""
    env = dict(SERVICE_ENV)
    for name in cfg.env_unset:
        env.pop(name, None)
    env.update(cfg.env_set)
    env.update(extra or {})
    return env


def vmtoolsd_spawn(cfg: VmbackupConfig, extra: Mapping[str, str] | None = None) -> Spawn:
    """Start scripts as vmtoolsd does (its environment and working directory; output read
    by the harness for the report, where vmtoolsd sends it to the journal)."""
    return spawner(script_env(cfg, extra), WORKING_DIRECTORY, output=True)
