"""MariaDB 10.11 (Debian's ``mariadb-server``) laid out as on a Debian server.

Inside the stand-in VM: datadir ``/var/lib/mysql`` (the VM's first disk), socket
``/run/mysqld/mysqld.sock`` (also reachable as ``/var/run/mysqld/mysqld.sock``; ``/run`` is
VM-private), TCP port 3306 on the VM's own 127.0.0.1, ``root`` authenticated by unix socket, so
users' scripts run plain ``mysql -e ...`` / ``mariadb -e ...`` as root. The settings are written
to ``/etc/mysql/conf.d/vmsnap.cnf`` (the VM's ``/etc`` is a private overlay: the host's file is
never touched) and the server is started from the stock option chain
(``--defaults-file=/etc/mysql/my.cnf``, which includes ``conf.d``), so the stock clients find
the socket. The error log is ``/run/mysqld/error.log``: per VM, never on the snapshotted disks,
so a restored server's log holds only its own start. The server is started by this module in
the background (``mariadbd --user=mysql``; no systemd, no ``mysqld_safe``). The programs are
found by name in the VM (``mariadbd`` or ``mysqld``, ``mariadb`` or ``mysql``, ``mariadb-admin``
or ``mysqladmin``, ``mariadb-install-db`` or ``mysql_install_db``:
:func:`pytest_vmsnap.apps.discover.find_mariadb`), so older MariaDB releases that only have the
``mysql*`` names run as well.

Disks: 1 disk = ``/var/lib/mysql``; 2 disks = the InnoDB redo log
(``innodb_log_group_home_dir``) on ``/var/lib/mysql-log``; more = extra unused disks
``/srv/diskN``.

Schema (database ``vmsnap``): ``vmsnap_log``, ``vmsnap_bank`` and ``vmsnap_probe`` are InnoDB
(crash-safe: a snapshot of a running server only needs the redo replay). One extra table,
``vmsnap_events`` (seq, writer, at), is **MyISAM** on purpose, and every ``append`` writes the
same seq to it as well: MyISAM is not crash-safe, a snapshot taken while it is open for writing
restores as "not closed properly" (repair needed) unless the quiesce script holds
``FLUSH TABLES WITH READ LOCK`` through the snapshot, which flushes and closes it. That is the
classic case where only a held lock makes the backup application-consistent. The oracle reads
the log and the bank only (InnoDB); the MyISAM table shows up in ``start`` (repair evidence)
and ``integrity``.

The application user ``vmsnap_app`` (at ``127.0.0.1`` and ``localhost``, password
``base.APP_PASSWORD``) has data privileges on ``vmsnap.*`` only: no SUPER, no READ_ONLY ADMIN,
so a server in ``read_only`` mode refuses its writes (root's writes go through). Client:
PyMySQL over TCP, autocommit off. The privileged role is ``root`` over the unix socket (unix
socket authentication, as root's scripts and cron jobs log in), writing the same tables,
the MyISAM one included.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from pathlib import Path
from typing import Any, ClassVar

from ..vm.model import DiskSpec
from .base import (
    APP_PASSWORD,
    APP_ROLE,
    APP_USER,
    BANK_ACCOUNTS,
    BANK_TOTAL,
    App,
    Client,
    IntegrityReport,
    Role,
    StartReport,
    State,
    VmLike,
    launch_daemon,
    log_size,
    read_log,
    wait_ready,
)
from .discover import MariadbPrograms, find_mariadb
from .probewrite import ProbeWrite, one_line

DATADIR = "/var/lib/mysql"
LOG_DIR = "/var/lib/mysql-log"
RUN_DIR = "/run/mysqld"
SOCKET = f"{RUN_DIR}/mysqld.sock"
PID_FILE = f"{RUN_DIR}/mysqld.pid"
ERROR_LOG = f"{RUN_DIR}/error.log"
CNF = "/etc/mysql/conf.d/vmsnap.cnf"
DEFAULTS = "/etc/mysql/my.cnf"
HOST = "127.0.0.1"
PORT = 3306
DB = "vmsnap"
MYISAM_TABLE = "vmsnap_events"

# Errors that mean "the store said no" and "the write did not finish in time".
REFUSED_CODES = {
    1290: "read-only (ER_OPTION_PREVENTS_STATEMENT)",
    1836: "read-only mode (ER_READ_ONLY_MODE)",
    1223: "conflicting read lock (ER_CANT_UPDATE_WITH_READLOCK)",
    1142: "command denied",
}
BLOCKED_CODES = {
    1205: "lock wait timeout",
    1969: "max_statement_time exceeded",
    3024: "max_execution_time exceeded",
}

_RECOVERY = re.compile(
    r"Starting crash recovery|To recover:|Starting final batch to recover|"
    r"Rolled back recovered transaction|Rollback of non-prepared transactions|"
    r"recovered pages|Aria engine: starting recovery|Aria engine: recovery done|"
    r"in XA prepared state|log sequence number .* between the checkpoint",
    re.IGNORECASE,
)
_REPAIR = re.compile(
    r"marked as crashed|not closed properly|hasn't closed the table properly|"
    r"should be repaired|Checking table|Recovering table|Auto-?recover|Table .* is corrupt|"
    r"Got error .* when reading table|Incorrect key file",
    re.IGNORECASE,
)


_STATUS_OK = ("OK", "Table is already up to date")


def _config(split_log: bool) -> str:
    lines = [
        "# Written by pytest-vmsnap for this stand-in VM (its /etc is a private overlay).",
        "# Debian layout: datadir /var/lib/mysql, socket /run/mysqld/mysqld.sock, port 3306.",
        "[client]",
        f"socket = {SOCKET}",
        "",
        "[mysqld]",
        "user = mysql",
        f"datadir = {DATADIR}",
        f"socket = {SOCKET}",
        f"pid-file = {PID_FILE}",
        f"port = {PORT}",
        f"bind-address = {HOST}",
        f"log-error = {ERROR_LOG}",
        "skip-name-resolve",
        "ignore-db-dirs = lost+found",
        "# Durable commits: an acknowledged COMMIT is in the redo log on disk.",
        "innodb_flush_log_at_trx_commit = 1",
        "innodb_buffer_pool_size = 64M",
        "innodb_log_file_size = 32M",
        "performance_schema = OFF",
    ]
    if split_log:
        lines.append(f"innodb_log_group_home_dir = {LOG_DIR}")
    return "\n".join(lines) + "\n"


def _is_mount(vm: VmLike, inside: str) -> bool:
    """Whether ``inside`` is a disk of the VM (a mount point), seen through ``vm.path``."""
    path = Path(vm.path(inside))
    try:
        return path.is_dir() and path.stat().st_dev != path.parent.stat().st_dev
    except OSError:
        return False


def _prepare(vm: VmLike) -> bool:
    """Write the config and the run directory; own the disks by ``mysql``. True if split."""
    import pwd

    split = _is_mount(vm, LOG_DIR)
    mysql = pwd.getpwnam("mysql")
    cnf = Path(vm.path(CNF))
    cnf.parent.mkdir(parents=True, exist_ok=True)
    cnf.write_text(_config(split))
    cnf.chmod(0o644)
    run = Path(vm.path(RUN_DIR))
    run.mkdir(parents=True, exist_ok=True)
    os.chown(run, mysql.pw_uid, mysql.pw_gid)
    run.chmod(0o755)
    for inside in (DATADIR, LOG_DIR) if split else (DATADIR,):
        os.chown(vm.path(inside), mysql.pw_uid, mysql.pw_gid)
        Path(vm.path(inside)).chmod(0o750)
    return split


def _programs(vm: VmLike) -> MariadbPrograms:
    """The server's and the clients' programs in the VM (a few stat calls through its root)."""
    return find_mariadb(vm.path("/"))


def _sql(vm: VmLike, sql: str, *, check: bool = True, timeout: float = 60) -> str:
    """Run SQL as root over the unix socket inside the VM; tab-separated rows."""
    done = vm.run(
        [_programs(vm).client, "--batch", "--skip-column-names", "--connect-timeout=10", "-e", sql],
        check=check,
        timeout=timeout,
    )
    return done.stdout.decode(errors="replace")


def _launch(vm: VmLike) -> Any:
    server = _programs(vm).server
    return launch_daemon(vm, [server, f"--defaults-file={DEFAULTS}", "--user=mysql"])


def _wait_ready(vm: VmLike, proc: Any, deadline: float, offset: int = 0) -> str:
    """Poll ``mariadb-admin ping`` until ``deadline``; '' when ready, else why not."""
    programs = _programs(vm)

    def ping(timeout: float) -> bool:
        argv = [programs.admin, "--connect-timeout=2", "ping"]
        return vm.run(argv, check=False, timeout=timeout).returncode == 0

    return wait_ready(
        vm,
        proc,
        deadline,
        server=programs.server_name,
        log=ERROR_LOG,
        socket=SOCKET,
        ping=ping,
        offset=offset,
    )


def _provision_sql() -> str:
    rows = ", ".join(f"({i}, {BANK_TOTAL // BANK_ACCOUNTS})" for i in range(1, BANK_ACCOUNTS + 1))
    hosts = ("127.0.0.1", "localhost")
    users = ", ".join(f"'{APP_USER}'@'{h}'" for h in hosts)
    create = ", ".join(f"'{APP_USER}'@'{h}' IDENTIFIED BY '{APP_PASSWORD}'" for h in hosts)
    return f"""
CREATE DATABASE IF NOT EXISTS {DB};
CREATE TABLE IF NOT EXISTS {DB}.vmsnap_log (
  seq BIGINT PRIMARY KEY, writer INT NOT NULL, at DOUBLE NOT NULL) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {DB}.vmsnap_bank (
  id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {DB}.vmsnap_probe (
  id BIGINT AUTO_INCREMENT PRIMARY KEY, at DOUBLE NOT NULL) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {DB}.{MYISAM_TABLE} (
  seq BIGINT PRIMARY KEY, writer INT NOT NULL, at DOUBLE NOT NULL) ENGINE=MyISAM;
INSERT IGNORE INTO {DB}.vmsnap_bank (id, balance) VALUES {rows};
CREATE USER IF NOT EXISTS {create};
GRANT SELECT, INSERT, UPDATE, DELETE ON {DB}.* TO {users};
FLUSH TABLES;
"""


def _check_rows(out: str) -> list[tuple[str, str, str, str]]:
    rows = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            rows.append((parts[0], parts[1], parts[2], parts[3]))
    return rows


def _tables(vm: VmLike, where: str) -> list[str]:
    out = _sql(
        vm,
        "SELECT CONCAT('`', TABLE_SCHEMA, '`.`', TABLE_NAME, '`') FROM information_schema.TABLES "
        f"WHERE TABLE_TYPE = 'BASE TABLE' AND {where} ORDER BY TABLE_SCHEMA, TABLE_NAME",
    )
    return [t for t in out.split() if t]


class MariadbClient(Client):
    """PyMySQL connection to database ``vmsnap``: as ``vmsnap_app`` to 127.0.0.1:3306, or
    (role ``privileged``) as ``root`` over the unix socket."""

    def __init__(self, timeout_s: float = 10.0, role: Role = APP_ROLE) -> None:
        import pymysql

        self.timeout_s = timeout_s
        self.role = role
        self.conn = pymysql.connect(**self._params(timeout_s, timeout_s))

    def _params(self, connect_s: float, read_s: float) -> dict[str, Any]:
        if self.role == APP_ROLE:
            who: dict[str, Any] = {
                "host": HOST,
                "port": PORT,
                "user": APP_USER,
                "password": APP_PASSWORD,
            }
        else:  # root by unix socket authentication: this process runs as root in the VM
            who = {"unix_socket": SOCKET, "user": "root"}
        return {
            **who,
            "database": DB,
            "autocommit": False,
            "connect_timeout": max(0.1, connect_s),
            "read_timeout": max(0.1, read_s),
            "write_timeout": max(0.1, read_s),
        }

    def _rollback(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.rollback()

    def append(self, seq: int, writer: int) -> None:
        at = time.time()
        try:
            with self.conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO vmsnap_log (seq, writer, at) VALUES (%s, %s, %s)",
                    (seq, writer, at),
                )
                # MyISAM: applied at once, outside the transaction.
                cur.execute(
                    f"INSERT INTO {MYISAM_TABLE} (seq, writer, at) VALUES (%s, %s, %s)",
                    (seq, writer, at),
                )
            self.conn.commit()
        except BaseException:
            self._rollback()
            raise

    def transfer(self, src: int, dst: int, amount: int) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.execute(
                    "UPDATE vmsnap_bank SET balance = balance - %s WHERE id = %s", (amount, src)
                )
                cur.execute(
                    "UPDATE vmsnap_bank SET balance = balance + %s WHERE id = %s", (amount, dst)
                )
            self.conn.commit()
        except BaseException:
            self._rollback()
            raise

    def new_probe_write(self, timeout_s: float) -> ProbeWrite:
        return MariadbProbeWrite(self, timeout_s)

    def read_state(self) -> State:
        with self.conn.cursor() as cur:
            cur.execute("SELECT seq FROM vmsnap_log")
            seqs = {int(row[0]) for row in cur.fetchall()}
            cur.execute("SELECT SUM(balance), COUNT(*) FROM vmsnap_bank")
            total, rows = cur.fetchone()
        self._rollback()  # end the read snapshot
        return State(seqs, None if total is None else int(total), int(rows))

    def close(self) -> None:
        self.conn.close()


class MariadbProbeWrite(ProbeWrite):
    """One INSERT into ``vmsnap_probe`` on a fresh connection, watched in the process list.

    Bounded three ways: server side ``max_statement_time`` (fractional seconds, fires first)
    and ``lock_wait_timeout``/``innodb_lock_wait_timeout`` (whole seconds); client side a
    socket read timeout ``read_grace_s`` later. The client's own connection reads the probe's
    state in ``information_schema.PROCESSLIST`` (a user sees its own threads): "Waiting for
    backup lock" (FLUSH TABLES WITH READ LOCK), "Waiting for table level lock" (LOCK TABLES),
    "Waiting for table metadata lock"... and ends it with ``KILL <id>`` (a user may kill its
    own threads; root any), so an abandoned statement never lands.
    """

    read_grace_s = 1.0

    def __init__(self, client: MariadbClient, timeout_s: float) -> None:
        import pymysql

        self.client = client
        self.timeout_s = max(0.1, timeout_s)
        self.conn = pymysql.connect(
            **client._params(self.timeout_s, self.timeout_s + self.read_grace_s)
        )
        self.thread = self.conn.thread_id()

    def attempt(self) -> tuple[str, str]:
        import pymysql

        whole = max(1, math.ceil(self.timeout_s))
        began = time.monotonic()
        try:
            with self.conn.cursor() as cur:
                cur.execute(
                    f"SET SESSION lock_wait_timeout = {whole}, innodb_lock_wait_timeout = "
                    f"{whole}, max_statement_time = {self.timeout_s:.3f}"
                )
                cur.execute("INSERT INTO vmsnap_probe (at) VALUES (%s)", (time.time(),))
            self.conn.commit()
        except pymysql.err.MySQLError as err:
            code = err.args[0] if err.args and isinstance(err.args[0], int) else 0
            text = " ".join(str(err.args[-1] if err.args else err).split())
            took = time.monotonic() - began
            if code in REFUSED_CODES:
                return "refused", f"{code} {REFUSED_CODES[code]}: {text}"
            if code in BLOCKED_CODES:
                return "blocked", f"{code} {BLOCKED_CODES[code]} after {took:.2f} s: {text}"
            if code in (2003, 2013) and "timed out" in text:
                return "blocked", f"no answer in {took:.2f} s ({self._kill()}): {text}"
            return "refused", f"{code}: {text}"
        return "accepted", f"the write committed in {time.monotonic() - began:.3f} s"

    def waiting_on(self) -> str | None:
        with self.client.conn.cursor() as cur:
            cur.execute(
                "SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = %s", (self.thread,)
            )
            row = cur.fetchone()
        self.client._rollback()
        state = str(row[0] or "") if row else ""
        return f"MariaDB shows the write '{state}'" if state.startswith("Waiting for") else None

    def abandon(self) -> None:
        self._kill()

    def _kill(self) -> str:
        """End the probe's connection (and its statement) from the client's connection."""
        try:
            with self.client.conn.cursor() as cur:
                cur.execute(f"KILL {int(self.thread)}")
            return f"connection {self.thread} killed"
        except Exception as err:  # already gone is fine
            return f"KILL {self.thread}: {one_line(err)}"

    def close(self) -> None:
        self.conn.close()


class MariadbApp(App):
    """MariaDB server, Debian layout, started in the background inside the VM."""

    name: ClassVar[str] = "mariadb"
    client_modules: ClassVar[tuple[str, ...]] = (__name__, "pymysql")

    def layout(self, disks: int, fs: str) -> list[DiskSpec]:
        specs = [DiskSpec("data", DATADIR, 512, fs)]  # type: ignore[arg-type]
        if disks >= 2:
            specs.append(DiskSpec("redo", LOG_DIR, 512, fs))  # type: ignore[arg-type]
        for i in range(3, disks + 1):
            specs.append(DiskSpec(f"disk{i}", f"/srv/disk{i}", 512, fs))  # type: ignore[arg-type]
        return specs

    def provision(self, vm: VmLike) -> None:
        _prepare(vm)
        vm.run(
            [
                _programs(vm).install_db,
                f"--defaults-file={DEFAULTS}",
                "--user=mysql",
                f"--datadir={DATADIR}",
                "--skip-test-db",
                "--auth-root-authentication-method=socket",
            ],
            timeout=120,
        )
        offset = log_size(vm, ERROR_LOG)
        proc = _launch(vm)
        why = _wait_ready(vm, proc, time.monotonic() + 60, offset)
        if why:
            raise RuntimeError(f"MariaDB did not start after provisioning: {why}")
        _sql(vm, _provision_sql())

    def start(self, vm: VmLike, deadline_s: float) -> StartReport:
        began = time.monotonic()
        try:
            _prepare(vm)
            offset = log_size(vm, ERROR_LOG)
            proc = _launch(vm)
        except Exception as err:
            return StartReport(False, time.monotonic() - began, error=str(err))
        why = _wait_ready(vm, proc, began + deadline_s, offset)
        if why:
            report = self._evidence(read_log(vm, ERROR_LOG, offset), [])
            report.started, report.seconds, report.error = False, time.monotonic() - began, why
            return report
        seconds = time.monotonic() - began
        # MyISAM/Aria are not crash-safe: ask each table whether it was closed properly.
        checks: list[tuple[str, str, str, str]] = []
        with contextlib.suppress(Exception):
            tables = _tables(
                vm, f"TABLE_SCHEMA IN ('{DB}', 'mysql') AND ENGINE IN ('MyISAM', 'Aria')"
            )
            if tables:
                checks = _check_rows(_sql(vm, "CHECK TABLE " + ", ".join(tables)))
        report = self._evidence(read_log(vm, ERROR_LOG, offset), checks)
        report.started, report.seconds = True, seconds
        return report

    @staticmethod
    def _evidence(log: str, checks: list[tuple[str, str, str, str]]) -> StartReport:
        repair: list[str] = []
        recovery: list[str] = []
        for table, _op, kind, text in checks:
            kind = kind.lower()
            if (
                kind == "error"
                or (kind == "warning" and _REPAIR.search(text))
                or (kind == "status" and text not in _STATUS_OK)
            ):
                repair.append(f"CHECK TABLE {table}: {kind}: {text}")
        for line in log.splitlines():
            line = line.strip()
            if _REPAIR.search(line):
                repair.append(line)
            elif _RECOVERY.search(line):
                recovery.append(line)
        recovery.sort(key=lambda line: "InnoDB" not in line)  # the redo replay first
        return StartReport(
            started=False,
            seconds=0.0,
            recovery_ran=bool(recovery),
            repair_needed=bool(repair),
            evidence=(repair + recovery)[:40],
        )

    def stop(self, vm: VmLike) -> None:
        admin = _programs(vm).admin
        vm.run([admin, "--connect-timeout=5", "shutdown"], check=False, timeout=120)
        deadline = time.monotonic() + 30
        while Path(vm.path(PID_FILE)).exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def integrity(self, vm: VmLike) -> IntegrityReport:
        tables = _tables(vm, f"TABLE_SCHEMA IN ('{DB}', 'mysql')")
        if not tables:
            return IntegrityReport(ok=False, details=[f"no tables found in {DB} and mysql"])
        rows = _check_rows(_sql(vm, "CHECK TABLE " + ", ".join(tables), timeout=300))
        details: list[str] = []
        status: dict[str, str] = {}
        for table, _op, kind, text in rows:
            if kind.lower() == "status":
                status[table] = text
            if kind.lower() != "status" or text not in _STATUS_OK:
                details.append(f"{table}: {kind}: {text}")
        checked = {t.replace("`", "") for t in tables}
        missing = sorted(checked - set(status))
        details.extend(f"{t}: no status row" for t in missing)
        ok = not missing and all(v in _STATUS_OK for v in status.values())
        details.insert(0, f"CHECK TABLE on {len(tables)} tables: {'all OK' if ok else 'FAILED'}")
        return IntegrityReport(ok=ok, details=details[:40])

    def versions(self, vm: VmLike) -> dict[str, str]:
        out: dict[str, str] = {}
        programs = _programs(vm)
        server = vm.run([programs.server, "--version"], check=False).stdout.decode().split()
        out["mariadbd"] = server[2] if len(server) > 2 else " ".join(server) or "?"
        out["server_bin"] = programs.server
        live = _sql(vm, "SELECT VERSION()", check=False).strip()
        out["server"] = live or "?"
        try:
            import pymysql

            out["pymysql"] = pymysql.__version__
        except ImportError:
            out["pymysql"] = "not installed"
        return out

    def client(self, timeout_s: float = 10.0, role: Role = APP_ROLE) -> Client:
        return MariadbClient(timeout_s, role)

    def read_only(self, detail: str) -> bool:
        # "1290 read-only (ER_OPTION_PREVENTS_STATEMENT): ... running with the --read-only
        # option ..." (1290 also names other options), or 1836 ER_READ_ONLY_MODE.
        code = detail.split(" ", 1)[0]
        return code == "1836" or (code == "1290" and "read-only" in detail.split(":", 1)[-1])


APP = MariadbApp()
