"""The ``devmapper`` backend: dm-snapshot tables, planned as pure functions; a kernel without
device-mapper makes it report itself unavailable, and then it never runs anything.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VmError
from ..model import Disk
from .base import SECTOR_BYTES, Snapshot, SnapshotBackend


class DevmapperBackend(SnapshotBackend):
    """dm-snapshot of each disk (as LVM does it); only planned here, see :func:`plan_dm_disk`.

    The kernel of this machine has no device-mapper, so :meth:`available` says no and
    :meth:`take` raises VmError with that reason.
    """

    name = "devmapper"
    freeze_compatible = True

    def __init__(
        self,
        pool: Path | None = None,
        *,
        proc_misc: Path = Path("/proc/misc"),
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        super().__init__(pool)
        self.proc_misc = proc_misc
        self.which = which

    def available(self) -> tuple[bool, str]:
        try:
            misc = self.proc_misc.read_text()
        except OSError as err:
            return False, f"cannot read {self.proc_misc}: {err.strerror}"
        if not any(line.split()[1:] == ["device-mapper"] for line in misc.splitlines()):
            return False, (
                f"the kernel has no device-mapper driver ({self.proc_misc} has no "
                "device-mapper entry, so /dev/mapper/control has nothing behind it)"
            )
        if self.which("dmsetup") is None:
            return False, "dmsetup is not installed"
        return True, "device-mapper driver and dmsetup are present"

    def take(self, disks: Sequence[Disk], dest_dir: Path, skew_s: float = 0.0) -> Snapshot:
        ok, reason = self.available()
        if not ok:
            raise VmError(f"devmapper snapshot unavailable: {reason}")
        # The tables are planned and unit-tested, but running them needs the disks attached
        # through dm origins from the start; never exercised on a machine with device-mapper.
        raise VmError(
            "devmapper snapshot: executing the planned dm tables is not implemented "
            "(see plan_dm_disk); use reflink, copy or btrfs"
        )


# --------------------------------------------------------------------------- dm-snapshot plans


def sectors(size_bytes: int) -> int:
    """``size_bytes`` in 512-byte sectors (device-mapper's unit); it must divide evenly."""
    if size_bytes <= 0 or size_bytes % SECTOR_BYTES:
        raise VmError(f"device size {size_bytes} is not a positive multiple of {SECTOR_BYTES}")
    return size_bytes // SECTOR_BYTES


def linear_table(length: int, device: str, offset: int = 0) -> str:
    """``linear`` target: ``length`` sectors of ``device`` from ``offset``."""
    return f"0 {length} linear {device} {offset}"


def origin_table(length: int, real_device: str) -> str:
    """``snapshot-origin`` target: the device the file system uses; writes to it copy the old
    chunks out to every snapshot of ``real_device`` first."""
    return f"0 {length} snapshot-origin {real_device}"


def snapshot_table(
    length: int, real_device: str, cow_device: str, persistent: bool = True, chunk: int = 8
) -> str:
    """``snapshot`` target: ``real_device`` as it was, with overwritten chunks in ``cow_device``.

    ``chunk`` is in sectors (8 = 4 KiB) and must be a power of two; ``P`` keeps the exception
    store on the COW device across reboots, ``N`` does not.
    """
    if chunk < 1 or chunk & (chunk - 1):
        raise VmError(f"chunk size {chunk} is not a power of two")
    return f"0 {length} snapshot {real_device} {cow_device} {'P' if persistent else 'N'} {chunk}"


@dataclass(frozen=True)
class DmDiskPlan:
    """What device-mapper would do for one disk: names, tables and dmsetup commands."""

    disk: str
    length: int
    real: str
    origin: str
    snap: str
    tables: dict[str, str]
    attach: list[list[str]] = field(default_factory=list)
    """Run when the disk is attached; the file system then lives on ``/dev/mapper/ORIGIN``."""
    take: list[list[str]] = field(default_factory=list)
    """Run (with the file system frozen) to take the snapshot."""
    drop: list[list[str]] = field(default_factory=list)
    """Removes the snapshot device (the COW loop device is then detached by its owner)."""
    detach: list[list[str]] = field(default_factory=list)
    """Removes the origin and real devices when the disk is detached."""


def _dm_name(*parts: str) -> str:
    name = "-".join(parts)
    if "/" in name or not name or len(name) > 127:
        raise VmError(f"invalid device-mapper name {name!r}")
    return name


def plan_dm_disk(
    disk: str, loopdev: str, cow_loopdev: str, size_bytes: int, tag: str, prefix: str = "vmsnap"
) -> DmDiskPlan:
    """Plan a dm-snapshot of one disk, the way LVM does it.

    ``PREFIX-DISK-real`` is a linear map of the disk's loop device, ``PREFIX-DISK`` the
    snapshot-origin the file system lives on, and ``PREFIX-DISK-TAG`` the snapshot, whose COW
    store is ``cow_loopdev`` (a fresh sparse file as large as the disk, so it can never fill up
    and invalidate the snapshot; zeros there mean "new store" to the kernel).
    """
    length = sectors(size_bytes)
    real, origin, snap = (
        _dm_name(prefix, disk, "real"),
        _dm_name(prefix, disk),
        _dm_name(prefix, disk, tag),
    )
    real_dev = f"/dev/mapper/{real}"
    tables = {
        real: linear_table(length, loopdev),
        origin: origin_table(length, real_dev),
        snap: snapshot_table(length, real_dev, cow_loopdev),
    }
    attach = [
        ["dmsetup", "create", real, "--table", tables[real]],
        ["dmsetup", "create", origin, "--table", tables[origin]],
    ]
    take = [
        # The cycle has frozen the file system already: no second freeze by dm (--nolockfs).
        ["dmsetup", "suspend", "--nolockfs", origin],
        ["dmsetup", "create", snap, "--table", tables[snap]],
        ["dmsetup", "resume", origin],
    ]
    drop = [["dmsetup", "remove", snap]]
    detach = [["dmsetup", "remove", origin], ["dmsetup", "remove", real]]
    return DmDiskPlan(disk, length, real, origin, snap, tables, attach, take, drop, detach)
