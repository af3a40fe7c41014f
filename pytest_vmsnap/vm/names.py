"""Resource tagging: every image, loop device, mount and VM the harness makes carries a tag.

A tag is ``vmsnap-<6 hex>``, plus ``-gw<N>`` under pytest-xdist, so parallel workers never share
a name and ``vmsnap cleanup`` can find what a crashed run left behind. The tag is always the first
thing in a name (``vmsnap-1a2b3c-gw0-vm1-data.img``) and :func:`tag_of` reads it back.

``VMSNAP_HOME`` (default ``/var/tmp/vmsnap``) is the harness's state directory on the host: pools,
mount dirs and one owner record per live tag (so cleanup can leave a running session alone).

A scratch name that belongs to no run must not read as a tag (``vmsnap_reflink-...``, not
``vmsnap-reflink-...``): every run releases, as it starts, the tags whose owner is gone, and a
name without an owner record counts as one.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

TAG_PREFIX = "vmsnap-"
DEFAULT_HOME = Path("/var/tmp/vmsnap")

# A tag: the prefix, one alphanumeric word, an optional xdist worker id. The lookarounds keep
# ``xvmsnap-...`` or ``vmsnap-ab12cdX`` from matching a different tag than the one meant.
TAG_RE = re.compile(r"(?<![A-Za-z0-9])vmsnap-[a-z0-9]+(?:-gw[0-9]+)?(?![A-Za-z0-9])")
_WORKER_RE = re.compile(r"gw[0-9]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def vmsnap_home() -> Path:
    """The harness's state directory: ``$VMSNAP_HOME`` or ``/var/tmp/vmsnap``."""
    return Path(os.environ.get("VMSNAP_HOME") or DEFAULT_HOME)


def new_tag(worker: str | None = None) -> str:
    """A fresh session tag, ``vmsnap-<6 hex>[-gw<N>]``.

    ``worker`` defaults to ``$PYTEST_XDIST_WORKER``; ids that are not ``gw<N>`` are ignored (the
    random part alone keeps tags apart, the worker id only makes them readable).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "") if worker is None else worker
    tag = TAG_PREFIX + secrets.token_hex(3)
    if _WORKER_RE.fullmatch(worker):
        tag += "-" + worker
    return tag


def is_tag(text: str) -> bool:
    """True if ``text`` is exactly one tag."""
    return TAG_RE.fullmatch(text) is not None


def tag_of(text: str) -> str | None:
    """The tag carried by a name or path (the last one, for nested paths), or None."""
    found = TAG_RE.findall(text)
    return found[-1] if found else None


def component(name: str) -> str:
    """``name`` made safe for file names, container names and mount dirs."""
    safe = _UNSAFE.sub("_", name).lstrip(".")
    if not safe:
        raise ValueError(f"empty name: {name!r}")
    return safe


def vm_name(tag: str, name: str) -> str:
    """The name of a VM (or container) of this session: ``<tag>-<name>``."""
    return f"{_check(tag)}-{component(name)}"


def image_name(tag: str, vm: str, disk: str) -> str:
    """The file name of one VM disk image: ``<tag>-<vm>-<disk>.img``."""
    return f"{_check(tag)}-{component(vm)}-{component(disk)}.img"


def pool_image(home: Path, tag: str, fs: str = "xfs") -> Path:
    """The sparse image behind the session's reflink pool (``<tag>-pool.img`` for xfs)."""
    return Path(home) / f"{_pool_base(tag, fs)}.img"


def pool_dir(home: Path, tag: str, fs: str = "xfs") -> Path:
    """Where the session's pool is mounted (``<home>/<tag>-pool/`` for xfs)."""
    return Path(home) / _pool_base(tag, fs)


def mount_dir(home: Path, tag: str, vm: str, disk: str) -> Path:
    """A host-side mount dir for one VM disk: ``<home>/<tag>-mnt/<vm>/<disk>``."""
    return Path(home) / f"{_check(tag)}-mnt" / component(vm) / component(disk)


def owner_file(home: Path, tag: str) -> Path:
    """The record of which process owns ``tag``: ``<home>/<tag>.owner``."""
    return Path(home) / f"{_check(tag)}.owner"


def claim(home: Path, tag: str) -> Path:
    """Record this process as the owner of ``tag`` (cleanup leaves live owners alone)."""
    path = owner_file(home, tag)
    path.parent.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    record = {"pid": pid, "start": _start_time(pid), "boot": _boot_id()}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)
    return path


def owner_alive(home: Path, tag: str) -> bool | None:
    """Is the process that claimed ``tag`` still running? None if no one claimed it.

    Compares the process start time and boot id too, so a reused PID is not mistaken for the
    owner; a zombie counts as dead.
    """
    try:
        record = json.loads(owner_file(home, tag).read_text())
        pid = int(record["pid"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return False  # unreadable record: nobody can be relying on it
    if record.get("boot") != _boot_id():
        return False
    start = _start_time(pid)
    return start is not None and start == record.get("start")


def _check(tag: str) -> str:
    if not is_tag(tag):
        raise ValueError(f"not a vmsnap tag: {tag!r}")
    return tag


def _pool_base(tag: str, fs: str) -> str:
    return f"{_check(tag)}-pool" if fs == "xfs" else f"{_check(tag)}-{component(fs)}pool"


def _start_time(pid: int) -> str | None:
    """Start time of a live (non-zombie) process, in clock ticks since boot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after its closing one.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""
