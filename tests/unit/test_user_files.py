"""The user's own files and image: declared deployed modes (``vmsnap_modes``), lint naming
the user's files (``vmsnap lint --config/--pre/--post``, the battery's lint item), and the
pure parts of the thin layer over a user's image (``vmsnap_image``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from pytest_vmsnap.cli import main
from pytest_vmsnap.cycle.lint_files import lint_files
from pytest_vmsnap.cycle.stage import stage
from pytest_vmsnap.framework.azure.profiles import DOCUMENTED, EXTENSION
from pytest_vmsnap.lint.sources import Source, modes_action, modes_finding
from pytest_vmsnap.report.text import summary_line
from pytest_vmsnap.settings import Settings, SettingsError, format_modes, read_values
from pytest_vmsnap.vm.docker import layer

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks need root")
GIT = {"config": 0o644, "pre": 0o755, "post": 0o755}
"""The modes a repository's files have as git checks them out."""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An application repository's ``backup/`` as git checks it out; the working directory."""
    backup = tmp_path / "backup"
    backup.mkdir()
    config = backup / "VMSnapshotScriptPluginConfig.json"
    config.write_text(
        json.dumps(
            {
                "pluginName": "ScriptRunner",
                "preScriptLocation": "/etc/azure/app/pre.sh",
                "postScriptLocation": "/etc/azure/app/post.sh",
                "preScriptParams": [],
                "postScriptParams": [],
                "timeoutInSeconds": 30,
            }
        )
    )
    config.chmod(GIT["config"])
    for which in ("pre", "post"):
        (backup / f"{which}.sh").write_text("#!/bin/sh\nexit 0\n")
        (backup / f"{which}.sh").chmod(GIT[which])
    monkeypatch.chdir(tmp_path)
    return tmp_path


FILES = ("backup/VMSnapshotScriptPluginConfig.json", "backup/pre.sh", "backup/post.sh")
DECLARED = (("config", 0o600), ("pre", 0o700), ("post", 0o700), ("hook", 0o700))


# --- the setting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("config:600 scripts:700", DECLARED),
        ("scripts:700,config:0600", DECLARED),
        ("pre:750; post:700", (("pre", 0o750), ("post", 0o700))),
        ({"config": 0o600, "scripts": "700"}, DECLARED),
        ("", ()),
    ],
)
def test_modes_read_from_every_face(value: object, want: object) -> None:
    assert read_values({"modes": value}, base_dir=Path("/"), where="x") == {"modes": want}


@pytest.mark.parametrize("bad", ["config=600", "config:9", "script:700", "config:77777"])
def test_a_bad_modes_value_names_the_setting(bad: str) -> None:
    with pytest.raises(SettingsError, match=r"^x: modes takes ROLE:MODE entries, ROLE one of"):
        read_values({"modes": bad}, base_dir=Path("/"), where="x")


def test_format_modes_reads_back() -> None:
    assert format_modes(DECLARED) == "config:600 scripts:700"
    assert format_modes((("pre", 0o700), ("post", 0o750))) == "pre:700 post:750"
    assert format_modes(()) == ""


def test_image_is_for_the_container_stand_in(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text("{}")
    s = Settings(config=config, image="myorg/db:prod")
    assert s.problems() == [
        "image myorg/db:prod is for the container stand-in: set vm = container (vmsnap_vm, --vm)"
    ]
    assert s.with_(vm="container").problems() == []


# --- staging -------------------------------------------------------------------------------------


def test_declared_modes_are_given_to_the_installed_files(repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "vm"
    staged = stage(root, *FILES, modes=DECLARED)
    assert (root / "etc/azure/VMSnapshotScriptPluginConfig.json").stat().st_mode & 0o777 == 0o600
    assert (root / "etc/azure/app/pre.sh").stat().st_mode & 0o777 == 0o700
    assert [(s.role, s.path, s.location, s.mode, s.installed_mode) for s in staged.sources] == [
        ("config", FILES[0], "/etc/azure/VMSnapshotScriptPluginConfig.json", 0o644, 0o600),
        ("pre", FILES[1], "/etc/azure/app/pre.sh", 0o755, 0o700),
        ("post", FILES[2], "/etc/azure/app/post.sh", 0o755, 0o700),
    ]
    assert (repo / FILES[1]).stat().st_mode & 0o777 == 0o755  # the user's file is untouched
    kept = stage(tmp_path / "vm2", *FILES, modes={"pre": 0o700})
    assert [(s.installed_mode, s.declared) for s in kept.sources] == [
        (0o644, False),
        (0o700, True),
        (0o755, False),
    ]


# --- lint names the user's files ---------------------------------------------------------------


@root_only
def test_lint_names_the_users_files_and_every_fix(repo: Path) -> None:
    """Git's 644/755: the pre-check stops at the config (317), but the fix covers the scripts
    too, and says what to do where git cannot keep the modes."""
    report = lint_files(*FILES)
    (error,) = report.errors
    assert error.code == 317
    assert error.message.endswith(
        "backup/VMSnapshotScriptPluginConfig.json (installed at "
        "/etc/azure/VMSnapshotScriptPluginConfig.json): mode 644"
    )
    assert error.path == FILES[0]
    assert error.action.startswith(
        "chmod 600 backup/VMSnapshotScriptPluginConfig.json; "
        "chmod 700 backup/pre.sh backup/post.sh. In a git repository (git keeps only 644 and "
        "755) declare instead"
    )
    assert 'vmsnap_modes = "config:600 scripts:700"' in error.action
    assert '--modes "config:600 scripts:700"' in error.action
    text = report.format_text()
    assert text.startswith(f"vmsnap lint {', '.join(FILES)}, installed as on the VM")
    assert "/tmp/vmsnap-lint-" not in text and report.root == ""


@root_only
def test_lint_with_declared_modes_passes_and_says_so(repo: Path) -> None:
    report = lint_files(*FILES, modes=DECLARED)
    assert report.ok, report.format_text()
    assert report.format_text().splitlines()[1] == (
        "modes as deployed (vmsnap_modes): backup/VMSnapshotScriptPluginConfig.json 644 -> 600, "
        "backup/pre.sh 755 -> 700, backup/post.sh 755 -> 700"
    )
    d = report.to_dict()
    assert d["modes_declared"] is True
    assert [f["installed_mode"] for f in d["files"]] == ["600", "700", "700"]


@root_only
def test_a_declared_mode_the_extension_refuses(repo: Path) -> None:
    report = lint_files(*FILES, modes={"config": 0o600, "pre": 0o755, "post": 0o700})
    (error,) = report.errors
    assert error.code == 306 and "backup/pre.sh (installed at /etc/azure/app/pre.sh)" in (
        error.message
    )
    assert error.action == (
        "vmsnap_modes declares pre 755, which the extension refuses: declare config:600 "
        "scripts:700 and make your deployment install the files so."
    )


def test_modes_action_per_profile() -> None:
    src = [
        Source("config", "c.json", "/etc/azure/c.json", 0o400, 0o400),
        Source("pre", "pre.sh", "/p.sh", 0o750, 0o750),
        Source("post", "pre.sh", "/p.sh", 0o750, 0o750),  # one script for both roles
    ]
    assert modes_action(src, EXTENSION).startswith("chmod 700 pre.sh. In a git repository")
    assert modes_action(src, DOCUMENTED).startswith("chmod 600 c.json; chmod 700 pre.sh. In")
    finding = modes_finding(src, EXTENSION)
    assert finding is not None and finding["name"] == "FileModeRefused"
    assert finding["message"] == (
        "pre.sh was installed at /p.sh with mode 750, its mode here, which the pre-check "
        "refuses (306)"
    )
    assert modes_finding(src[:1], EXTENSION) is None


def test_summary_line_says_when_modes_were_declared() -> None:
    line = summary_line("main", {"verdict": "application-consistent", "modes_declared": "x:1"})
    assert line.endswith(" | modes as deployed x:1")
    assert "modes" not in summary_line("main", {"verdict": "application-consistent"})


# --- vmsnap lint --config/--pre/--post -----------------------------------------------------------


@root_only
def test_vmsnap_lint_config_pre_post(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["lint", "--config", FILES[0], "--pre", FILES[1], "--post", FILES[2]]
    assert main(argv) == 1
    assert "chmod 700 backup/pre.sh backup/post.sh" in capsys.readouterr().out
    assert main([*argv, "--modes", "config:600 scripts:700", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["modes_declared"] is True


@root_only
def test_vmsnap_lint_config_alone_reads_the_locations_here(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --pre/--post the config's locations are files of this machine, as for run."""
    config = json.loads((repo / FILES[0]).read_text())
    config["preScriptLocation"] = str(repo / FILES[1])
    config["postScriptLocation"] = str(repo / "absent.sh")
    (repo / FILES[0]).write_text(json.dumps(config))
    assert main(["lint", "--config", FILES[0], "--modes", "config:600 scripts:700"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("vmsnap lint backup/VMSnapshotScriptPluginConfig.json, backup/pre.sh,")
    assert "error 303" in out  # the post-script is not there: not installed, as in run


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--root", "/", "--config", "c.json"], "lint: give --root DIR or --config FILE"),
        (["--pre", "p.sh", "--modes", "pre:700"], "lint: --pre, --modes: only with --config"),
        (["--config", "c.json", "--modes", "all:7"], "lint: modes takes ROLE:MODE entries"),
        (["--config", "absent.json"], "lint: config "),
    ],
)
def test_vmsnap_lint_usage_errors(
    repo: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["lint", *argv]) == 2
    assert capsys.readouterr().err.startswith(f"vmsnap: error: {message}")


# --- the thin layer (pure parts) -----------------------------------------------------------------


def test_layer_names_and_hashes() -> None:
    assert layer.layer_repo("MyOrg/DB:prod") == "vmsnap/layer-myorg-db-prod"
    assert layer.layer_repo("registry.local:5000/a/b@sha256:0f") == (
        "vmsnap/layer-registry-local-5000-a-b-sha256-0f"
    )
    one = layer.layer_hash("sha256:aa", "postgres")
    assert one == layer.layer_hash("sha256:aa", "pg15")
    assert one != layer.layer_hash("sha256:bb", "postgres")
    assert one != layer.layer_hash("sha256:aa", "sqlite")
    args = layer.layer_args("postgres")
    assert "py:psycopg:python3-psycopg" in args["VMSNAP_NEEDS"].split()
    assert args["VMSNAP_SERVER"].startswith("PostgreSQL server|")


@root_only
def test_lint_files_without_root_judges_the_owner_the_vm_would_have() -> None:
    """A user without root cannot give the staged files to root; they are still judged as
    root's (the VM's owner), so lint without root reports only what is wrong."""
    with tempfile.TemporaryDirectory(prefix="vmsnap-test-") as tmp:  # pytest's is root's 700
        os.chmod(tmp, 0o755)
        _lint_as_nobody(Path(tmp))


def _lint_as_nobody(tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    backup.mkdir()
    config = {"preScriptLocation": "/etc/azure/pre.sh", "postScriptLocation": "/etc/azure/post.sh"}
    (backup / "c.json").write_text(json.dumps(config))
    (backup / "pre.sh").write_text("exit 0\n")
    (backup / "c.json").chmod(0o600)
    (backup / "pre.sh").chmod(0o700)
    nobody = 65534
    for path in (backup, backup / "c.json", backup / "pre.sh"):
        os.chown(path, nobody, nobody)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.close(read)
            os.setgid(nobody)
            os.setuid(nobody)
            os.chdir(tmp_path)
            report = lint_files(backup / "c.json", backup / "pre.sh")
            os.write(write, json.dumps(report.to_dict()).encode())
            code = 0
        except BaseException as err:
            os.write(write, repr(err).encode())
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        out = pipe.read()
    assert os.waitpid(child, 0)[1] == 0, out
    got = json.loads(out)
    assert got["precheck"]["extension"] == 303, got  # no post-script: the only error
    assert [e["code"] for e in got["errors"]] == [303]
