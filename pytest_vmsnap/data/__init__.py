"""The files pytest-vmsnap ships besides its code, found through :mod:`importlib.resources`.

- ``sample_scripts/<app>/``: per application, the correct pre/post pair (``pre.sh``,
  ``post.sh``) and broken ones, each bug explained in the folder's ``README.md``.
- ``examples/<app>/``: a stand-in application repository (``pyproject.toml`` with the
  ``vmsnap_*`` ini keys and a ``VMSnapshotScriptPluginConfig.json``) whose ini keys point at
  that application's correct sample pair; ``make demo`` runs the SQLite one.

The same layout in a checkout and in an installed wheel. Installed files carry whatever
modes the installer gave them, while the framework's pre-check wants the modes of a deployed
VM: :func:`write_example` copies an example out with those modes (``vmsnap example``).
"""

from __future__ import annotations

import json
import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

CONFIG_NAME = "VMSnapshotScriptPluginConfig.json"
CONFIG_MODE = 0o600
SCRIPT_MODE = 0o700
"""The modes the extension's pre-check accepts in every profile (git keeps only 644/755)."""


def root() -> Path:
    """The directory of the shipped data files.

    The package always lives in a directory (its helper processes import it by path, never
    from a zip), so the resource root is a real path that can be copied and handed to tools.
    """
    files = resources.files(__name__)
    if not isinstance(files, Path):  # a zip import: nothing here could run from it anyway
        raise RuntimeError(f"pytest_vmsnap's data is not in a directory: {files}")
    return files


def sample_scripts(app: str | None = None) -> Path:
    """``sample_scripts/``, or ``sample_scripts/<app>/`` (``KeyError`` for an unknown app)."""
    base = root() / "sample_scripts"
    if app is None:
        return base
    if not (base / app).is_dir():
        raise KeyError(f"no sample scripts for {app!r} (known: {', '.join(apps())})")
    return base / app


def apps() -> list[str]:
    """The applications with a bundled example, sorted."""
    return sorted(p.name for p in (root() / "examples").iterdir() if (p / CONFIG_NAME).is_file())


def example(app: str = "sqlite") -> Path:
    """``examples/<app>/`` (``KeyError`` for an application without one)."""
    path = root() / "examples" / app
    if not (path / CONFIG_NAME).is_file():
        raise KeyError(f"no bundled example for {app!r} (known: {', '.join(apps())})")
    return path


def example_ini(app: str = "sqlite") -> dict[str, Any]:
    """The example's ini keys, as written in its ``pyproject.toml`` (TOML types kept)."""
    with (example(app) / "pyproject.toml").open("rb") as f:
        table: dict[str, Any] = tomllib.load(f)["tool"]["pytest"]["ini_options"]
    return table


def write_example(app: str, dest: Path) -> dict[str, Path]:
    """Write a ready application repository for ``app`` into ``dest`` (created if missing; an
    existing file is never overwritten: ``FileExistsError``).

    ``dest/backup/`` gets the example's config (mode 600) and the correct sample pair as
    ``pre.sh`` and ``post.sh`` (mode 700), ``dest/pyproject.toml`` the example's ini keys with
    the three paths pointing there. Returns ``{"config", "pre", "post", "pyproject"}`` paths.
    """
    src = example(app)
    ini = example_ini(app)
    base = src.resolve()
    pre = (base / ini["vmsnap_pre"]).resolve()
    post = (base / ini["vmsnap_post"]).resolve()
    backup = dest / "backup"
    out = {
        "config": backup / CONFIG_NAME,
        "pre": backup / "pre.sh",
        "post": backup / "post.sh",
        "pyproject": dest / "pyproject.toml",
    }
    taken = [str(p) for p in out.values() if p.exists()]
    if taken:
        raise FileExistsError(f"already there, left as it is: {', '.join(taken)}")
    backup.mkdir(parents=True, exist_ok=True)
    for key, source, mode in (
        ("config", base / ini["vmsnap_config"], CONFIG_MODE),
        ("pre", pre, SCRIPT_MODE),
        ("post", post, SCRIPT_MODE),
    ):
        _create(out[key], source.read_bytes(), mode)
    ini.update(
        vmsnap_config=f"backup/{CONFIG_NAME}",
        vmsnap_pre="backup/pre.sh",
        vmsnap_post="backup/post.sh",
    )
    lines = [
        f"# pytest --vmsnap proves the quiesce scripts in backup/ (from pytest-vmsnap's {app}"
        " example).",
        "[tool.pytest.ini_options]",
        *(f"{key} = {_toml_value(value)}" for key, value in ini.items()),
    ]
    _create(out["pyproject"], ("\n".join(lines) + "\n").encode(), 0o644)
    return out


_SAMPLED = ("postgres", "mariadb", "sqlite", "redis")
FRAMEWORK_SAMPLES: dict[str, dict[str, dict[str, str]]] = {
    "gcp": {app: {"pre": "gcp/pre.sh", "post": "gcp/post.sh"} for app in _SAMPLED},
    "vmware": {app: {"hook": f"vmware/50-{app}.sh"} for app in _SAMPLED},
    "qemu-ga": {app: {"hook": f"qemu-ga/{app}.sh"} for app in _SAMPLED},
    "aws-dlm": {
        app: {"document": "aws-dlm/document.json", "config": "aws-dlm/policy.json"}
        for app in _SAMPLED
    },
}
"""Each framework's correct sample for each application, by role (paths under
``sample_scripts/<app>/``); Azure's are the examples (:func:`example`)."""
QUIESCE = {"postgres": "none", "mariadb": "lock", "sqlite": "lock", "redis": "lock"}
"""What each correct sample claims: PostgreSQL's CHECKPOINT holds nothing."""


def write_framework_example(app: str, framework: str, dest: Path) -> dict[str, Path]:
    """Write a ready application repository for ``app`` under ``framework`` (not Azure) into
    ``dest``: the framework's correct sample in ``dest/backup/`` (scripts mode 755, the modes
    these frameworks run them with) and ``dest/pyproject.toml`` naming them. KeyError: no
    sample for that pair; FileExistsError: a file is already there."""
    files = FRAMEWORK_SAMPLES[framework][app]
    backup = dest / "backup"
    out = {role: backup / Path(path).name for role, path in files.items()}
    out["pyproject"] = dest / "pyproject.toml"
    taken = [str(p) for p in out.values() if p.exists()]
    if taken:
        raise FileExistsError(f"already there, left as it is: {', '.join(taken)}")
    backup.mkdir(parents=True, exist_ok=True)
    ini: dict[str, Any] = {"vmsnap_framework": framework, "vmsnap_app": app}
    for role, path in files.items():
        text = (sample_scripts(app) / path).read_bytes()
        _create(out[role], text, 0o644 if path.endswith(".json") else 0o755)
        ini[f"vmsnap_{role}"] = f"backup/{out[role].name}"
    ini["vmsnap_quiesce"] = QUIESCE[app]
    lines = [
        f"# pytest --vmsnap proves the {framework} quiesce scripts in backup/ (from "
        f"pytest-vmsnap's {app} samples).",
        "[tool.pytest.ini_options]",
        *(f"{key} = {_toml_value(value)}" for key, value in ini.items()),
    ]
    _create(out["pyproject"], ("\n".join(lines) + "\n").encode(), 0o644)
    return out


def _create(path: Path, content: bytes, mode: int) -> None:
    """Create ``path`` with ``content`` and exactly ``mode`` (whatever the umask); an existing
    file, even one made since the check above, is left alone: ``FileExistsError``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)
        f.write(content)


def _toml_value(value: Any) -> str:
    """``value`` in TOML: ini values are strings, numbers, booleans or lists of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    # json's escapes (quote, backslash, control characters as \uXXXX) are valid TOML.
    return json.dumps(str(value), ensure_ascii=False)
