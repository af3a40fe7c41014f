"""Redis 7 (Debian's ``redis-server``) laid out as on a Debian server.

Inside the stand-in VM: data in ``/var/lib/redis`` (the VM's first disk; more disks are extra,
unused ``/srv/diskN``), TCP port 6379 on the VM's own 127.0.0.1, unix socket
``/run/redis/redis-server.sock`` (``/run`` is VM-private), a fresh ``/etc/redis/redis.conf``
(the VM's ``/etc`` is a private overlay: the host's file is never touched), log and pid file in
``/run/redis`` (per VM, never on the snapshotted disk, so a restored server's log holds only its
own start). The server runs as user ``redis`` (``runuser``), in the foreground
(``daemonize no``) under ``vm.popen``; no systemd.

Persistence: ``appendonly yes`` with ``appendfsync always``: Redis writes and fsyncs the AOF
before it sends the reply to a write, so an acknowledged write is on disk and a snapshot of the
disk holds every write acknowledged before it (``everysec`` could lose about a second of
acknowledged writes, which the oracle would report as missing). RDB save points are kept too
(``save 3600 1 300 100 60 10000``), and Redis 7's multi-part AOF lives in
``/var/lib/redis/appendonlydir`` (manifest + base RDB + incremental AOF).

Users: the ACL user ``vmsnap_app`` (password ``base.APP_PASSWORD``) may touch keys ``vmsnap:*``
only, with data commands only (``-@all +@read +@write +@transaction +@connection -@admin
-@dangerous``): no CONFIG, CLIENT PAUSE, SHUTDOWN, FLUSHALL... The ``default`` user keeps full
rights without a password for root's scripts, which use the unix socket
(``redis-cli -s /run/redis/redis-server.sock``; mode 770, owner redis, so only root and the
redis group can reach it). Note that ``default`` also answers on TCP 127.0.0.1 inside the VM,
as on a stock Debian install: the app client always authenticates as ``vmsnap_app``. The
privileged writer is that ``default`` user over the unix socket, as root's scripts and admin
jobs reach it: an ACL change that takes ``vmsnap_app``'s writes away does not stop it.

Data model: log = sorted set ``vmsnap:log`` (member ``seq:writer:at``, score = seq); bank =
hash ``vmsnap:bank`` with ``BANK_ACCOUNTS`` fields, each transfer is MULTI/EXEC with two
HINCRBY; probes write ``vmsnap:probe``.
"""

from __future__ import annotations

import inspect
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
from .probewrite import ProbeWrite, one_line

DATA_DIR = "/var/lib/redis"
AOF_DIR = f"{DATA_DIR}/appendonlydir"
AOF_MANIFEST = f"{AOF_DIR}/appendonly.aof.manifest"
RDB_FILE = f"{DATA_DIR}/dump.rdb"
RUN_DIR = "/run/redis"
SOCKET = f"{RUN_DIR}/redis-server.sock"
LOG_FILE = f"{RUN_DIR}/redis-server.log"
PID_FILE = f"{RUN_DIR}/redis-server.pid"
CONF = "/etc/redis/redis.conf"
HOST = "127.0.0.1"
PORT = 6379
LOG_KEY = "vmsnap:log"
BANK_KEY = "vmsnap:bank"
PROBE_KEY = "vmsnap:probe"
APP_ACL = (
    "~vmsnap:* resetchannels -@all +@read +@write +@transaction +@connection -@admin -@dangerous"
)

_RECOVERY = re.compile(
    r"DB loaded from|Reading RDB base file|Reading the remaining AOF tail|Done loading RDB|"
    r"Loading RDB produced by|RDB age|Loading the AOF|loaded from append only file",
    re.IGNORECASE,
)
_REPAIR = re.compile(
    r"AOF loaded anyway|short read|truncated|Bad file format|Unrecoverable error|"
    r"redis-check-aof|Fix it|corrupt|CRC error|Wrong signature",
    re.IGNORECASE,
)


def _config() -> str:
    return f"""# Written by pytest-vmsnap for this stand-in VM (its /etc is a private overlay).
bind {HOST}
protected-mode yes
port {PORT}
unixsocket {SOCKET}
unixsocketperm 770
daemonize no
supervised no
pidfile {PID_FILE}
loglevel notice
logfile {LOG_FILE}
databases 16
dir {DATA_DIR}
dbfilename dump.rdb
save 3600 1 300 100 60 10000
stop-writes-on-bgsave-error yes
rdbchecksum yes
# Acknowledged = durable: the AOF is written and fsynced before a write's reply goes out.
appendonly yes
appenddirname "appendonlydir"
appendfilename "appendonly.aof"
appendfsync always
aof-use-rdb-preamble yes
aof-load-truncated yes
aof-timestamp-enabled no
# root's scripts: the default user over the unix socket (redis-cli -s {SOCKET}).
user default on nopass ~* &* +@all
# the application: its keys and data commands only.
user {APP_USER} on >{APP_PASSWORD} {APP_ACL}
"""


def _cli(vm: VmLike, *args: str, check: bool = True, timeout: float = 30) -> str:
    """redis-cli as root (default user) over the unix socket inside the VM."""
    done = vm.run(["redis-cli", "-s", SOCKET, *args], check=check, timeout=timeout)
    return done.stdout.decode(errors="replace")


def _info(vm: VmLike, section: str) -> dict[str, str]:
    out = _cli(vm, "INFO", section, check=False)
    fields = {}
    for line in out.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            fields[key] = value
    return fields


def _prepare(vm: VmLike) -> None:
    """Write the config and the run directory; own the data disk by ``redis``."""
    import pwd

    redis = pwd.getpwnam("redis")
    conf = Path(vm.path(CONF))
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(_config())
    os.chown(conf, 0, redis.pw_gid)
    conf.chmod(0o640)  # it holds the app user's password
    run = Path(vm.path(RUN_DIR))
    run.mkdir(parents=True, exist_ok=True)
    os.chown(run, redis.pw_uid, redis.pw_gid)
    run.chmod(0o2775)
    data = Path(vm.path(DATA_DIR))
    os.chown(data, redis.pw_uid, redis.pw_gid)
    data.chmod(0o750)


def _launch(vm: VmLike) -> Any:
    return launch_daemon(vm, ["runuser", "-u", "redis", "--", "redis-server", CONF])


def _wait_ready(vm: VmLike, proc: Any, deadline: float, offset: int = 0) -> str:
    """Poll PING and INFO until the dataset is loaded; '' when ready, else why not."""

    def ping(timeout: float) -> bool:
        done = vm.run(["redis-cli", "-s", SOCKET, "PING"], check=False, timeout=timeout)
        return done.stdout.strip() == b"PONG" and _info(vm, "persistence").get("loading") == "0"

    return wait_ready(
        vm,
        proc,
        deadline,
        server="redis-server",
        log=LOG_FILE,
        socket=SOCKET,
        ping=ping,
        offset=offset,
    )


class RedisClient(Client):
    """redis-py connection as ``vmsnap_app`` to 127.0.0.1:6379, or (role ``privileged``) as the
    ``default`` user over the unix socket (no retries: one try each)."""

    def __init__(self, timeout_s: float = 10.0, role: Role = APP_ROLE) -> None:
        self.timeout_s = timeout_s
        self.role = role
        self.r = self._connect(timeout_s, role)
        self.r.ping()

    @staticmethod
    def _connect(timeout_s: float, role: Role = APP_ROLE) -> Any:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        quiet: dict[str, Any] = {}
        if "lib_name" in inspect.signature(redis.Redis.__init__).parameters:
            # redis-py >= 5 would send CLIENT SETINFO, which Redis 7.0 rejects; Debian 12's
            # python3-redis 4.3.4 (inside the container stand-in) knows no such argument.
            quiet = {"lib_name": None, "lib_version": None}
        where: dict[str, Any] = (
            {"host": HOST, "port": PORT, "username": APP_USER, "password": APP_PASSWORD}
            if role == APP_ROLE
            else {"unix_socket_path": SOCKET}
        )
        return redis.Redis(
            **where,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            single_connection_client=True,
            **quiet,
        )

    def append(self, seq: int, writer: int) -> None:
        self.r.zadd(LOG_KEY, {f"{seq}:{writer}:{time.time():.6f}": seq})

    def transfer(self, src: int, dst: int, amount: int) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hincrby(BANK_KEY, str(src), -amount)
        pipe.hincrby(BANK_KEY, str(dst), amount)
        pipe.execute()

    def new_probe_write(self, timeout_s: float) -> ProbeWrite:
        return RedisProbeWrite(timeout_s, self.role)

    def read_state(self) -> State:
        seqs = {int(score) for _, score in self.r.zrange(LOG_KEY, 0, -1, withscores=True)}
        bank = self.r.hgetall(BANK_KEY)
        total = sum(int(v) for v in bank.values()) if bank else None
        return State(seqs, total, len(bank))

    def close(self) -> None:
        self.r.close()


class RedisProbeWrite(ProbeWrite):
    """SET ``vmsnap:probe`` on a fresh connection whose socket timeout is the probe's.

    Watched from the server's admin channel (the ``default`` user over the unix socket, as
    root's scripts use it; the app user may not list clients): a write postponed by ``CLIENT
    PAUSE ... WRITE`` shows as a blocked client (flag ``b``) whose command is the SET. It is
    abandoned with ``CLIENT KILL ID``: Redis drops a paused client's pending command with its
    connection. Refused: READONLY, MISCONF, NOPERM, OOM... errors.
    """

    def __init__(self, timeout_s: float, role: Role = APP_ROLE) -> None:
        self.timeout_s = max(0.05, timeout_s)
        self.conn = RedisClient._connect(self.timeout_s, role)  # connects on its first command
        self.id: int | None = None
        self._admin: Any = None

    def attempt(self) -> tuple[str, str]:
        import redis

        began = time.monotonic()
        try:
            # The handshake and CLIENT ID are inside the timeout: CLIENT PAUSE ALL holds them.
            self.id = int(self.conn.client_id())
            self.conn.set(PROBE_KEY, f"{time.time():.6f}")
        except redis.exceptions.TimeoutError as err:
            took = time.monotonic() - began
            return "blocked", f"no reply in {took:.2f} s (connection closed): {err}"
        except redis.exceptions.ResponseError as err:
            # redis-py strips the error prefix (NOPERM, READONLY...) into the exception class.
            return "refused", f"{type(err).__name__}: {one_line(err)}"
        return "accepted", f"the write was acknowledged in {time.monotonic() - began:.3f} s"

    def admin(self) -> Any:
        if self._admin is None:
            import redis

            self._admin = redis.Redis(unix_socket_path=SOCKET, socket_timeout=self.timeout_s)
        return self._admin

    def waiting_on(self) -> str | None:
        if self.id is None:
            return None
        for client in self.admin().client_list(client_id=[self.id]):
            if "b" in str(client.get("flags", "")):
                return (
                    f"Redis postponed the write (client {self.id}: flags={client.get('flags')}, "
                    f"cmd={client.get('cmd')}): writes are paused"
                )
        return None

    def abandon(self) -> None:
        if self.id is not None:
            self.admin().client_kill_filter(_id=self.id)

    def close(self) -> None:
        self.conn.close()
        if self._admin is not None:
            self._admin.close()


class RedisApp(App):
    """Redis server, Debian layout, started in the background inside the VM."""

    name: ClassVar[str] = "redis"
    client_modules: ClassVar[tuple[str, ...]] = (__name__, "redis")

    def layout(self, disks: int, fs: str) -> list[DiskSpec]:
        specs = [DiskSpec("data", DATA_DIR, 512, fs)]  # type: ignore[arg-type]
        for i in range(2, disks + 1):
            specs.append(DiskSpec(f"disk{i}", f"/srv/disk{i}", 512, fs))  # type: ignore[arg-type]
        return specs

    def provision(self, vm: VmLike) -> None:
        _prepare(vm)
        offset = log_size(vm, LOG_FILE)
        proc = _launch(vm)
        why = _wait_ready(vm, proc, time.monotonic() + 30, offset)
        if why:
            raise RuntimeError(f"Redis did not start: {why}")
        fields = [
            str(x) for i in range(1, BANK_ACCOUNTS + 1) for x in (i, BANK_TOTAL // BANK_ACCOUNTS)
        ]
        _cli(vm, "HSET", BANK_KEY, *fields)
        _cli(vm, "DEL", LOG_KEY, PROBE_KEY)
        got = _cli(vm, "HLEN", BANK_KEY).strip()
        if got != str(BANK_ACCOUNTS):
            raise RuntimeError(f"Redis provisioning: {BANK_KEY} has {got!r} fields")

    def start(self, vm: VmLike, deadline_s: float) -> StartReport:
        began = time.monotonic()
        try:
            _prepare(vm)
            offset = log_size(vm, LOG_FILE)
            proc = _launch(vm)
        except Exception as err:
            return StartReport(False, time.monotonic() - began, error=str(err))
        why = _wait_ready(vm, proc, began + deadline_s, offset)
        report = self._evidence(read_log(vm, LOG_FILE, offset))
        report.seconds = time.monotonic() - began
        if why:
            report.error = why
            return report
        report.started = True
        return report

    @staticmethod
    def _evidence(log: str) -> StartReport:
        repair: list[str] = []
        recovery: list[str] = []
        for line in log.splitlines():
            line = line.strip()
            if _REPAIR.search(line):
                repair.append(line)
            elif _RECOVERY.search(line):
                recovery.append(line)
        recovery.sort(key=lambda line: "DB loaded from" not in line)  # the summary first
        return StartReport(
            started=False,
            seconds=0.0,
            recovery_ran=bool(recovery),
            repair_needed=bool(repair),
            evidence=(repair + recovery)[:40],
        )

    def stop(self, vm: VmLike) -> None:
        _cli(vm, "SHUTDOWN", check=False, timeout=60)
        deadline = time.monotonic() + 30
        while Path(vm.path(PID_FILE)).exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def integrity(self, vm: VmLike) -> IntegrityReport:
        """``redis-check-aof`` on the multi-part AOF manifest, ``redis-check-rdb`` on each RDB.

        Run on the restored files; the server is idle then (no workload), and the checkers
        only read.
        """
        details: list[str] = []
        ok = True
        checked = 0
        if Path(vm.path(AOF_MANIFEST)).exists():
            checked += 1
            done = vm.run(["redis-check-aof", AOF_MANIFEST], check=False, timeout=300)
            text = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
            good = done.returncode == 0 and any("is valid" in line for line in text)
            ok &= good
            details.append(f"redis-check-aof {AOF_MANIFEST}: {'OK' if good else 'FAILED'}")
            details.extend(f"  {line}" for line in text[-6:] if line.strip())
        rdbs = [RDB_FILE] if Path(vm.path(RDB_FILE)).exists() else []
        aof_dir = Path(vm.path(AOF_DIR))
        if aof_dir.is_dir():
            rdbs += [f"{AOF_DIR}/{p.name}" for p in sorted(aof_dir.glob("*.rdb"))]
        for rdb in rdbs:
            checked += 1
            done = vm.run(["redis-check-rdb", rdb], check=False, timeout=300)
            text = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
            good = done.returncode == 0 and any("RDB looks OK" in line for line in text)
            ok &= good
            details.append(f"redis-check-rdb {rdb}: {'OK' if good else 'FAILED'}")
            if not good:
                details.extend(f"  {line}" for line in text[-6:] if line.strip())
        if not checked:
            return IntegrityReport(ok=False, details=[f"no AOF manifest or RDB in {DATA_DIR}"])
        return IntegrityReport(ok=ok, details=details[:40])

    def versions(self, vm: VmLike) -> dict[str, str]:
        out: dict[str, str] = {}
        server = vm.run(["redis-server", "--version"], check=False).stdout.decode()
        match = re.search(r"v=(\S+)", server)
        out["redis_server"] = match.group(1) if match else server.strip() or "?"
        out["server"] = _info(vm, "server").get("redis_version", "?")
        try:  # the library the VM's processes use, which is not always this process's
            out["redis_py"] = str(vm.call(f"{__name__}:client_version"))
        except Exception as err:
            out["redis_py"] = f"? ({one_line(err)})"
        return out

    def client(self, timeout_s: float = 10.0, role: Role = APP_ROLE) -> Client:
        return RedisClient(timeout_s, role)


APP = RedisApp()


def client_version() -> str:
    """The redis-py version of this Python (called inside the VM)."""
    try:
        import redis
    except ImportError:
        return "not installed"
    return str(redis.__version__)
