"""The host stand-in's root: a copy-on-write view of this whole host, built by the VM's init.

Inside the VM's own mount namespace, :func:`build_root` makes a new root and pivots into it:

- every file system of this host is an overlay whose lower layer is the host's and whose upper
  layer is a tmpfs of the VM (``/`` and each real mount below it): scripts read the host's
  programs and write only to memory the VM throws away. An overlay cannot be frozen, so a
  script's ``fsfreeze`` reaches no file system of this host;
- loop-backed mounts (pools and disks of any run) and the harness's state directory are not
  shown; pseudo file systems are not copied: ``/proc`` is the VM's own (its PID namespace),
  ``/sys`` a read-only sysfs of its network namespace, ``/dev`` a tmpfs with the usual
  character devices, a private ``/dev/pts`` and ``/dev/shm``, and the device nodes of the
  VM's own disks only; ``/tmp`` and ``/run`` are fresh tmpfs;
- the harness's own files (its package, its virtual environment) are read-only overlays;
- the VM's disks are mounted at their real paths.

Everything is mounted with ``mount(2)`` and layers are named ``/proc/self/fd/N`` (held before
anything is hidden), so no path needs escaping. What could not be overlaid (a FUSE mount root
cannot read, say) stays an empty directory of the root overlay, and is returned.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import linux
from ..linux import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MountEntry

SCRATCH = "/run"
"""Where, in the host's view inside the namespace, the uppers live until the pivot (this
namespace's /run is hidden from the VM anyway)."""
NEW_ROOT = f"{SCRATCH}/root"
NOT_COPIED = ("/proc", "/sys", "/dev", "/tmp", "/run")
PSEUDO_FS = frozenset(
    {
        "proc", "sysfs", "devtmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "nsfs",
        "securityfs", "debugfs", "tracefs", "pstore", "bpf", "configfs", "fusectl",
        "hugetlbfs", "autofs", "binfmt_misc", "efivarfs", "selinuxfs", "rpc_pipefs", "nfsd",
    }
)  # fmt: skip
CHAR_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
HARNESS_SOURCE = "vmsnap-harness"
"""The source name of the read-only mounts that hold the harness's files."""
COPIED_FILE_MAX = 1 << 20


@dataclass
class RootSpec:
    """What the new root holds beyond the host's files."""

    disks: list[dict[str, Any]] = field(default_factory=list)
    """``{"dev", "target", "fs", "options"}`` per disk, in mount order."""
    readonly: list[str] = field(default_factory=list)
    """The harness's directories: shown read-only."""
    hidden: list[str] = field(default_factory=list)
    """Directories shown empty and read-only (the harness's state: every run's pool)."""


def _under(path: str, tops: Sequence[str]) -> bool:
    return any(path == t or path.startswith(t.rstrip("/") + "/") for t in tops)


def copied_mounts(mounts: Sequence[MountEntry], hidden: Sequence[str]) -> list[MountEntry]:
    """The host's mounts the VM sees copy-on-write: real file systems (not pseudo ones, not
    loop-backed images of any run, nothing under ``/proc``, ``/sys``, ``/dev``, ``/tmp``,
    ``/run`` or ``hidden``), those not covered by a later mount, parents first."""
    # Mount-table order: a later mount on a path, or on a directory above it, covers it.
    visible = [
        m
        for i, m in enumerate(mounts)
        if not any(_under(m.target, [later.target]) for later in mounts[i + 1 :])
    ]
    keep = [
        m
        for m in visible
        if m.target != "/"
        and m.fstype not in PSEUDO_FS
        and not m.source.startswith("/dev/loop")
        and not _under(m.target, NOT_COPIED)
        and not _under(m.target, hidden)
    ]
    return sorted(keep, key=lambda m: m.target.count("/"))


class _Builder:
    def __init__(self) -> None:
        self.layers = 0
        self.skipped: list[str] = []

    def inside(self, path: str) -> str:
        return NEW_ROOT + path if path != "/" else NEW_ROOT

    def overlay(self, lower_fd: int, target: str, *, readonly: bool = False) -> None:
        """``target`` (inside the new root) shows the directory ``lower_fd`` copy-on-write,
        or read-only."""
        self.layers += 1
        state = f"{SCRATCH}/layers/{self.layers}"
        lower = f"/proc/self/fd/{lower_fd}"
        if readonly:  # two lower layers and no upper: an overlay nothing can write to
            os.makedirs(f"{state}/empty")
            data = f"lowerdir={lower}:{state}/empty"
            flags = MS_RDONLY | MS_NODEV
        else:
            os.makedirs(f"{state}/upper")
            os.makedirs(f"{state}/work")
            data = f"lowerdir={lower},upperdir={state}/upper,workdir={state}/work"
            flags = 0
        name = HARNESS_SOURCE if readonly else "vmsnap-root"
        linux.mount(name, target, "overlay", flags, data)

    def tmpfs(self, target: str, options: str, flags: int = MS_NOSUID | MS_NODEV) -> None:
        os.makedirs(target, exist_ok=True)
        linux.mount("vmsnap-tmpfs", target, "tmpfs", flags, options)


@contextlib.contextmanager
def _held(paths: Sequence[str]) -> Iterator[dict[str, int]]:
    """``O_PATH`` descriptors of ``paths`` (those that exist), closed on exit."""
    fds: dict[str, int] = {}
    try:
        for p in paths:
            with contextlib.suppress(OSError):
                fds[p] = os.open(p, os.O_PATH | os.O_CLOEXEC)
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


def build_root(spec: RootSpec) -> list[str]:
    """Build the VM's root as the module says and pivot into it; the host paths that could
    not be shown (each is an empty directory in the VM). Runs as the VM's init, in its own
    mount, PID and network namespaces; OSError (one line) if a step fails."""
    mounts = copied_mounts(linux.read_mounts(), [*spec.hidden, *spec.readonly])
    b = _Builder()
    with _held(["/", *(m.target for m in mounts), *spec.readonly]) as fds:
        b.tmpfs(SCRATCH, "mode=700,size=25%")
        os.makedirs(NEW_ROOT)
        b.overlay(fds["/"], NEW_ROOT)
        for m in mounts:
            target = b.inside(m.target)
            fd = fds.get(m.target)
            try:
                if fd is None:
                    raise OSError(f"cannot open {m.target}")
                if os.path.isdir(f"/proc/self/fd/{fd}"):
                    b.overlay(fd, target)
                else:  # a file mounted on its own (a container's /etc/hosts): a copy
                    _copy_file(f"/proc/self/fd/{fd}", target)
            except OSError:
                b.skipped.append(m.target)
        _pseudo(b, spec)
        for path in spec.readonly:
            if path in fds:
                os.makedirs(b.inside(path), exist_ok=True)
                b.overlay(fds[path], b.inside(path), readonly=True)
    for path in spec.hidden:
        if not _under(path, NOT_COPIED) and os.path.isdir(path):
            os.makedirs(b.inside(path), exist_ok=True)
            linux.mount(HARNESS_SOURCE, b.inside(path), "tmpfs", MS_RDONLY, "mode=755,size=4k")
    for disk in spec.disks:
        target = b.inside(str(disk["target"]))
        os.makedirs(target, exist_ok=True)
        argv = ["mount", "-t", str(disk["fs"])]
        if disk.get("options"):  # mount(8): it tells flags (noatime) from the fs's options
            argv += ["-o", ",".join(disk["options"])]
        linux.run([*argv, str(disk["dev"]), target])
    os.chdir(NEW_ROOT)
    linux.pivot_root_here()
    return b.skipped


def _copy_file(src: str, target: str) -> None:
    if os.path.getsize(src) > COPIED_FILE_MAX:
        raise OSError(f"{src}: too large to copy")
    if not os.path.isfile(target):
        raise OSError(f"{target}: no file to copy onto")
    shutil.copyfile(src, target)


def _pseudo(b: _Builder, spec: RootSpec) -> None:
    """The VM's own ``/proc``, ``/sys``, ``/dev``, ``/tmp`` and ``/run``."""
    linux.mount("proc", b.inside("/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    sys_flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    try:
        linux.mount("sysfs", b.inside("/sys"), "sysfs", sys_flags)
    except OSError:  # no sysfs of our own here: the host's, read-only
        linux.mount("/sys", b.inside("/sys"), "", MS_BIND | linux.MS_REC)
        linux.mount("", b.inside("/sys"), "", linux.MS_REMOUNT | MS_BIND | sys_flags)
    dev = b.inside("/dev")
    b.tmpfs(dev, "mode=755,size=64k", MS_NOSUID | MS_NOEXEC)
    disk_devs = [str(d["dev"]) for d in spec.disks]
    for node in [*(f"/dev/{n}" for n in CHAR_DEVICES), *disk_devs]:
        if not os.path.exists(node):
            continue
        target = b.inside(node)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w"):
            pass
        linux.mount(node, target, "", MS_BIND)
    os.makedirs(f"{dev}/pts")
    linux.mount(
        "devpts",
        f"{dev}/pts",
        "devpts",
        MS_NOSUID | MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=620",
    )
    os.symlink("pts/ptmx", f"{dev}/ptmx")
    b.tmpfs(f"{dev}/shm", "mode=1777,size=25%")
    for name, to in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(to, f"{dev}/{name}")
    b.tmpfs(b.inside("/tmp"), "mode=1777,size=512m")
    b.tmpfs(b.inside("/run"), "mode=755,size=256m")
    for sub in ("lock", "user"):
        os.makedirs(b.inside(f"/run/{sub}"))
    os.chmod(b.inside("/run/lock"), 0o1777)
