"""The battery as pytest items: ``pytest --vmsnap`` adds the collector ``vmsnap`` with one item
per check of :mod:`.battery` (imported only then: it needs the whole harness).

Node IDs are ``vmsnap::<name>`` (``vmsnap::main``, ``vmsnap::fault-pre-hangs``: no spaces or
colons, so ``-k``, ``--deselect`` and CI tools take them as they are); each item's readable
title heads its failure report, and ``--collect-only -v`` prints what it checks.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .. import VmsnapLintWarning
from .options import ini_name, settings_from
from .reporter import LINT_COUNTS, record_check, record_run, testcase_properties

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from .battery import Check, Context


class VmsnapItem(pytest.Item):
    """One check of the battery."""

    def __init__(self, *, check: Check, context: Context, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.context = context
        # pytest shows an item's ``obj`` docstring under it with --collect-only -v.
        self.obj = check.func

    def runtest(self) -> None:
        ctx = self.context
        ctx.begin()
        try:
            self.check.func(ctx)
        finally:
            # The summary and the report files: the cycles this check ran itself (under
            # xdist a shared cycle travels once, from the worker that ran it).
            for key in ctx.fresh:
                record_run(self, key, ctx.runs[key])
            for key in dict.fromkeys(ctx.used):
                testcase_properties(self, key, ctx.runs[key])
            record_check(self, ctx.used, ctx.expected)
            for title, text in ctx.sections:
                self.add_report_section("call", title, text)
            if self.check.name == "lint" and ctx.lint is not None:
                self.stash[LINT_COUNTS] = ctx.lint

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        from .battery import CheckFailed

        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        if isinstance(excinfo.value, VmsnapLintWarning):
            return (
                f"lint warning, an error by the warning filters "
                f"(-W error::pytest_vmsnap.VmsnapLintWarning): {excinfo.value}"
            )
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        settings = self.context.settings
        return Path(settings.config or "."), 0, f"vmsnap::{self.name}: {self.check.title}"


class VmsnapBattery(pytest.Collector):
    """The battery's collector (node id ``vmsnap``; items ``vmsnap::lint`` ...)."""

    def __init__(self, *, context: Context, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = context

    def collect(self) -> list[pytest.Item]:
        from .battery import battery, vm_unavailable

        # Without root (or with the directory stand-in) every cycle item skips for one
        # reason, which -rs prints once; the lint item runs all the same.
        why = vm_unavailable(self.context.settings)
        items: list[pytest.Item] = []
        for check in battery(self.context.settings):
            item = VmsnapItem.from_parent(self, name=check.name, check=check, context=self.context)
            if why and check.needs_vm:
                item.add_marker(pytest.mark.skip(reason=why))
            items.append(item)
        return items


class VmsnapSession:
    """Registered only with ``--vmsnap``: checks the settings and adds the battery.

    One instance per pytest process: under pytest-xdist the controller checks the settings
    and makes the directory through which its workers share their cycles; each worker
    collects the battery and runs its share of the items.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.context: Context | None = None
        self.shared: Path | None = None
        """The controller's directory for the workers' shared cycles (made on demand)."""

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Before collection and before xdist starts its workers: one line, exit code 4.
        problems = settings_from(self.config).problems(ini_name)
        if problems:
            raise pytest.UsageError("vmsnap: " + "; ".join(problems))

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        # pytest-xdist, on the controller, before each worker starts.
        if self.shared is None:
            self.shared = Path(tempfile.mkdtemp(prefix="vmsnap-shared-"))
        node.workerinput["vmsnap_shared"] = str(self.shared)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        # First, so -k/-m deselect battery items too; collected through the hooks, so the
        # terminal counts them.
        from .battery import Context, Shared

        shared = getattr(config, "workerinput", {}).get("vmsnap_shared")
        self.context = Context(settings_from(config), Shared(Path(shared)) if shared else None)
        node = VmsnapBattery.from_parent(
            session, name="vmsnap", nodeid="vmsnap", context=self.context
        )
        session.ihook.pytest_collectstart(collector=node)
        rep = session.ihook.pytest_make_collect_report(collector=node)
        session.ihook.pytest_collectreport(report=rep)
        items.extend(x for x in rep.result if isinstance(x, pytest.Item))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.context is not None:
            self.context.close()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # After the workers are gone: nothing of the session's temporary files is left.
        if self.shared is not None:
            shutil.rmtree(self.shared, ignore_errors=True)
            self.shared = None
