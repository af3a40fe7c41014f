"""What both kinds of stand-in VM do the same way once a command line can enter them."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import VmError
from .forkserver import Call, ForkServer
from .linux import IN_ROOT, openat2, thaw
from .model import Disk


class StandIn:
    """Shared by :class:`~.host.HostVM` and :class:`~.container.ContainerVM`: ``run``,
    ``path``, ``thaw_all`` and Python calls inside the VM (``warm``, ``call``, ``submit``) on
    top of the two things each kind defines: the command line that runs ``argv`` inside the
    VM, and the environment of that command line. Each kind's ``stop`` ends the VM's fork
    server first (:meth:`_end_forkserver`)."""

    name: str
    pid: int | None
    disks: list[Disk]
    _forkserver: ForkServer | None = None

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

    def start(self, timeout_s: float = 20.0) -> StandIn:
        """Start the VM (its init, its mounts) and return it once it is ready."""
        raise NotImplementedError

    def stop(self, timeout_s: float | None = None) -> None:
        """End the VM and everything in it (thawing first); idempotent."""
        raise NotImplementedError

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a command inside the VM without waiting for it."""
        raise NotImplementedError

    @property
    def private_dirs(self) -> list[str]:
        """The mount points, inside the VM, of the mounts whose writes stay in the VM (its own
        root or overlays, its private ``/tmp`` and ``/run``, its disks); everything else it
        sees is shared with this host."""
        raise NotImplementedError

    def warm(self, *modules: str) -> None:
        """Start the VM's fork server now with ``modules`` imported, so later :meth:`call`
        and :meth:`submit` skip the interpreter start (no-op if it runs already)."""
        if self._forkserver is None:
            if self.pid is None:
                raise VmError(f"VM {self.name} is not running")
            self._forkserver = ForkServer(self, modules)

    def submit(self, fn: str, *args: Any) -> Call:
        """Start ``module:function(*args)`` in a new process inside the VM (forked from the
        VM's warm fork server); JSON in and out. The process ends with the VM at the latest."""
        self.warm()
        assert self._forkserver is not None
        return self._forkserver.submit(fn, *args)

    def call(self, fn: str, *args: Any, timeout: float | None = 120) -> Any:
        """Run ``module:function(*args)`` in a new process inside the VM and return its value;
        :class:`~.forkserver.CallError` (one line) if it raised or did not end in time."""
        return self.submit(fn, *args).result(timeout)

    def _end_forkserver(self) -> None:
        server, self._forkserver = self._forkserver, None
        if server is not None:
            server.close()

    def path(self, inside: str) -> Path:
        """This host's path to ``inside`` as the VM sees it (through /proc/PID/root)."""
        if self.pid is None:
            raise VmError(f"VM {self.name} is not running")
        return Path(f"/proc/{self.pid}/root") / inside.lstrip("/")

    def open_file(self, inside: str) -> int | None:
        """A descriptor (read-only) of the regular file ``inside``, every path component
        resolved in the VM's root: a symlink, FIFO or device a script put there cannot send
        this host's read elsewhere or block it. None if there is no such file."""
        if self.pid is None:
            raise VmError(f"VM {self.name} is not running")
        try:
            root = os.open(f"/proc/{self.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
            fd = openat2(root, inside.lstrip("/"), flags, resolve=IN_ROOT)
        except OSError:
            return None
        finally:
            os.close(root)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return fd

    def read_file(self, inside: str, limit: int = 256 << 20) -> bytes | None:
        """The content of the regular file ``inside`` (at most ``limit`` bytes), opened as
        :meth:`open_file` does. None if there is no such file."""
        fd = self.open_file(inside)
        if fd is None:
            return None
        try:
            chunks, left = [], limit
            while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def thaw_all(self) -> list[str]:
        """Thaw every disk mount of the VM that is frozen; returns those it thawed."""
        if self.pid is None:
            return []
        return [
            d.spec.mountpoint
            for d in reversed(self.disks)
            if thaw(str(self.path(d.spec.mountpoint)))
        ]
