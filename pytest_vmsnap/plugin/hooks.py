"""pytest entry point (``pytest11``): ``pytest --vmsnap`` collects the zero-code battery.

Without ``--vmsnap`` the plugin only registers its options (:mod:`.options`), its marker,
its fixtures (:mod:`.fixtures`) and its reporter (:mod:`.reporter`): nothing else is imported
or run. Each setting is an ini key (``vmsnap_config`` ...) and a command-line option
(``--vmsnap-config`` ...); the option wins. Paths in the ini file are relative to that file.
"""

from __future__ import annotations

import pytest

from .options import add_options
from .reporter import VmsnapReporter

# The user fixtures (vmsnap_settings, vmsnap_vm, vmsnap_cycle...); that module is cheap too.
pytest_plugins = ["pytest_vmsnap.plugin.fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "vmsnap(**settings): settings for the vmsnap fixtures "
        "(app=, disks=, fs=, profile=, snapshot=, quiesce=)",
    )
    config.pluginmanager.register(VmsnapReporter(config), "vmsnap-reporter")
    if config.getoption("vmsnap"):
        from .collect import VmsnapSession

        config.pluginmanager.register(VmsnapSession(config), "vmsnap-session")
