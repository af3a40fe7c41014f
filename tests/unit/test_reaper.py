"""The reaper's decision: release a tag only once its owner is really dead, everything then."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from pytest_vmsnap.vm import names, reaper


def _owned_by(home: Path, tag: str, pid: int) -> None:
    record = {"pid": pid, "start": names._start_time(pid), "boot": names._boot_id()}
    names.owner_file(home, tag).write_text(json.dumps(record))


def test_an_owner_still_exiting_is_waited_for_then_its_files_go(tmp_path: Path) -> None:
    """The pipe ends while the dying owner still shows as alive: the reaper waits for it."""
    tag = names.new_tag()
    owner = subprocess.Popen(["sleep", "0.5"])
    try:
        _owned_by(tmp_path, tag, owner.pid)
        leftover = tmp_path / f"{tag}-pool.img"
        leftover.write_bytes(b"")
        began = time.monotonic()
        actions = reaper.reap(tmp_path, tag, settle_s=10)
        assert time.monotonic() - began >= 0.4  # it waited for the owner's end
        assert not leftover.exists() and not names.owner_file(tmp_path, tag).exists()
        assert any(str(leftover) in a for a in actions)
    finally:
        owner.kill()
        owner.wait()


def test_a_released_run_leaves_the_reaper_nothing_to_do(tmp_path: Path) -> None:
    tag = names.new_tag()
    other = tmp_path / f"{names.new_tag()}-pool.img"
    other.write_bytes(b"")
    assert reaper.reap(tmp_path, tag, settle_s=1) == []  # no owner record: released cleanly
    assert other.exists()  # another run's files are not its business


def test_a_live_owner_is_left_alone(tmp_path: Path) -> None:
    tag = names.new_tag()
    _owned_by(tmp_path, tag, os.getpid())
    mine = tmp_path / f"{tag}-pool.img"
    mine.write_bytes(b"")
    assert reaper.reap(tmp_path, tag, settle_s=0.2) == []
    assert mine.exists()
