"""PID 1 of a host stand-in VM: builds the VM's private view of the machine, then waits.

Run by :mod:`pytest_vmsnap.vm.host` as
``unshare --mount --net --pid --fork --mount-proc --propagation private python -m
pytest_vmsnap.vm.guest.vminit SPEC_JSON``. It brings up a private loopback, puts tmpfs on
``/tmp`` and ``/run``, overlays ``/etc`` and ``/var/lib`` (writes land in memory, the host's
files are never touched), mounts the VM's disks at their real paths, prints ``READY`` and waits.

It ends when its stdin closes (the controller died or asked it to), or on SIGTERM, SIGINT or
SIGHUP. Before it exits it thaws every disk mount: the kernel then kills every process of the VM
and drops the mounts, and a frozen file system must never be unmounted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

from ..linux import read_mounts, run, thaw

OVERLAY_STATE = "/run/.vmsnap-overlay"


def _under(path: str, tops: tuple[str, ...]) -> bool:
    return any(path == t or path.startswith(t + "/") for t in tops)


def _drop_foreign_loop_mounts(spec: dict) -> None:
    """Detach, in this namespace only, the loop-backed mounts of other runs.

    A new mount namespace starts with a copy of every host mount, other sessions' pools
    included; a copy would keep their loop devices bound until this VM ends. Ours are the
    VM's disks and the mounts whose path carries the VM's tag (its pool).
    """
    ours = {m["target"] for m in spec.get("mounts", [])}
    tag = spec.get("tag") or "\0"
    for m in sorted(read_mounts(), key=lambda m: -m.target.count("/")):
        if m.source.startswith("/dev/loop") and m.target not in ours and tag not in m.target:
            subprocess.run(["umount", "-l", m.target], capture_output=True)


def build(spec: dict) -> None:
    """Make this mount namespace look like the VM described by ``spec``."""
    run(["ip", "link", "set", "lo", "up"])
    # Paths the VM must still see under the private /tmp and /run (the Python that runs our
    # code, this package, the pool): held by descriptor, bound back after the tmpfs mounts.
    kept = {
        p: os.open(p, os.O_PATH | os.O_DIRECTORY)
        for p in spec.get("keep", [])
        if _under(p, ("/tmp", "/run")) and os.path.isdir(p)
    }
    run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=512m", "vmsnap-tmp", "/tmp"])
    run(["mount", "-t", "tmpfs", "-o", "mode=755,size=256m", "vmsnap-run", "/run"])
    for path, fd in kept.items():
        os.makedirs(path, exist_ok=True)
        run(["mount", "--no-canonicalize", "--rbind", f"/proc/{os.getpid()}/fd/{fd}", path])
        os.close(fd)
    for sub in ("lock", "user"):
        os.makedirs(f"/run/{sub}", exist_ok=True)
    os.chmod("/run/lock", 0o1777)
    for lower in spec.get("overlays", ["/etc", "/var/lib"]):
        state = f"{OVERLAY_STATE}{lower}"
        os.makedirs(f"{state}/upper", exist_ok=True)
        os.makedirs(f"{state}/work", exist_ok=True)
        run(
            [
                "mount",
                "-t",
                "overlay",
                f"vmsnap-ovl{lower.replace('/', '-')}",
                "-o",
                f"lowerdir={lower},upperdir={state}/upper,workdir={state}/work",
                lower,
            ]
        )
    for m in spec.get("mounts", []):
        os.makedirs(m["target"], exist_ok=True)
        argv = ["mount", "-t", m["fs"]]
        if m.get("options"):
            argv += ["-o", ",".join(m["options"])]
        run([*argv, m["dev"], m["target"]])
        if m.get("owner"):
            uid, gid = m["owner"]
            os.chown(m["target"], uid, gid)
    _drop_foreign_loop_mounts(spec)
    # This host's directories the VM must see but not change (other runs' images and owner
    # records): a read-only copy of each, its own pool mounted below it staying writable;
    # then the directories it does write to (its run directory), writable again.
    for path in spec.get("readonly", []):
        if os.path.isdir(path):
            run(["mount", "--rbind", path, path])
            run(["mount", "-o", "remount,bind,ro", path])
    for path in spec.get("writable", []):
        if os.path.isdir(path):
            run(["mount", "--bind", path, path])
    if spec.get("hostname"):
        # Only the UTS namespace would make this private; we record it instead of setting it.
        os.environ["VMSNAP_VM"] = spec["hostname"]


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM, SIGINT or SIGHUP: how a VM's PID 1 is asked to end."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    return stop


def serve_as_init(
    build_vm: Callable[[], None],
    disks: list[str],
    watch: Callable[[threading.Event], None],
    shutdown: Callable[[], None],
) -> int:
    """A VM's PID 1, host or container: build the VM, print ``READY`` (or ``FAILED`` and one
    line, thawing the disks), reap every orphan of the VM until a signal or ``watch`` (a
    thread watching the controller) says stop, then ``shutdown``."""
    stop = stop_on_signals()
    try:
        build_vm()
    except Exception as err:  # one line for the controller, never a traceback
        print(f"FAILED {' '.join(str(err).split())}", flush=True)
        for target in reversed(disks):
            thaw(target)
        return 1
    print("READY " + json.dumps({"pid": os.getpid()}), flush=True)
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
