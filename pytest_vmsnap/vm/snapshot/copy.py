"""The ``copy`` backend: a real sparse copy (``cp --sparse=always --reflink=never``); works on any
file system, and its time grows with the data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .base import SnapshotBackend, sparse_copy


class CopyBackend(SnapshotBackend):
    """A real sparse copy: works anywhere, and takes longer the more data the disks hold."""

    name = "copy"
    freeze_compatible = True

    def available(self) -> tuple[bool, str]:
        if shutil.which("cp") is None:
            return False, "cp (coreutils) is not installed"
        return True, "sparse copy with cp --sparse=always --reflink=never"

    def _copy(self, src: Path, dst: Path) -> None:
        # No fsync: the copy is read back on this host through the same page cache.
        sparse_copy(src, dst)
