"""Shared fixtures for integration tests: root, loop devices, and throwaway stand-in VMs."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_vmsnap.vm import names
from pytest_vmsnap.vm.host import HostVM
from pytest_vmsnap.vm.linux import thaw
from pytest_vmsnap.vm.model import Disk, DiskSpec

MKFS = {
    "ext4": ["mkfs.ext4", "-q", "-F"],
    "xfs": ["mkfs.xfs", "-q", "-f"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"],
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def root_required() -> None:
    """Skip (with the reason) where loop devices and fsfreeze cannot be used."""
    if os.geteuid() != 0:
        pytest.skip("needs root for loop devices, mounts and fsfreeze")
    if shutil.which("losetup") is None:
        pytest.skip("losetup is not installed")


@pytest.fixture(scope="session")
def session_tag() -> Iterator[str]:
    """This test session's resource tag, claimed so `vmsnap cleanup` leaves it alone."""
    tag = names.new_tag()
    names.claim(names.vmsnap_home(), tag)
    yield tag
    names.owner_file(names.vmsnap_home(), tag).unlink(missing_ok=True)


@pytest.fixture
def simple_vm(
    tmp_path: Path, root_required: None, session_tag: str
) -> Iterator[Callable[..., HostVM]]:
    """Factory: ``simple_vm([DiskSpec(...)])`` -> a started HostVM on fresh loop disks.

    Images live in ``tmp_path`` (plain copies, no reflink pool); everything is released after
    the test: thaw, VM stop, loop detach by exact device.
    """
    vms: list[HostVM] = []
    loops: list[str] = []

    def make(specs: list[DiskSpec], name: str = "vm") -> HostVM:
        disks = []
        for spec in specs:
            image = tmp_path / f"{session_tag}-{uuid.uuid4().hex[:6]}-{spec.name}.img"
            subprocess.run(["truncate", "-s", f"{spec.size_mb}M", str(image)], check=True)
            subprocess.run([*MKFS[spec.fs], str(image)], check=True, capture_output=True)
            dev = subprocess.run(
                ["losetup", "--find", "--show", str(image)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            loops.append(dev)
            disks.append(Disk(spec, image, loopdev=dev))
        vm = HostVM(name, disks, tag=session_tag).start()
        vms.append(vm)
        return vm

    yield make
    for vm in vms:
        for disk in vm.disks:
            if vm.pid is not None:
                thaw(str(vm.path(disk.spec.mountpoint)))
        vm.stop()
    for dev in loops:
        subprocess.run(["losetup", "-d", dev], capture_output=True)
