"""Snapshot backends for a stand-in VM's disks: reflink, copy, btrfs and devmapper.

A backend takes a point-in-time copy of every disk image of one VM into a new directory of the
pool, and :func:`restore` turns such a snapshot into fresh disks for a new stand-in VM without
ever touching the snapshot itself.

- ``reflink``: ``ioctl(FICLONE)`` of each image (XFS with ``reflink=1`` or btrfs pool); takes
  milliseconds whatever the data size.
- ``copy``: a real sparse copy (``cp --sparse=always --reflink=never``); works on any file
  system, and its time grows with the data.
- ``btrfs``: the VM's images live in one btrfs subvolume (see :func:`create_subvolume`); the
  snapshot is ``btrfs subvolume snapshot -r`` of it, atomic across all disks of the VM.
- ``devmapper``: dm-snapshot tables, planned as pure functions; this machine's kernel has no
  device-mapper, so it reports itself unavailable and never runs anything.

Disks are snapshotted one after the other, with ``skew_s`` seconds between two disks, so a
harness can show what happens to a database spread over several disks when the disks are not
snapshotted at one instant. ``btrfs`` is atomic and ignores the skew.

Freezing: the cycle freezes the VM's *inner* file systems (the ext4/xfs/btrfs inside the images),
never the pool that holds the images. That is what makes every backend here freeze-compatible,
``btrfs`` included: ``btrfs subvolume snapshot`` on a *frozen* btrfs hangs in D state until the
thaw, so the pool a btrfs snapshot is taken of must never be one of the frozen mounts.
"""

from .base import Snapshot, SnapshotBackend, SnapshotDisk
from .btrfs import BtrfsBackend, create_subvolume, delete_subvolume
from .copy import CopyBackend
from .devmapper import DevmapperBackend
from .lifecycle import BackendSnapshotter, delete, delete_restored, restore
from .reflink import ReflinkBackend
from .select import BACKENDS, get_backend, select_backend

__all__ = [
    "BACKENDS",
    "BackendSnapshotter",
    "BtrfsBackend",
    "CopyBackend",
    "DevmapperBackend",
    "ReflinkBackend",
    "Snapshot",
    "SnapshotBackend",
    "SnapshotDisk",
    "create_subvolume",
    "delete",
    "delete_restored",
    "delete_subvolume",
    "get_backend",
    "restore",
    "select_backend",
]
