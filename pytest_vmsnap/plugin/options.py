"""The vmsnap settings as pytest sees them: ``--vmsnap-<key>`` options over ``vmsnap_<key>``
ini keys, both generated from :data:`pytest_vmsnap.settings.FIELDS`, and the ``vmsnap``
marker's arguments.

Ini keys are typed (``Field.ini_type``): ``vmsnap_disks = 2`` is an int in pytest's native
``[tool.pytest]`` TOML table and the string ``"2"`` in an ini file or
``[tool.pytest.ini_options]``; pytest checks the one and converts the other. Paths are single
strings. Relative paths are relative to the directory pytest was started in (options) or to
the ini file (ini keys). This module stays cheap to import: the settings module is plain data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..settings import FIELDS, Field, Settings, SettingsError, read_values

PLUGIN_FIELDS = tuple(f for f in FIELDS if f.plugin)
_UNDERSCORED = {"worst_window", "pre_at", "post_at"}
"""Keys whose option 0.1 spelled with underscores (``--vmsnap-worst_window``): still taken."""

_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "linelist": "lines (a list in TOML)",
}


def ini_name(f: Field) -> str:
    """The ini key of a setting: ``vmsnap_<key>``."""
    return f"vmsnap_{f.key}"


def option_flag(f: Field) -> str:
    """The command-line option of a setting: ``--vmsnap-<key>`` with dashes."""
    return "--vmsnap-" + f.key.replace("_", "-")


def default_text(f: Field) -> str:
    """The default as a user would write it ('' when there is none to show)."""
    value = f.default
    if value is None or value in ("", ()):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def help_text(f: Field) -> str:
    """The help of the option and the ini key: what it is, its values, its default."""
    text = f.help
    if f.choices is not None:
        text += f" ({' | '.join(f.choices.values())})"
    default = default_text(f)
    if default and "default" not in f.help:
        text += f" (default: {default})"
    return text


def add_options(parser: pytest.Parser) -> None:
    """``--vmsnap`` and one option and one typed ini key per plugin setting."""
    group = parser.getgroup("vmsnap", "prove VM-backup quiesce scripts")
    group.addoption(
        "--vmsnap",
        action="store_true",
        default=False,
        help="collect and run the vmsnap battery for the configured scripts",
    )
    for f in PLUGIN_FIELDS:
        text = help_text(f)
        flags = [option_flag(f)]
        if f.key in _UNDERSCORED:
            flags.append(f"--vmsnap-{f.key}")
        if f.ini_type == "bool":
            # A bare flag (``--vmsnap-lint-strict``); ``-o vmsnap_lint_strict=false`` undoes it.
            group.addoption(*flags, dest=ini_name(f), action="store_const", const=True, help=text)
        else:
            metavar = f.metavar or f.key.upper()
            group.addoption(*flags, dest=ini_name(f), default=None, metavar=metavar, help=text)
        _addini(parser, ini_name(f), text, f.ini_type)


def _addini(parser: pytest.Parser, name: str, text: str, ini_type: str) -> None:
    try:
        parser.addini(name, text, type=ini_type, default=None)  # type: ignore[arg-type]
    except (AssertionError, ValueError, TypeError):
        # pytest before 8.4 has no "int" or "float": the string is converted here instead.
        parser.addini(name, text, default=None)


def read_setting(config: pytest.Config, key: str) -> tuple[Any, Path]:
    """The value of one setting and the directory relative paths are resolved against;
    (None, ...) when neither the option nor the ini key sets it."""
    name = f"vmsnap_{key}"
    value = config.getoption(name)
    if value is not None:
        return value, Path.cwd()
    try:
        value = config.getini(name)
    except pytest.UsageError as err:
        # pytest's own words (a TOML value of the wrong type, "invalid literal for int()"):
        # say which key, and what it takes.
        f = next(f for f in PLUGIN_FIELDS if f.key == key)
        kind = _KINDS.get(f.ini_type, "text")
        raise pytest.UsageError(f"vmsnap: {name} must be {kind}: {err}") from None
    base = Path(config.inipath).parent if config.inipath else Path(config.rootpath)
    if value is None or value == "" or value == []:
        return None, base
    return value, base


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


def marker_problems(item: pytest.Item) -> list[str]:
    """What is wrong with the ``vmsnap`` markers on ``item`` (unknown names, positional
    arguments, values of the wrong type), one sentence each naming the test."""
    out = []
    for mark in item.iter_markers("vmsnap"):
        where = f"{item.nodeid}: @pytest.mark.vmsnap"
        if mark.args:
            out.append(f"{where} takes keyword arguments only, not {mark.args!r}")
        try:
            read_values(mark.kwargs, base_dir=Path(item.config.rootpath), where=where)
        except SettingsError as err:
            out.append(str(err))
    return out


def report_dir(config: pytest.Config) -> Path | None:
    """Where per-cycle JSON and the HTML report go (``vmsnap_report``), if anywhere."""
    value, base = read_setting(config, "report")
    return (base / value).resolve() if value else None
