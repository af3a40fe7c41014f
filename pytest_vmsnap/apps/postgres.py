"""PostgreSQL (Debian's ``postgresql-<major>``) laid out as on a Debian server.

The major version is the one installed in the VM (the newest under
``/usr/lib/postgresql/<major>/bin``: this machine's in the host stand-in, whose root is a view
of this one; the image's in the container stand-in, 15 in ``vmsnap/pg15``), or the one the
settings name (``pg_version``, ``pg_bin``): :func:`pytest_vmsnap.apps.discover.find_postgres`,
read through the VM's root on every call, so provision, start, stop and the checks of a
restored VM agree. Every path below that names the version (``15`` on Debian 12) follows from
it (:class:`~pytest_vmsnap.apps.discover.PgInstall`). Inside the stand-in VM:

- data directory ``/var/lib/postgresql/15/main`` on the disk mounted at ``/var/lib/postgresql``
  (``postgresql.conf``, ``pg_hba.conf`` and ``postgresql.auto.conf`` live in it, so a snapshot
  carries the whole configuration, ``ALTER SYSTEM`` included);
- 2 disks: ``pg_wal`` on the second disk (``/var/lib/postgresql-wal/15/main``, made by
  ``initdb --waldir``); 3 disks: also the tablespace ``vmsnap_ts`` on
  ``/var/lib/postgresql-ts`` holding the workload tables and their indexes. A snapshot is only
  crash-consistent if it covers every one of these disks at the same instant;
- socket directory ``/var/run/postgresql`` (the VM's private ``/run``), port 5432, listening on
  the VM's own ``127.0.0.1``;
- superuser ``postgres`` with peer authentication on the socket (scripts use
  ``su postgres -c "psql ..."`` or ``runuser -u postgres -- psql``); the application user
  ``vmsnap_app`` (not a superuser) with a scram password over TCP, owner of database ``vmsnap``.
  The privileged writer is a session as ``postgres`` with the server's defaults (what an admin
  job's ``runuser -u postgres -- psql`` gets), over TCP with the password
  :data:`SUPERUSER_PASSWORD` set at provisioning: the socket's peer authentication would want
  this process to run as the OS user ``postgres``. ``default_transaction_read_only`` set by
  ``ALTER SYSTEM`` binds that session as well; set per role on ``vmsnap_app`` it does not;
- server log ``/run/postgresql-log/postgresql-15-main.log``. Not Debian's ``/var/log/postgresql``:
  ``/var/log`` is shared with the host (parallel VMs would write into the host's file). Not in
  the data directory either: a logger writing to a frozen disk stalls every backend that logs,
  and a log inside the snapshot would mix the source server's lines into the restored server's,
  while recovery evidence must come from the restored server's own start. ``/run`` is private
  and fresh in every VM, so the log of a restored VM holds exactly its own start.

Crash recovery on a restored copy is read from two places: ``pg_controldata``'s "Database
cluster state" before the start ("in production" = the server was not shut down cleanly, the
normal case for a snapshot of a running server) and the server log of this start ("database
system was not properly shut down; automatic recovery in progress", "redo starts at", "redo
done at"). WAL replay is PostgreSQL's designed path: ``repair_needed`` is never set.

Server-side work runs inside the VM as root, as calls of this module's functions through the
VM's fork server (``vm.call``); the client (psycopg 3) is used inside the VM.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
from typing import Any, ClassVar

from ..vm.model import DiskSpec
from .base import (
    APP_PASSWORD,
    APP_ROLE,
    APP_USER,
    BANK_ACCOUNTS,
    BANK_TOTAL,
    App,
    AppOptions,
    Client,
    IntegrityReport,
    Role,
    StartReport,
    State,
    VmLike,
)
from .discover import (
    PG_LOG_DIR,
    PG_MOUNT,
    PG_WAL_MOUNT,
    NotInstalled,
    PgInstall,
    find_postgres,
    parse_server_major,
)
from .probewrite import ProbeWrite, one_line

MOUNT = PG_MOUNT
WAL_MOUNT = PG_WAL_MOUNT
TS_MOUNT = "/var/lib/postgresql-ts"
TS_DIR = f"{TS_MOUNT}/vmsnap_ts"
TABLESPACE = "vmsnap_ts"
SOCKET_DIR = "/var/run/postgresql"
LOG_DIR = PG_LOG_DIR
PORT = 5432
HOST = "127.0.0.1"
DB_NAME = "vmsnap"
SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "vmsnap-superuser-pw"
TABLES = ("vmsnap_log", "vmsnap_bank", "vmsnap_probe")

# Small and fast, but durable: fsync, full_page_writes and synchronous_commit stay on.
CONF = f"""
# --- pytest-vmsnap stand-in (Debian layout, tuned for fast tests; durability kept) ---
listen_addresses = '{HOST}'
port = {PORT}
unix_socket_directories = '{SOCKET_DIR}'
max_connections = 50
shared_buffers = 16MB
fsync = on
synchronous_commit = on
full_page_writes = on
# crash recovery starts by syncing the data directory: one syncfs per file system instead of
# an fsync per file (1.5 s -> a few ms on a fresh cluster; the same guarantee on Linux)
recovery_init_sync_method = syncfs
max_wal_size = 256MB
min_wal_size = 64MB
password_encryption = 'scram-sha-256'
log_line_prefix = '%m [%p] %q%u@%d '
log_checkpoints = on
lc_messages = 'C'
"""


def _conf(pg: PgInstall) -> str:
    """Our settings for the cluster of ``pg`` (appended to its ``postgresql.conf``)."""
    return CONF + f"cluster_name = '{pg.cluster_name}'\n"


HBA = """
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  peer
host    all       all   127.0.0.1/32   scram-sha-256
host    all       all   ::1/128        scram-sha-256
"""

SCHEMA = f"""
CREATE TABLE vmsnap_log (seq bigint PRIMARY KEY, writer integer, at double precision);
CREATE TABLE vmsnap_bank (id integer PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE vmsnap_probe (id bigserial PRIMARY KEY, at double precision);
INSERT INTO vmsnap_bank (id, balance)
  SELECT i, {BANK_TOTAL // BANK_ACCOUNTS} FROM generate_series(1, {BANK_ACCOUNTS}) AS i;
"""

RECOVERY_MARKERS = (
    "not properly shut down",
    "automatic recovery in progress",
    "database system was interrupted",
    "redo starts at",
    "redo done at",
    "redo is not required",
    "invalid record length",
    "checkpoint starting: end-of-recovery",
)
RECOVERY_STARTED = ("automatic recovery in progress", "redo starts at", "was interrupted")


class PostgresClient(Client):
    """A TCP connection as ``vmsnap_app`` (or, role ``privileged``, as the superuser);
    ``timeout_s`` bounds connect and every statement."""

    def __init__(
        self, timeout_s: float = 10.0, host: str = HOST, port: int = PORT, role: Role = APP_ROLE
    ) -> None:
        import psycopg

        self._psycopg = psycopg
        self.host, self.port = host, port
        self.user, self.password = (
            (APP_USER, APP_PASSWORD) if role == APP_ROLE else (SUPERUSER, SUPERUSER_PASSWORD)
        )
        self.conn = self.connect(timeout_s)

    def connect(self, timeout_s: float, name: str = "vmsnap", lock_timeout: bool = False) -> Any:
        """A new autocommit connection in the client's role whose statements end after
        ``timeout_s`` (and whose lock waits too, with ``lock_timeout``)."""
        ms = max(1, int(timeout_s * 1000))
        options = f"-c statement_timeout={ms}" + (f" -c lock_timeout={ms}" if lock_timeout else "")
        return self._psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=DB_NAME,
            user=self.user,
            password=self.password,
            connect_timeout=max(2, math.ceil(timeout_s)),
            application_name=name,
            options=options,
            autocommit=True,
        )

    def append(self, seq: int, writer: int) -> None:
        # autocommit: execute() returns after the commit record is flushed (synchronous_commit).
        self.conn.execute(
            "INSERT INTO vmsnap_log (seq, writer, at) VALUES (%s, %s, %s)",
            (seq, writer, time.time()),
        )

    def transfer(self, src: int, dst: int, amount: int) -> None:
        moves = sorted([(src, -amount), (dst, amount)])  # fixed row order: no deadlocks
        with self.conn.transaction():
            for account, delta in moves:
                self.conn.execute(
                    "UPDATE vmsnap_bank SET balance = balance + %s WHERE id = %s",
                    (delta, account),
                )

    def new_probe_write(self, timeout_s: float) -> ProbeWrite:
        return PostgresProbeWrite(self, timeout_s)

    def read_state(self) -> State:
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            seqs = {row[0] for row in self.conn.execute("SELECT seq FROM vmsnap_log")}
            total, rows = self.conn.execute(
                "SELECT SUM(balance)::bigint, COUNT(*) FROM vmsnap_bank"
            ).fetchone()
        return State(seqs, None if total is None else int(total), int(rows))

    def close(self) -> None:
        self.conn.close()


class PostgresProbeWrite(ProbeWrite):
    """An INSERT on a fresh connection; the client's own connection watches it in
    ``pg_stat_activity`` (a role sees its own sessions) and cancels it if it must."""

    def __init__(self, client: PostgresClient, timeout_s: float) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.conn = client.connect(timeout_s, name="vmsnap-probe", lock_timeout=True)
        self.backend = self.conn.info.backend_pid

    def attempt(self) -> tuple[str, str]:
        errors = self.client._psycopg.errors
        try:
            self.conn.execute("INSERT INTO vmsnap_probe (at) VALUES (%s)", (time.time(),))
        except (errors.QueryCanceled, errors.LockNotAvailable) as err:
            return "blocked", f"not done in {self.timeout_s:.1f} s: {one_line(err)}"
        except self.client._psycopg.Error as err:
            code = getattr(err, "sqlstate", None) or "no sqlstate"
            return "refused", f"{code}: {one_line(err)}"
        return "accepted", "the write committed"

    def waiting_on(self) -> str | None:
        row = self.client.conn.execute(
            "SELECT wait_event, pg_blocking_pids(pid) FROM pg_stat_activity "
            "WHERE pid = %s AND wait_event_type = 'Lock'",
            (self.backend,),
        ).fetchone()
        if not row or not row[1]:
            return None
        holders = ", ".join(str(pid) for pid in row[1])
        return f"waiting for a {row[0]} lock held by backend {holders}"

    def abandon(self) -> None:
        self.client.conn.execute("SELECT pg_cancel_backend(%s)", (self.backend,))

    def close(self) -> None:
        self.conn.close()


class PostgresApp(App):
    """PostgreSQL server on the VM's disks: the major ``version`` or the one in ``bin_dir``
    (paths inside the VM), else the newest installed in the VM."""

    name: ClassVar[str] = "postgres"
    client_modules: ClassVar[tuple[str, ...]] = (__name__, "psycopg")

    def __init__(self, version: str | None = None, bin_dir: str | None = None) -> None:
        self.version = version
        self.bin_dir = bin_dir

    def configured(self, options: AppOptions) -> PostgresApp:
        return PostgresApp(options.pg_version, options.pg_bin)

    def install(self, vm: VmLike) -> PgInstall:
        """The PostgreSQL this app runs in ``vm``, found in the VM's own root;
        :class:`~pytest_vmsnap.apps.discover.NotInstalled` names the fix."""

        def major(postgres: str) -> str | None:  # a pg_bin outside /usr/lib/postgresql/<v>
            done = vm.run([postgres, "--version"], check=False, timeout=30)
            return parse_server_major(done.stdout.decode(errors="replace"))

        try:
            return find_postgres(self.version, self.bin_dir, vm.path("/"), version_of=major)
        except NotInstalled as err:
            raise NotInstalled(f"in the stand-in VM {vm.name}: {err.what}", err.fix) from None

    def layout(self, disks: int, fs: str) -> list[DiskSpec]:
        specs = [DiskSpec("data", MOUNT, 1024, fs)]  # type: ignore[arg-type]
        if disks >= 2:
            specs.append(DiskSpec("wal", WAL_MOUNT, 512, fs))  # type: ignore[arg-type]
        if disks >= 3:
            specs.append(DiskSpec("ts", TS_MOUNT, 512, fs))  # type: ignore[arg-type]
        for i in range(4, disks + 1):
            specs.append(DiskSpec(f"disk{i}", f"/srv/disk{i}", 512, fs))  # type: ignore[arg-type]
        return specs

    def provision(self, vm: VmLike) -> None:
        vm.call(f"{__name__}:provision_cluster", self.install(vm).to_dict(), timeout=180)

    def start(self, vm: VmLike, deadline_s: float) -> StartReport:
        began = time.monotonic()
        try:
            pg = self.install(vm).to_dict()
            out = vm.call(f"{__name__}:start_server", deadline_s, pg, timeout=deadline_s + 30)
        except Exception as err:
            return StartReport(False, time.monotonic() - began, error=str(err))
        return StartReport(
            started=bool(out["started"]),
            seconds=time.monotonic() - began,
            recovery_ran=bool(out["recovery_ran"]),
            repair_needed=False,
            evidence=list(out["evidence"]),
            error=out.get("error", ""),
        )

    def stop(self, vm: VmLike) -> None:
        vm.call(f"{__name__}:stop_server", self.install(vm).to_dict())

    def integrity(self, vm: VmLike) -> IntegrityReport:
        try:
            out = vm.call(f"{__name__}:integrity_checks", self.install(vm).to_dict(), timeout=300)
        except Exception as err:  # a check that cannot run is a failed check, with the reason
            return IntegrityReport(ok=False, details=[f"integrity checks did not run: {err}"])
        return IntegrityReport(ok=bool(out["ok"]), repaired=False, details=list(out["details"]))

    def versions(self, vm: VmLike) -> dict[str, str]:
        try:
            pg = self.install(vm)
            out = vm.call(f"{__name__}:server_versions", pg.to_dict())
            out["postgres_bin"] = pg.bin
        except Exception as err:  # a version that cannot be read is reported, not raised
            out = {"postgres": "?", "error": one_line(err)}
        try:
            import psycopg

            out["psycopg"] = psycopg.__version__
            out["libpq"] = str(psycopg.pq.version())
        except ImportError:
            out["psycopg"] = "not installed"
        return out

    def psql(self, vm: VmLike, sql: str, db: str = DB_NAME, timeout: float = 60) -> str:
        """Run SQL as the superuser over the socket (peer auth); stdout, unaligned tuples."""
        done = vm.run(
            [
                "runuser",
                "-u",
                SUPERUSER,
                "--",
                self.install(vm).program("psql"),
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                SOCKET_DIR,
                "-p",
                str(PORT),
                "-d",
                db,
            ],
            input=sql.encode(),
            timeout=timeout,
        )
        return done.stdout.decode()

    def client(self, timeout_s: float = 10.0, role: Role = APP_ROLE) -> Client:
        return PostgresClient(timeout_s, role=role)

    def read_only(self, detail: str) -> bool:
        # SQLSTATE 25006 read_only_sql_transaction: "cannot execute INSERT in a read-only
        # transaction" (default_transaction_read_only, or a standby).
        return detail.startswith("25006")


APP = PostgresApp()


# --- run inside the VM as root (through its fork server) --------------------------------------


def _sh(
    argv: list[str], *, check: bool = True, timeout: float = 120, input: str | None = None
) -> subprocess.CompletedProcess[str]:

    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, input=input, cwd="/"
    )
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {(done.stderr or done.stdout).strip()[-2000:]}")
    return done


def _as_pg(*argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return _sh(["runuser", "-u", SUPERUSER, "--", *argv], **kwargs)


def _psql(
    pg: PgInstall, sql: str, db: str = DB_NAME, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return _as_pg(
        pg.program("psql"),
        "-X",
        "-At",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        SOCKET_DIR,
        "-p",
        str(PORT),
        "-d",
        db,
        input=sql,
        check=check,
        timeout=timeout,
    )


def _pg_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(SUPERUSER)
    return entry.pw_uid, entry.pw_gid


def _runtime_dirs() -> None:
    """The VM's private /run starts empty: socket and log directories, owned by postgres."""
    uid, gid = _pg_ids()
    for path, mode in ((SOCKET_DIR, 0o2775), (LOG_DIR, 0o750)):
        os.makedirs(path, exist_ok=True)
        os.chown(path, uid, gid)
        os.chmod(path, mode)


def _pg_ctl_start(pg: PgInstall, deadline_s: float) -> Any:
    return _as_pg(
        pg.program("pg_ctl"),
        "-D",
        pg.data,
        "-l",
        pg.log_file,
        "-w",
        "-t",
        str(max(1, math.ceil(deadline_s))),
        "start",
        check=False,
        timeout=deadline_s + 15,
    )


def provision_cluster(install: dict[str, str]) -> dict[str, Any]:
    """initdb on the VM's disks, our settings, start, the app role, database and schema."""
    pg = PgInstall.from_dict(install)
    uid, gid = _pg_ids()
    split = os.path.ismount(WAL_MOUNT)
    tablespace = os.path.ismount(TS_MOUNT)
    if not os.path.ismount(MOUNT):
        raise RuntimeError(f"{MOUNT} is not a mounted disk in this VM")
    for mount in (MOUNT, WAL_MOUNT, TS_MOUNT):
        if os.path.ismount(mount):
            os.chown(mount, uid, gid)
            os.chmod(mount, 0o755)
    dirs = [pg.version_dir]
    if split:
        dirs.append(pg.wal_version_dir)
    if tablespace:
        dirs.append(TS_DIR)
    for path in dirs:
        os.makedirs(path, exist_ok=True)
        os.chown(path, uid, gid)
    if tablespace:
        os.chmod(TS_DIR, 0o700)
    _runtime_dirs()
    argv = [
        pg.program("initdb"),
        "-D",
        pg.data,
        "-U",
        SUPERUSER,
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--auth-local=peer",
        "--auth-host=scram-sha-256",
        "--data-checksums",
        "--no-sync",  # the mounts are synced (syncfs) once the cluster is ready, below
    ]
    if split:
        argv.append(f"--waldir={pg.wal_dir}")
    _as_pg(*argv)
    with open(f"{pg.data}/postgresql.conf", "a") as conf:
        conf.write(_conf(pg))
    with open(f"{pg.data}/pg_hba.conf", "w") as hba:
        hba.write(HBA)
    started = _pg_ctl_start(pg, 60)
    if started.returncode:
        raise RuntimeError(f"pg_ctl start: {started.stdout.strip()} {_log_tail(pg)}")
    pw = APP_PASSWORD.replace("'", "''")
    su_pw = SUPERUSER_PASSWORD.replace("'", "''")
    tablespace_sql = (
        f"CREATE TABLESPACE {TABLESPACE} LOCATION '{TS_DIR}';\n"
        f"GRANT CREATE ON TABLESPACE {TABLESPACE} TO {APP_USER};\n"
        if tablespace
        else ""
    )
    default_ts = f"SET default_tablespace = {TABLESPACE};\n" if tablespace else ""
    # One session: amcheck in template1 (so every database has it, for pg_amcheck --all),
    # the role, the database owned by it, then the schema created as the app user.
    _psql(
        pg,
        "CREATE EXTENSION IF NOT EXISTS amcheck;\n"
        "\\connect postgres\n"
        "CREATE EXTENSION IF NOT EXISTS amcheck;\n"
        f"ALTER ROLE {SUPERUSER} PASSWORD '{su_pw}';\n"
        f"CREATE ROLE {APP_USER} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{pw}';\n"
        + tablespace_sql
        + f"CREATE DATABASE {DB_NAME} OWNER {APP_USER};\n"
        f"\\connect {DB_NAME}\n"
        "CREATE EXTENSION IF NOT EXISTS amcheck;\n"
        f"SET ROLE {APP_USER};\n" + default_ts + "BEGIN;\n" + SCHEMA + "COMMIT;\n"
        "RESET ROLE;\n"
        "CHECKPOINT;\n",
        db="template1",
    )
    for mount in (MOUNT, WAL_MOUNT, TS_MOUNT):
        if os.path.ismount(mount):
            _sh(["sync", "-f", mount])
    return {"ok": True, "wal_split": split, "tablespace": tablespace, "version": pg.version}


def _log_tail(pg: PgInstall, offset: int = 0, lines: int = 20) -> str:
    try:
        with open(pg.log_file, errors="replace") as log:
            log.seek(offset)
            return "\n".join(log.read().splitlines()[-lines:])
    except OSError:
        return ""


def _controldata(pg: PgInstall) -> dict[str, str]:
    done = _sh([pg.program("pg_controldata"), "-D", pg.data], check=False)
    fields = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _live_postmaster(pid: int, data: str) -> bool:
    """Whether ``pid`` is a postgres server on our data directory, in this VM's PID space."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return os.path.basename(exe) in ("postgres", "postmaster") and cwd == data


def start_server(deadline_s: float, install: dict[str, str]) -> dict[str, Any]:
    """Start the server on the data there is (a restore) and gather the recovery evidence."""
    pg = PgInstall.from_dict(install)
    evidence: list[str] = []
    _runtime_dirs()
    if not os.path.isdir(pg.data):
        return _report(False, False, evidence, f"no data directory at {pg.data}")
    control = _controldata(pg)
    state = control.get("Database cluster state", "unknown")
    evidence.append(f"pg_controldata before start: Database cluster state: {state}")
    redo = control.get("Latest checkpoint's REDO location")
    if redo:
        evidence.append(
            "pg_controldata: latest checkpoint at "
            f"{control.get('Latest checkpoint location', '?')}, REDO at {redo}, "
            f"time {control.get('Time of latest checkpoint', '?')}"
        )
    pidfile = f"{pg.data}/postmaster.pid"
    if os.path.exists(pidfile):
        with open(pidfile, errors="replace") as f:
            first = f.readline().strip()
        pid = int(first) if first.isdigit() else 0
        if pid and _live_postmaster(pid, pg.data):
            evidence.append(f"a server (pid {pid}) already runs on {pg.data}")
            return _report(True, False, evidence)
        os.unlink(pidfile)
        evidence.append(f"removed stale postmaster.pid (pid {first or '?'} is not running here)")
    offset = os.path.getsize(pg.log_file) if os.path.exists(pg.log_file) else 0
    done = _pg_ctl_start(pg, deadline_s)
    log = _log_tail(pg, offset, lines=100000).splitlines()
    hits = [line for line in log if any(m in line for m in RECOVERY_MARKERS)]
    recovery = any(m in line for line in log for m in RECOVERY_STARTED) or state not in (
        "shut down",
        "shut down in recovery",
    )
    # drop the "%m [%p] " prefix: "LOG:  redo starts at 0/1BCDC48"
    evidence.extend(f"server log: {line.split('] ', 1)[-1].strip()}" for line in hits[:12])
    if done.returncode:
        tail = "\n".join(log[-15:])
        return _report(False, recovery, evidence, f"pg_ctl start: {done.stdout.strip()}\n{tail}")
    return _report(True, recovery, evidence)


def _report(started: bool, recovery: bool, evidence: list[str], error: str = "") -> dict:
    return {
        "report": True,
        "started": started,
        "recovery_ran": recovery,
        "evidence": evidence,
        "error": error,
    }


def stop_server(install: dict[str, str]) -> dict[str, Any]:
    """``pg_ctl stop -m fast``."""
    pg = PgInstall.from_dict(install)
    if not os.path.exists(f"{pg.data}/postmaster.pid"):
        return {"ok": True, "detail": "not running"}
    pg_ctl = pg.program("pg_ctl")
    done = _as_pg(pg_ctl, "-D", pg.data, "-m", "fast", "-w", "-t", "60", "stop", check=False)
    if done.returncode:
        raise RuntimeError(f"pg_ctl stop: {(done.stderr or done.stdout).strip()}")
    return {"ok": True, "detail": done.stdout.strip()}


INDEX_CHECK = """
SELECT c.relname || ': btree ok (parent check, heapallindexed, rootdescend)'
       || bt_index_parent_check(c.oid, true, true)::text
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_am a ON a.oid = c.relam
WHERE t.relname IN ('vmsnap_log', 'vmsnap_bank', 'vmsnap_probe') AND a.amname = 'btree'
ORDER BY 1;
"""

HEAP_CHECK = """
SELECT t || ': ' || count(v.*) || ' heap problem(s)'
       || COALESCE(': ' || string_agg(v.msg, '; '), '')
FROM unnest(ARRAY['vmsnap_log', 'vmsnap_bank', 'vmsnap_probe']) AS t
LEFT JOIN LATERAL verify_heapam(t::regclass) AS v ON true
GROUP BY t ORDER BY t;
"""

CATALOG_CHECK = """
SELECT 'pg_class: ' || count(*) || ' relations' FROM pg_class;
SELECT 'vmsnap_log: ' || count(*) || ' rows; vmsnap_bank: '
       || (SELECT count(*) FROM vmsnap_bank) || ' rows' FROM vmsnap_log;
"""


def integrity_checks(install: dict[str, str]) -> dict[str, Any]:
    """amcheck on the workload's indexes and heaps, a catalog check, ``pg_amcheck --all``."""
    pg = PgInstall.from_dict(install)
    details: list[str] = []
    ok = True
    for name, sql in (("btree", INDEX_CHECK), ("heap", HEAP_CHECK), ("catalog", CATALOG_CHECK)):
        done = _psql(pg, sql, check=False, timeout=240)
        lines = done.stdout.strip().splitlines()
        if done.returncode:
            ok = False
            details.append(f"{name} check failed: {_squash(done.stderr)}")
        if name == "heap" and any(" 0 heap problem" not in line for line in lines):
            ok = False
        details.extend(lines)
    amcheck = pg.program("pg_amcheck")
    if os.path.exists(amcheck):
        done = _as_pg(
            amcheck,
            "-h",
            SOCKET_DIR,
            "-p",
            str(PORT),
            "--all",
            "--heapallindexed",
            "--jobs=3",
            check=False,
            timeout=240,
        )
        out = (done.stdout + done.stderr).strip().splitlines()
        if done.returncode:
            ok = False
            details.append(f"pg_amcheck --all: exit {done.returncode}")
            details.extend(out[:40])
        else:
            details.append("pg_amcheck --all --heapallindexed: no corruption found")
    else:
        details.append("pg_amcheck not installed: skipped")
    return {"ok": ok, "details": details}


def _squash(text: str) -> str:
    return " ".join(text.split())[:500]


def server_versions(install: dict[str, str]) -> dict[str, str]:
    """The server binary's and the running server's versions."""
    pg = PgInstall.from_dict(install)
    server = _sh([pg.program("postgres"), "--version"], check=False).stdout.strip()
    sql = _psql(pg, "SELECT version();", db="postgres", check=False)
    return {"postgres": server, "server": sql.stdout.strip() or _squash(sql.stderr)}
