"""The vmsnap settings as pytest sees them: ``--vmsnap-<key>`` options over ``vmsnap_<key>``
ini keys, both generated from :data:`pytest_vmsnap.settings.FIELDS`.

Relative paths are relative to the directory pytest was started in (options) or to the ini
file (ini keys). This module stays cheap to import: the settings module is plain data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..settings import FIELDS, Field, Settings, SettingsError, read_values

PLUGIN_FIELDS = tuple(f for f in FIELDS if f.plugin)


def _help(f: Field) -> str:
    text = f.help
    if f.choices is not None:
        text += f": {', '.join(f.choices.values())}"
    default = f.default
    return text + (f" (default: {default})" if default not in (None, "") else "")


def add_options(parser: pytest.Parser) -> None:
    """``--vmsnap`` and one option and one ini key per plugin setting."""
    group = parser.getgroup("vmsnap", "prove VM-backup quiesce scripts")
    group.addoption(
        "--vmsnap",
        action="store_true",
        default=False,
        help="collect and run the vmsnap battery for the configured scripts",
    )
    for f in PLUGIN_FIELDS:
        text = _help(f)
        group.addoption(f"--vmsnap-{f.key}", dest=f"vmsnap_{f.key}", default=None, help=text)
        parser.addini(f"vmsnap_{f.key}", text, default=None)


def read_setting(config: pytest.Config, key: str) -> tuple[Any, Path]:
    """The value of one setting and the directory relative paths are resolved against."""
    value = config.getoption(f"vmsnap_{key}")
    if value is not None:
        return value, Path.cwd()
    value = config.getini(f"vmsnap_{key}")
    base = Path(config.inipath).parent if config.inipath else Path(config.rootpath)
    return (value or None), base


def settings_from(config: pytest.Config) -> Settings:
    """The :class:`~pytest_vmsnap.settings.Settings` of this run: options over ini keys; a
    value of the wrong type is a usage error (one line, exit code 4)."""
    values: dict[str, Any] = {}
    try:
        for f in PLUGIN_FIELDS:
            value, base = read_setting(config, f.key)
            if value is not None:
                values.update(read_values({f.name: value}, base_dir=base, where="vmsnap"))
    except SettingsError as err:
        raise pytest.UsageError(str(err)) from None
    return Settings().with_(**values)


def report_dir(config: pytest.Config) -> Path | None:
    """Where per-cycle JSON and the HTML report go (``vmsnap_report``), if anywhere."""
    value, base = read_setting(config, "report")
    return (base / value).resolve() if value else None
