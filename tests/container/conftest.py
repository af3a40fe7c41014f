"""Fixtures for the container stand-in tests: root, Docker (docker.io) and debootstrap.

Every test here carries the ``container`` marker. Tests that need the engine skip, with the
reason, when not root or when docker.io / debootstrap are missing (scripts/install-deps.sh
installs them). The session holds one :class:`Engine` for the tests that ask for ``engine``
(so dockerd starts once, lazily: the engine lifecycle tests run first, with nothing held), and
at the end checks that nothing of ours is left: no container labelled with this session's
tags, no loop device or mount of ours, and no dockerd we started (unless another process,
an xdist worker, still uses it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_vmsnap.vm import names


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/container" in str(item.fspath):
            item.add_marker(pytest.mark.container)
    # The engine lifecycle tests start and stop dockerd themselves (and skip when an engine is
    # in use): run them before anything holds the session's engine.
    items.sort(key=lambda item: item.path.name != "test_engine.py")


def missing() -> str | None:
    """Why the container stand-in cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (loop devices, mounts, fsfreeze, dockerd)"
    sbin = "/usr/sbin:/usr/bin:/sbin:/bin"
    for tool, package in (("dockerd", "docker.io"), ("debootstrap", "debootstrap")):
        if shutil.which(tool, path=sbin) is None:
            return f"{tool} is not installed (apt-get install {package}; scripts/install-deps.sh)"
    for module in ("docker", "testcontainers"):
        try:
            __import__(module)
        except ImportError:
            return f"python package {module} is missing (pip install pytest-vmsnap[container])"
    return None


@pytest.fixture(scope="session")
def container_required() -> None:
    why = missing()
    if why:
        pytest.skip(why)


@pytest.fixture(scope="session")
def session_tag(container_required: None) -> str:
    """This session's tag, claimed (so `vmsnap cleanup` and remove_leftovers leave it alone)."""
    tag = names.new_tag()
    names.claim(names.vmsnap_home(), tag)
    yield tag
    path = names.owner_file(names.vmsnap_home(), tag)
    path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def engine(container_required: None, session_tag: str) -> Iterator[object]:
    """One Docker engine for the session (started by us unless one answers already)."""
    from pytest_vmsnap.vm.docker.engine import Engine, list_ours

    held = Engine()
    held.ensure()
    yield held
    left = list_ours(session_tag, held.client)
    held.release()
    assert not left, f"containers left behind: {[c['name'] for c in left]}"


@pytest.fixture(scope="session")
def images_built(engine: object) -> dict[str, str]:
    """The four app images (built once; later sessions hit the cache)."""
    from pytest_vmsnap.vm.docker import images

    return {name: images.ensure_image(name, engine.client).ref for name in images.APP_IMAGES}


@pytest.fixture
def loop_disks(tmp_path: Path, session_tag: str) -> Iterator[Callable[..., object]]:
    """Factory: ``loop_disks([DiskSpec(...)])`` -> attached ``Disk`` objects (ext4/xfs images
    in ``tmp_path``), detached by exact device after the test."""
    from pytest_vmsnap.vm.model import Disk

    loops: list[str] = []
    mkfs = {"ext4": ["mkfs.ext4", "-q", "-F"], "xfs": ["mkfs.xfs", "-q", "-f"]}

    def make(specs: list[object]) -> list[Disk]:
        out = []
        for spec in specs:
            image = tmp_path / f"{session_tag}-{uuid.uuid4().hex[:6]}-{spec.name}.img"
            subprocess.run(["truncate", "-s", f"{spec.size_mb}M", str(image)], check=True)
            subprocess.run([*mkfs[spec.fs], str(image)], check=True, capture_output=True)
            dev = subprocess.run(
                ["losetup", "--find", "--show", str(image)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            loops.append(dev)
            out.append(Disk(spec, image, loopdev=dev))
        return out

    yield make
    for dev in loops:
        subprocess.run(["losetup", "-d", dev], capture_output=True)
