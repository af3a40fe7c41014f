"""PID 1 of a container stand-in VM (the controller's side is
:mod:`pytest_vmsnap.vm.docker.container`).

Run inside the container as ``/usr/bin/python3 -m pytest_vmsnap.vm.guest.container_init init
SPEC``: it seals off this host's file systems (:func:`seal_host_mounts`), puts tmpfs on ``/tmp``
and ``/run``, mounts each disk at its real path, prints ``READY`` and waits. On SIGTERM
(``docker stop``), or when the controller dies (it holds an ``flock`` on
:data:`CONTROLLER_LOCK`; the init's own ``flock`` on it then returns), it thaws every disk,
ends every other process of the VM, unmounts the disks and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from ..linux import MNT_DETACH, MS_BIND, MS_NODEV, MS_RDONLY, mount, read_mounts, run, thaw, umount
from .identity import take_hostname
from .rootfs import HARNESS_SOURCE, PSEUDO_FS
from .vminit import serve_as_init

CONTROLLER_LOCK = "/.vmsnap/controller.lock"
"""Inside the VM: the lock file the controller holds while it lives."""


def seal_host_mounts(own: list[str]) -> None:
    """Leave no path in the VM on a file system of this host, which a script's ``fsfreeze``
    would freeze (FIFREEZE needs only CAP_SYS_ADMIN, which the VM has). Docker binds files of
    this host (``/etc/hosts``, ``/etc/resolv.conf``, ``/etc/hostname``): each becomes a copy in
    the container's own layer. A directory bound from this host (our package) becomes a
    read-only overlay over the detached bind, which no path reaches any more. Disk mounts in
    ``own`` and pseudo file systems stay; a root that is not an overlay (a storage driver that
    puts containers on this host's file system) is refused."""
    mounts = {m.target: m for m in read_mounts()}  # the topmost mount of each path
    if mounts["/"].fstype != "overlay":
        raise OSError(
            f"the container's root is on {mounts['/'].fstype}, a file system of this host that "
            "a script could freeze: use Docker's overlay2 storage driver"
        )
    for i, (target, m) in enumerate(mounts.items()):
        if target == "/" or target in own or m.fstype in PSEUDO_FS or m.fstype == "tmpfs":
            continue
        if os.path.isfile(target):
            with open(target, "rb") as f:
                content = f.read(1 << 20)
            umount(target, MNT_DETACH)
            with open(target, "wb") as f:
                f.write(content)
        elif os.path.isdir(target):
            # An overlay's layer must be attached when it is made; it keeps the bind alive
            # once detached. Made aside, then bound in its place.
            aside = f"/run/.vmsnap-seal/{i}"
            os.makedirs(f"{aside}/empty")
            os.makedirs(f"{aside}/view")
            fd = os.open(target, os.O_PATH | os.O_CLOEXEC)
            try:
                data = f"lowerdir=/proc/self/fd/{fd}:{aside}/empty"
                mount(HARNESS_SOURCE, f"{aside}/view", "overlay", MS_RDONLY | MS_NODEV, data)
            finally:
                os.close(fd)
            umount(target, MNT_DETACH)
            mount(f"{aside}/view", target, "", MS_BIND)
            umount(f"{aside}/view", MNT_DETACH)


def _build(spec: dict[str, Any]) -> None:
    """Private /tmp and /run (as the host stand-in has), this host's file systems sealed off,
    then the disks at their real paths."""
    run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=512m", "vmsnap-tmp", "/tmp"])
    run(["mount", "-t", "tmpfs", "-o", "mode=755,size=256m", "vmsnap-run", "/run"])
    for sub in ("lock", "user"):
        os.makedirs(f"/run/{sub}", exist_ok=True)
    os.chmod("/run/lock", 0o1777)
    seal_host_mounts([m["target"] for m in spec.get("mounts", [])])
    # Docker set the name; with network "none" its /etc/hosts does not resolve it.
    take_hostname(socket.gethostname())
    for m in spec.get("mounts", []):
        os.makedirs(m["target"], exist_ok=True)
        argv = ["mount", "-t", m["fs"]]
        if m.get("options"):
            argv += ["-o", ",".join(m["options"])]
        run([*argv, m["dev"], m["target"]])


def _reap_all(deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.02)


def _shutdown(targets: list[str]) -> None:
    """Thaw, end every other process of the VM, unmount the disks (deepest first)."""
    for target in reversed(targets):
        thaw(target)
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGKILL)  # from PID 1: every process of the VM but this one
    _reap_all(time.monotonic() + 10)
    for target in reversed(targets):
        thaw(target)
        done = subprocess.run(["umount", target], capture_output=True, text=True)
        if done.returncode:
            subprocess.run(["umount", "-l", target], capture_output=True)


def init_main(spec_json: str) -> int:
    """PID 1 of a container stand-in: build, print READY, wait, then shut down cleanly."""
    spec = json.loads(spec_json)
    targets = [m["target"] for m in spec.get("mounts", [])]

    def watch_controller(stop: threading.Event) -> None:
        # The controller holds an exclusive flock on this file while it lives (the host's
        # process is invisible from here): once ours is granted, the controller is gone.
        import fcntl

        try:
            fd = os.open(CONTROLLER_LOCK, os.O_RDONLY)
        except OSError:
            return  # started by hand, without a controller: wait for a signal only
        fcntl.flock(fd, fcntl.LOCK_EX)
        stop.set()

    return serve_as_init(
        lambda: _build(spec), targets, watch_controller, lambda: _shutdown(targets)
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "init":
        return init_main(argv[1])
    print(f"usage: python -m {__spec__.name} init SPEC_JSON", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
