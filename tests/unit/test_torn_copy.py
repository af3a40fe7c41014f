"""The copy in parts (:mod:`pytest_vmsnap.vm.snapshot.parts`), the kernel lock table reader
and the settings of the torn-copy construction."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap.apps.locks import Lock, lock_table
from pytest_vmsnap.settings import Settings
from pytest_vmsnap.vm.snapshot.parts import Part, copy_in_parts, data_segments, minus

BLOCK = 4096


@pytest.mark.parametrize(
    ("segments", "taken", "left"),
    [
        ([(0, 100)], [], [(0, 100)]),
        ([(0, 100)], [(0, 100)], []),
        ([(0, 100)], [(10, 20)], [(0, 10), (30, 70)]),
        ([(0, 100)], [(50, 10), (10, 20)], [(0, 10), (30, 20), (60, 40)]),
        ([(0, 10), (20, 10)], [(5, 20)], [(0, 5), (25, 5)]),
        ([(100, 10)], [(0, 50), (200, 10)], [(100, 10)]),
        ([(0, 10)], [(0, 0)], [(0, 10)]),
    ],
)
def test_minus_leaves_the_bytes_not_taken(
    segments: list[tuple[int, int]], taken: list[tuple[int, int]], left: list[tuple[int, int]]
) -> None:
    assert minus(segments, taken) == left


def _image(path: Path, blocks: dict[int, bytes], size_blocks: int = 64) -> None:
    with open(path, "wb") as f:
        f.truncate(size_blocks * BLOCK)
        for index, byte in blocks.items():
            f.seek(index * BLOCK)
            f.write(byte * BLOCK)


def test_parts_are_copied_first_with_between_after_each_but_the_last(tmp_path: Path) -> None:
    """The image changes between parts (as a live disk does): each part holds what it held
    when it was copied, the rest what it held at the end; holes stay holes."""
    src, dst = tmp_path / "disk.img", tmp_path / "copy.img"
    _image(src, {2: b"a", 10: b"b", 40: b"c"})
    calls: list[str] = []

    def between(label: str) -> dict[str, Any]:
        calls.append(label)
        with open(src, "r+b") as f:  # the application rewrites every block after part 1
            for index in (2, 10, 40):
                f.seek(index * BLOCK)
                f.write(b"N" * BLOCK)
        return {"said": f"after {label}"}

    parts = [Part("db", ((2 * BLOCK, BLOCK),)), Part("wal", ((10 * BLOCK, BLOCK),))]
    done = copy_in_parts(src, dst, parts, between)
    assert calls == ["db"]
    assert [(p.label, p.bytes, p.then) for p in done] == [
        ("db", BLOCK, {"said": "after db"}),
        ("wal", BLOCK, {}),
    ]
    copied = dst.read_bytes()
    assert copied[2 * BLOCK : 3 * BLOCK] == b"a" * BLOCK  # before the rewrite
    assert copied[10 * BLOCK : 11 * BLOCK] == b"N" * BLOCK  # after it
    assert copied[40 * BLOCK : 41 * BLOCK] == b"N" * BLOCK  # the rest: at the end
    assert dst.stat().st_size == src.stat().st_size
    fd = os.open(dst, os.O_RDONLY)
    try:
        assert sum(n for _, n in data_segments(fd, dst.stat().st_size)) < 64 * BLOCK // 2
    finally:
        os.close(fd)


def test_a_part_past_the_end_is_clipped_and_a_failure_leaves_no_copy(tmp_path: Path) -> None:
    src, dst = tmp_path / "disk.img", tmp_path / "copy.img"
    _image(src, {0: b"x"}, size_blocks=4)
    done = copy_in_parts(src, dst, [Part("big", ((3 * BLOCK, 10 * BLOCK), (99 * BLOCK, 1)))], dict)
    assert done[0].bytes == BLOCK and dst.stat().st_size == 4 * BLOCK

    def fails(label: str) -> dict[str, Any]:
        raise RuntimeError("checkpoint failed")

    dst.unlink()
    with pytest.raises(RuntimeError):
        copy_in_parts(src, dst, [Part("a", ((0, BLOCK),)), Part("b", ((0, 1),))], fails)
    assert not dst.exists()


def test_lock_table_reads_granted_posix_locks_only() -> None:
    text = (
        "1: POSIX  ADVISORY  WRITE 9263 fe:00:2146368 120 120\n"
        "1: -> POSIX  ADVISORY  WRITE 9300 fe:00:2146368 120 120\n"
        "2: POSIX  ADVISORY  READ 9263 fe:01:77 128 EOF\n"
        "3: FLOCK  ADVISORY  WRITE 17 00:1a:5 0 EOF\n"
        "4: OFDLCK ADVISORY  READ -1 00:06:9 0 0\n"
        "garbage\n"
    )
    assert lock_table(text) == [
        Lock(9263, "WRITE", (0xFE, 0), 2146368, 120, 120),
        Lock(9263, "READ", (0xFE, 1), 77, 128, 1 << 63),
    ]
    shm = ((0xFE, 0), 2146368)
    assert lock_table(text)[0].covers(shm, 120, 127)
    assert not lock_table(text)[0].covers(shm, 121, 127)
    assert not lock_table(text)[1].covers(shm, 0, 1 << 63)


def test_torn_copy_needs_the_copy_backend() -> None:
    problems = Settings(torn_copy=True, snapshot="reflink").problems()
    assert "torn_copy needs the copy snapshot backend, not reflink" in problems
    assert not [p for p in Settings(torn_copy=True, snapshot="copy").problems() if "torn" in p]
