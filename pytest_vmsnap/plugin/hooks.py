"""pytest entry point: ``pytest --vmsnap`` collects the zero-code battery.

Without ``--vmsnap`` the plugin only registers its options, marker and fixtures
(:mod:`pytest_vmsnap.plugin.fixtures`): nothing else is imported or run. Each setting is an ini key
(``vmsnap_config`` ...) and a command-line option (``--vmsnap-config`` ...); the option wins.
Paths in the ini file are relative to that file.

Every cycle a test runs (battery items and ``vmsnap_cycle``) travels to the summary on its test
report (``report.vmsnap_runs``, plain JSON data), so under pytest-xdist the controller prints
the summary and writes the per-cycle JSON files for all workers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from .battery import Check, Context

# The user fixtures (vmsnap_settings, vmsnap_vm, vmsnap_cycle...); that module is cheap too.
pytest_plugins = ["pytest_vmsnap.plugin.fixtures"]

PENDING_RUNS = pytest.StashKey[list[tuple[str, Any]]]()
"""Cycles a test ran that its next report will carry: ``(name, RunResult)``."""

OPTIONS: dict[str, str] = {
    "config": "path of the VMSnapshotScriptPluginConfig.json to prove",
    "pre": "local pre-script, installed at the config's preScriptLocation",
    "post": "local post-script, installed at the config's postScriptLocation",
    "app": "application under test: sqlite, postgres, mariadb, redis",
    "vm": "stand-in VM kind: host (namespaces) or container",
    "disks": "number of disks of the stand-in VM",
    "fs": "file system of the disks: ext4, xfs, btrfs",
    "snapshot": "snapshot backend: reflink, copy, btrfs, devmapper",
    "profile": "framework fidelity: extension (what the code does) or documented",
    "quiesce": "what the scripts claim: lock (writes must block while quiesced), flush, none",
    "pacing": "faithful (the extension's poll waits) or prompt",
    "owner": "owner of the installed files (default root)",
    "report": "directory for per-cycle JSON and the HTML report",
}
PATH_KEYS = ("config", "pre", "post", "report")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vmsnap", "prove VM-backup quiesce scripts")
    group.addoption(
        "--vmsnap",
        action="store_true",
        default=False,
        help="collect and run the vmsnap battery for the configured scripts",
    )
    for key, text in OPTIONS.items():
        group.addoption(f"--vmsnap-{key}", dest=f"vmsnap_{key}", default=None, help=text)
        parser.addini(f"vmsnap_{key}", text, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "vmsnap(**settings): settings for the vmsnap fixtures "
        "(app=, disks=, fs=, profile=, snapshot=, quiesce=)",
    )
    config.pluginmanager.register(VmsnapReporter(config), "vmsnap-reporter")
    if config.getoption("vmsnap"):
        config.pluginmanager.register(VmsnapSession(config), "vmsnap-session")


def read_setting(config: pytest.Config, key: str) -> tuple[Any, Path]:
    """The value of one setting and the directory relative paths are resolved against."""
    value = config.getoption(f"vmsnap_{key}")
    if value is not None:
        return value, Path.cwd()
    value = config.getini(f"vmsnap_{key}")
    base = Path(config.inipath).parent if config.inipath else Path(config.rootpath)
    return (value or None), base


def settings_from(config: pytest.Config) -> Any:
    """Build :class:`pytest_vmsnap.settings.Settings` from options over ini keys."""
    from ..settings import Settings

    values: dict[str, Any] = {}
    for key in OPTIONS:
        value, base = read_setting(config, key)
        if value is None:
            continue
        if key in PATH_KEYS:
            value = (base / value).resolve()
        values[key] = value
    report = values.pop("report", None)
    if "disks" in values:
        try:
            values["disks"] = int(values["disks"])
        except ValueError:
            raise pytest.UsageError(
                f"vmsnap: disks must be a whole number, not {values['disks']!r}"
            ) from None
    return Settings(report_dir=report, **values)


def record_run(item: pytest.Item, name: str, run: Any) -> None:
    """Queue a cycle (a RunResult) for the summary: it travels on ``item``'s next report."""
    item.stash.setdefault(PENDING_RUNS, []).append((name, run))


class VmsnapItem(pytest.Item):
    """One check of the battery."""

    def __init__(self, *, check: Check, context: Context, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.context = context

    def runtest(self) -> None:
        before = set(self.context.runs)
        self.context.used.clear()
        try:
            self.check.func(self.context)
        finally:
            for key, run in self.context.runs.items():
                if key not in before:
                    record_run(self, key, run)
            # JUnit XML carries the verdict and codes of the cycles this check ran or used.
            for key in dict.fromkeys(self.context.used):
                d = self.context.runs[key].to_dict()
                for field in ("verdict", "status", "health_code", "consistency"):
                    self.user_properties.append((f"vmsnap.{key}.{field}", d[field]))

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        from .battery import CheckFailed

        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        settings = self.context.settings
        return Path(settings.config or "."), 0, f"vmsnap: {self.name}"


class VmsnapBattery(pytest.Collector):
    """The battery's collector (node id ``vmsnap``; items ``vmsnap::lint`` ...)."""

    def __init__(self, *, context: Context, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = context

    def collect(self) -> list[pytest.Item]:
        from .battery import battery

        return [
            VmsnapItem.from_parent(self, name=check.name, check=check, context=self.context)
            for check in battery(self.context.settings)
        ]


class VmsnapSession:
    """Registered only with ``--vmsnap``: checks the settings and adds the battery.

    One instance per pytest process: under pytest-xdist each worker has its own context (its
    own cycles); the controller only checks the settings.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.context: Context | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Before collection and before xdist starts its workers: one line, exit code 4.
        problems = settings_from(self.config).problems()
        if problems:
            raise pytest.UsageError("vmsnap: " + "; ".join(problems))

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        # First, so -k/-m deselect battery items too; collected through the hooks, so the
        # terminal counts them.
        from .battery import Context

        self.context = Context(settings_from(config))
        node = VmsnapBattery.from_parent(
            session, name="vmsnap", nodeid="vmsnap", context=self.context
        )
        session.ihook.pytest_collectstart(collector=node)
        rep = session.ihook.pytest_make_collect_report(collector=node)
        session.ihook.pytest_collectreport(report=rep)
        items.extend(x for x in rep.result if isinstance(x, pytest.Item))


class VmsnapReporter:
    """Always registered: carries cycles on reports, writes their JSON, prints the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        self.runs: dict[str, dict[str, Any]] = {}
        self.page: Path | None = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Any:
        report = yield
        pending = item.stash.get(PENDING_RUNS, None)
        if pending:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "")
            report.vmsnap_runs = [
                {"name": name, "worker": worker, "run": _plain(run.to_dict())}
                for name, run in pending
            ]
            pending.clear()
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return  # the controller collects them
        for entry in getattr(report, "vmsnap_runs", None) or ():
            name = entry["name"] + (f" [{entry['worker']}]" if entry.get("worker") else "")
            self.runs[name] = entry["run"]
            report_dir = self.report_dir()
            if report_dir:
                from ..report.text import write_json

                write_json(report_dir, name, entry["run"])

    def report_dir(self) -> Path | None:
        value, base = read_setting(self.config, "report")
        return (base / value).resolve() if value else None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        report_dir = self.report_dir()
        if self.runs and report_dir and not self.is_worker:
            from ..report.html import write_html

            self.page = write_html(report_dir, self.runs)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.runs:
            return
        from ..report.text import summary_line

        tr = terminalreporter
        tr.section("vmsnap summary")
        if self.config.getoption("vmsnap"):
            settings = settings_from(self.config)
            tr.write_line(
                f"app {settings.app} | vm {settings.vm} | disks {settings.disks} "
                f"{settings.fs} | snapshot {settings.snapshot} | profile "
                f"{settings.profile}"
            )
        for name, run in self.runs.items():
            tr.write_line(summary_line(name, run))
        report_dir = self.report_dir()
        if report_dir:
            tr.write_line(f"per-cycle JSON: {report_dir}/*.json")
            if self.page:
                tr.write_line(f"HTML report: {self.page}")


def _plain(data: Any) -> Any:
    """JSON-clean data (xdist sends reports between processes)."""
    return json.loads(json.dumps(data, default=str))
