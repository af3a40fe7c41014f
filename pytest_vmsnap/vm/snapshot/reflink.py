"""The ``reflink`` backend: ``ioctl(FICLONE)`` of each image (XFS with ``reflink=1`` or a btrfs
pool); milliseconds whatever the data size.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..errors import VmError
from ..linux import fs_type
from .base import SnapshotBackend, reflink_file


class ReflinkBackend(SnapshotBackend):
    """FICLONE of each image: milliseconds, needs an XFS (``reflink=1``) or btrfs pool."""

    name = "reflink"
    freeze_compatible = True

    def available(self) -> tuple[bool, str]:
        if self.pool is None:
            return False, "reflink needs a pool directory to probe (XFS with reflink=1 or btrfs)"
        return probe_reflink(self.pool)

    def _copy(self, src: Path, dst: Path) -> None:
        try:
            reflink_file(src, dst)
        except OSError as err:
            raise VmError(
                f"reflink {src} -> {dst} failed: {err.strerror}; the pool must be XFS with "
                "reflink=1 or btrfs, and the snapshot on the same file system"
            ) from err


def probe_reflink(directory: Path) -> tuple[bool, str]:
    """Try one FICLONE inside ``directory`` (with two small scratch files removed afterwards)."""
    tag = f".vmsnap_reflink-probe-{os.getpid()}-{time.monotonic_ns()}"
    src, dst = directory / f"{tag}.src", directory / f"{tag}.dst"
    try:
        src.write_bytes(b"\0" * 4096)
        reflink_file(src, dst)
    except OSError as err:
        try:
            kind = fs_type(directory)
        except VmError:
            kind = "unknown file system"
        return False, f"no reflink in {directory} ({kind}): {err.strerror}"
    finally:
        src.unlink(missing_ok=True)
        dst.unlink(missing_ok=True)
    return True, f"FICLONE works in {directory}"
