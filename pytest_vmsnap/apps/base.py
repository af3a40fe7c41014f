"""What every application under test provides, on both sides of the VM boundary.

Server side (called by the controller on the host, acting on a stand-in VM through
``vm.run``/``vm.popen``/``vm.path``): disk layout, provision, start with a deadline, stop,
integrity check, crash-recovery evidence, versions.

Client side (called inside the VM by the workload, probe and oracle processes): a connection
in one of two roles, the schema, one acknowledged append, one bank transfer, a probe write with
a short timeout, and a read of the state the oracle checks. The roles (:data:`ROLES`):

- ``app``: the ordinary application user ``vmsnap_app`` (never a superuser, as production
  apps), whom ``read_only`` and revoked grants stop;
- ``privileged``: what an admin tool, a cron job or replication writes as, whom ``read_only``
  does not stop: MariaDB's ``root`` (SUPER) by unix socket, PostgreSQL's superuser
  ``postgres`` with the server's defaults, Redis's ``default`` user by unix socket, and for
  SQLite (which has no users) another process writing the same database file.

Schema every app keeps (names may be adapted to the store, semantics may not):
``vmsnap_log(seq integer primary key, writer integer, at double)`` — one row per acknowledged
append; ``vmsnap_bank(id integer primary key, balance bigint)`` — ``BANK_ACCOUNTS`` rows whose
total is always ``BANK_TOTAL`` (each transfer moves an amount between two rows in one
transaction); ``vmsnap_probe(id, at)`` — writes made by the probes only.
"""

from __future__ import annotations

import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from ..vm.model import DiskSpec
from .probewrite import Outcome, ProbeWrite, no_connection, watch

APP_USER = "vmsnap_app"
APP_PASSWORD = "vmsnap-app-pw"
BANK_ACCOUNTS = 10
BANK_TOTAL = 10_000 * BANK_ACCOUNTS
WORKLOAD_PROCESS_NAME = "vmsnap-workload"
"""The workload's process name (its ``comm``): lock views tell its own short transactions
from a quiesce holder by it."""

Role = Literal["app", "privileged"]
APP_ROLE: Role = "app"
PRIVILEGED_ROLE: Role = "privileged"
ROLES: tuple[Role, ...] = (APP_ROLE, PRIVILEGED_ROLE)
"""Who writes: the application user, and a privileged writer that ``read_only`` does not
stop (see the module docstring)."""


def roles(writers: str) -> tuple[Role, ...]:
    """The roles a ``writers`` setting names: ``app``, ``privileged`` or ``both``."""
    if writers == "both":
        return ROLES
    for role in ROLES:
        if writers == role:
            return (role,)
    raise ValueError(f"writers {writers!r} is not one of app, privileged, both")


class VmLike(Protocol):
    """The stand-in VM as the apps use it (see :class:`pytest_vmsnap.vm.host.HostVM`)."""

    name: str

    def run(
        self,
        argv: list[str],
        *,
        check: bool = True,
        timeout: float | None = 120,
        input: bytes | None = None,
    ) -> Any: ...

    def popen(self, argv: list[str], **kwargs: Any) -> Any: ...

    def path(self, inside: str) -> Any: ...

    def call(self, fn: str, *args: Any, timeout: float | None = 120) -> Any: ...


@dataclass
class StartReport:
    """How a (restored) server came up."""

    started: bool
    seconds: float
    recovery_ran: bool = False
    """The store replayed its log (WAL, redo, AOF tail): its designed path, not damage."""
    repair_needed: bool = False
    """It needed repair: a MyISAM/Aria table not closed properly, a truncated AOF fixed..."""
    evidence: list[str] = field(default_factory=list)
    """Log lines or control data behind the two flags above."""
    error: str = ""


@dataclass
class IntegrityReport:
    """Result of the store's own integrity checks on the restored data."""

    ok: bool
    repaired: bool = False
    details: list[str] = field(default_factory=list)


@dataclass
class State:
    """What the oracle reads back from a store."""

    seqs: set[int]
    bank_total: int | None
    bank_rows: int


class Client(ABC):
    """A connection to the store in one role (used inside the VM)."""

    @abstractmethod
    def append(self, seq: int, writer: int) -> None:
        """Insert one log row and commit; returns only once the store acknowledged it."""

    @abstractmethod
    def transfer(self, src: int, dst: int, amount: int) -> None:
        """Move ``amount`` from account ``src`` to ``dst`` in one transaction and commit."""

    def probe_write(self, timeout_s: float) -> Outcome:
        """Try one write on a fresh connection of its own, watched from this one.

        Returns ``("accepted" | "blocked" | "refused", detail)``: blocked as soon as the
        store shows the write waiting on a lock another session holds (or when it did not
        finish in ``timeout_s``), and then cancelled so that it never lands; refused when the
        store said no (read-only, no permission) or would not take the connection.
        """
        began = time.monotonic()
        try:
            write = self.new_probe_write(timeout_s)
        except Exception as err:
            return no_connection(err, time.monotonic() - began, timeout_s)
        return watch(write, timeout_s)

    def new_probe_write(self, timeout_s: float) -> ProbeWrite:
        """A fresh connection for one probe write, bounded by ``timeout_s``."""
        raise NotImplementedError

    @abstractmethod
    def read_state(self) -> State:
        """All log sequence numbers and the bank total."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""


@dataclass(frozen=True)
class AppOptions:
    """What the settings say about the application's installation; None: found in the VM
    (:mod:`pytest_vmsnap.apps.discover`)."""

    pg_version: str | None = None
    """PostgreSQL's major version (``15``)."""
    pg_bin: str | None = None
    """PostgreSQL's bin directory inside the VM (``/usr/lib/postgresql/15/bin``)."""


class App(ABC):
    """A real application server run on the stand-in VM's disks."""

    name: ClassVar[str]
    client_modules: ClassVar[tuple[str, ...]] = ()
    """What the client side imports (its module and client library): the VM's fork server
    imports them once, so the workload and the probes start warm."""

    def configured(self, options: AppOptions) -> App:
        """This application as ``options`` set it up (itself when they change nothing)."""
        return self

    @abstractmethod
    def layout(self, disks: int, fs: str) -> list[DiskSpec]:
        """The VM's disks for this app (1 disk: everything on one; more: data/log split...)."""

    @abstractmethod
    def provision(self, vm: VmLike) -> None:
        """Initialise the store on the VM's disks, create the application user and the schema
        (with the bank rows), and leave the server running and ready."""

    @abstractmethod
    def start(self, vm: VmLike, deadline_s: float) -> StartReport:
        """Start the server on existing data (a restore) and wait until it answers."""

    @abstractmethod
    def stop(self, vm: VmLike) -> None:
        """Stop the server cleanly (used before the VM ends)."""

    @abstractmethod
    def integrity(self, vm: VmLike) -> IntegrityReport:
        """Run the store's integrity checks on the running server."""

    @abstractmethod
    def versions(self, vm: VmLike) -> dict[str, str]:
        """Versions of the server and tools, read at runtime."""

    @abstractmethod
    def client(self, timeout_s: float = 10.0, role: Role = APP_ROLE) -> Client:
        """A new connection in ``role`` (the application user by default). Called inside
        the VM."""

    def read_only(self, detail: str) -> bool:
        """Whether a refused write's ``detail`` says the store refused it only for being
        read-only (``read_only``, ``default_transaction_read_only``): a state that does not
        stop every writer, unlike a held lock."""
        return False


def log_size(vm: VmLike, log: str) -> int:
    """Size of the server log ``log`` inside the VM (0 while it does not exist)."""
    try:
        return Path(vm.path(log)).stat().st_size
    except OSError:
        return 0


def read_log(vm: VmLike, log: str, offset: int = 0) -> str:
    """The server log ``log`` from ``offset`` (the size it had before this start)."""
    try:
        with open(vm.path(log), "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def launch_daemon(vm: VmLike, argv: list[str]) -> Any:
    """Start a server inside the VM in its own session, detached from our streams."""
    return vm.popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_ready(
    vm: VmLike,
    proc: Any,
    deadline: float,
    *,
    server: str,
    log: str,
    socket: str,
    ping: Callable[[float], bool],
    offset: int = 0,
) -> str:
    """Poll until ``ping(timeout)`` answers once the unix ``socket`` exists: '' when ready,
    else why not (the server exited: the tail of its ``log`` since ``offset``; or the
    deadline passed)."""
    while True:
        if proc.poll() is not None:
            tail = read_log(vm, log, offset).strip().splitlines()[-5:]
            return f"{server} exited ({proc.returncode}): " + " | ".join(tail)
        left = deadline - time.monotonic()
        if left <= 0:
            return f"{server} did not answer before the deadline"
        if Path(vm.path(socket)).exists() and ping(max(1.0, min(5.0, left))):
            return ""
        time.sleep(0.01)
