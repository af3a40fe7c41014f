"""Where the applications' programs are: PostgreSQL by major version, MariaDB/MySQL by name,
on fake machines (pyfakefs), as this host or as a VM's root seen from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyfakefs.fake_filesystem import FakeFilesystem

from pytest_vmsnap.apps import get_app
from pytest_vmsnap.apps.base import AppOptions
from pytest_vmsnap.apps.discover import (
    NotInstalled,
    PgInstall,
    find_mariadb,
    find_postgres,
    find_program,
    host_problems,
    parse_server_major,
    postgres_versions,
)
from pytest_vmsnap.apps.postgres import PostgresApp


def exe(fs: FakeFilesystem, path: str, mode: int = 0o755) -> None:
    fs.create_file(path, st_mode=0o100000 | mode)


def pg_tree(fs: FakeFilesystem, *versions: str, root: str = "") -> None:
    for v in versions:
        for tool in ("postgres", "initdb", "pg_ctl", "psql"):
            exe(fs, f"{root}/usr/lib/postgresql/{v}/bin/{tool}")


def test_the_newest_major_version_with_a_server_wins(fs: FakeFilesystem) -> None:
    pg_tree(fs, "9.6", "14", "16", "15")
    fs.create_dir("/usr/lib/postgresql/17/bin")  # only a client left behind: no postgres
    exe(fs, "/usr/lib/postgresql/18/bin/postgres", 0o644)  # not executable
    fs.create_dir("/usr/lib/postgresql/extra/bin")  # not a version
    assert postgres_versions() == ["9.6", "14", "15", "16"]
    pg = find_postgres()
    assert pg == PgInstall("16", "/usr/lib/postgresql/16/bin")


def test_every_path_that_names_the_version_follows_from_it() -> None:
    pg = PgInstall("16", "/usr/lib/postgresql/16/bin")
    assert pg.data == "/var/lib/postgresql/16/main"
    assert pg.version_dir == "/var/lib/postgresql/16"
    assert pg.wal_dir == "/var/lib/postgresql-wal/16/main"
    assert pg.wal_version_dir == "/var/lib/postgresql-wal/16"
    assert pg.log_file == "/run/postgresql-log/postgresql-16-main.log"
    assert pg.cluster_name == "16/main"
    assert pg.program("pg_ctl") == "/usr/lib/postgresql/16/bin/pg_ctl"
    assert PgInstall.from_dict(pg.to_dict()) == pg  # what crosses into the VM


def test_a_named_version_must_be_installed(fs: FakeFilesystem) -> None:
    pg_tree(fs, "15", "16")
    assert find_postgres("15").bin == "/usr/lib/postgresql/15/bin"
    with pytest.raises(NotInstalled) as err:
        find_postgres("14")
    assert err.value.what == (
        "PostgreSQL 14 is not installed: no /usr/lib/postgresql/14/bin/postgres (installed: 15, 16)"
    )
    assert err.value.fix == "apt-get install postgresql-14"
    assert str(err.value).endswith("; apt-get install postgresql-14")
    with pytest.raises(NotInstalled, match="'15beta' is not a major version"):
        find_postgres("15beta")


def test_nothing_installed_names_the_debian_package(fs: FakeFilesystem) -> None:
    fs.create_dir("/usr/lib")
    with pytest.raises(NotInstalled) as err:
        find_postgres()
    assert "PostgreSQL is not installed" in err.value.what
    assert err.value.fix == "apt-get install postgresql"


def test_a_bin_directory_gives_its_version_from_its_path_or_the_server(
    fs: FakeFilesystem,
) -> None:
    pg_tree(fs, "15", "16")
    assert find_postgres(bin_dir="/usr/lib/postgresql/15/bin/") == PgInstall(
        "15", "/usr/lib/postgresql/15/bin"
    )
    exe(fs, "/opt/pg/bin/postgres")
    asked: list[str] = []

    def version_of(path: str) -> str:
        asked.append(path)
        return "17"

    assert find_postgres(bin_dir="/opt/pg/bin", version_of=version_of).version == "17"
    assert asked == ["/opt/pg/bin/postgres"]
    assert find_postgres("16", "/opt/pg/bin").version == "16"  # the setting wins, unasked
    with pytest.raises(NotInstalled, match="cannot tell the major version"):
        find_postgres(bin_dir="/opt/pg/bin", root="/", version_of=lambda p: None)
    with pytest.raises(NotInstalled, match="no PostgreSQL server in pg_bin /opt/nothing"):
        find_postgres(bin_dir="/opt/nothing")
    with pytest.raises(NotInstalled, match="must be an absolute path"):
        find_postgres(bin_dir="opt/pg/bin")


def test_inside_a_vm_root_seen_from_this_host(fs: FakeFilesystem) -> None:
    pg_tree(fs, "16")  # this host
    pg_tree(fs, "15", root="/proc/4242/root")  # the container's image
    assert find_postgres(root="/proc/4242/root") == PgInstall("15", "/usr/lib/postgresql/15/bin")
    with pytest.raises(NotInstalled, match="installed: 15"):
        find_postgres("16", root="/proc/4242/root")


def test_the_app_finds_its_postgres_in_the_vm_it_is_given(fs: FakeFilesystem) -> None:
    pg_tree(fs, "15", "16", root="/vmroot")

    class FakeVm:
        name = "vm"

        def path(self, inside: str) -> Path:
            return Path("/vmroot") / inside.lstrip("/")

    vm = FakeVm()
    app = get_app("postgres", AppOptions())
    assert isinstance(app, PostgresApp)
    assert app.install(vm).version == "16"  # type: ignore[arg-type]
    named = get_app("postgres", AppOptions(pg_version="15"))
    assert named.install(vm).data == "/var/lib/postgresql/15/main"  # type: ignore[attr-defined,arg-type]
    assert get_app("redis", AppOptions(pg_version="15")) is get_app("redis")


@pytest.mark.parametrize(
    ("text", "major"),
    [
        ("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", "15"),
        ("postgres (PostgreSQL) 16.4 (Ubuntu 16.4-0ubuntu0.24.04.2)", "16"),
        ("postgres (PostgreSQL) 17beta1", "17"),
        ("postgres (PostgreSQL) 9.6.24", "9.6"),
        ("no version here", None),
    ],
)
def test_parse_server_major(text: str, major: str | None) -> None:
    assert parse_server_major(text) == major


def test_mariadb_programs_by_their_names(fs: FakeFilesystem) -> None:
    for path in (
        "/usr/sbin/mariadbd",
        "/usr/bin/mariadb-install-db",
        "/usr/bin/mariadb",
        "/usr/bin/mariadb-admin",
        "/usr/bin/mysql",
    ):
        exe(fs, path)
    found = find_mariadb()
    assert (found.server, found.install_db, found.client, found.admin) == (
        "/usr/sbin/mariadbd",
        "/usr/bin/mariadb-install-db",
        "/usr/bin/mariadb",  # the new name before the old one
        "/usr/bin/mariadb-admin",
    )
    assert found.server_name == "mariadbd"


def test_an_older_mariadb_with_only_the_mysql_names(fs: FakeFilesystem) -> None:
    for path in (
        "/usr/libexec/mysqld",
        "/usr/bin/mysql_install_db",
        "/usr/bin/mysql",
        "/usr/bin/mysqladmin",
    ):
        exe(fs, path)
    found = find_mariadb()
    assert found.to_dict() == {
        "server": "/usr/libexec/mysqld",
        "install_db": "/usr/bin/mysql_install_db",
        "client": "/usr/bin/mysql",
        "admin": "/usr/bin/mysqladmin",
    }


def test_a_missing_mariadb_program_names_its_package(fs: FakeFilesystem) -> None:
    exe(fs, "/usr/sbin/mariadbd")
    exe(fs, "/usr/bin/mariadb-install-db")
    with pytest.raises(NotInstalled) as err:
        find_mariadb()
    assert err.value.what == "mariadb or mysql is not installed"
    assert err.value.fix == "apt-get install mariadb-client"


def test_find_program_order_and_executable_bit(fs: FakeFilesystem) -> None:
    exe(fs, "/usr/local/bin/tool")
    exe(fs, "/usr/bin/tool")
    exe(fs, "/usr/bin/plain", 0o644)
    assert find_program(["tool"], ["/usr/bin", "/usr/local/bin"]) == "/usr/bin/tool"
    assert find_program(["plain"], ["/usr/bin"]) is None
    assert find_program(["nope", "tool"], ["/usr/local/bin"]) == "/usr/local/bin/tool"


def test_host_problems_one_line_each_with_the_fix(fs: FakeFilesystem) -> None:
    fs.create_dir("/usr/bin")
    assert host_problems("sqlite") == []  # Python's sqlite3 is all it needs
    assert host_problems("redis") == ["redis-server is not installed; apt-get install redis-server"]
    assert host_problems("postgres") == [
        "PostgreSQL is not installed: no /usr/lib/postgresql/<version>/bin/postgres; "
        "apt-get install postgresql"
    ]
    exe(fs, "/usr/bin/redis-server")
    exe(fs, "/usr/bin/redis-cli")
    assert host_problems("redis") == []


def test_a_version_older_than_the_harness_runs_is_refused(fs: FakeFilesystem) -> None:
    pg_tree(fs, "9.6", "13")
    with pytest.raises(NotInstalled) as err:
        find_postgres()
    assert err.value.what.startswith("PostgreSQL 13 (/usr/lib/postgresql/13/bin) is older than 14")
    assert "postgresql-<major>" in err.value.fix
    pg_tree(fs, "14")
    assert find_postgres().version == "14"
    with pytest.raises(NotInstalled, match=r"PostgreSQL 9\.6 .* is older than 14"):
        find_postgres("9.6")
