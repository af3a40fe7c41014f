"""pytest entry point (``pytest11``): ``pytest --vmsnap`` collects the zero-code battery.

Without ``--vmsnap`` the plugin only registers its options (:mod:`.options`), its marker,
its fixtures (:mod:`.fixtures`) and its reporter (:mod:`.reporter`): nothing else is imported
or run. Each setting is an ini key (``vmsnap_config`` ...) and a command-line option
(``--vmsnap-config`` ...); the option wins. Paths in the ini file are relative to that file.
"""

from __future__ import annotations

import pytest

from .options import add_options, marker_problems
from .reporter import VmsnapReporter

# The user fixtures (vmsnap_settings, vmsnap_vm, vmsnap_cycle...); that module is cheap too.
pytest_plugins = ["pytest_vmsnap.plugin.fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "vmsnap(**settings): settings for the vmsnap fixtures "
        "(app=, disks=, fs=, profile=, snapshot=, quiesce=, ...)",
    )
    config.pluginmanager.register(VmsnapReporter(config), "vmsnap-reporter")
    if config.getoption("vmsnap"):
        from .collect import VmsnapSession

        config.pluginmanager.register(VmsnapSession(config), "vmsnap-session")


_MARKER_PROBLEM = pytest.StashKey[str]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A marker typo is the user's mistake in every test that carries it: stop before any
    # test runs (exit code 4), naming each test and argument, as a bad option would.
    problems = {item: "; ".join(found) for item in items if (found := marker_problems(item))}
    if not problems:
        return
    if not hasattr(config, "workerinput"):
        raise pytest.UsageError("; ".join(dict.fromkeys(problems.values())))
    # An xdist worker cannot end the session with a usage error (xdist takes it for a
    # crash): each such test fails at its setup instead, with the same sentence.
    for item, text in problems.items():
        item.stash[_MARKER_PROBLEM] = text


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    problem = item.stash.get(_MARKER_PROBLEM, None)
    if problem:
        pytest.fail(problem, pytrace=False)
