"""What the distribution ships and says about itself: package data found through
importlib.resources, ``vmsnap example``, ``vmsnap --version``, the project metadata.

These run against whatever ``pytest_vmsnap`` is imported (a checkout, or the installed wheel
in ``scripts/wheel-check.sh``), so they prove the data is there in both."""

from __future__ import annotations

import fnmatch
import json
import stat
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import pytest_vmsnap
from pytest_vmsnap import data
from pytest_vmsnap.cli import main
from pytest_vmsnap.settings import FIELDS

REPO = Path(__file__).resolve().parents[2]
PACKAGE = Path(pytest_vmsnap.__file__).parent
APPS = ["mariadb", "postgres", "redis", "sqlite"]


def _pyproject() -> dict:
    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def test_every_app_has_its_samples_and_an_example() -> None:
    assert data.apps() == APPS
    assert data.root().is_relative_to(PACKAGE)
    for app in APPS:
        samples = data.sample_scripts(app)
        assert {"pre.sh", "post.sh", "README.md"} <= {p.name for p in samples.iterdir()}
        config = json.loads((data.example(app) / data.CONFIG_NAME).read_text())
        assert config["preScriptLocation"] == f"/etc/azure/{app}/pre.sh"
        assert config["postScriptLocation"] == f"/etc/azure/{app}/post.sh"
    with pytest.raises(KeyError, match="known: mariadb, postgres, redis, sqlite"):
        data.example("oracle")
    with pytest.raises(KeyError):
        data.sample_scripts("oracle")


def test_example_ini_keys_are_real_and_point_at_the_samples() -> None:
    keys = {f"vmsnap_{f.key}" for f in FIELDS if f.plugin}
    for app in APPS:
        ini = data.example_ini(app)
        assert set(ini) <= keys, set(ini) - keys
        assert ini["vmsnap_app"] == app
        base = data.example(app)
        assert (base / ini["vmsnap_config"]).resolve() == base / data.CONFIG_NAME
        for which in ("pre", "post"):
            target = (base / ini[f"vmsnap_{which}"]).resolve()
            assert target == data.sample_scripts(app) / f"{which}.sh"


@pytest.mark.parametrize("app", APPS)
def test_write_example_gives_deployed_modes(tmp_path: Path, app: str) -> None:
    out = data.write_example(app, tmp_path / "repo")
    assert stat.S_IMODE(out["config"].stat().st_mode) == 0o600
    for which in ("pre", "post"):
        assert stat.S_IMODE(out[which].stat().st_mode) == 0o700
        assert out[which].read_text() == (data.sample_scripts(app) / f"{which}.sh").read_text()
    with out["pyproject"].open("rb") as f:
        ini = tomllib.load(f)["tool"]["pytest"]["ini_options"]
    assert ini == {
        **data.example_ini(app),
        "vmsnap_config": "backup/VMSnapshotScriptPluginConfig.json",
        "vmsnap_pre": "backup/pre.sh",
        "vmsnap_post": "backup/post.sh",
    }
    with pytest.raises(FileExistsError):
        data.write_example(app, tmp_path / "repo")


def test_toml_values_round_trip() -> None:
    values = {"a": 'quo"te\\ and\ttab', "b": 3, "c": 1.5, "d": True, "e": ["x", "y"]}
    text = "\n".join(f"{k} = {data._toml_value(v)}" for k, v in values.items())
    assert tomllib.loads(text) == values


def test_vmsnap_example_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example", "--app", "redis", str(tmp_path / "app")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == [
        str(tmp_path / "app" / p)
        for p in ("backup/VMSnapshotScriptPluginConfig.json", "backup/pre.sh", "backup/post.sh")
    ] + [str(tmp_path / "app" / "pyproject.toml")]
    assert out[4].startswith("next: cd ")
    # A second time: nothing is overwritten, one line and exit 2.
    assert main(["example", "--app", "redis", str(tmp_path / "app")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "already there" in err[0]
    # Without DIR: where the data is.
    assert main(["example"]) == 0
    out = capsys.readouterr().out
    assert f"examples:       {data.root() / 'examples'}" in out
    assert f"sample scripts: {data.sample_scripts()}" in out


def test_version_comes_from_the_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    installed = metadata.version("pytest-vmsnap")
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"vmsnap {installed}\n"
    assert pytest_vmsnap.__version__ == installed == _pyproject()["project"]["version"]
    with pytest.raises(AttributeError):
        _ = pytest_vmsnap.no_such_thing  # type: ignore[attr-defined]


def test_every_data_file_is_shipped() -> None:
    """Each file in the package that is not Python matches a package-data pattern (a new
    recipe or sample that matched none would be missing from the wheel, silently)."""
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]
    missing = []
    for path in PACKAGE.rglob("*"):
        if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(PACKAGE.parent)
        owners = [pkg for pkg in patterns if rel.parts[: len(pkg.split("."))] == (*pkg.split("."),)]
        ok = any(
            fnmatch.fnmatch(str(rel.relative_to(*pkg.split("."))), pattern)
            for pkg in owners
            for pattern in patterns[pkg]
        )
        if not ok:
            missing.append(str(rel))
    assert missing == []
    assert (PACKAGE / "py.typed").is_file()


def test_project_metadata() -> None:
    meta = metadata.metadata("pytest-vmsnap")
    assert meta["License-Expression"] == "MIT"
    classifiers = set(meta.get_all("Classifier") or [])
    assert {
        "Framework :: Pytest",
        "Development Status :: 3 - Alpha",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3.11",
        "Topic :: System :: Archiving :: Backup",
        "Typing :: Typed",
    } <= classifiers
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Issues"}
    assert all(
        u.startswith("https://github.com/pytest-vmsnap/pytest-vmsnap") for u in urls.values()
    )
    assert "MIT License" in (REPO / "LICENSE").read_text()
    # The long description is for pip users: not the checkout's `make` commands.
    readme = (REPO / _pyproject()["project"]["readme"]).read_text()
    assert "make " not in readme and "pip install 'pytest-vmsnap[apps]'" in readme
