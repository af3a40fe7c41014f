"""pytest entry point: ``pytest --vmsnap`` collects the zero-code battery.

Without ``--vmsnap`` the plugin only registers its options and marker: nothing else is imported
or run. Each setting is an ini key (``vmsnap_config`` ...) and a command-line option
(``--vmsnap-config`` ...); the option wins. Paths in the ini file are relative to that file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .battery import Check, Context

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
    from .settings import Settings

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
        values["disks"] = int(values["disks"])
    return Settings(report_dir=report, **values)


class VmsnapItem(pytest.Item):
    """One check of the battery."""

    def __init__(self, *, check: Check, context: Context, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.context = context

    def runtest(self) -> None:
        self.context.used.clear()
        try:
            self.check.func(self.context)
        finally:
            # JUnit XML carries the verdict and codes of the cycles this check ran or used.
            for key in dict.fromkeys(self.context.used):
                d = self.context.runs[key].to_dict()
                for field in ("verdict", "status", "health_code", "consistency"):
                    self.user_properties.append((f"vmsnap.{key}.{field}", d[field]))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from .battery import CheckFailed

        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        settings = self.context.settings
        return Path(settings.config or "."), 0, f"vmsnap: {self.name}"


class VmsnapSession:
    """Registered only with ``--vmsnap``: adds the battery and the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.context: Context | None = None

    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        from .battery import Context, battery

        settings = settings_from(config)
        problems = settings.problems()
        if problems:
            raise pytest.UsageError("vmsnap: " + "; ".join(problems))
        self.context = Context(settings)
        for check in battery(settings):
            items.append(
                VmsnapItem.from_parent(
                    session, name=f"vmsnap: {check.name}", check=check, context=self.context
                )
            )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.context or not self.context.runs:
            return
        from .report import summary_line, write_json

        tr = terminalreporter
        tr.section("vmsnap summary")
        settings = self.context.settings
        tr.write_line(
            f"app {settings.app} | vm {settings.vm} | disks {settings.disks} "
            f"{settings.fs} | snapshot {settings.snapshot} | profile "
            f"{settings.profile}"
        )
        for key, run in self.context.runs.items():
            tr.write_line(summary_line(key, run.to_dict()))
        if settings.report_dir:
            from .html_report import write_html

            runs = {key: run.to_dict() for key, run in self.context.runs.items()}
            for key, data in runs.items():
                write_json(Path(settings.report_dir), key, data)
            page = write_html(Path(settings.report_dir), runs)
            tr.write_line(f"per-cycle JSON: {settings.report_dir}/*.json")
            tr.write_line(f"HTML report: {page}")
