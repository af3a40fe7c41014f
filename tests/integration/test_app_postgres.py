"""PostgreSQL in a stand-in VM: provision, client, probes, layouts, crash recovery, scripts.

Needs root, loop devices and a PostgreSQL under ``/usr/lib/postgresql/<major>/bin`` (Debian's
``postgresql``: 15 on Debian 12); the paths below follow the version found.
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
from pytest_vmsnap.apps import postgres
from pytest_vmsnap.apps.base import BANK_TOTAL, AppOptions
from pytest_vmsnap.apps.discover import NotInstalled, find_postgres
from pytest_vmsnap.vm.host import HostVM
from pytest_vmsnap.vm.model import Disk, DiskSpec

pytest.importorskip("psycopg")
try:
    PG = find_postgres()  # what the app finds in a host stand-in, whose root is this one's
except NotInstalled as err:
    pytest.skip(str(err), allow_module_level=True)

APP = postgres.APP
FIFREEZE = 0xC0045877
FITHAW = 0xC0045878
SCRIPTS = data.sample_scripts("postgres")

CLIENT_ROUND_TRIP = """
import json
from pytest_vmsnap.apps.postgres import APP
c = APP.client(5.0)
c.append(1, 1)
c.append(2, 1)
c.append(10000001, 2)
c.transfer(1, 2, 50)
c.transfer(3, 1, 7)
s = c.read_state()
c.close()
print(json.dumps({"seqs": sorted(s.seqs), "total": s.bank_total, "rows": s.bank_rows}))
"""

WRITE_AND_READ = """
import json
from pytest_vmsnap.apps.postgres import APP
c = APP.client(5.0)
c.append(3, 1)
c.transfer(4, 5, 11)
s = c.read_state()
c.close()
print(json.dumps({"seqs": sorted(s.seqs), "total": s.bank_total, "rows": s.bank_rows}))
"""

# The probe's write on its own, not watched: its lock_timeout must end it.
UNWATCHED_PROBE = """
import json
from pytest_vmsnap.apps.postgres import APP, PostgresProbeWrite
c = APP.client(5.0)
write = PostgresProbeWrite(c, 0.5)
print(json.dumps(write.attempt()))
write.close()
c.close()
"""


def provisioned(make: Callable[..., HostVM], disks: int = 1, fs: str = "ext4") -> HostVM:
    specs = [DiskSpec(s.name, s.mountpoint, 512, s.fs) for s in APP.layout(disks, fs)]
    vm = make(specs)
    APP.provision(vm)
    return vm


def in_vm(vm: HostVM, code: str) -> dict:
    done = vm.run([sys.executable, "-c", code], timeout=60)
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def probe(vm: HostVM, *args: str) -> dict:
    done = vm.run(
        [sys.executable, "-m", "pytest_vmsnap.evidence.probe", *args, "--app", "postgres"]
    )
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def install_scripts(vm: HostVM) -> None:
    target = vm.path("/etc/azure")
    target.mkdir(parents=True, exist_ok=True)
    for script in SCRIPTS.glob("*.sh"):
        shutil.copy2(script, target / script.name)


def run_script(vm: HostVM, name: str) -> subprocess.CompletedProcess[bytes]:
    return vm.run(["sh", f"/etc/azure/{name}"], check=False, timeout=60)


@contextlib.contextmanager
def vm_on_images(name: str, disks: list[tuple[DiskSpec, Path]]) -> Iterator[HostVM]:
    """A started HostVM on existing images (simple_vm only makes fresh disks)."""
    loops: list[str] = []
    vm: HostVM | None = None
    try:
        attached = []
        for spec, image in disks:
            dev = subprocess.run(
                ["losetup", "--find", "--show", str(image)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            loops.append(dev)
            attached.append(Disk(spec, image, loopdev=dev, uuid_clone=True))
        vm = HostVM(name, attached, tag="vmsnap-test").start()
        yield vm
    finally:
        if vm is not None:
            vm.stop()
        for dev in loops:
            subprocess.run(["losetup", "-d", dev], capture_output=True)


def copy_frozen(vm: HostVM, dest: Path) -> list[tuple[DiskSpec, Path]]:
    """Freeze every disk of the VM, copy the images (one atomic snapshot), thaw (always)."""
    fds: list[int] = []
    copies = []
    try:
        for disk in vm.disks:
            fd = os.open(vm.path(disk.spec.mountpoint), os.O_RDONLY | os.O_DIRECTORY)
            fds.append(fd)
            fcntl.ioctl(fd, FIFREEZE, 0)
        for disk in vm.disks:
            copy = dest / f"restored-{disk.spec.name}.img"
            subprocess.run(["cp", "--sparse=always", str(disk.image), str(copy)], check=True)
            copies.append((disk.spec, copy))
    finally:
        for fd in reversed(fds):
            with contextlib.suppress(OSError):  # EINVAL: its freeze had failed
                fcntl.ioctl(fd, FITHAW, 0)
            os.close(fd)
    return copies


def test_client_probes_and_scripts_on_one_disk(simple_vm: Callable[..., HostVM]) -> None:
    vm = provisioned(simple_vm)
    assert APP.psql(vm, "SELECT rolsuper FROM pg_roles WHERE rolname = 'vmsnap_app'") == "f\n"
    # peer authentication for the superuser on the Debian socket, as users' scripts do it
    done = vm.run(["su", "postgres", "-c", "psql -X -At -c 'SHOW port'"])
    assert done.stdout.decode().strip() == "5432"

    state = in_vm(vm, CLIENT_ROUND_TRIP)
    assert state == {"seqs": [1, 2, 10000001], "total": BANK_TOTAL, "rows": 10}
    balances = APP.psql(vm, "SELECT string_agg(balance::text, ',' ORDER BY id) FROM vmsnap_bank")
    assert balances.split(",")[:3] == ["9957", "10050", "9993"]

    assert probe(vm, "write", "--timeout", "1")["result"] == "accepted"

    # blocked: another session holds an ACCESS EXCLUSIVE lock on the probe table
    rows = "SELECT count(*) FROM vmsnap_probe"
    before = int(APP.psql(vm, rows))
    holder = vm.popen(
        ["runuser", "-u", "postgres", "--", PG.program("psql"), "-X", "-q", "-d", "vmsnap"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert holder.stdin is not None
        holder.stdin.write(b"BEGIN;\nLOCK TABLE vmsnap_probe IN ACCESS EXCLUSIVE MODE;\n")
        holder.stdin.flush()
        held = "SELECT count(*) FROM pg_locks WHERE relation = 'vmsnap_probe'::regclass AND granted"
        for _ in range(100):
            if APP.psql(vm, held).strip() == "1":
                break
            time.sleep(0.1)
        else:
            pytest.fail("the lock holder never got its lock")
        # Seen waiting on the holder's lock in pg_stat_activity, well before its own timeout.
        blocked = probe(vm, "write", "--timeout", "5")
        assert blocked["result"] == "blocked", blocked
        assert "relation lock held by backend" in blocked["detail"], blocked
        assert blocked["latency_s"] < 2, blocked
        # Not watched, the write's own statement/lock timeout ends it.
        attempt = in_vm(vm, UNWATCHED_PROBE)
        assert attempt[0] == "blocked" and "not done in 0.5 s" in attempt[1], attempt
    finally:
        assert holder.stdin is not None
        with contextlib.suppress(OSError):
            holder.stdin.write(b"ROLLBACK;\n")
            holder.stdin.close()
        holder.wait(timeout=20)
    # The cancelled writes never landed: the next accepted one is the only new row.
    assert probe(vm, "write", "--timeout", "1")["result"] == "accepted"
    assert int(APP.psql(vm, rows)) == before + 1

    # refused: default_transaction_read_only, set by the broken pre-script and never undone
    install_scripts(vm)
    assert run_script(vm, "pre-sets-readonly.sh").returncode == 0
    assert run_script(vm, "post-leaves-readonly.sh").returncode == 0
    refused = probe(vm, "write", "--timeout", "1")
    assert refused["result"] == "refused", refused
    assert "read-only transaction" in refused["detail"]
    live = probe(vm, "live", "--bound", "1")
    assert live["ok"] is False
    post = run_script(vm, "post.sh")
    assert post.returncode != 0 and b"read-only transaction" in post.stderr
    APP.psql(
        vm, "ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf();", "postgres"
    )
    assert probe(vm, "live", "--bound", "5")["ok"] is True

    # the sample scripts behave as their header comments say
    pre = run_script(vm, "pre.sh")
    assert pre.returncode == 0, pre.stderr
    assert b"CHECKPOINT done" in pre.stdout
    post = run_script(vm, "post.sh")
    assert post.returncode == 0, post.stderr
    assert b"accepts writes" in post.stdout

    old = run_script(vm, "pre-pg-start-backup.sh")
    assert old.returncode != 0
    assert b"pg_start_backup(unknown, boolean) does not exist" in old.stderr

    masked = run_script(vm, "pre-no-on-error-stop.sh")
    assert masked.returncode == 0  # the bug: the error is masked as success
    assert b"vmsnap_quiesce_begin() does not exist" in masked.stderr

    started = run_script(vm, "pre-backup-start-session.sh")
    assert started.returncode == 0
    stopped = run_script(vm, "post-backup-stop.sh")
    assert stopped.returncode != 0
    assert b"backup is not in progress" in stopped.stderr

    versions = APP.versions(vm)
    assert f"{PG.version}." in versions["postgres"], versions
    assert versions["server"].startswith(f"PostgreSQL {PG.version}") and versions["postgres_bin"]
    report = APP.integrity(vm)
    assert report.ok, report.details
    assert any("vmsnap_log_pkey: btree ok" in d for d in report.details)

    APP.stop(vm)  # pre.sh fails loudly when the server does not answer
    down = run_script(vm, "pre.sh")
    assert down.returncode != 0 and b"does not answer" in down.stderr


def test_paths_follow_the_version_found_or_named(simple_vm: Callable[..., HostVM]) -> None:
    # Named the way a user would (vmsnap_pg_bin): the same installation, the same paths.
    app = postgres.PostgresApp(bin_dir=PG.bin).configured(AppOptions(pg_bin=PG.bin + "/"))
    assert app.install(simple_vm([])) == PG  # a VM with no disk sees the same /usr
    specs = [DiskSpec(s.name, s.mountpoint, 512, s.fs) for s in app.layout(1, "ext4")]
    vm = simple_vm(specs)
    app.provision(vm)
    assert app.psql(vm, "SHOW cluster_name").strip() == f"{PG.version}/main"
    assert app.psql(vm, "SHOW data_directory").strip() == PG.data
    assert vm.path(f"{PG.data}/PG_VERSION").read_text().strip() == PG.version
    assert f"/run/postgresql-log/postgresql-{PG.version}-main.log" == PG.log_file
    assert "database system is ready" in vm.path(PG.log_file).read_text()
    wrong = postgres.PostgresApp(version="7")
    report = wrong.start(vm, 5)  # a version that is not there: one line with the fix
    assert not report.started and "PostgreSQL 7 is not installed" in report.error
    assert "apt-get install postgresql-7" in report.error
    app.stop(vm)


def test_wal_on_second_disk_xfs(simple_vm: Callable[..., HostVM]) -> None:
    vm = provisioned(simple_vm, disks=2, fs="xfs")
    assert os.readlink(vm.path(f"{PG.data}/pg_wal")) == PG.wal_dir
    assert any(p.name.startswith("0000") for p in vm.path(PG.wal_dir).iterdir())
    state = in_vm(vm, CLIENT_ROUND_TRIP)
    assert state["seqs"] == [1, 2, 10000001] and state["total"] == BANK_TOTAL
    walfile = APP.psql(vm, "SELECT pg_walfile_name(pg_current_wal_lsn())").strip()
    assert vm.path(f"{PG.wal_dir}/{walfile}").exists()


def test_restored_copy_of_three_disks_runs_crash_recovery(
    simple_vm: Callable[..., HostVM], tmp_path: Path
) -> None:
    vm = provisioned(simple_vm, disks=3)  # data, pg_wal, tablespace with the workload tables
    placed = APP.psql(
        vm,
        "SELECT c.relname || '=' || coalesce(t.spcname, 'default') FROM pg_class c "
        "LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace "
        "WHERE c.relname IN ('vmsnap_log', 'vmsnap_bank_pkey') ORDER BY 1",
    ).split()
    assert placed == ["vmsnap_bank_pkey=vmsnap_ts", "vmsnap_log=vmsnap_ts"]
    in_vm(vm, CLIENT_ROUND_TRIP)  # acknowledged, not checkpointed: only in the WAL
    copies = copy_frozen(vm, tmp_path)
    vm.stop()  # the source is gone, as after a real snapshot restore to a new VM

    with vm_on_images("restored", copies) as vm2:
        report = APP.start(vm2, 30)
        assert report.started, report.error
        assert report.recovery_ran
        assert not report.repair_needed
        text = "\n".join(report.evidence)
        assert "Database cluster state: in production" in text
        assert "automatic recovery in progress" in text
        assert "redo starts at" in text or "redo is not required" in text
        assert "stale postmaster.pid" in text
        state = in_vm(vm2, WRITE_AND_READ)  # every acknowledged write is back, and it writes
        assert state == {"seqs": [1, 2, 3, 10000001], "total": BANK_TOTAL, "rows": 10}
        ok = APP.integrity(vm2)
        assert ok.ok, ok.details

        # a clean restart is no recovery; a damaged page is found by the integrity check
        APP.stop(vm2)
        again = APP.start(vm2, 30)
        assert again.started and not again.recovery_ran
        assert "Database cluster state: shut down" in "\n".join(again.evidence)
        relpath = APP.psql(vm2, "SELECT pg_relation_filepath('vmsnap_log')").strip()
        APP.stop(vm2)
        # inside the VM: the table lives behind pg_tblspc's absolute symlink to the third disk
        damage = f"f = open('{PG.data}/{relpath}', 'r+b'); f.seek(4000); f.write(b'X' * 64)"
        vm2.run([sys.executable, "-c", damage])
        assert APP.start(vm2, 30).started
        damaged = APP.integrity(vm2)
        assert not damaged.ok
        assert any("invalid page" in d or "checksum" in d for d in damaged.details), damaged
        APP.stop(vm2)
