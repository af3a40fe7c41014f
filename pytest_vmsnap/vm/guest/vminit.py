"""PID 1 of a host stand-in VM: builds the VM's private view of the machine, then waits.

Run by :mod:`pytest_vmsnap.vm.host` as
``unshare --mount --net --uts --pid --fork --mount-proc --propagation private python -m
pytest_vmsnap.vm.guest.vminit SPEC_JSON``. It brings up a private loopback, makes the VM's
root a copy-on-write view of this host with the VM's disks at their real paths
(:mod:`.rootfs`: writes land in memory, no file system of the host is reachable), gives it
its own host name (:mod:`.identity`), prints
``READY`` and waits.

It ends when its stdin closes (the controller died or asked it to), or on SIGTERM, SIGINT or
SIGHUP. Before it exits it thaws every disk mount: the kernel then kills every process of the VM
and drops the mounts, and a frozen file system must never be unmounted.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..linux import run, thaw
from .identity import take_hostname
from .rootfs import RootSpec, build_root


def build(spec: dict) -> dict[str, list[str]]:
    """Make this mount namespace the VM described by ``spec`` (see :mod:`.rootfs`); what the
    controller should know: the host paths the VM sees empty (``not_shown``)."""
    run(["ip", "link", "set", "lo", "up"])
    root = RootSpec(
        disks=spec.get("mounts", []),
        readonly=spec.get("readonly", []),
        hidden=spec.get("hidden", []),
    )
    not_shown = build_root(root)
    for m in spec.get("mounts", []):
        if m.get("owner"):
            uid, gid = m["owner"]
            os.chown(m["target"], uid, gid)
    if spec.get("hostname"):
        take_hostname(spec["hostname"])
    return {"not_shown": not_shown}


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM, SIGINT or SIGHUP: how a VM's PID 1 is asked to end."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    return stop


def serve_as_init(
    build_vm: Callable[[], dict[str, Any] | None],
    disks: list[str],
    watch: Callable[[threading.Event], None],
    shutdown: Callable[[], None],
) -> int:
    """A VM's PID 1, host or container: build the VM, print ``READY`` and a JSON object
    (``pid`` and what ``build_vm`` returned), or ``FAILED`` and one line (thawing the disks);
    reap every orphan of the VM until a signal or ``watch`` (a thread watching the
    controller) says stop, then ``shutdown``."""
    stop = stop_on_signals()
    try:
        info = build_vm() or {}
    except Exception as err:  # one line for the controller, never a traceback
        print(f"FAILED {' '.join(str(err).split())}", flush=True)
        for target in reversed(disks):
            thaw(target)
        return 1
    print("READY " + json.dumps({"pid": os.getpid(), **info}), flush=True)
    threading.Thread(target=watch, args=(stop,), daemon=True).start()
    while not stop.is_set():
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pid = 0
        if pid == 0:
            stop.wait(0.2)
    shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(argv[0])
    mounts = [m["target"] for m in spec.get("mounts", [])]

    def watch_stdin(stop: threading.Event) -> None:
        # EOF on stdin: the controller is gone (crashed, killed) or closed it on purpose.
        # The raw descriptor, not sys.stdin: a daemon thread blocked inside the buffered
        # reader holds its lock, and the interpreter's exit then waits a second for it.
        while os.read(0, 4096):
            pass
        stop.set()

    def thaw_disks() -> None:
        # The kernel unmounts them as the namespace ends: none may be frozen then.
        for target in reversed(mounts):
            thaw(target)

    return serve_as_init(lambda: build(spec), mounts, watch_stdin, thaw_disks)


if __name__ == "__main__":
    sys.exit(main())
