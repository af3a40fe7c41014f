"""``vmsnap setup`` and ``vmsnap doctor`` without apt, root or Docker: the package list, the
fix table, the settings' session-start checks, the doctor's records and their formatting."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap import needs
from pytest_vmsnap.cli import main
from pytest_vmsnap.settings import Settings
from pytest_vmsnap.setup import doctor, packages
from pytest_vmsnap.setup.__main__ import main as setup_main

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


# --- the package list ---------------------------------------------------------------------------


def test_the_shipped_list_parses_and_covers_every_group() -> None:
    listed = packages.read_list()
    assert {p.group for p in listed} == set(packages.GROUPS)
    names = [p.name for p in listed]
    assert len(names) == len(set(names))
    assert "postgresql" in names and "docker.io" in names


def test_every_package_a_fix_names_is_in_the_list() -> None:
    listed = {p.name for p in packages.read_list()}
    assert needs.packages_named() <= listed


def test_every_extra_a_fix_names_exists() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    for lib in needs.LIBS.values():
        assert lib.fix == f"pip install 'pytest-vmsnap[{lib.extra}]'"
        assert any(dep.lower().startswith(lib.dist.lower()) for dep in extras[lib.extra]), lib


def test_the_fix_table_is_apt_get_install() -> None:
    programs = [*needs.VM_PROGRAMS, *needs.CONTAINER_PROGRAMS, *needs.FS_PROGRAMS.values()]
    programs += [p for group in needs.APP_PROGRAMS.values() for p in group]
    for program in programs:
        assert program.fix == f"apt-get install {program.package}"
    assert needs.postgres_package() == "postgresql"
    assert needs.postgres_package("16") == "postgresql-16"


def test_install_deps_reads_the_same_list() -> None:
    # What scripts/install-deps.sh's awk line makes of the file, before any venv exists.
    # The list of the package under test (a checkout, or the wheel in scripts/wheel-check.sh).
    listed = Path(packages.__file__).with_name(packages.LIST_NAME)
    script = (REPO / "scripts" / "install-deps.sh").read_text()
    assert "pytest_vmsnap/setup/debian-packages.txt" in script
    awk = re.search(r"awk '([^']+)'", script)
    assert awk is not None
    done = subprocess.run(["awk", awk[1], str(listed)], capture_output=True, text=True)
    assert done.stdout.split() == [p.name for p in packages.read_list()]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("util-linux\n", "line 1: want 'PACKAGE GROUP'"),
        ("a vm\nb cloud\n", "line 2: want 'PACKAGE GROUP' with GROUP one of vm, apps"),
        ("a vm\n# c\na apps\n", "line 3: a is listed twice"),
    ],
)
def test_a_bad_list_names_its_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        packages.parse_list(text)


def test_select_by_group() -> None:
    listed = packages.parse_list("a vm # x\nb apps\nc report\n\nd dev\n")
    assert packages.select(listed) == ["a", "b"]
    assert packages.select(listed, packages.GROUPS) == ["a", "b", "c", "d"]
    assert listed[0].note == "x"
    with pytest.raises(ValueError, match="unknown package group cloud"):
        packages.select(listed, ["cloud"])


def test_print_packages_with_the_system_python_entry_point(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert setup_main(["--print-packages", "--group", "container"]) == 0
    assert capsys.readouterr().out.split() == ["docker.io", "iptables", "debootstrap"]
    assert setup_main(["--print-packages", "--all"]) == 0
    assert len(capsys.readouterr().out.split()) == len(packages.read_list())


def test_dpkg_status_and_simulation_parsing() -> None:
    status = "util-linux\tii \nmount:amd64\tii \nsl\tun \nhalf\tiU \n"
    assert packages.parse_dpkg_status(status) == {"util-linux", "mount"}
    sim = "NOTE: simulation\nInst sl (5.02-1 Debian:12/stable [amd64])\nConf sl (5.02-1)\n"
    assert packages.parse_simulation(sim) == ["sl"]
    assert packages.install_argv(["a", "b"], simulate=True) == [
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "-s",
        "a",
        "b",
    ]


def test_setup_dry_run_simulates_only_what_is_missing() -> None:
    calls: list[tuple[list[str], dict[str, Any]]] = []

    def fake_run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append((argv, kwargs))
        out = "Inst b (1 Debian)\nInst libb (1 Debian)\n"
        return subprocess.CompletedProcess(argv, 0, out, "")

    result = packages.setup(["a", "b"], dry_run=True, run=fake_run, have={"a"})
    assert result.ok and result.missing == ["b"] and result.would_install == ["b", "libb"]
    ((argv, kwargs),) = calls
    assert argv[-2:] == ["-s", "b"] and kwargs["env"]["DEBIAN_FRONTEND"] == "noninteractive"
    lines = result.lines()
    assert lines[0] == "setup: 1 of 2 packages missing: b"
    assert "apt-get install -y -q --no-install-recommends b" in lines[1]
    assert packages.setup(["a"], dry_run=True, run=fake_run, have={"a"}).lines() == [
        "setup: all 1 packages are installed"
    ]


def test_setup_without_root_installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)

    def never(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise AssertionError(f"ran {argv}")

    result = packages.setup(["a"], run=never, have=set())
    assert not result.ok and "needs root" in result.error


# --- the settings at session start --------------------------------------------------------------


@pytest.fixture
def no_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    real = needs.importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "psycopg" else real(name, *args)

    monkeypatch.setattr(needs.importlib.util, "find_spec", find_spec)
    monkeypatch.setattr("os.geteuid", lambda: 0)


def test_a_missing_client_library_is_one_line_with_its_fix(no_psycopg: None) -> None:
    s = Settings(config=Path(__file__), app="postgres")
    assert "psycopg is not installed: pip install 'pytest-vmsnap[apps]'" in s.problems()
    assert needs.missing_libraries("postgres", "host") == [
        "psycopg is not installed: pip install 'pytest-vmsnap[apps]'"
    ]
    # The container stand-in's client runs with the image's python3-psycopg.
    assert needs.missing_libraries("postgres", "container") == []
    assert needs.missing_libraries("sqlite", "host") == []


def test_without_root_nothing_is_asked_for(
    no_psycopg: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)  # the directory stand-in: no database
    assert Settings(config=Path(__file__), app="postgres").problems() == []


def test_bad_postgres_settings_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    s = Settings(config=Path(__file__), app="postgres", pg_version="fifteen", pg_bin="bin")

    def ini(f: Any) -> str:
        return f"vmsnap_{f.key}"

    assert s.problems(ini) == [
        "vmsnap_pg_version 'fifteen' is not a major version such as 15 or 16",
        "vmsnap_pg_bin 'bin' must be an absolute path",
    ]
    wrong_app = Settings(config=Path(__file__), app="mysql")
    assert wrong_app.problems(ini) == [
        "vmsnap_app 'mysql' is not one of sqlite, postgres, mariadb, redis"
    ]


def test_vmsnap_run_stops_at_once_without_the_client_library(
    no_psycopg: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.json"
    config.write_text("{}")
    assert main(["run", "--config", str(config), "--app", "postgres"]) == 2
    err = capsys.readouterr().err
    assert "psycopg is not installed: pip install 'pytest-vmsnap[apps]'" in err


# --- the doctor's records -----------------------------------------------------------------------


def test_a_check_line_says_the_fix_only_when_it_did_not_pass() -> None:
    ok = doctor.Check("root", "ok", "running as root", fix="unused")
    bad = doctor.Check("xfsprogs", "FAIL", "not found: mkfs.xfs", fix="apt-get install xfsprogs")
    assert ok.line(8) == "ok   root     running as root"
    assert bad.line(8) == "FAIL xfsprogs not found: mkfs.xfs  fix: apt-get install xfsprogs"


def test_the_report_fails_only_on_required_checks() -> None:
    report = doctor.Report()
    report.add(doctor.Check("root", "ok", "running as root"))
    report.add(doctor.Check("docker engine", "FAIL", "none", fix="x", required=False))
    assert report.ok
    text = report.format_text().splitlines()
    assert text[-1] == "doctor: every required check passed (1 optional one(s) did not)"
    report.add(doctor.Check("freeze", "FAIL", "EPERM", fix="run it as root"))
    assert not report.ok
    assert report.format_text().splitlines()[-1] == ("doctor: 1 required check(s) failed: freeze")
    data = json.loads(report.to_json())
    assert data["ok"] is False
    assert data["checks"][2] == {
        "name": "freeze",
        "status": "FAIL",
        "detail": "EPERM",
        "fix": "run it as root",
        "required": True,
    }


def test_without_root_the_disk_checks_skip_and_root_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    root = doctor.check_root()
    assert root.status == "FAIL" and root.fix == "run it as root: sudo vmsnap doctor"
    disks = doctor.check_disks(doctor.Options())
    assert [(c.name, c.status) for c in disks] == [
        ("reflink pool", "skip"),
        ("loop devices", "skip"),
        ("freeze", "skip"),
    ]


def test_a_missing_program_names_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "which", lambda name: None if name == "mkfs.btrfs" else "/x")
    by_name = {c.name: c for c in doctor.check_programs(doctor.Options())}
    btrfs = by_name["btrfs-progs"]
    assert (btrfs.status, btrfs.required, btrfs.fix) == (
        "warn",
        False,
        "apt-get install btrfs-progs",
    )
    needed = {c.name: c for c in doctor.check_programs(doctor.Options(fs="btrfs"))}
    assert needed["btrfs-progs"].status == "FAIL" and needed["btrfs-progs"].required
    assert by_name["xfsprogs"].required  # the reflink pool is XFS


def test_a_missing_client_library_in_the_doctor(no_psycopg: None) -> None:
    checks = doctor.check_apps(doctor.Options(apps=("postgres",)))
    client = next(c for c in checks if c.name == "postgres client")
    assert client.status == "FAIL" and client.fix == "pip install 'pytest-vmsnap[apps]'"
    container = doctor.check_apps(doctor.Options(apps=("postgres",), vm="container"))
    assert next(c for c in container if c.name == "postgres client").status == "warn"


def test_images_are_read_offline_from_our_engines_data_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_vmsnap.vm.docker import engine

    monkeypatch.setattr(engine, "state_dir", lambda home=None: tmp_path)
    assert doctor._built_offline() == (None, "")
    repos = tmp_path / "data" / "image" / "overlay2" / "repositories.json"
    repos.parent.mkdir(parents=True)
    repos.write_text(json.dumps({"Repositories": {"vmsnap/pg15": {"vmsnap/pg15:abc": "sha"}}}))
    have, source = doctor._built_offline()
    assert have == {"vmsnap/pg15:abc"} and str(tmp_path) in source


@pytest.mark.parametrize(
    ("line", "name", "short"),
    [
        (
            "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64",
            "Redis",
            "Redis 7.0.15",
        ),
        (
            "/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu",
            "MariaDB",
            "MariaDB 10.11.19",
        ),
        ("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", "PostgreSQL", "PostgreSQL 15.18"),
        ("", "sqlite3", "sqlite3"),
    ],
)
def test_short_version(line: str, name: str, short: str) -> None:
    assert doctor.short_version(line, name) == short


# --- pytest --vmsnap ----------------------------------------------------------------------------


def test_pytest_vmsnap_stops_at_session_start_without_the_client_library(
    pytester: pytest.Pytester, no_psycopg: None
) -> None:
    config = pytester.path / "c.json"
    config.write_text("{}")
    pytester.makeini("[pytest]\nvmsnap_config = c.json\nvmsnap_app = postgres\n")
    result = pytester.runpytest_inprocess("--vmsnap", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: vmsnap: psycopg is not installed: pip install 'pytest-vmsnap[apps]'"]
    )
    assert result.duration < 10  # not the 30 s wait for a write that cannot come


def test_pytest_vmsnap_names_the_ini_key_and_the_values(pytester: pytest.Pytester) -> None:
    config = pytester.path / "c.json"
    config.write_text("{}")
    pytester.makeini("[pytest]\nvmsnap_config = c.json\nvmsnap_app = mysql\n")
    result = pytester.runpytest_inprocess("--vmsnap", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: vmsnap: vmsnap_app 'mysql' is not one of sqlite, postgres, mariadb, redis"]
    )
