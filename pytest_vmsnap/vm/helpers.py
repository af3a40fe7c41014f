"""Our own helper processes (the VM's init, the freeze guard, the reaper, the agent): how they
are started so they import this very package, and how one that stops when its input ends is
ended."""

from __future__ import annotations

import contextlib
import os
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(str(resources.files("pytest_vmsnap"))).resolve()
"""The ``pytest_vmsnap`` package's own directory (in a checkout or site-packages)."""
PACKAGE_ROOT = str(PACKAGE_DIR.parent)
"""The directory that holds ``pytest_vmsnap``: what our helper processes import it from."""


def helper_env() -> dict[str, str]:
    """This process's environment, with the package importable exactly as it is here and no
    bytecode written (a helper may run where writes would block or leak)."""
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
    return env


def end_process(proc: subprocess.Popen[Any], timeout_s: float) -> None:
    """End a helper that stops when its input ends: close its stdin and wait; past
    ``timeout_s``, kill it (the nsenter or docker-exec client, by its exact PID)."""
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)
