"""Where the applications' programs are on a machine: found, never assumed.

PostgreSQL: Debian and Ubuntu install each major version in ``/usr/lib/postgresql/<major>/bin``
(Debian 12 ships 15, Ubuntu 22.04 14, Ubuntu 24.04 16). :func:`find_postgres` takes the newest
one that has a ``postgres`` binary, unless the settings name a version (``pg_version``) or a
bin directory (``pg_bin``); every path of the stand-in's cluster that names the version follows
from the result (:class:`PgInstall`). MariaDB or MySQL: the server, client, admin and
install-db programs are found by their names (``mariadbd`` or ``mysqld``, ``mariadb`` or
``mysql``...) in the usual directories (:func:`find_mariadb`).

Every function takes the ``root`` it looks under: ``/`` for this machine, or a VM's root seen
from this host (``vm.path("/")``), where the container stand-in has its image's programs.
Standard library only; the failures say which package installs what is missing.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..needs import APP_PROGRAMS, Program, postgres_package

PG_LIB = "/usr/lib/postgresql"
PG_MOUNT = "/var/lib/postgresql"
"""The data disk's mount point; the cluster is ``<mount>/<version>/main``, as Debian's
``pg_createcluster`` lays it out."""
PG_WAL_MOUNT = "/var/lib/postgresql-wal"
PG_LOG_DIR = "/run/postgresql-log"
PG_CLUSTER = "main"
PG_MIN = (14,)
"""The oldest major version the stand-in's cluster runs on (its integrity checks use amcheck's
``verify_heapam``, its settings ``recovery_init_sync_method``: both 14)."""

SERVER_DIRS = ("/usr/sbin", "/usr/bin", "/usr/libexec", "/usr/local/sbin", "/usr/local/bin")
"""Where distributions put a database server's binary (``mariadbd`` is in ``/usr/sbin`` on
Debian, ``/usr/libexec`` on Fedora)."""
CLIENT_DIRS = ("/usr/bin", "/usr/local/bin", "/usr/sbin", "/usr/local/sbin")
PATH_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_SERVER_VERSION = re.compile(r"\(PostgreSQL\)\s+([0-9]+)(?:\.([0-9]+))?")


class NotInstalled(RuntimeError):
    """A program the application needs is not there: ``what`` is missing, ``fix`` (a Debian
    package to install, or a setting to give) repairs it; the message says both."""

    def __init__(self, what: str, fix: str = "") -> None:
        super().__init__(f"{what}; {fix}" if fix else what)
        self.what = what
        self.fix = fix


def _inside(root: str | os.PathLike[str], path: str) -> Path:
    return Path(root) / path.lstrip("/")


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


# --- PostgreSQL ---------------------------------------------------------------------------------


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of a major version: ``"9.6"`` -> ``(9, 6)``, ``"16"`` -> ``(16,)``."""
    return tuple(int(part) for part in version.split("."))


def is_pg_version(text: str) -> bool:
    """Whether ``text`` reads as a PostgreSQL major version (``15``, ``9.6``)."""
    return _VERSION.fullmatch(text) is not None


@dataclass(frozen=True)
class PgInstall:
    """One PostgreSQL installation and the stand-in cluster's paths that follow from it.

    The cluster is laid out as Debian's ``pg_createcluster <version> main`` would: data in
    ``/var/lib/postgresql/<version>/main``, a split WAL in
    ``/var/lib/postgresql-wal/<version>/main``, log ``postgresql-<version>-main.log``,
    ``cluster_name`` ``<version>/main``.
    """

    version: str
    """The major version (``15``)."""
    bin: str
    """The directory with ``postgres``, ``initdb``, ``pg_ctl``, ``psql`` (inside the VM)."""

    @property
    def data(self) -> str:
        return f"{PG_MOUNT}/{self.version}/{PG_CLUSTER}"

    @property
    def version_dir(self) -> str:
        """The directory made on the data disk to hold the cluster (``.../15``)."""
        return f"{PG_MOUNT}/{self.version}"

    @property
    def wal_version_dir(self) -> str:
        return f"{PG_WAL_MOUNT}/{self.version}"

    @property
    def wal_dir(self) -> str:
        return f"{PG_WAL_MOUNT}/{self.version}/{PG_CLUSTER}"

    @property
    def log_file(self) -> str:
        return f"{PG_LOG_DIR}/postgresql-{self.version}-{PG_CLUSTER}.log"

    @property
    def cluster_name(self) -> str:
        return f"{self.version}/{PG_CLUSTER}"

    def program(self, name: str) -> str:
        """The path of one of its programs (``postgres``, ``psql``, ``pg_ctl``...)."""
        return f"{self.bin}/{name}"

    def to_dict(self) -> dict[str, str]:
        """JSON for a call into a VM (:meth:`from_dict` reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PgInstall:
        return cls(str(data["version"]), str(data["bin"]))


def postgres_versions(root: str | os.PathLike[str] = "/") -> list[str]:
    """The major versions under ``/usr/lib/postgresql`` that have a ``postgres`` binary,
    oldest first."""
    lib = _inside(root, PG_LIB)
    try:
        entries = list(lib.iterdir())
    except OSError:
        return []
    found = [
        e.name for e in entries if is_pg_version(e.name) and _executable(e / "bin" / "postgres")
    ]
    return sorted(found, key=version_key)


def find_postgres(
    version: str | None = None,
    bin_dir: str | None = None,
    root: str | os.PathLike[str] = "/",
    *,
    version_of: Callable[[str], str | None] | None = None,
) -> PgInstall:
    """The PostgreSQL to run: the one in ``bin_dir`` if given, else major ``version`` if
    given, else the newest installed (:func:`postgres_versions`). Paths are as seen inside
    ``root``. :class:`NotInstalled` names the fix.

    With ``bin_dir`` and no ``version``, the version is the bin directory's parent's name when
    it reads as one (``/usr/lib/postgresql/16/bin``), else what ``version_of(postgres path)``
    says (by default ``postgres --version``, run only when ``root`` is ``/``).
    """
    installed = postgres_versions(root)
    have = f"installed: {', '.join(installed)}" if installed else "none installed"
    if bin_dir:
        if not os.path.isabs(bin_dir):
            raise NotInstalled(f"pg_bin {bin_dir!r} must be an absolute path")
        bin_dir = os.path.normpath(bin_dir)
        if not _executable(_inside(root, f"{bin_dir}/postgres")):
            raise NotInstalled(
                f"no PostgreSQL server in pg_bin {bin_dir}: {bin_dir}/postgres is not an "
                f"executable ({have} under {PG_LIB})",
                "give the bin directory of an installed PostgreSQL",
            )
        found = version or _version_from_bin(bin_dir, root, version_of)
        if not found:
            raise NotInstalled(
                f"cannot tell the major version of {bin_dir}/postgres", "set pg_version too"
            )
        return _supported(PgInstall(found, bin_dir))
    if version:
        if not is_pg_version(version):
            raise NotInstalled(f"pg_version {version!r} is not a major version such as 15 or 16")
        if version not in installed:
            raise NotInstalled(
                f"PostgreSQL {version} is not installed: no {PG_LIB}/{version}/bin/postgres "
                f"({have})",
                f"apt-get install {postgres_package(version)}",
            )
        return _supported(PgInstall(version, f"{PG_LIB}/{version}/bin"))
    if not installed:
        raise NotInstalled(
            f"PostgreSQL is not installed: no {PG_LIB}/<version>/bin/postgres",
            f"apt-get install {postgres_package()}",
        )
    newest = installed[-1]
    return _supported(PgInstall(newest, f"{PG_LIB}/{newest}/bin"))


def _supported(pg: PgInstall) -> PgInstall:
    if version_key(pg.version) < PG_MIN:
        oldest = ".".join(map(str, PG_MIN))
        raise NotInstalled(
            f"PostgreSQL {pg.version} ({pg.bin}) is older than {oldest}, the oldest the harness "
            "runs (amcheck's verify_heapam, recovery_init_sync_method)",
            f"install PostgreSQL {oldest} or newer (apt-get install postgresql-<major>)",
        )
    return pg


def _version_from_bin(
    bin_dir: str,
    root: str | os.PathLike[str],
    version_of: Callable[[str], str | None] | None,
) -> str | None:
    parent = os.path.basename(os.path.dirname(bin_dir))
    if is_pg_version(parent):
        return parent
    if version_of is not None:
        return version_of(f"{bin_dir}/postgres")
    if os.path.realpath(root) == "/":
        return server_major(f"{bin_dir}/postgres")
    return None


def server_major(postgres: str) -> str | None:
    """The major version ``postgres --version`` prints (``15``; ``9.6`` before 10)."""
    try:
        out = subprocess.run(
            [postgres, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_server_major(out)


def parse_server_major(text: str) -> str | None:
    """``postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`` -> ``15``."""
    m = _SERVER_VERSION.search(text)
    if m is None:
        return None
    major = int(m[1])
    return f"{major}.{m[2]}" if major < 10 and m[2] else str(major)


# --- programs by name: MariaDB / MySQL, Redis, SQLite -----------------------------------------


def find_program(
    names: Iterable[str], dirs: Iterable[str] = PATH_DIRS, root: str | os.PathLike[str] = "/"
) -> str | None:
    """The first of ``names`` found as an executable in ``dirs`` (each name in every
    directory before the next name), as a path inside ``root``; None if none is there."""
    dirs = tuple(dirs)
    for name in names:
        for d in dirs:
            if _executable(_inside(root, f"{d}/{name}")):
                return f"{d}/{name}"
    return None


@dataclass(frozen=True)
class MariadbPrograms:
    """MariaDB's (or MySQL's) programs, as paths inside the machine they were found on."""

    server: str
    """``mariadbd`` or ``mysqld``."""
    install_db: str
    """``mariadb-install-db`` or ``mysql_install_db``."""
    client: str
    """``mariadb`` or ``mysql``."""
    admin: str
    """``mariadb-admin`` or ``mysqladmin``."""

    @property
    def server_name(self) -> str:
        return os.path.basename(self.server)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def find_mariadb(root: str | os.PathLike[str] = "/") -> MariadbPrograms:
    """MariaDB's server, install-db, client and admin programs, found by name;
    :class:`NotInstalled` naming the package of the first one missing."""
    server, install_db, client, admin = APP_PROGRAMS["mariadb"]
    found = [
        _require(server, SERVER_DIRS, root),
        _require(install_db, CLIENT_DIRS, root),
        _require(client, CLIENT_DIRS, root),
        _require(admin, CLIENT_DIRS, root),
    ]
    return MariadbPrograms(*found)


def _require(program: Program, dirs: Iterable[str], root: str | os.PathLike[str]) -> str:
    path = find_program(program.names, dirs, root)
    if path is None:
        names = " or ".join(program.names)
        raise NotInstalled(f"{names} is not installed", program.fix)
    return path


def host_problems(
    app: str,
    pg_version: str | None = None,
    pg_bin: str | None = None,
    root: str | os.PathLike[str] = "/",
) -> list[str]:
    """Why ``app`` cannot run in a host stand-in on this machine (whose root the VM's is a
    copy-on-write view of), one line each with the fix; empty when it can."""
    try:
        if app == "postgres":
            find_postgres(pg_version, pg_bin, root)
        elif app == "mariadb":
            find_mariadb(root)
        elif app == "redis":  # the SQLite app needs nothing but Python's sqlite3
            for program in APP_PROGRAMS["redis"]:
                _require(program, PATH_DIRS, root)
    except NotInstalled as err:
        return [str(err)]
    return []
