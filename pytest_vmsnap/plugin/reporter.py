"""The reporter side of the plugin: every cycle a test ran travels to the summary on its test
report (``report.vmsnap_runs``, the JSON contract as plain data), so under pytest-xdist the
controller prints the summary, writes the per-cycle JSON and the HTML report and adds the
JUnit properties for all workers.

Also: the ``pytest_report_header`` line of a ``--vmsnap`` run, and with ``-v`` a live line per
phase of each cycle (the harness's ``logging`` records of ``pytest_vmsnap.*``, the lines
``vmsnap run -v`` prints).

JUnit XML: each cycle's verdict, status, health code and consistency are properties of the
``<testsuite>`` (``vmsnap.<cycle>.<field>``), valid under pytest's default ``xunit2`` family;
with ``junit_family = xunit1`` each ``<testcase>`` also carries those of the cycles it ran or
used (``xunit2`` has no properties on a testcase).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import read_setting, report_dir, settings_from

if TYPE_CHECKING:
    from ..cycle.result import RunResult
    from ..report.html.checks import Expected
    from ..settings import Settings

PENDING_RUNS = pytest.StashKey[list[tuple[str, "RunResult"]]]()
"""Cycles a test ran that its next report will carry: ``(name, RunResult)``."""
LINT_COUNTS = pytest.StashKey[dict[str, int]]()
"""The lint item's counts (``errors``, ``warnings``), carried on its report."""
JUNIT_FIELDS = ("verdict", "status", "health_code", "consistency")
CHECK_USED = pytest.StashKey[dict[str, Any]]()
"""The cycles a check ran or used (``cycles``: keys) and what it expected of them
(``expected``: key -> :class:`~pytest_vmsnap.report.html.checks.Expected` as plain data)."""

_label: ContextVar[str] = ContextVar("vmsnap_cycle", default="")


@contextlib.contextmanager
def cycle_label(name: str) -> Iterator[None]:
    """Name the cycle that runs inside the block in its live ``-v`` lines."""
    token = _label.set(name)
    try:
        yield
    finally:
        _label.reset(token)


def record_run(item: pytest.Item, name: str, run: RunResult) -> None:
    """Queue a cycle for the summary: it travels on ``item``'s next report."""
    item.stash.setdefault(PENDING_RUNS, []).append((name, run))


def record_check(
    item: pytest.Item, cycles: Iterable[str], expected: Mapping[str, Expected]
) -> None:
    """Note the cycles ``item`` ran or used and what it expected of them: the HTML report
    says per cycle what was expected, what it got, and whether its checks passed."""
    keys = list(dict.fromkeys(cycles))
    item.stash[CHECK_USED] = {
        "cycles": keys,
        "expected": {k: expected[k].to_dict() for k in keys if k in expected},
    }


def testcase_properties(item: pytest.Item, name: str, run: RunResult) -> None:
    """Under ``junit_family = xunit1`` only: ``item``'s ``<testcase>`` carries the cycle's
    verdict and codes (``xunit2``, the default, allows no properties there; the cycle's
    ``<testsuite>`` properties are added on the controller either way)."""
    if _junit_family(item.config) != "xunit1":
        return
    d = run.to_dict()
    for key in JUNIT_FIELDS:
        item.user_properties.append((f"vmsnap.{name}.{key}", d[key]))


def _junit_family(config: pytest.Config) -> str:
    try:
        return str(config.getini("junit_family"))
    except ValueError:  # -p no:junitxml
        return ""


class VmsnapReporter:
    """Always registered: carries cycles on reports, writes their JSON, prints the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        self.runs: dict[str, dict[str, Any]] = {}
        self.lint: dict[str, int] | None = None
        self.page: Path | None = None
        self.checks: dict[str, dict[str, Any]] = {}
        """node ID -> how a check (a battery item, or a test that ran a cycle) ended."""
        self.expected: dict[str, dict[str, Any]] = {}
        self.cycle_names: dict[str, str] = {}
        """A cycle's key -> its name in the summary (under xdist: with its worker)."""
        self._live: _LiveLines | None = None

    def pytest_configure(self, config: pytest.Config) -> None:
        # -v: a line per phase of each cycle, unless pytest's own live logging shows them.
        try:
            live_log = config.getini("log_cli") or config.getoption("log_cli_level", None)
        except ValueError:  # -p no:logging
            live_log = False
        if config.get_verbosity() >= 1 and not self.is_worker and not live_log:
            self._live = _LiveLines(config)
            self._live.install()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._live is not None:
            self._live.uninstall()
            self._live = None

    def pytest_report_header(self, config: pytest.Config) -> list[str] | None:
        if not config.getoption("vmsnap"):
            return None
        try:
            s = settings_from(config)
        except pytest.UsageError:
            return None  # the session start says what is wrong
        app = s.app if read_setting(config, "app")[0] else f"{s.app} (default: vmsnap_app unset)"
        line = (
            f"vmsnap: app {app} | vm {s.vm} | profile {s.profile} | pacing {s.pacing} | "
            f"writers {s.writers}"
        )
        if s.vm != "host":
            return [line]
        return [line, "vmsnap: on this host: " + ", ".join(host_versions(s))]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Any:
        report = yield
        pending = item.stash.get(PENDING_RUNS, None)
        self._carry_check(item, report, [name for name, _ in pending or ()])
        if pending:
            # This session's worker id (not the environment's: a pytester run in-process
            # inherits its outer xdist worker's PYTEST_XDIST_WORKER).
            worker = getattr(item.config, "workerinput", {}).get("workerid", "")
            report.vmsnap_runs = [
                {"name": name, "worker": worker, "run": _plain(run.to_dict())}
                for name, run in pending
            ]
            pending.clear()
        lint = item.stash.get(LINT_COUNTS, None)
        if lint is not None and call.when == "call":
            report.vmsnap_lint = dict(lint)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return  # the controller collects them
        lint = getattr(report, "vmsnap_lint", None)
        if lint is not None:
            self.lint = lint
        self._note_check(report)
        for entry in getattr(report, "vmsnap_runs", None) or ():
            name = entry["name"] + (f" [{entry['worker']}]" if entry.get("worker") else "")
            self.runs[name] = entry["run"]
            self.cycle_names.setdefault(entry["name"], name)
            self._suite_properties(entry["name"], entry["run"])
            report_dir = self.report_dir()
            if report_dir:
                from ..report.text import write_json

                write_json(report_dir, name, entry["run"])

    def _suite_properties(self, name: str, run: dict[str, Any]) -> None:
        # record_testsuite_property's own route (LogXML.add_global_property), here on the
        # controller, which has the only LogXML of an xdist session.
        plugins = self.config.pluginmanager.get_plugins()
        xml = next((p for p in plugins if hasattr(p, "add_global_property")), None)
        if xml is not None:
            for key in JUNIT_FIELDS:
                xml.add_global_property(f"vmsnap.{name}.{key}", run[key])

    def report_dir(self) -> Path | None:
        return report_dir(self.config)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        report_dir = self.report_dir()
        if self.runs and report_dir and not self.is_worker:
            from ..report.html import write_html
            from ..report.html.checks import CheckResult, Expected

            def name(key: str) -> str:
                return self.cycle_names.get(key, key)

            checks = [
                CheckResult(
                    c["name"], c["outcome"], tuple(map(name, c["cycles"])), c["detail"], c["title"]
                )
                for c in self.checks.values()
                if c["outcome"]
            ]
            expected = {name(k): Expected.from_dict(e) for k, e in self.expected.items()}
            self.page = write_html(report_dir, self.runs, checks=checks, expected=expected)

    def _carry_check(self, item: pytest.Item, report: Any, ran: list[str]) -> None:
        """Worker side: a battery item's report, or one of a test that ran a cycle, carries
        what the HTML report needs of it (``report.vmsnap_check``, plain data)."""
        used = item.stash.get(CHECK_USED, None)
        check = getattr(item, "check", None) if self.config.getoption("vmsnap") else None
        if used is None and not ran and check is None:
            return
        report.vmsnap_check = {
            "name": item.nodeid,
            "title": str(getattr(check, "title", "") or ""),
            "cycles": list(dict.fromkeys([*(used or {}).get("cycles", []), *ran])),
            "expected": (used or {}).get("expected", {}),
        }

    def _note_check(self, report: pytest.TestReport) -> None:
        """Controller side: how each check ended, over its setup, call and teardown."""
        info = getattr(report, "vmsnap_check", None)
        entry = self.checks.get(report.nodeid)
        if info is None and entry is None:
            return
        if entry is None:
            entry = {"name": report.nodeid, "title": "", "outcome": "", "cycles": [], "detail": ""}
            self.checks[report.nodeid] = entry
        if info:
            entry["title"] = info.get("title") or entry["title"]
            entry["cycles"] = list(dict.fromkeys([*entry["cycles"], *info.get("cycles", [])]))
            self.expected.update(info.get("expected") or {})
        if report.failed:
            entry["outcome"], entry["detail"] = "failed", _failure_line(report)
        elif report.skipped and entry["outcome"] != "failed":
            entry["outcome"], entry["detail"] = "skipped", _skip_reason(report)
        elif report.when == "call" and not entry["outcome"]:
            entry["outcome"] = "passed"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        lint_found = bool(self.lint and (self.lint["errors"] or self.lint["warnings"]))
        if not self.runs and not lint_found:
            return
        from ..report.text import summary_line

        tr = terminalreporter
        tr.write_sep("=", "vmsnap summary")
        if self.config.getoption("vmsnap"):
            settings = settings_from(self.config)
            tr.write_line(
                f"app {settings.app} | vm {settings.vm} | disks {settings.disks} "
                f"{settings.fs} | snapshot {settings.snapshot} | profile "
                f"{settings.profile} | pacing {settings.pacing}"
            )
        if self.lint is not None and lint_found:
            tr.write_line(self._lint_line(self.lint))
        for name, run in self.runs.items():
            tr.write_line(summary_line(name, run))
        report_dir = self.report_dir()
        if report_dir and self.runs:
            tr.write_line(f"per-cycle JSON: {report_dir}/*.json")
            if self.page:
                tr.write_line(f"HTML report: {self.page}")

    def _lint_line(self, counts: dict[str, int]) -> str:
        errors, warned = counts["errors"], counts["warnings"]
        text = f"lint: {errors} error{'s' * (errors != 1)}, {warned} warning{'s' * (warned != 1)}"
        if warned:
            strict = settings_from(self.config).lint_strict
            text += " (VmsnapLintWarning: see the warnings summary"
            text += ")" if strict else "; vmsnap_lint_strict = true fails the lint item on them)"
        return text


class _LiveLines(logging.Handler):
    """With ``-v``: the harness's progress records (``pytest_vmsnap.*`` at INFO and up) as
    lines in the terminal while a cycle runs, named after it (``vmsnap main: build: ...``)."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(logging.INFO)
        self.config = config
        self.logger = logging.getLogger("pytest_vmsnap")
        self._level = self.logger.level

    def install(self) -> None:
        self.logger.addHandler(self)
        if self.logger.getEffectiveLevel() > logging.INFO:
            self.logger.setLevel(logging.INFO)

    def uninstall(self) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self._level)

    def emit(self, record: logging.LogRecord) -> None:
        # The main thread only: a write from another would meet pytest's capture mid-test.
        if threading.current_thread() is not threading.main_thread():
            return
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None:
            return
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        label = _label.get()
        text = f"    vmsnap{' ' + label if label else ''}: {record.getMessage()}"
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            tr.ensure_newline()
            tr.write_line(text)


def host_versions(settings: Settings) -> list[str]:
    """The versions of the application and its client library found on this host (what a
    host stand-in runs), each a short phrase; a missing one says so."""
    from importlib import metadata

    from ..needs import APP_LIBS, LIBS

    out = []
    try:
        out.append(_server_version(settings))
    except Exception as err:  # a header never fails the run
        out.append(f"{settings.app}: {' '.join(str(err).split())}")
    for module in APP_LIBS.get(settings.app, ()):
        dist = LIBS[module].dist
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist} not installed ({LIBS[module].fix})")
    return out


def _server_version(settings: Settings) -> str:
    from ..apps import discover

    if settings.app == "sqlite":
        import sqlite3

        cli = _first_word(_output([shutil.which("sqlite3") or "sqlite3", "--version"]))
        return f"SQLite {sqlite3.sqlite_version} (sqlite3 CLI {cli or 'not installed'})"
    if settings.app == "postgres":
        pg = discover.find_postgres(
            getattr(settings, "pg_version", None), getattr(settings, "pg_bin", None)
        )
        found = re.search(r"\(PostgreSQL\)\s+(\S+)", _output([pg.program("postgres"), "--version"]))
        return f"PostgreSQL {found.group(1) if found else pg.version} ({pg.bin})"
    if settings.app == "mariadb":
        server = discover.find_mariadb().server
        found = re.search(r"Ver\s+(\S+)", _output([server, "--version"]))
        return f"{os.path.basename(server)} {found.group(1) if found else '?'}"
    if settings.app == "redis":
        found = re.search(r"v=(\S+)", _output(["redis-server", "--version"]))
        return f"redis-server {found.group(1) if found else 'not found'}"
    return settings.app


def _output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout


def _first_word(text: str) -> str:
    words = text.split()
    return words[0] if words else ""


def _failure_line(report: pytest.TestReport) -> str:
    """The line that says why a test failed: a check's first (its CheckFailed text), else the
    first ``E`` line of the traceback."""
    text = report.longreprtext or ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    if isinstance(report.longrepr, str) or not errors:
        return lines[0] if lines else ""
    return errors[0]


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple | list) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    lines = (report.longreprtext or "").strip().splitlines()
    return lines[-1] if lines else ""


def _plain(data: Any) -> Any:
    """JSON-clean data (xdist sends reports between processes)."""
    return json.loads(json.dumps(data, default=str))
