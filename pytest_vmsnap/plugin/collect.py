"""The battery as pytest items: ``pytest --vmsnap`` adds the collector ``vmsnap`` with one item
per check of :mod:`.battery` (imported only then: it needs the whole harness).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import settings_from
from .reporter import record_run

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from .battery import Check, Context


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
