"""The torn copy, constructed: a ``copy`` snapshot that reaches the application's files at
moments the harness chooses, with the application's checkpoint forced between them.

A non-atomic copy of a live disk tears a write-ahead log only if the application checkpoints
while the copy runs, which is chance when the copy simply runs (and a test of it is luck).
Here the copy takes each of the application's files (their extents on the disk, read with
FIEMAP through the VM's root) as one part, in the order a file-by-file reader meets them.
Between two parts it stops the recorded workload between two of its transactions and forces
the application's checkpoint (:mod:`pytest_vmsnap.apps.checkpoint`, inside the VM), so that
no write of the workload lands between the checkpoint and the next part; the rest of the
image follows, then the workload goes on. The file systems must not be frozen: the
checkpoint writes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..apps import checkpoint
from ..vm.base import StandIn
from ..vm.errors import VmError
from ..vm.linux import extents
from ..vm.model import Disk
from ..vm.snapshot.copy import CopyBackend
from ..vm.snapshot.parts import Part, PartCopied, copy_in_parts

log = logging.getLogger(__name__)

DEVICE_OFFSET_FS = ("ext4", "xfs")
"""File systems whose FIEMAP offsets are offsets on their device (btrfs maps them again)."""


def _disk_of(path: str, disks: Sequence[Disk]) -> Disk | None:
    """The disk mounted deepest above ``path``."""
    holders = [
        d for d in disks if path == d.spec.mountpoint or path.startswith(d.spec.mountpoint + "/")
    ]
    return max(holders, key=lambda d: len(d.spec.mountpoint), default=None)


def plan(vm: StandIn, app: str, disks: Sequence[Disk]) -> dict[Path, list[Part]]:
    """Per disk image: one part per application file on it, in the application's order."""
    if not checkpoint.supported(app):
        raise VmError(
            f"a torn copy is not constructed for {app} (only for: "
            f"{', '.join(checkpoint.CHECKPOINTS)})"
        )
    parts: dict[Path, list[Part]] = {}
    for path in checkpoint.files(app):
        disk = _disk_of(path, disks)
        if disk is None:
            continue
        if disk.spec.fs not in DEVICE_OFFSET_FS:
            raise VmError(f"a torn copy needs ext4 or xfs, not {disk.spec.fs}")
        fd = vm.open_file(path)
        if fd is None:
            continue  # not there (yet): nothing of it to copy first
        try:
            ranges = tuple(extents(fd))
        finally:
            os.close(fd)
        parts.setdefault(disk.image, []).append(Part(os.path.basename(path), ranges))
    if not parts:
        raise VmError(f"none of {app}'s files is on the VM's disks: nothing to tear")
    return parts


class TornCopy(CopyBackend):
    """The ``copy`` backend whose copy of each disk goes in parts (:func:`plan`). Between two
    parts the workload (``workload_pid``, inside the VM) is stopped between two of its
    transactions and the application's checkpoint forced; the workload goes on once the disk
    is copied. The parts, as copied, go to ``done``."""

    def __init__(
        self,
        vm: StandIn,
        app: str,
        workload_pid: int,
        parts: dict[Path, list[Part]],
        done: list[PartCopied],
    ) -> None:
        super().__init__()
        self.vm, self.app, self.pid, self.parts, self.done = vm, app, workload_pid, parts, done

    def _between(self, label: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.vm.call(
            "pytest_vmsnap.apps.checkpoint:force", self.app, self.pid, timeout=30
        )
        log.info("torn copy: %s copied; checkpoint: %s", label, answer.get("said"))
        return answer

    def _copy(self, src: Path, dst: Path) -> None:
        try:
            self.done.extend(copy_in_parts(src, dst, self.parts.get(src, []), self._between))
        finally:
            self.vm.call("pytest_vmsnap.apps.checkpoint:resume", self.pid, timeout=30)
