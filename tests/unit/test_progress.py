"""Progress lines: the harness's INFO records, which ``vmsnap run -v`` prints and the plugin
shows live with ``pytest -v`` (a line per phase of a cycle, a line per image build step)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_vmsnap import data
from pytest_vmsnap.settings import Settings


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def progress() -> Iterator[list[str]]:
    """The messages of ``pytest_vmsnap.*`` at INFO and up, whatever the CLI set its logger to."""
    logger = logging.getLogger("pytest_vmsnap")
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_cycle_says_its_phases(progress: list[str], tmp_path: Path) -> None:
    """The directory stand-in (no root needed): build, the framework's events, judge."""
    from pytest_vmsnap.cycle.run import run

    # Copies with the deployed modes: installed or checked-out files are 644/755, which the
    # framework's pre-check refuses.
    files = data.write_example("sqlite", tmp_path)
    run(
        Settings(
            vm="dir",
            config=files["config"],
            pre=files["pre"],
            post=files["post"],
            pacing="prompt",
        )
    )
    assert progress == [
        "build: directory stand-in (no root: no freeze, no snapshot, no database)",
        "pre: pre-script started",
        "pre: pre-script ended",
        "post: post-script started",
        "post: post-script ended",
        "judge: not-taken",
    ]


def test_an_image_build_says_each_step(
    progress: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("docker")
    from pytest_vmsnap.vm.docker import images

    monkeypatch.setenv("VMSNAP_HOME", str(tmp_path))
    (tmp_path / "docker").mkdir()

    def build(**kwargs: Any) -> Iterator[dict[str, str]]:
        yield {"stream": "Step 1/2 : FROM vmsnap/base:b\n"}
        yield {"stream": " ---> 0123abcd\n"}
        yield {"stream": "Step 2/2 : RUN apt-get install -y sqlite3\n"}

    client = SimpleNamespace(
        api=SimpleNamespace(build=build), images=SimpleNamespace(get=lambda ref: ref)
    )
    images._build_recipe(client, "sqlite", "vmsnap/sqlite:x", "vmsnap/base:b", images._progress)
    assert progress == [
        "image build: docker build vmsnap/sqlite:x FROM vmsnap/base:b",
        "image build: Step 1/2 : FROM vmsnap/base:b",
        "image build: Step 2/2 : RUN apt-get install -y sqlite3",
    ]
