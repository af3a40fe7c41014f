"""The ``vmsnap`` command line: ``vmsnap lint`` exit codes and output, and bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_vmsnap.cli import build_parser, main
from pytest_vmsnap.vm.helpers import PACKAGE_ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks need root")

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "lint"


def machine(tmp_path: Path, name: str) -> Path:
    """Copy ``fixtures/lint/<name>`` and give it the owners and modes a VM would have."""
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    for path in [root, *root.rglob("*")]:
        os.chown(path, 0, 0)
        path.chmod(0o755 if path.is_dir() else 0o700)
    (root / "etc/azure/VMSnapshotScriptPluginConfig.json").chmod(0o600)
    return root


def test_lint_clean_root_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = machine(tmp_path, "clean")
    assert main(["lint", "--root", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "no findings" in out
    assert err == ""


def test_lint_broken_root_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = machine(tmp_path, "broken")
    assert main(["lint", "--root", str(root)]) == 1
    out, _ = capsys.readouterr()
    for wid in (
        "params-string",
        "retries-ignored",
        "timeout-missing",
        "flag-not-boolean",
        "shebang-ignored",
        "bashism",
        "lock-released-on-exit",
        "exit-2",
        "profile-difference",
    ):
        assert f"warning {wid}: " in out
    assert "\n    -> " in out
    assert "0 errors, " in out
    assert "Traceback" not in out


def test_lint_error_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = machine(tmp_path, "clean")
    (root / "etc/azure/scripts/pre.sh").chmod(0o755)
    assert main(["lint", "--root", str(root)]) == 1
    out, _ = capsys.readouterr()
    assert "error 306 InsufficientPermissionforPre-Script: " in out
    assert "1 error, 0 warnings" in out


def test_lint_profile_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = machine(tmp_path, "clean")
    (root / "etc/azure/scripts/pre.sh").chmod(0o500)
    assert main(["lint", "--root", str(root), "--profile", "extension"]) == 1  # a difference
    out, _ = capsys.readouterr()
    assert "warning profile-difference: " in out and "error " not in out
    assert main(["lint", "--root", str(root), "--profile", "documented"]) == 1
    out, _ = capsys.readouterr()
    assert "(profile documented)" in out
    assert "error 306 InsufficientPermissionforPre-Script: " in out


def test_lint_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = machine(tmp_path, "broken")
    assert main(["lint", "--root", str(root), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["errors"] == []
    assert {"params-string", "exit-2"} <= {w["id"] for w in data["warnings"]}
    assert all(set(w) >= {"id", "message", "action"} for w in data["warnings"])

    clean = machine(tmp_path, "clean")
    assert main(["lint", "--root", str(clean), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {
        "root": str(clean),
        "profile": "extension",
        "ok": True,
        "precheck": {"extension": 0, "documented": 0},
        "errors": [],
        "warnings": [],
    }


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_bad_root_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    target = tmp_path / "nope"
    if kind == "file":
        target.write_text("not a directory")
    assert main(["lint", "--root", str(target)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("vmsnap: error: lint: --root ") and "not a directory" in err


def test_os_error_during_lint_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(root: object, profile: str) -> None:
        raise PermissionError(13, "Permission denied", "/etc/azure/x.json")

    monkeypatch.setattr("pytest_vmsnap.cli.lint", broken)
    assert main(["lint", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "vmsnap: error: lint: /etc/azure/x.json: Permission denied\n"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["lint", "--profile", "bogus"],
        ["lint", "--wat"],
        ["run"],
        ["run", "--config", "/nonexistent/VMSnapshotScriptPluginConfig.json", "--app", "sqlite"],
        ["run", "--config", "x.json", "--app", "mongodb"],
        ["cleanup", "--wat"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--root DIR" in out and "--profile {documented,extension}" in out and "--json" in out
    assert "0  no findings" in out
    assert "1  at least one finding" in out
    assert "2  usage error" in out


def test_commands_registered() -> None:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    assert {"cleanup", "example", "lint", "run"} <= set(sub.choices)


def test_run_help_documents_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for option in (
        "--config PATH",
        "--pre PATH",
        "--post PATH",
        "--vm",
        "--disks N",
        "--fs",
        "--snapshot",
        "--profile",
        "--workload-seconds S",
        "--json FILE",
        "--report DIR",
    ):
        assert option in out
    assert "0  the verdict is application-consistent" in out and "2  usage error" in out


def test_module_entry_point(tmp_path: Path) -> None:
    root = machine(tmp_path, "broken")
    # The package under test, wherever it is imported from (a checkout or an installed wheel).
    env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_vmsnap.cli", "lint", "--root", str(root)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "warning lock-released-on-exit: /etc/azure/scripts/pre.sh" in proc.stdout
    assert proc.stderr == ""

    proc = subprocess.run(
        [sys.executable, "-m", "pytest_vmsnap.cli", "lint", "--root", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def _run_files(tmp_path: Path) -> list[str]:
    config = tmp_path / "c.json"
    config.write_text('{"preScriptLocation": "/etc/azure/pre.sh"}')
    return ["run", "--config", str(config), "--app", "sqlite"]


def _no_cycle(settings: object) -> object:
    raise AssertionError("the cycle must not run when an output path is wrong")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--json", "{dir}"], "--json {dir} is a directory; give a file name"),
        (["--report", "{file}"], "--report {file} is a file; give a directory"),
        (["--json", "{file}/x.json"], "--json {file}/x.json: {file} is not a directory"),
    ],
)
def test_output_paths_are_checked_before_the_cycle(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    message: str,
) -> None:
    monkeypatch.setattr("pytest_vmsnap.cycle.run.run", _no_cycle)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    fill = {"dir": str(tmp_path), "file": str(a_file)}
    argv = _run_files(tmp_path) + [x.format(**fill) for x in extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vmsnap: error: run: {message.format(**fill)}"


def test_a_result_that_cannot_be_written_is_kept_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """/proc takes no new files even from root: the cycle's result goes to a directory of its
    own, and the user is told where."""
    from pytest_vmsnap.cycle.result import RunResult

    monkeypatch.setattr(
        "pytest_vmsnap.cycle.run.run", lambda settings: RunResult(settings, error="canned")
    )
    assert main([*_run_files(tmp_path), "--json", "/proc/vmsnap-result.json"]) == 1
    err = capsys.readouterr().err
    kept = Path(err.split("kept in ")[1].strip())
    try:
        assert "cannot write the result" in err
        assert json.loads(kept.read_text())["error"] == "canned"
    finally:
        shutil.rmtree(kept.parent)


def test_container_without_root_is_a_usage_error_not_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pytest_vmsnap.cycle.run.run", _no_cycle)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main([*_run_files(tmp_path), "--vm", "container"]) == 2
    assert "--vm container needs root" in capsys.readouterr().err
