"""Redis 7 in a stand-in VM: provision, client, probes, restore from a frozen copy, scripts.

Needs root, loop devices, Debian's redis-server/redis-tools and redis-py.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_vmsnap import data
from pytest_vmsnap.apps import redis as redis_app
from pytest_vmsnap.apps.base import BANK_TOTAL
from pytest_vmsnap.vm.host import HostVM
from pytest_vmsnap.vm.model import Disk, DiskSpec

pytest.importorskip("redis")
if shutil.which("redis-server") is None or shutil.which("redis-check-aof") is None:
    pytest.skip("Redis (Debian redis-server/redis-tools) is not installed", allow_module_level=True)

APP = redis_app.APP
FIFREEZE = 0xC0045877
FITHAW = 0xC0045878
SCRIPTS = data.sample_scripts("redis")
SCRIPT_DIR = "/etc/vmsnap-samples"  # the VM's /etc is a private overlay
SOCK = redis_app.SOCKET

ROUND_TRIP = """
import json
from pytest_vmsnap.apps.redis import APP
c = APP.client(5.0)
for seq in range({start}, {end}):
    c.append(seq, 1)
    c.transfer(seq % 10 + 1, (seq + 3) % 10 + 1, 7)
s = c.read_state()
c.close()
print(json.dumps({{"seqs": sorted(s.seqs), "total": s.bank_total, "rows": s.bank_rows}}))
"""

APPENDS_ONLY = """
from pytest_vmsnap.apps.redis import APP
c = APP.client(5.0)
for seq in range(1000, 1005):
    c.append(seq, 1)
c.close()
print("{}")
"""

APP_USER_LIMITS = """
import json, redis
from pytest_vmsnap.apps.redis import APP
c = APP.client(5.0)
out = {}
for name, call in [
    ("config", lambda: c.r.config_set("appendonly", "no")),
    ("flushall", lambda: c.r.flushall()),
    ("pause", lambda: c.r.execute_command("CLIENT", "PAUSE", "1000", "WRITE")),
    ("other_key", lambda: c.r.set("other:key", "1")),
    ("shutdown", lambda: c.r.execute_command("SHUTDOWN")),
]:
    try:
        call()
        out[name] = "allowed"
    except redis.exceptions.NoPermissionError:
        out[name] = "NOPERM"
c.close()
print(json.dumps(out))
"""


def provisioned(make: Callable[..., HostVM]) -> tuple[HostVM, float]:
    vm = make(APP.layout(1, "ext4"))
    began = time.monotonic()
    APP.provision(vm)
    return vm, time.monotonic() - began


def in_vm(vm: HostVM, code: str) -> dict:
    done = vm.run([sys.executable, "-c", code], timeout=60)
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def probe(vm: HostVM, *args: str) -> dict:
    done = vm.run([sys.executable, "-m", "pytest_vmsnap.evidence.probe", *args, "--app", "redis"])
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def cli(vm: HostVM, *args: str) -> str:
    """redis-cli as root (the default user) over the unix socket, as users' scripts do."""
    return vm.run(["redis-cli", "-s", SOCK, *args], timeout=30).stdout.decode().strip()


def persistence(vm: HostVM) -> dict[str, str]:
    lines = cli(vm, "INFO", "persistence").replace("\r", "").splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def install_scripts(vm: HostVM) -> None:
    target = vm.path(SCRIPT_DIR)
    target.mkdir(parents=True, exist_ok=True)
    for script in SCRIPTS.glob("*.sh"):
        shutil.copy2(script, target / script.name)
        (target / script.name).chmod(0o700)  # git keeps only 755; the framework wants 700


def run_script(vm: HostVM, name: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return vm.run(["sh", f"{SCRIPT_DIR}/{name}", *args], check=False, timeout=60)


@contextlib.contextmanager
def vm_on_image(name: str, spec: DiskSpec, image: Path) -> Iterator[HostVM]:
    """A second stand-in VM on an existing image (simple_vm only makes fresh disks)."""
    dev = subprocess.run(
        ["losetup", "--find", "--show", str(image)], check=True, capture_output=True, text=True
    ).stdout.strip()
    vm: HostVM | None = None
    try:
        vm = HostVM(name, [Disk(spec, image, loopdev=dev, uuid_clone=True)], tag="vmsnap-test")
        vm.start()
        yield vm
    finally:
        if vm is not None:
            vm.stop()
        subprocess.run(["losetup", "-d", dev], capture_output=True)


def copy_frozen(vm: HostVM, disk: Disk, dest: Path) -> float:
    """FIFREEZE the disk's mount inside the VM, copy its image, FITHAW (always)."""
    fd = os.open(vm.path(disk.spec.mountpoint), os.O_RDONLY | os.O_DIRECTORY)
    began = time.monotonic()
    try:
        fcntl.ioctl(fd, FIFREEZE, 0)
        try:
            subprocess.run(["cp", "--sparse=always", str(disk.image), str(dest)], check=True)
        finally:
            fcntl.ioctl(fd, FITHAW, 0)
    finally:
        os.close(fd)
    return time.monotonic() - began


def test_provision_client_probes_integrity(simple_vm: Callable[..., HostVM]) -> None:
    vm, provision_s = provisioned(simple_vm)
    print(f"\nprovision: {provision_s:.2f} s")

    conf = vm.path(redis_app.CONF).read_text()
    assert "appendfsync always" in conf and "appendonly yes" in conf
    assert "vmsnap" not in Path(redis_app.CONF).read_text()  # the host's file is untouched
    assert cli(vm, "CONFIG", "GET", "dir").splitlines()[-1] == "/var/lib/redis"
    assert vm.path("/var/lib/redis/appendonlydir/appendonly.aof.manifest").exists()
    assert cli(vm, "ACL", "WHOAMI") == "default"

    state = in_vm(vm, ROUND_TRIP.format(start=1, end=31))
    assert state["seqs"] == list(range(1, 31))
    assert state["total"] == BANK_TOTAL and state["rows"] == 10

    # The app user: its keys and data commands only.
    limits = in_vm(vm, APP_USER_LIMITS)
    assert set(limits.values()) == {"NOPERM"}, limits

    assert probe(vm, "write", "--timeout", "1")["result"] == "accepted"
    value = cli(vm, "GET", "vmsnap:probe")

    # CLIENT PAUSE ... WRITE: the write is seen postponed (CLIENT LIST flag b) well before its
    # own timeout; the abandoned one never lands.
    assert cli(vm, "CLIENT", "PAUSE", "10000", "WRITE") == "OK"
    try:
        blocked = probe(vm, "write", "--timeout", "5")
        assert blocked["result"] == "blocked", blocked
        assert "writes are paused" in blocked["detail"] and blocked["latency_s"] < 2, blocked
    finally:
        assert cli(vm, "CLIENT", "UNPAUSE") == "OK"
    # CLIENT PAUSE ALL holds even the probe's handshake: its own timeout decides.
    assert cli(vm, "CLIENT", "PAUSE", "10000") == "OK"
    try:
        blocked = probe(vm, "write", "--timeout", "0.5")
        assert blocked["result"] == "blocked" and "no answer" in blocked["detail"], blocked
    finally:
        assert cli(vm, "CLIENT", "UNPAUSE") == "OK"
    time.sleep(0.3)
    assert cli(vm, "GET", "vmsnap:probe") == value

    # The ACL denies the write: refused.
    assert cli(vm, "ACL", "SETUSER", redis_app.APP_USER, "-set") == "OK"
    try:
        refused = probe(vm, "write", "--timeout", "1")
        assert refused["result"] == "refused", refused
        assert "NoPermission" in refused["detail"], refused
    finally:
        assert cli(vm, "ACL", "SETUSER", redis_app.APP_USER, "+set") == "OK"
    assert probe(vm, "write", "--timeout", "1")["result"] == "accepted"

    began = time.monotonic()
    report = APP.integrity(vm)
    print(f"integrity: {time.monotonic() - began:.2f} s")
    assert report.ok, report.details
    assert any("redis-check-aof" in d for d in report.details)

    versions = APP.versions(vm)
    assert versions["redis_server"].startswith("7."), versions
    assert versions["server"] == versions["redis_server"], versions

    APP.stop(vm)
    left = vm.run(["sh", "-c", "ps -eo comm | grep -c '^redis-server' || true"]).stdout.decode()
    assert left.strip() == "0"


def test_restore_frozen_copy_and_truncated_aof(
    simple_vm: Callable[..., HostVM], tmp_path: Path
) -> None:
    vm, _ = provisioned(simple_vm)
    disk = vm.disks[0]
    acked = in_vm(vm, ROUND_TRIP.format(start=1, end=101))["seqs"]

    copy = tmp_path / "copy.img"
    frozen_s = copy_frozen(vm, disk, copy)
    with vm_on_image("restored", disk.spec, copy) as vm2:
        start = APP.start(vm2, 30)
        print(f"\nstart on restored: {start.seconds:.2f} s; frozen+copy {frozen_s:.2f} s")
        assert start.started, start.error
        assert start.recovery_ran and not start.repair_needed, start.evidence
        assert any("DB loaded from append only file" in e for e in start.evidence)
        began = time.monotonic()
        report = APP.integrity(vm2)
        print(f"integrity on restored: {time.monotonic() - began:.2f} s")
        assert report.ok, report.details
        state = probe(vm2, "state")
        assert set(acked) <= set(state["seqs"])  # appendfsync always: every ack is there
        assert state["bank_total"] == BANK_TOTAL
        # End the AOF with plain appends (a torn MULTI/EXEC tail is another story: Redis
        # reverts it in memory but leaves an unterminated MULTI in the file).
        in_vm(vm2, APPENDS_ONLY)
        APP.stop(vm2)

        # A torn AOF tail: Redis loads it anyway (aof-load-truncated), which is a repair.
        incr = vm2.path("/var/lib/redis/appendonlydir/appendonly.aof.1.incr.aof")
        os.truncate(incr, incr.stat().st_size - 5)
        start = APP.start(vm2, 30)
        assert start.started, start.error
        assert start.repair_needed, start.evidence
        assert any("loaded anyway" in e for e in start.evidence), start.evidence
        report = APP.integrity(vm2)
        assert report.ok, report.details  # Redis cut the torn record off while loading
        APP.stop(vm2)


def test_sample_scripts(simple_vm: Callable[..., HostVM]) -> None:
    vm, _ = provisioned(simple_vm)
    install_scripts(vm)
    in_vm(vm, ROUND_TRIP.format(start=1, end=11))

    # pre.sh: returns once a new RDB is on disk, with writes paused; post.sh lifts the pause.
    saves = int(persistence(vm)["rdb_saves"])
    pre = run_script(vm, "pre.sh", "20000")
    assert pre.returncode == 0, pre.stderr.decode()
    info = persistence(vm)
    assert info["rdb_bgsave_in_progress"] == "0" and info["rdb_last_bgsave_status"] == "ok"
    assert int(info["rdb_saves"]) == saves + 1
    assert probe(vm, "write", "--timeout", "0.5")["result"] == "blocked"
    post = run_script(vm, "post.sh")
    assert post.returncode == 0, post.stderr.decode()
    assert probe(vm, "write", "--timeout", "1")["result"] == "accepted"

    # post-forgets-unpause.sh: exit 0, and the app's writes still hang.
    assert run_script(vm, "pre.sh", "20000").returncode == 0
    post = run_script(vm, "post-forgets-unpause.sh")
    assert post.returncode == 0
    assert probe(vm, "write", "--timeout", "0.5")["result"] == "blocked"
    assert cli(vm, "CLIENT", "UNPAUSE") == "OK"

    # pre-bgsave-nowait.sh: exit 0 at once, nothing waits, nothing is paused.
    pre = run_script(vm, "pre-bgsave-nowait.sh")
    assert pre.returncode == 0 and b"Background saving started" in pre.stdout
    assert probe(vm, "write", "--timeout", "1")["result"] == "accepted"
    assert run_script(vm, "post.sh").returncode == 0
