"""A signal that lands between a step and its record (the pool mounted, its release not yet
registered) still leaves nothing: the build's last unwinding step releases what is left of
the run's tag. Found by the fault soak (a SIGINT 0.1 s into a run left the pool mounted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from appcycle import cycle_settings

from pytest_vmsnap.cycle import testbed
from pytest_vmsnap.vm import cleanup, disks, names


def test_an_interrupt_right_after_the_pool_mount_leaves_nothing(
    tmp_path: Path, root_required: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    tags: list[str] = []
    real_tag, real_run = names.new_tag, disks.run

    def new_tag(*args: Any) -> str:
        tags.append(real_tag(*args))
        return tags[-1]

    def run(argv: list[str], *args: Any, **kwargs: Any) -> str:
        out = real_run(argv, *args, **kwargs)
        if argv[0] == "mount" and argv[-1].endswith("-pool"):
            raise KeyboardInterrupt  # the mount is made; Pool has not recorded it yet
        return out

    monkeypatch.setattr(names, "new_tag", new_tag)
    monkeypatch.setattr(disks, "run", run)
    with pytest.raises(KeyboardInterrupt), testbed.build(cycle_settings(tmp_path, "sqlite")):
        pass
    left = cleanup.find_leftovers(tag_prefix=tags[0], include_live=True)
    assert (left.mounts, left.loops, left.files) == ([], [], [])
