"""A copy of a disk image in parts, with something done between them: the non-atomic copy
whose moments the harness chooses.

A block copy of a live disk reads each region at a different moment. Whether that tears an
application's files depends on what the application did between the moments, which is chance
when the copy simply runs. Here the caller names the regions to copy first (the extents of
the application's files, one part each, in a chosen order), and ``between`` runs after each
part but the last (forcing the application's checkpoint, say); the rest of the image
follows. The copy
stays sparse: only the image's data segments are read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import VmError

Range = tuple[int, int]
"""``(offset, length)`` in bytes."""


@dataclass(frozen=True)
class Part:
    """One part of the copy: a label (a file's name) and its regions of the image."""

    label: str
    ranges: tuple[Range, ...]


@dataclass(frozen=True)
class PartCopied:
    """When a part was copied, and what ``between`` said afterwards."""

    label: str
    bytes: int
    start_s: float
    end_s: float
    then: dict[str, Any]
    """What ``between`` answered (JSON-able)."""


def data_segments(fd: int, size: int) -> Iterator[Range]:
    """The regions of an open file that hold data (SEEK_DATA/SEEK_HOLE)."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after pos
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end - start
        pos = end


def minus(segments: Sequence[Range], taken: Sequence[Range]) -> list[Range]:
    """``segments`` without the bytes of ``taken`` (both lists of ``(offset, length)``)."""
    cuts = sorted((o, o + n) for o, n in taken if n > 0)
    out: list[Range] = []
    for off, length in segments:
        pos, end = off, off + length
        for c0, c1 in cuts:
            if c1 <= pos or c0 >= end:
                continue
            if c0 > pos:
                out.append((pos, c0 - pos))
            pos = max(pos, c1)
        if pos < end:
            out.append((pos, end - pos))
    return out


def _copy_range(src: int, dst: int, offset: int, length: int) -> None:
    done = 0
    while done < length:
        n = os.copy_file_range(src, dst, length - done, offset + done, offset + done)
        if n == 0:  # past the source's end: it shrank; nothing more to read
            return
        done += n


def copy_in_parts(
    src: Path, dst: Path, parts: Sequence[Part], between: Callable[[str], dict[str, Any]]
) -> list[PartCopied]:
    """Copy ``src`` to the new file ``dst``: each part's ranges (clipped to the image), with
    ``between(label)`` after each part but the last; then every data segment not copied yet."""
    if dst.exists():
        raise VmError(f"{dst} already exists")
    done: list[PartCopied] = []
    src_fd = os.open(src, os.O_RDONLY)
    try:
        dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            size = os.fstat(src_fd).st_size
            os.ftruncate(dst_fd, size)
            copied: list[Range] = []
            for part in parts:
                began = time.monotonic()
                ranges = [(o, min(n, size - o)) for o, n in part.ranges if o < size]
                for off, length in ranges:
                    _copy_range(src_fd, dst_fd, off, length)
                copied += ranges
                end = time.monotonic()
                then = between(part.label) if part is not parts[-1] else {}
                done.append(PartCopied(part.label, sum(n for _, n in ranges), began, end, then))
            for off, length in minus(list(data_segments(src_fd, size)), copied):
                _copy_range(src_fd, dst_fd, off, length)
        except BaseException:
            os.close(dst_fd)
            dst.unlink(missing_ok=True)
            raise
        os.close(dst_fd)
    finally:
        os.close(src_fd)
    return done
