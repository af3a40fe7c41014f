"""ContainerVM: one loop disk at its real path; run, popen, path, thaw_all, stop; leftovers;
the controller's death; a production-path script unchanged in the MariaDB stand-in."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_vmsnap.vm.docker import container as ct
from pytest_vmsnap.vm.docker.container import controller_lock
from pytest_vmsnap.vm.docker.engine import IN_VM_LIB, IN_VM_PACKAGE, LABEL_TAG, list_ours
from pytest_vmsnap.vm.errors import VmError
from pytest_vmsnap.vm.model import DiskSpec

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
FIFREEZE = 0xC0045877
FITHAW = 0xC0045878
PG_MOUNT = "/var/lib/postgresql"


@pytest.fixture
def pg_vm(
    engine: object, images_built: dict[str, str], loop_disks: Callable, session_tag: str
) -> Iterator[ct.ContainerVM]:
    (disk,) = loop_disks([DiskSpec("data", PG_MOUNT, 256, "ext4")])
    vm = ct.ContainerVM("pgvm", [disk], tag=session_tag, app="postgres")
    vm.start()
    yield vm
    vm.stop()


def test_disk_mounted_at_its_real_path(pg_vm: ct.ContainerVM) -> None:
    dev = pg_vm.disks[0].loopdev
    out = pg_vm.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE", PG_MOUNT]).stdout.decode().split()
    assert out == [dev, "ext4"]
    assert pg_vm.kind == "container" and pg_vm.name == "pgvm"
    # The host's mount table does not show it: it lives in the VM's mount namespace.
    assert PG_MOUNT not in Path("/proc/self/mountinfo").read_text()
    # Private /tmp and /run, the VM's own loopback only.
    fs = pg_vm.run(["findmnt", "-n", "-o", "FSTYPE", "/run"]).stdout.decode().strip()
    assert fs == "tmpfs"
    links = pg_vm.run(["ip", "-o", "link"]).stdout.decode()
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    labels = pg_vm._tc.get_wrapped_container().labels
    assert labels[LABEL_TAG] == pg_vm.tag and labels["vmsnap.vm"] == "pgvm"
    # Its own host name, which resolves inside (Docker's network-none hosts file lacks it).
    name = pg_vm.run(["hostname"]).stdout.decode().strip()
    assert name and name != os.uname().nodename
    resolved = pg_vm.run(["getent", "hosts", name], check=False)
    assert resolved.returncode == 0 and name in resolved.stdout.decode(), resolved


def test_run_uses_debian_python_and_reports_failures(pg_vm: ct.ContainerVM) -> None:
    done = pg_vm.run([sys.executable, "-c", "import sys, pytest_vmsnap; print(sys.executable)"])
    assert done.stdout.decode().strip() == "/usr/bin/python3"
    assert done.args[0] == sys.executable  # what the caller asked for
    code = (
        "import pytest_vmsnap.cycle.agent, pytest_vmsnap.vm.guest.freeze_guard,"
        " pytest_vmsnap.evidence.workload,"
        " pytest_vmsnap.evidence.probe, pytest_vmsnap.apps.postgres, psycopg; print('ok')"
    )
    assert pg_vm.run([sys.executable, "-c", code]).stdout.strip() == b"ok"
    env = pg_vm.run(["sh", "-c", "echo $PYTHONPATH; id -u; pwd"]).stdout.decode().split()
    assert env == [IN_VM_LIB, "0", "/"]
    with pytest.raises(VmError, match="boom"):
        pg_vm.run(["sh", "-c", "echo boom >&2; exit 3"])
    done = pg_vm.run(["sh", "-c", "exit 3"], check=False)
    assert done.returncode == 3
    assert pg_vm.run(["cat"], input=b"fed\n").stdout == b"fed\n"
    with pytest.raises(VmError, match="did not finish"):
        pg_vm.run(["sleep", "5"], timeout=0.5)
    # Our package is read-only inside, at a fixed path (the host checkout's path is not used:
    # under /tmp the VM's tmpfs would hide it).
    assert pg_vm.run(["touch", f"{IN_VM_PACKAGE}/x"], check=False).returncode != 0
    assert pg_vm.run(["test", "-e", f"{REPO}/pytest_vmsnap"], check=False).returncode != 0


def test_popen_pipes(pg_vm: ct.ContainerVM) -> None:
    proc = pg_vm.popen(
        ["sh", "-c", 'read line; echo "got $line"; echo "$VMSNAP_PROBE_X" >&2'],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "VMSNAP_PROBE_X": "passed", "PATH": "/nonexistent"},
    )
    out, err = proc.communicate(b"hello\n", timeout=30)
    assert proc.returncode == 0
    assert out == b"got hello\n" and err == b"passed\n"


def test_path_reaches_the_vm_filesystem_and_owners_match(pg_vm: ct.ContainerVM) -> None:
    etc = pg_vm.path("/etc/azure")
    assert str(etc) == f"/proc/{pg_vm.pid}/root/etc/azure"
    etc.mkdir()
    (etc / "VMSnapshotScriptPluginConfig.json").write_text("{}")
    os.chmod(etc / "VMSnapshotScriptPluginConfig.json", 0o600)
    out = pg_vm.run(["stat", "-c", "%U %a", "/etc/azure/VMSnapshotScriptPluginConfig.json"])
    assert out.stdout.decode().split() == ["root", "600"]
    pg_vm.run(["sh", "-c", f"echo inside > {PG_MOUNT}/f; chown postgres {PG_MOUNT}/f"])
    host_side = pg_vm.path(f"{PG_MOUNT}/f")
    assert host_side.read_text() == "inside\n"
    inside_uid = int(pg_vm.run(["id", "-u", "postgres"]).stdout)
    assert host_side.stat().st_uid == inside_uid
    import pwd

    with contextlib.suppress(KeyError):
        assert pwd.getpwnam("postgres").pw_uid == inside_uid  # images keep the host's ids
    # The host's own /etc is untouched.
    assert not Path("/etc/azure/VMSnapshotScriptPluginConfig.json").exists() or (
        Path("/etc/azure").stat().st_ino != etc.stat().st_ino
    )


def test_freeze_inside_thaw_all_outside(pg_vm: ct.ContainerVM) -> None:
    pg_vm.run(["fsfreeze", "-f", PG_MOUNT])
    writer = pg_vm.popen(
        ["sh", "-c", f"echo x > {PG_MOUNT}/w && echo written"], stdout=subprocess.PIPE
    )
    time.sleep(0.5)
    assert writer.poll() is None, "a write went through on a frozen file system"
    assert pg_vm.thaw_all() == [PG_MOUNT]
    out, _ = writer.communicate(timeout=30)
    assert out == b"written\n"
    assert pg_vm.thaw_all() == []  # nothing frozen any more


def test_stop_while_frozen_leaves_nothing(
    engine: object, images_built: dict[str, str], loop_disks: Callable, session_tag: str
) -> None:
    """stop() on a frozen VM: thawed, processes ended, unmounted, container removed; the loop
    device is free (no namespace holds it) and its file system is not frozen."""
    (disk,) = loop_disks([DiskSpec("data", PG_MOUNT, 256, "ext4")])
    vm = ct.ContainerVM("frozen", [disk], tag=session_tag, app="postgres").start()
    cid = vm.id
    try:
        vm.run(["fsfreeze", "-f", PG_MOUNT])
        vm.popen(["sh", "-c", f"echo x > {PG_MOUNT}/blocked"])
        time.sleep(0.3)
    finally:
        t = time.monotonic()
        vm.stop()
        took = time.monotonic() - t
    assert took < 15
    assert vm.pid is None
    assert all(c["id"] != cid for c in list_ours(session_tag, engine.client))
    assert mounted_anywhere(disk.loopdev) == []
    mnt = Path(str(disk.image) + ".mnt")
    mnt.mkdir()
    subprocess.run(["mount", disk.loopdev, str(mnt)], check=True)
    try:
        fd = os.open(mnt, os.O_RDONLY)
        try:
            fcntl.ioctl(fd, FIFREEZE, 0)  # EBUSY here would mean it was still frozen
            fcntl.ioctl(fd, FITHAW, 0)
        finally:
            os.close(fd)
        assert (mnt / "blocked").read_text() == "x\n"  # the blocked writer finished on thaw
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    with pytest.raises(VmError, match="not running"):
        vm.run(["true"])
    vm.stop()  # twice is fine


def test_start_failure_is_one_line_and_leaves_nothing(
    engine: object, images_built: dict[str, str], loop_disks: Callable, session_tag: str
) -> None:
    (disk,) = loop_disks([DiskSpec("data", "/var/lib/postgresql", 64, "ext4")])
    disk.spec = DiskSpec("data", "/var/lib/postgresql", 64, "xfs")  # wrong fs type: mount fails
    vm = ct.ContainerVM("broken", [disk], tag=session_tag, app="postgres")
    with pytest.raises(VmError, match="did not start: mount -t xfs"):
        vm.start()
    assert list_ours(session_tag, engine.client) == []
    assert mounted_anywhere(disk.loopdev) == []


CHILD = """
import json, os, sys, time
from pytest_vmsnap.vm.docker.container import ContainerVM
from pytest_vmsnap.vm.model import Disk, DiskSpec
disk = Disk(DiskSpec("data", "/var/lib/postgresql", 64, "ext4"), sys.argv[2], loopdev=sys.argv[1])
vm = ContainerVM("orphan", [disk], tag=sys.argv[3], app="postgres").start()
vm.run(["fsfreeze", "-f", "/var/lib/postgresql"])
print(json.dumps({"id": vm.id, "pid": vm.pid}), flush=True)
time.sleep(600)
"""


def test_controller_death_ends_the_vm_and_leftovers_are_removed(
    engine: object, images_built: dict[str, str], loop_disks: Callable
) -> None:
    """A controller killed with SIGKILL (no cleanup at all): the VM's init notices (the lock
    it waits on is released), thaws and unmounts its disk and exits; remove_leftovers then
    removes the container by its label. A live session's containers are left alone."""
    from pytest_vmsnap.vm import names

    (disk,) = loop_disks([DiskSpec("data", PG_MOUNT, 64, "ext4")])
    tag = names.new_tag()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, disk.loopdev, str(disk.image), tag],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        line = child.stdout.readline()
        info = json.loads(line)
        names.claim(names.vmsnap_home(), tag)  # pretend this test owns the tag for a moment
        assert ct.remove_leftovers(tag)[0].startswith("left ")
        names.owner_file(names.vmsnap_home(), tag).unlink()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    client = engine.client
    c = client.containers.get(info["id"])
    deadline = time.monotonic() + 20
    while c.status == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        c.reload()
    assert c.status == "exited", "the VM did not notice its controller's death"
    assert mounted_anywhere(disk.loopdev) == []
    assert [x["id"] for x in list_ours(tag, client)] == [info["id"]]
    actions = ct.remove_leftovers(tag)
    assert any(a.startswith("removed container") for a in actions), actions
    assert list_ours(tag, client) == []
    assert not controller_lock(f"{tag}-orphan").exists()


def test_remove_leftovers_thaws_a_frozen_running_vm(
    engine: object, images_built: dict[str, str], loop_disks: Callable
) -> None:
    from pytest_vmsnap.vm import names

    (disk,) = loop_disks([DiskSpec("data", PG_MOUNT, 64, "ext4")])
    tag = names.new_tag()
    vm = ct.ContainerVM("stray", [disk], tag=tag, app="postgres").start()
    try:
        vm.run(["fsfreeze", "-f", PG_MOUNT])
        actions = ct.remove_leftovers(tag)
        assert actions[0] == f"thawed {PG_MOUNT} in {tag}-stray", actions
        assert actions[-1].startswith(f"removed container {tag}-stray")
        assert mounted_anywhere(disk.loopdev) == []
    finally:
        vm.stop()


def test_production_paths_script_runs_unchanged_in_mariadb(
    engine: object, images_built: dict[str, str], loop_disks: Callable, session_tag: str
) -> None:
    """A script with /etc/mysql/... and /var/run/mysqld/mysqld.sock hard-coded runs as is."""
    from pytest_vmsnap.apps import mariadb

    disks = loop_disks(
        [DiskSpec(s.name, s.mountpoint, 512, s.fs) for s in mariadb.APP.layout(1, "ext4")]
    )
    with ct.ContainerVM("mariadb", disks, tag=session_tag, app="mariadb") as vm:
        mariadb.APP.provision(vm)
        target = vm.path("/usr/local/sbin/prod-check.sh")
        target.write_bytes((DATA / "mariadb-production-paths.sh").read_bytes())
        target.chmod(0o700)
        done = vm.run(["sh", "/usr/local/sbin/prod-check.sh"], check=False, timeout=60)
        out = done.stdout.decode()
        assert done.returncode == 0, done.stderr.decode() + out
        assert "mysqld is alive" in out
        assert "datadir=/var/lib/mysql/" in out
        assert f"user=mysql on {disks[0].loopdev}" in out
        mariadb.APP.stop(vm)


def test_remove_leftovers_without_engine_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_vmsnap.vm.docker import engine as eng

    monkeypatch.setattr(eng, "ping", lambda wait_s=0.0: None)
    assert ct.remove_leftovers() == []


def test_unattached_disk_is_refused(loop_disks: Callable) -> None:
    from pytest_vmsnap.vm.model import Disk

    disk = Disk(DiskSpec("data", PG_MOUNT, 64, "ext4"), Path("/nonexistent.img"))
    with pytest.raises(VmError, match="not attached"):
        ct.ContainerVM("x", [disk], app="postgres").start()
    with pytest.raises(ValueError):
        ct.ContainerVM("x", [disk])


def mounted_anywhere(dev: str) -> list[str]:
    """Pids whose mount namespace still shows ``dev`` (every namespace on the machine)."""
    rdev = os.stat(dev).st_rdev
    majmin = f"{os.major(rdev)}:{os.minor(rdev)}"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            text = (proc / "mountinfo").read_text()
        except OSError:
            continue
        if any(line.split()[2] == majmin for line in text.splitlines() if line):
            found.append(proc.name)
    return found


def test_host_python_detection() -> None:
    assert ct._is_host_python(sys.executable)
    assert not ct._is_host_python("/usr/bin/python3") or os.path.realpath(
        "/usr/bin/python3"
    ) == os.path.realpath(sys.executable)
    assert ct._forwarded_env({"VMSNAP_A": "1", "PYTHONPATH": "x", "PATH": "y"})["VMSNAP_A"] == "1"
    assert "PYTHONPATH" not in ct._forwarded_env({"PYTHONPATH": "x"})


def test_disk_mounts_parser(tmp_path: Path) -> None:
    assert ct._disk_mounts(0) == []
    assert ct._disk_mounts(os.getpid()) == [] or all(
        m.startswith("/") for m in ct._disk_mounts(os.getpid())
    )
