"""The one settings schema: every face reads the same fields, names and conversions."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import get_args

import pytest

from pytest_vmsnap.cli import build_parser
from pytest_vmsnap.framework.azure.profiles import PROFILES
from pytest_vmsnap.settings import (
    FIELDS,
    Fs,
    Profile,
    Settings,
    SettingsError,
    read_values,
)
from pytest_vmsnap.vm.model import FsType


def test_every_settings_field_has_one_schema_entry() -> None:
    names = [f.name for f in FIELDS]
    assert len(names) == len(set(names))
    assert set(names) == {f.name for f in dataclasses.fields(Settings)} - {"extra"}


def test_choices_agree_with_the_layers_that_use_them() -> None:
    assert set(Profile.values()) == set(PROFILES)
    assert set(Fs.values()) == set(get_args(FsType))


def test_read_values_converts_names_paths_and_numbers(tmp_path: Path) -> None:
    got = read_values(
        {"kind": "container", "report": "out", "config": "c.json", "disks": "2", "skew_s": 1},
        base_dir=tmp_path,
        where="here",
    )
    assert got == {
        "vm": "container",
        "report_dir": tmp_path / "out",
        "config": tmp_path / "c.json",
        "disks": 2,
        "skew_s": 1.0,
    }
    assert read_values({"baseline": "yes", "pre": None}, base_dir=tmp_path, where="x") == {
        "baseline": True,
        "pre": None,
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"colour": "red"}, "here: unknown vmsnap setting 'colour' (known: app, baseline,"),
        ({"disks": "two"}, "here: disks must be a whole number, not 'two'"),
        ({"skew_s": "soon"}, "here: skew must be a number, not 'soon'"),
        ({"baseline": "maybe"}, "here: baseline must be true or false, not 'maybe'"),
    ],
)
def test_read_values_names_what_is_wrong(values: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        read_values(values, base_dir=Path("/"), where="here")
    assert str(err.value).startswith(message)


def test_problems_check_every_choice() -> None:
    s = Settings(config=Path(__file__), app="oracle", snapshot_order="random")
    assert s.problems() == [
        "app 'oracle' is not one of sqlite, postgres, mariadb, redis",
        "snapshot_order 'random' is not one of layout, reverse",
    ]


def test_vmsnap_run_has_a_flag_for_every_cli_field() -> None:
    run = build_parser()._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    flags = {s for a in run._actions for s in a.option_strings}
    assert {f.flag for f in FIELDS if f.cli} <= flags
    assert {f.flag for f in FIELDS if not f.cli}.isdisjoint(flags)


def test_settings_from_mapping_starts_from_a_base(tmp_path: Path) -> None:
    base = Settings(app="postgres", disks=2)
    got = Settings.from_mapping({"fs": "xfs"}, base_dir=tmp_path, base=base)
    assert (got.app, got.disks, got.fs) == ("postgres", 2, "xfs")


def test_env_takes_key_value_entries_from_every_face(tmp_path: Path) -> None:
    """vmsnap_env: 'KEY=VALUE' entries separated by ';' or lines (ini, CLI), a mapping
    (fixture arguments, markers); a bad name is a SettingsError naming the setting."""
    read = Settings.from_mapping
    want = (("A", "1"), ("B", "x=y"))
    assert read({"env": "A=1; B=x=y"}, base_dir=tmp_path).env == want
    assert read({"env": "A=1\nB=x=y\n"}, base_dir=tmp_path).env == want
    assert read({"env": {"A": 1, "B": "x=y"}}, base_dir=tmp_path).env == want
    assert Settings().env == ()
    for bad in ("1A=2", "A", "A B=1"):
        with pytest.raises(SettingsError, match="env takes KEY=VALUE"):
            read({"env": bad}, base_dir=tmp_path)


def test_writers_is_an_enum_setting_of_every_face(tmp_path: Path) -> None:
    """``writers``: app, privileged or both (default), as ``--writers`` for vmsnap run,
    ``--vmsnap-writers`` / ``vmsnap_writers`` for the plugin, ``writers=`` for fixtures; the
    workload and the probes read its roles from apps.base."""
    from pytest_vmsnap.apps.base import roles
    from pytest_vmsnap.settings import BY_NAME, Writers

    f = BY_NAME["writers"]
    assert (f.choices, f.default, f.flag, f.plugin, f.cli) == (
        Writers,
        "both",
        "--writers",
        True,
        True,
    )
    assert Settings.from_mapping({"writers": "app"}, base_dir=tmp_path).writers == "app"
    bad = Settings(config=Path(__file__), writers="root")
    assert bad.problems() == ["writers 'root' is not one of app, privileged, both"]
    assert [roles(w) for w in Writers.values()] == [
        ("app",),
        ("privileged",),
        ("app", "privileged"),
    ]
    with pytest.raises(ValueError, match="not one of"):
        roles("root")


def test_ini_types_follow_the_fields_types() -> None:
    """The type pytest reads each ``vmsnap_<key>`` with: numbers and bools typed (native TOML
    takes ``vmsnap_disks = 2``), env a list of lines, everything else one string."""
    by_parse = {int: "int", float: "float", Path: "string"}
    for f in FIELDS:
        assert f.ini_type == by_parse.get(f.parse, f.ini_type), f.name
    types = {f.name: f.ini_type for f in FIELDS}
    assert (types["disks"], types["worst_window_s"], types["lint_strict"]) == (
        "int",
        "float",
        "bool",
    )
    assert (types["env"], types["app"], types["config"]) == ("linelist", "string", "string")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"disks": [2]}, "m: disks must be a whole number, not [2]"),
        ({"disks": True}, "m: disks must be a whole number, not True"),
        ({"disks": 2.5}, "m: disks must be a whole number, not 2.5"),
        ({"window_s": "soon"}, "m: window must be a number, not 'soon'"),
        ({"lint_strict": 1}, "m: lint_strict must be true or false, not 1"),
        ({"fs": 3}, "m: fs must be one of ext4, xfs, btrfs, not 3"),
        ({"config": 3}, "m: config must be a path, not 3"),
        ({"owner": ["root"]}, "m: owner must be text, not ['root']"),
        ({"env": [1, 2]}, "m: env takes KEY=VALUE entries"),
    ],
)
def test_values_of_the_wrong_type_are_named(values: dict[str, object], message: str) -> None:
    """A marker's or a factory's badly typed argument is a SettingsError naming it (never a
    TypeError later, in a comparison)."""
    with pytest.raises(SettingsError) as err:
        read_values(values, base_dir=Path("/"), where="m")
    assert str(err.value).startswith(message)


def test_typed_values_pass_as_they_are(tmp_path: Path) -> None:
    got = read_values(
        {"disks": 2.0, "window_s": 3, "lint_strict": True, "env": ["A=1", "B=2"], "owner": 0},
        base_dir=tmp_path,
        where="m",
    )
    assert got == {
        "disks": 2,
        "window_s": 3,
        "lint_strict": True,
        "env": (("A", "1"), ("B", "2")),
        "owner": "0",
    }
