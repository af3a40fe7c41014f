"""What this machine needs for each part of the harness, and what fixes it when it is missing.

Plain data and ``importlib.util.find_spec`` only (nothing here imports a library it names), so
any layer can ask cheaply: the settings check at session start (:meth:`Settings.problems
<pytest_vmsnap.settings.Settings.problems>`), the applications' discovery messages and
``vmsnap doctor`` all name the same fix. The Debian packages themselves are listed once, in
``pytest_vmsnap/setup/debian-packages.txt`` (``vmsnap setup`` and ``scripts/install-deps.sh``
read it); a unit test keeps every package named here in that list.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

DIST = "pytest-vmsnap"


@dataclass(frozen=True)
class PythonLib:
    """A client library the harness imports: its module, its distribution, our extra."""

    module: str
    dist: str
    extra: str

    @property
    def fix(self) -> str:
        """The command that installs it."""
        return f"pip install '{DIST}[{self.extra}]'"

    def installed(self) -> bool:
        """Whether the module can be imported here (found, not imported)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False

    def problem(self) -> str:
        """One line: what is missing and the fix."""
        return f"{self.module} is not installed: {self.fix}"


LIBS: dict[str, PythonLib] = {
    lib.module: lib
    for lib in (
        PythonLib("psycopg", "psycopg", "apps"),
        PythonLib("pymysql", "PyMySQL", "apps"),
        PythonLib("redis", "redis", "apps"),
        PythonLib("docker", "docker", "container"),
        PythonLib("testcontainers", "testcontainers", "container"),
    )
}

APP_LIBS: dict[str, tuple[str, ...]] = {
    "sqlite": (),  # the standard library's sqlite3
    "postgres": ("psycopg",),
    "mariadb": ("pymysql",),
    "redis": ("redis",),
}
"""The client library each application's writers, probes and oracle import. In the host
stand-in they run with this interpreter; in the container stand-in with the image's Debian
``python3`` and its ``python3-*`` packages (the recipes install them)."""

CONTAINER_LIBS: tuple[str, ...] = ("docker", "testcontainers")
"""What the controller imports to drive the container stand-in."""


def missing_libraries(app: str, vm: str) -> list[str]:
    """One line per client library that ``app`` on a stand-in of kind ``vm`` needs in this
    interpreter and cannot import, each naming the fix."""
    if vm == "host":
        wanted = APP_LIBS.get(app, ())
    elif vm == "container":
        wanted = CONTAINER_LIBS
    else:  # the directory stand-in runs no database
        wanted = ()
    return [LIBS[m].problem() for m in wanted if not LIBS[m].installed()]


@dataclass(frozen=True)
class Program:
    """A command the harness runs, any of ``names`` (the first found wins), from a package."""

    names: tuple[str, ...]
    package: str
    """The Debian package that provides it."""

    @property
    def fix(self) -> str:
        return f"apt-get install {self.package}"


# The stand-in VM's tools (host side; the container images install the same in their recipes).
VM_PROGRAMS: tuple[Program, ...] = (
    Program(("losetup",), "mount"),
    Program(("mount",), "mount"),
    Program(("umount",), "mount"),
    Program(("nsenter",), "util-linux"),
    Program(("unshare",), "util-linux"),
    Program(("fsfreeze",), "util-linux"),
    Program(("runuser",), "util-linux"),
    Program(("setsid",), "util-linux"),
    Program(("mkfs.ext4",), "e2fsprogs"),
    Program(("ip",), "iproute2"),
    Program(("ps",), "procps"),
    Program(("sh",), "dash"),
)
FS_PROGRAMS: dict[str, Program] = {
    "ext4": Program(("mkfs.ext4",), "e2fsprogs"),
    "xfs": Program(("mkfs.xfs",), "xfsprogs"),
    "btrfs": Program(("mkfs.btrfs",), "btrfs-progs"),  # with the btrfs command
}
"""``mkfs`` per file system; the reflink pool is XFS (``xfsprogs``) unless ``$VMSNAP_HOME``
can reflink already, or btrfs for the ``btrfs`` snapshot backend."""

POSTGRES_PACKAGE = "postgresql"
"""Debian's meta package: the distribution's default major version (15 on Debian 12), its
client tools with it. A given major version is ``postgresql-<version>``."""

APP_PROGRAMS: dict[str, tuple[Program, ...]] = {
    "sqlite": (Program(("sqlite3",), "sqlite3"),),
    "postgres": (),  # discovered by version: pytest_vmsnap.apps.discover.find_postgres
    "mariadb": (
        Program(("mariadbd", "mysqld"), "mariadb-server"),
        Program(("mariadb-install-db", "mysql_install_db"), "mariadb-server"),
        Program(("mariadb", "mysql"), "mariadb-client"),
        Program(("mariadb-admin", "mysqladmin"), "mariadb-client"),
    ),
    "redis": (
        Program(("redis-server",), "redis-server"),
        Program(("redis-cli",), "redis-tools"),
    ),
}

CONTAINER_PROGRAMS: tuple[Program, ...] = (
    Program(("dockerd",), "docker.io"),
    Program(("iptables",), "iptables"),
    Program(("debootstrap",), "debootstrap"),
)
"""The container stand-in: Debian's Docker engine (started by vmsnap when none answers) and
debootstrap for the base image (only needed while it is not built yet)."""


def postgres_package(version: str | None = None) -> str:
    """The Debian package of PostgreSQL ``version`` (the default one without a version)."""
    return f"postgresql-{version}" if version else POSTGRES_PACKAGE


def packages_named() -> set[str]:
    """Every Debian package this module names (a test keeps them in the shipped list)."""
    programs = [
        *VM_PROGRAMS,
        *FS_PROGRAMS.values(),
        *CONTAINER_PROGRAMS,
        *(p for group in APP_PROGRAMS.values() for p in group),
    ]
    return {p.package for p in programs} | {POSTGRES_PACKAGE}
