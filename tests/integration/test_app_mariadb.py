"""MariaDB 10.11 in a stand-in VM: provision, client, probes, restore from a frozen copy, scripts.

Needs root, loop devices, Debian's mariadb-server/mariadb-client and PyMySQL.
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
from pytest_vmsnap.apps import mariadb
from pytest_vmsnap.apps.base import BANK_TOTAL
from pytest_vmsnap.vm.host import HostVM
from pytest_vmsnap.vm.model import Disk, DiskSpec

pytest.importorskip("pymysql")
if shutil.which("mariadbd") is None or shutil.which("mariadb-install-db") is None:
    pytest.skip("MariaDB (Debian mariadb-server) is not installed", allow_module_level=True)

APP = mariadb.APP
FIFREEZE = 0xC0045877
FITHAW = 0xC0045878
SCRIPTS = data.sample_scripts("mariadb")
SCRIPT_DIR = "/etc/vmsnap-samples"  # the VM's /etc is a private overlay

ROUND_TRIP = """
import json
from pytest_vmsnap.apps.mariadb import APP
c = APP.client(5.0)
for seq in range(1, 21):
    c.append(seq, 1)
c.append(10000001, 2)
c.transfer(1, 2, 50)
c.transfer(3, 1, 7)
s = c.read_state()
c.close()
print(json.dumps({"seqs": sorted(s.seqs), "total": s.bank_total, "rows": s.bank_rows}))
"""

APPENDS = """
from pytest_vmsnap.apps.mariadb import APP
c = APP.client(5.0)
for seq in range({start}, {end}):
    c.append(seq, 1)
    c.transfer(seq % 10 + 1, (seq + 3) % 10 + 1, 5)
c.close()
"""


# The write on its own, not watched: when the client's socket gives up first (at 0.3 s, before
# max_statement_time at 1 s), the statement must be killed server side.
SOCKET_TIMEOUT_PROBE = """
import json
from pytest_vmsnap.apps.mariadb import APP, MariadbProbeWrite
c = APP.client(5.0)
MariadbProbeWrite.read_grace_s = -0.7
write = MariadbProbeWrite(c, 1.0)
print(json.dumps(write.attempt()))
write.close()
c.close()
"""


def provisioned(make: Callable[..., HostVM], disks: int = 1) -> tuple[HostVM, float]:
    vm = make(APP.layout(disks, "ext4"))
    began = time.monotonic()
    APP.provision(vm)
    return vm, time.monotonic() - began


def in_vm(vm: HostVM, code: str) -> str:
    return vm.run([sys.executable, "-c", code], timeout=60).stdout.decode()


def probe(vm: HostVM, *args: str) -> dict:
    done = vm.run([sys.executable, "-m", "pytest_vmsnap.evidence.probe", *args, "--app", "mariadb"])
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def sql(vm: HostVM, statement: str, *, check: bool = True) -> subprocess.CompletedProcess:
    """As root over the unix socket, the way users' scripts do it (plain ``mariadb -e``)."""
    return vm.run(["mariadb", "-N", "-B", "-e", statement], check=check, timeout=30)


def probe_rows(vm: HostVM) -> int:
    return int(sql(vm, "SELECT COUNT(*) FROM vmsnap.vmsnap_probe").stdout.decode().strip())


def install_scripts(vm: HostVM) -> None:
    target = vm.path(SCRIPT_DIR)
    target.mkdir(parents=True, exist_ok=True)
    for script in SCRIPTS.glob("*.sh"):
        shutil.copy2(script, target / script.name)
        (target / script.name).chmod(0o700)  # git keeps only 755; the framework wants 700


def run_script(vm: HostVM, name: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return vm.run(["sh", f"{SCRIPT_DIR}/{name}", *args], check=False, timeout=60)


@contextlib.contextmanager
def root_ftwrl(vm: HostVM) -> Iterator[subprocess.Popen[bytes]]:
    """A root session holding FLUSH TABLES WITH READ LOCK until the block ends."""
    holder = vm.popen(
        ["mariadb", "-N", "-B", "--unbuffered"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        holder.stdin.write(b"FLUSH TABLES WITH READ LOCK;\nSELECT 'LOCKED';\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == b"LOCKED"
        yield holder
    finally:
        with contextlib.suppress(OSError):
            holder.stdin.write(b"UNLOCK TABLES;\n")
            holder.stdin.close()
        holder.wait(timeout=10)
        holder.stdout.close()


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
    vm, provision_s = provisioned(simple_vm, disks=2)
    print(f"\nprovision (2 disks): {provision_s:.2f} s")

    # Debian layout: redo log on the second disk, the config in the VM's private /etc.
    assert vm.path("/var/lib/mysql-log/ib_logfile0").exists()
    assert not vm.path("/var/lib/mysql/ib_logfile0").exists()
    assert vm.path("/var/lib/mysql/vmsnap").is_dir()
    assert "innodb_log_group_home_dir" in vm.path(mariadb.CNF).read_text()
    assert not Path(mariadb.CNF).exists() or "vmsnap" not in Path(mariadb.CNF).read_text()
    # root by unix socket with the stock client defaults, also through /var/run.
    assert sql(vm, "SELECT CURRENT_USER()").stdout.decode().strip() == "root@localhost"
    other = vm.run(["mysql", "--socket=/var/run/mysqld/mysqld.sock", "-N", "-e", "SELECT 1"])
    assert other.stdout.decode().strip() == "1"
    grants = sql(vm, "SHOW GRANTS FOR 'vmsnap_app'@'127.0.0.1'").stdout.decode()
    assert "SELECT, INSERT, UPDATE, DELETE ON `vmsnap`.*" in grants
    assert "SUPER" not in grants and "READ_ONLY" not in grants and "ALL PRIVILEGES" not in grants
    engines = sql(
        vm,
        "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = 'vmsnap' ORDER BY TABLE_NAME",
    ).stdout.decode()
    assert engines.split() == [
        "vmsnap_bank",
        "InnoDB",
        "vmsnap_events",
        "MyISAM",
        "vmsnap_log",
        "InnoDB",
        "vmsnap_probe",
        "InnoDB",
    ]

    state = json.loads(in_vm(vm, ROUND_TRIP).strip().splitlines()[-1])
    assert state["seqs"] == [*range(1, 21), 10000001]
    assert state["total"] == BANK_TOTAL and state["rows"] == 10
    events = sql(vm, "SELECT COUNT(*) FROM vmsnap.vmsnap_events").stdout.decode().strip()
    assert events == "21"  # every append also went to the MyISAM table

    assert probe(vm, "write", "--timeout", "1")["result"] == "accepted"

    # A root session holding FTWRL: the app's write blocks, seen waiting for the backup lock in
    # the process list long before its own timeout, and the abandoned one never lands.
    before = probe_rows(vm)
    with root_ftwrl(vm):
        blocked = probe(vm, "write", "--timeout", "5")
        assert blocked["result"] == "blocked", blocked
        assert "Waiting for backup lock" in blocked["detail"], blocked
        assert blocked["latency_s"] < 2, blocked
        result, detail = json.loads(in_vm(vm, SOCKET_TIMEOUT_PROBE).strip().splitlines()[-1])
        assert result == "blocked" and "killed" in detail, detail
        waiting = sql(
            vm, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'vmsnap_app'"
        )
        assert waiting.stdout.decode().strip() == "0"
    time.sleep(0.3)
    assert probe_rows(vm) == before

    # read_only: the app user is refused (no SUPER / READ_ONLY ADMIN), root is not.
    sql(vm, "SET GLOBAL read_only = ON")
    try:
        refused = probe(vm, "write", "--timeout", "1")
        assert refused["result"] == "refused" and "1290" in refused["detail"], refused
        sql(vm, "INSERT INTO vmsnap.vmsnap_probe (at) VALUES (0)")
    finally:
        sql(vm, "SET GLOBAL read_only = OFF")
    assert probe(vm, "write", "--timeout", "1")["result"] == "accepted"

    began = time.monotonic()
    report = APP.integrity(vm)
    print(f"integrity: {time.monotonic() - began:.2f} s; {report.details[0]}")
    assert report.ok, report.details

    versions = APP.versions(vm)
    assert versions["mariadbd"].startswith("10.11"), versions
    assert versions["server"].startswith("10.11"), versions

    APP.stop(vm)
    left = vm.run(["sh", "-c", "ps -eo comm | grep -c '^mariadbd' || true"]).stdout.decode()
    assert left.strip() == "0"


def test_restore_frozen_copies_with_and_without_lock(
    simple_vm: Callable[..., HostVM], tmp_path: Path
) -> None:
    vm, provision_s = provisioned(simple_vm)
    print(f"\nprovision (1 disk): {provision_s:.2f} s")
    install_scripts(vm)
    disk = vm.disks[0]
    in_vm(vm, APPENDS.format(start=1, end=41))

    # 1. No quiesce: InnoDB replays its redo log; the MyISAM table was left open for writing.
    copy = tmp_path / "nolock.img"
    frozen_s = copy_frozen(vm, disk, copy)
    with vm_on_image("restored", disk.spec, copy) as vm2:
        start = APP.start(vm2, 30)
        print(f"start on restored (no lock): {start.seconds:.2f} s; frozen+copy {frozen_s:.2f} s")
        assert start.started, start.error
        assert start.recovery_ran, start.evidence
        assert any("crash recovery" in line for line in start.evidence), start.evidence
        assert start.repair_needed, start.evidence
        assert any("vmsnap_events" in line for line in start.evidence), start.evidence
        began = time.monotonic()
        report = APP.integrity(vm2)
        print(f"integrity on restored: {time.monotonic() - began:.2f} s")
        assert report.ok, report.details
        state = probe(vm2, "state")
        assert set(range(1, 41)) <= set(state["seqs"])
        assert state["bank_total"] == BANK_TOTAL
        APP.stop(vm2)

    # 2. The correct pre-script: the app's writes block, the copy restores without repair.
    pre = run_script(vm, "pre.sh", "60")
    assert pre.returncode == 0, pre.stderr.decode()
    assert b"held by session" in pre.stdout
    try:
        assert probe(vm, "write", "--timeout", "0.5")["result"] == "blocked"
        copy = tmp_path / "locked.img"
        copy_frozen(vm, disk, copy)
    finally:
        post = run_script(vm, "post.sh")
    assert post.returncode == 0, post.stderr.decode()
    assert probe(vm, "write", "--timeout", "1")["result"] == "accepted"
    with vm_on_image("restored-locked", disk.spec, copy) as vm2:
        start = APP.start(vm2, 30)
        print(f"start on restored (FTWRL held): {start.seconds:.2f} s")
        assert start.started, start.error
        assert not start.repair_needed, start.evidence
        assert APP.integrity(vm2).ok
        state = probe(vm2, "state")
        assert set(range(1, 41)) <= set(state["seqs"])
        assert state["bank_total"] == BANK_TOTAL
        APP.stop(vm2)


def test_sample_scripts(simple_vm: Callable[..., HostVM]) -> None:
    vm, _ = provisioned(simple_vm)
    install_scripts(vm)

    # post.sh without a holder: nothing to release.
    post = run_script(vm, "post.sh")
    assert post.returncode == 0 and b"nothing to release" in post.stdout

    # pre.sh's watchdog: the lock goes on its own, and post.sh then says the snapshot
    # may not have been covered.
    assert run_script(vm, "pre.sh", "3").returncode == 0
    began = time.monotonic()
    assert probe(vm, "write", "--timeout", "0.3")["result"] == "blocked"
    time.sleep(max(0.0, 3.5 - (time.monotonic() - began)))
    assert probe(vm, "write", "--timeout", "1")["result"] == "accepted"
    post = run_script(vm, "post.sh")
    assert post.returncode == 1 and b"watchdog" in post.stderr

    # pre-ftwrl-exits.sh: exit 0, the app user is refused by read_only, but no lock is held:
    # root's write goes through at once (it would wait under FTWRL).
    pre = run_script(vm, "pre-ftwrl-exits.sh")
    assert pre.returncode == 0, pre.stderr.decode()
    refused = probe(vm, "write", "--timeout", "1")
    assert refused["result"] == "refused" and "1290" in refused["detail"], refused
    root = sql(
        vm,
        "SET SESSION lock_wait_timeout = 2; INSERT INTO vmsnap.vmsnap_probe (at) VALUES (1)",
        check=False,
    )
    assert root.returncode == 0, root.stderr.decode()
    holders = sql(
        vm,
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
        "WHERE USER = 'root' AND ID <> CONNECTION_ID()",
    )
    assert holders.stdout.decode().strip() == "0"  # the session that took FTWRL is gone

    # post-leaves-readonly.sh: exit 0, and the app stays read-only.
    post = run_script(vm, "post-leaves-readonly.sh")
    assert post.returncode == 0
    assert probe(vm, "write", "--timeout", "1")["result"] == "refused"
    assert sql(vm, "SELECT @@global.read_only").stdout.decode().strip() == "1"
    post = run_script(vm, "post-readonly-off.sh")
    assert post.returncode == 0
    assert probe(vm, "write", "--timeout", "1")["result"] == "accepted"

    # pre-sleep-fixed.sh: blocked right after it, accepted again ~2 s later without any post.
    pre = run_script(vm, "pre-sleep-fixed.sh")
    assert pre.returncode == 0, pre.stderr.decode()
    began = time.monotonic()
    assert probe(vm, "write", "--timeout", "0.3")["result"] == "blocked"
    time.sleep(max(0.0, 2.5 - (time.monotonic() - began)))
    assert probe(vm, "write", "--timeout", "1")["result"] == "accepted"
    assert run_script(vm, "post.sh").returncode == 0
