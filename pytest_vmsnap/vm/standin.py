"""What both kinds of stand-in VM do the same way once a command line can enter them."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import VmError
from .model import Disk
from .vminit import thaw


class StandIn:
    """Shared by :class:`~.host.HostVM` and :class:`~.container.ContainerVM`: ``run``,
    ``path`` and ``thaw_all`` on top of the two things each kind defines: the command line
    that runs ``argv`` inside the VM, and the environment of that command line."""

    name: str
    pid: int | None
    disks: list[Disk]

    def _enter(self, argv: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def _enter_env(self) -> dict[str, str] | None:
        raise NotImplementedError

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 120,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a command inside the VM and wait for it; VmError with its stderr on failure.
        Standard input is ``input``, or nothing (never this process's own)."""
        feed: dict[str, Any] = {"input": input} if input is not None else {}
        if input is None:
            feed["stdin"] = subprocess.DEVNULL
        try:
            done = subprocess.run(
                self._enter(argv),
                capture_output=True,
                timeout=timeout,
                env=self._enter_env(),
                **feed,
            )
        except subprocess.TimeoutExpired as err:
            raise VmError(
                f"VM {self.name}: {' '.join(argv)} did not finish in {timeout} s"
            ) from err
        done.args = list(argv)
        if check and done.returncode:
            msg = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
            raise VmError(f"VM {self.name}: {' '.join(argv)}: {msg}")
        return done

    def path(self, inside: str) -> Path:
        """This host's path to ``inside`` as the VM sees it (through /proc/PID/root)."""
        if self.pid is None:
            raise VmError(f"VM {self.name} is not running")
        return Path(f"/proc/{self.pid}/root") / inside.lstrip("/")

    def thaw_all(self) -> list[str]:
        """Thaw every disk mount of the VM that is frozen; returns those it thawed."""
        if self.pid is None:
            return []
        return [
            d.spec.mountpoint
            for d in reversed(self.disks)
            if thaw(str(self.path(d.spec.mountpoint)))
        ]
