"""The host stand-in VM: private mount, network, UTS and PID namespaces on this machine.

The VM's root is a copy-on-write view of this whole host (:mod:`.guest.rootfs`): scripts run
unchanged with their production paths and this host's programs, every write stays in the VM's
memory, no file system of this host can be frozen from inside, and the harness's files are
read-only there. The VM's disks are mounted at their real paths (``/var/lib/postgresql``...),
loopback is the VM's own (default ports never collide between VMs), so is its host name
(which resolves in the VM, as on a real one), and ending the VM's PID 1
ends every process in it. Loop devices are not namespaced: their owner (:mod:`.disks`)
releases them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import names
from .base import StandIn
from .errors import VmError
from .guest.rootfs import HARNESS_SOURCE
from .helpers import PACKAGE_ROOT, helper_env
from .linux import read_mounts
from .model import Disk

log = logging.getLogger(__name__)


class HostVM(StandIn):
    """A stand-in VM made of namespaces; processes enter it through ``nsenter``."""

    kind = "host"

    def __init__(
        self,
        name: str,
        disks: Sequence[Disk],
        *,
        tag: str = "",
    ) -> None:
        self.name = name
        self.tag = tag
        self.disks = list(disks)
        self.not_shown: list[str] = []
        """This host's mounts the VM could not show copy-on-write (it sees them empty)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    def start(self, timeout_s: float = 20.0) -> HostVM:
        """Create the namespaces, mount the disks, and return once the VM is ready."""
        for disk in self.disks:
            if not disk.loopdev:
                raise VmError(f"disk {disk.spec.name} of VM {self.name} is not attached")
        spec = {
            "name": self.name,
            "tag": self.tag,
            "hostname": names.component(self.name)[:63],
            "readonly": _harness_files(),
            # Every run's pool images and owner records: not this VM's business.
            "hidden": [os.path.realpath(names.vmsnap_home())],
            "mounts": [
                {
                    "dev": d.loopdev,
                    "target": d.spec.mountpoint,
                    "fs": d.spec.fs,
                    "options": d.mount_options,
                }
                for d in self.disks
            ],
        }
        argv = [
            "unshare",
            "--mount",
            "--net",
            "--uts",
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            sys.executable,
            "-m",
            "pytest_vmsnap.vm.guest.vminit",
            json.dumps(spec),
            f"vmsnap-vm={self.tag}:{self.name}",
        ]
        # Its own session: killing the harness's process group must not SIGKILL the VM's init
        # (it could not thaw first); it ends, thawing, when its stdin closes.
        self._proc = subprocess.Popen(
            argv,
            start_new_session=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=helper_env(),
        )
        line = _readline(self._proc, timeout_s)
        if not line.startswith(b"READY"):
            err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
            self._reap()
            detail = line.decode(errors="replace").removeprefix("FAILED ").strip()
            raise VmError(f"VM {self.name} did not start: {detail or err.strip()}")
        self.pid = self._find_init_pid()
        with contextlib.suppress(ValueError):
            self.not_shown = list(json.loads(line[len(b"READY") :]).get("not_shown", []))
        if self.not_shown:
            log.warning(
                "VM %s sees these host directories empty (they could not be overlaid): %s",
                self.name,
                ", ".join(self.not_shown),
            )
        return self

    @property
    def private_dirs(self) -> list[str]:
        """Every mount of the VM but the harness's read-only ones: the root overlay and the
        overlays of this host's other file systems, the VM's tmpfs and its disks."""
        if self.pid is None:
            return []
        return [m.target for m in read_mounts(self.pid) if m.source != HARNESS_SOURCE]

    def _find_init_pid(self) -> int:
        """The host PID of the VM's PID 1 (the child that ``unshare --fork`` made)."""
        assert self._proc is not None
        children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children")
        for _ in range(100):
            pids = children.read_text().split()
            if pids:
                return int(pids[0])
            time.sleep(0.01)
        raise VmError(f"VM {self.name}: cannot find its init process")

    def _nsenter(self, argv: Sequence[str]) -> list[str]:
        if self.pid is None:
            raise VmError(f"VM {self.name} is not running")
        return [
            "nsenter",
            "--target",
            str(self.pid),
            "--mount",
            "--net",
            "--uts",
            "--pid",
            "--",
            *argv,
        ]

    _enter = _nsenter

    def _enter_env(self) -> dict[str, str]:
        return helper_env()

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a process inside the VM (it dies with the VM)."""
        kwargs.setdefault("env", helper_env())
        return subprocess.Popen(self._nsenter(argv), **kwargs)

    def stop(self, timeout_s: float | None = None) -> None:
        """Thaw, then end PID 1 (the kernel ends every process of the VM and its mounts)."""
        if self._proc is None:
            return
        self.thaw_all()
        self._end_forkserver()
        if self._proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            if self.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGTERM)
        self._reap(15.0 if timeout_s is None else timeout_s)

    def _reap(self, timeout_s: float = 15.0) -> None:
        assert self._proc is not None
        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.thaw_all()
            if self.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            # The kernel now ends every process of the VM; one still in the kernel (D state)
            # holds the namespace a moment longer.
            self._proc.wait(timeout=15.0)
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._proc = None
        self.pid = None

    def __enter__(self) -> HostVM:
        return self.start() if self.pid is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _harness_files() -> list[str]:
    """What the VM's processes run from, read-only there: this package and, for a virtual
    environment, its prefix (a system Python's prefix, ``/usr``, stays copy-on-write)."""
    paths = {PACKAGE_ROOT}
    if sys.prefix != sys.base_prefix:
        paths.add(sys.prefix)
    return sorted(os.path.realpath(p) for p in paths)


def _readline(proc: subprocess.Popen[bytes], timeout_s: float) -> bytes:
    """Read one line from ``proc``'s stdout, giving up after ``timeout_s``."""
    import selectors

    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    buf = b""
    while time.monotonic() < deadline and not buf.endswith(b"\n"):
        if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
    sel.close()
    return buf
