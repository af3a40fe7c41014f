"""The host stand-in VM: private mount, network and PID namespaces on this machine.

The VM's disks are mounted at their real paths (``/var/lib/postgresql``...), ``/etc``,
``/var/lib`` and the other places users keep scripts and logs (``/opt``, ``/srv``, ``/root``,
``/home``, ``/usr/local``, ``/var/log``...) are copy-on-write overlays whose writes stay in the VM,
``/tmp`` and ``/run`` are private, loopback is the VM's own (default ports never collide between
VMs), and ending the VM's PID 1 ends every process in it.
Users' scripts run unchanged with their production paths. Loop devices are not namespaced:
their owner (:mod:`.disks`) releases them.
"""

from __future__ import annotations

import contextlib
import json
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
from .helpers import PACKAGE_ROOT, helper_env
from .linux import parse_mountinfo
from .model import Disk


class HostVM(StandIn):
    """A stand-in VM made of namespaces; processes enter it through ``nsenter``."""

    kind = "host"

    def __init__(
        self,
        name: str,
        disks: Sequence[Disk],
        *,
        tag: str = "",
        overlays: Sequence[str] | None = None,
        shared: Sequence[Path] = (),
    ) -> None:
        self.name = name
        self.tag = tag
        self.shared = [str(p) for p in shared]
        """This host's directories the VM writes to (the run directory with the workload's
        history); the rest of the state directory is read-only inside it."""
        self.disks = list(disks)
        self.overlays = list(overlays) if overlays is not None else default_overlays()
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
            "overlays": self.overlays,
            "keep": _must_stay_visible(),
            # Other runs' pool images and owner records live there: read-only in this VM.
            "readonly": [os.path.realpath(names.vmsnap_home())],
            "writable": self.shared,
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
        return self

    @property
    def private_dirs(self) -> list[str]:
        """Directories whose writes stay inside the VM (overlays, tmpfs, the VM's disks)."""
        return [*self.overlays, "/tmp", "/run", *(d.spec.mountpoint for d in self.disks)]

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
        return ["nsenter", "--target", str(self.pid), "--mount", "--net", "--pid", "--", *argv]

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


ALWAYS_PRIVATE = ("/etc", "/var/lib")
MORE_PRIVATE = (
    "/opt",
    "/srv",
    "/root",
    "/home",
    "/usr/local",
    "/var/log",
    "/var/opt",
    "/var/backups",
    "/var/spool",
    "/var/cache",
    "/var/mail",
)


def default_overlays(mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """The directories a VM overlays: always ``/etc`` and ``/var/lib``; the others when they
    exist and hold no mount of this host (an overlay would hide it)."""
    try:
        targets = [m.target for m in parse_mountinfo(Path(mountinfo).read_text())]
    except OSError:
        targets = []
    keep = list(ALWAYS_PRIVATE)
    for d in MORE_PRIVATE:
        if (
            os.path.isdir(d)
            and not os.path.islink(d)
            and not any(t == d or t.startswith(d + "/") for t in targets)
        ):
            keep.append(d)
    return keep


def _must_stay_visible() -> list[str]:
    """What processes inside the VM need from this host: our Python, this package, the pool."""
    paths = {
        sys.prefix,
        sys.base_prefix,
        PACKAGE_ROOT,
        str(names.vmsnap_home()),
    }
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
