"""The faces of the other frameworks: their battery faults, the hidden-failure rule of the
verdict, ``vmsnap compare``'s table and usage errors, ``vmsnap lint --framework``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_vmsnap.cli import main
from pytest_vmsnap.cycle.compare import Row
from pytest_vmsnap.cycle.protocol import CycleRecord
from pytest_vmsnap.cycle.run import hidden_failures
from pytest_vmsnap.data import FRAMEWORK_SAMPLES, sample_scripts
from pytest_vmsnap.framework import engines
from pytest_vmsnap.plugin.battery import battery
from pytest_vmsnap.plugin.faults import ROWS, _fault_document
from pytest_vmsnap.report.html.checks import Expected
from pytest_vmsnap.report.text import compare_table
from pytest_vmsnap.settings import Settings

SAMPLES = sample_scripts()
CHECKOUT = Path(__file__).resolve().parents[2] / "pytest_vmsnap" / "data" / "sample_scripts"


def _names(settings: Settings) -> list[str]:
    return [c.name for c in battery(settings)]


# --- the battery's faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("framework", "shape", "faults"),
    [
        (
            "azure",
            "pair",
            ["pre-hangs", "pre-fails", "post-fails", "post-missing", "snapshot-fails"],
        ),
        ("gcp", "pair", ["pre-hangs", "pre-fails", "post-fails", "post-missing", "snapshot-fails"]),
        ("vmware", "hook", ["pre-hangs", "pre-fails", "post-fails", "snapshot-fails"]),
        ("qemu-ga", "hook", ["pre-fails", "post-fails", "snapshot-fails"]),
        ("aws-dlm", "document", ["pre-hangs", "pre-fails", "post-fails", "snapshot-fails"]),
    ],
)
def test_each_framework_gets_the_faults_its_outcome_table_has(
    tmp_path: Path, framework: str, shape: str, faults: list[str]
) -> None:
    f = tmp_path / "f"
    f.write_text("#!/bin/sh\n")
    files = {"pair": {"pre": f, "post": f}, "hook": {"hook": f}, "document": {"document": f}}
    s = Settings(framework=framework, config=f, **files[shape])  # type: ignore[arg-type]
    got = [n.removeprefix("fault-") for n in _names(s) if n.startswith("fault-")]
    assert got == faults


def test_every_framework_but_azure_has_a_row_per_fault_it_runs() -> None:
    assert set(ROWS) == set(engines.NAMES) - {"azure"}
    for rows in ROWS.values():
        assert {"pre-fails", "post-fails", "snapshot-fails"} <= set(rows)


def test_a_fault_document_does_its_fault_for_its_command_only() -> None:
    doc = json.loads(_fault_document("post-fails"))
    assert doc["parameters"]["command"]["allowedValues"] == ["pre-script", "post-script", "dry-run"]
    (line,) = [x for x in doc["mainSteps"][0]["inputs"]["runCommand"] if x.startswith("case")]
    assert line.startswith('case "{{ command }}" in post-script)') and "exit 3" in line


def test_a_framework_row_is_met_by_its_status_and_word_alone() -> None:
    e = Expected.framework_outcome(2, "SCRIPT_TIMED_OUT")
    assert e.met({"status": 2, "health_code": 2, "outcome": "SCRIPT_TIMED_OUT"})
    assert not e.met({"status": 2, "health_code": 2, "outcome": "UNHANDLED_SCRIPT_ERROR"})
    assert e.text() == "SCRIPT_TIMED_OUT"
    assert e.got({"status": 2, "outcome": "UNHANDLED_SCRIPT_ERROR"}) == "UNHANDLED_SCRIPT_ERROR"
    assert Expected.from_dict(e.to_dict()) == e


# --- the verdict: a failure the framework hid ----------------------------------------------------


def _record(status: int, *calls: dict[str, object]) -> CycleRecord:
    return CycleRecord(status=status, health_code=status, message="", calls=list(calls))  # type: ignore[arg-type]


def test_a_failed_script_behind_a_reported_success_is_named() -> None:
    r = _record(
        0,
        {"phase": "freeze", "path": "/etc/qemu/fsfreeze-hook.d/db.sh", "exit_code": 3},
        {"phase": "thaw", "path": "/etc/qemu/fsfreeze-hook.d/db.sh", "exit_code": 0},
    )
    assert hidden_failures(r) == (
        "a script failed and the framework still reported success: "
        "/etc/qemu/fsfreeze-hook.d/db.sh (freeze: exit 3)"
    )


@pytest.mark.parametrize(
    ("call", "said"),
    [
        ({"phase": "pre", "path": "/p", "start_error": "Exec format error (p)"}, "Exec format"),
        ({"phase": "pre", "path": "/p", "timed_out": True, "exit_code": None}, "timed out"),
    ],
)
def test_a_script_that_could_not_start_or_timed_out_counts(
    call: dict[str, object], said: str
) -> None:
    assert said in hidden_failures(_record(0, call))


def test_a_reported_failure_is_not_hidden_and_clean_calls_are_nothing() -> None:
    assert hidden_failures(_record(2, {"phase": "freeze", "path": "/h", "exit_code": 1})) == ""
    assert hidden_failures(_record(0, {"phase": "freeze", "path": "/h", "exit_code": 0})) == ""


# --- vmsnap compare ------------------------------------------------------------------------------


def test_the_compare_table_has_a_line_per_framework_and_says_why() -> None:
    rows = [
        Row(
            "azure",
            "Azure",
            "sh /etc/azure/pre-script.sh",
            result={
                "verdict": "not-taken",
                "status": 302,
                "outcome": "FailedPrepostPreScriptPermissionError",
                "reasons": ["the pre-script's mode 755 is refused"],
            },
        ),
        Row("qemu-ga", "qemu-ga", "", refused="qemu-ga calls one hook with freeze or thaw"),
        Row(
            "gcp",
            "GCP",
            "/etc/google/snapshots/pre.sh 0/1",
            result={"verdict": "application-consistent", "outcome": "NO_ERROR", "reasons": []},
        ),
    ]
    text = compare_table([r.to_dict() for r in rows]).splitlines()
    assert text[0].split() == [
        "framework",
        "framework",
        "said",
        "verdict",
        "how",
        "it",
        "called",
        "them",
    ]
    assert "status 302 (FailedPrepostPreScriptPermissionError)" in text[2]
    assert text[3].split()[:3] == ["qemu-ga", "-", "cannot"]
    assert text[4].split()[:3] == ["gcp", "NO_ERROR", "application-consistent"]
    assert "azure: the pre-script's mode 755 is refused" in text
    assert "qemu-ga: qemu-ga calls one hook with freeze or thaw" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--app", "sqlite"], "give --pre and --post, or --hook"),
        (["--app", "sqlite", "--pre", "x.sh"], "--pre and --post go together"),
        (
            ["--app", "sqlite", "--hook", "h", "--pre", "p", "--post", "q"],
            "give --pre and --post, or --hook",
        ),
        (
            ["--app", "sqlite", "--hook", "h", "--frameworks", "gcp,hyperv"],
            "choose from azure, gcp",
        ),
    ],
)
def test_compare_usage_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["compare", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# --- vmsnap lint --framework ---------------------------------------------------------------------


def test_lint_for_a_framework_names_the_users_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    hook = tmp_path / "db.sh"
    hook.write_text("#!/bin/sh\necho frozen\n")  # ignores its verb, output lost
    hook.chmod(0o755)
    assert main(["lint", "--framework", "qemu-ga", "--hook", "db.sh", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["profile"] == "qemu-ga"
    ids = {w["id"] for w in report["warnings"]}
    assert "qemu-ga-verb-ignored" in ids
    assert all(w["path"] in (None, "db.sh") for w in report["warnings"]), report["warnings"]


def test_lint_refuses_what_the_framework_cannot_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "p.sh"
    p.write_text("#!/bin/sh\n")
    assert main(["lint", "--framework", "qemu-ga", "--pre", str(p)]) == 2
    assert "qemu-ga calls one hook with 'freeze'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("framework", "app"),
    [(f, a) for f, by_app in FRAMEWORK_SAMPLES.items() for a in by_app],
)
def test_each_frameworks_example_is_written_and_lints_without_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], framework: str, app: str
) -> None:
    """``vmsnap example --framework F --app A DIR`` writes the correct sample and the ini
    keys naming it; the framework's lint finds no error in it (its pre-check would run it)."""
    assert main(["example", "--app", app, "--framework", framework, str(tmp_path / "ex")]) == 0
    text = (tmp_path / "ex/pyproject.toml").read_text()
    assert f'vmsnap_framework = "{framework}"' in text and f'vmsnap_app = "{app}"' in text
    capsys.readouterr()
    flags = [
        arg
        for role, path in FRAMEWORK_SAMPLES[framework][app].items()
        for arg in (f"--{role}", str(tmp_path / "ex/backup" / Path(path).name))
    ]
    main(["lint", "--framework", framework, "--json", *flags])
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == [], report["errors"]


# --- the HTML report -----------------------------------------------------------------------------


def test_the_html_card_names_the_framework_and_its_word_not_azures_codes() -> None:
    """A real VMware cycle's JSON: the card says vmware and VMBACKUP_SUCCESS, and none of
    Azure's code names (its status 0 would read success_appconsistent), in the card and in
    the summary table."""
    from pytest_vmsnap.report.html import render_html

    run = json.loads(
        (Path(__file__).parent / "data/frameworks/vmware_app_consistent_postgres.json").read_text()
    )
    page = render_html({"vmware[50-postgres.sh]": run})
    assert "vmware said" in page and "<code>VMBACKUP_SUCCESS</code>" in page
    assert "status 0: application-consistent as reported" in page
    assert "success_appconsistent" not in page
    assert '<span class="small">vmware VMBACKUP_SUCCESS</span>' in page  # the summary table


@pytest.mark.parametrize("framework", ["gcp", "vmware", "qemu-ga", "aws-dlm"])
def test_a_framework_without_scripts_is_a_usage_error(
    framework: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--framework", framework, "--app", "sqlite"]) == 2
    assert f"no scripts given for {framework}: give pre and post" in capsys.readouterr().err


@pytest.mark.skipif(not CHECKOUT.is_dir(), reason="the source checkout's modes (not a wheel's)")
def test_the_directly_executed_samples_are_executable_in_the_checkout() -> None:
    """GCP, VMware and qemu-ga execute scripts directly: their samples are 0755 in git (a
    wheel keeps no exec bit; ``vmsnap example`` sets it)."""
    scripts = [p for d in ("gcp", "vmware", "qemu-ga") for p in CHECKOUT.glob(f"*/{d}/*.sh")]
    assert scripts
    assert [p for p in scripts if p.stat().st_mode & 0o777 != 0o755] == []
