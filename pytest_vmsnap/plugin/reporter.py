"""The reporter side of the plugin: every cycle a test ran travels to the summary on its test
report (``report.vmsnap_runs``, the JSON contract as plain data), so under pytest-xdist the
controller prints the summary and writes the per-cycle JSON and the HTML report for all
workers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import report_dir, settings_from

if TYPE_CHECKING:
    from ..cycle.result import RunResult

PENDING_RUNS = pytest.StashKey[list[tuple[str, "RunResult"]]]()
"""Cycles a test ran that its next report will carry: ``(name, RunResult)``."""


def record_run(item: pytest.Item, name: str, run: RunResult) -> None:
    """Queue a cycle for the summary: it travels on ``item``'s next report."""
    item.stash.setdefault(PENDING_RUNS, []).append((name, run))


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
        return report_dir(self.config)

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
                f"{settings.profile} | pacing {settings.pacing}"
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
