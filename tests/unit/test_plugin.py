"""The pytest plugin, driven through ``pytester``: collection, settings, usage errors, reports,
summary (also under pytest-xdist), and the user fixtures with a canned cycle (no VM, no root).

Projects that need cycle results get a conftest that replaces ``cycle.run.run`` (and the
battery's reference to it) by a canned RunResult; ``CANNED_VERDICT`` picks the verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_vmsnap.cycle.protocol import CycleRecord
from pytest_vmsnap.cycle.result import RunResult
from pytest_vmsnap.evidence import oracle
from pytest_vmsnap.framework import codes
from pytest_vmsnap.plugin.battery import battery
from pytest_vmsnap.settings import Settings

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "examples" / "sqlite" / "VMSnapshotScriptPluginConfig.json"
SAMPLES = REPO / "sample_scripts" / "sqlite"

CHECK_NAMES = [c.name for c in battery(Settings(app="sqlite", quiesce="lock"))]
"""The battery for the test project's settings, in order."""


def _deselected(*words: str) -> int:
    """How many battery items ``-k "w1 or w2 ..."`` leaves out."""
    return sum(not any(w in name for w in words) for name in CHECK_NAMES)


CANNED_CONFTEST = '''
import os

import pytest

from pytest_vmsnap.plugin import battery
from pytest_vmsnap.cycle import run as harness
from pytest_vmsnap.evidence import oracle
from pytest_vmsnap.cycle.protocol import CycleRecord
from pytest_vmsnap.cycle.result import RunResult

SEEN = []


def canned(settings, hooks=None):
    """A finished cycle without a VM; the verdict comes from CANNED_VERDICT."""
    SEEN.append(settings)
    verdict = os.environ.get("CANNED_VERDICT", oracle.APPLICATION)
    good = verdict == oracle.APPLICATION
    script = {"ran": True, "exit_code": 0, "error_code": 0, "duration_s": 1.0, "attempts": 1}
    ev = oracle.Evidence(
        started=True,
        integrity_ok=True,
        invariants_ok=True,
        quiesce_probe={"result": "blocked" if good else "accepted", "detail": "canned"},
        quiesce_probe_ok=good,
        liveness_ok=good,
        liveness={"ok": good, "last": {"result": "refused", "detail": "canned: read-only"}},
    )
    return RunResult(
        settings,
        verdict=verdict,
        reasons=["canned: " + verdict],
        cycle=CycleRecord.from_dict({
            "status": 0 if good else 1,
            "health_code": 0 if good else 301,
            "consistency": "application" if good else "filesystem",
            "message": "canned",
            "scripts": {"pre": dict(script), "post": dict(script)},
            "freeze": {"enabled": True, "frozen": True, "frozen_s": 0.012, "mounts": []},
            "snapshot": {"backend": "reflink", "taken": True, "duration_s": 0.01},
        }),
        evidence=ev,
        tag="vmsnap-c0ffee",
    )


_SAVED = {}


def pytest_configure(config):
    _SAVED["battery"], _SAVED["harness"] = battery.run, harness.run
    battery.run = harness.run = canned


def pytest_unconfigure(config):
    if _SAVED:
        battery.run, harness.run = _SAVED.pop("battery"), _SAVED.pop("harness")


@pytest.fixture
def seen_settings():
    return SEEN
'''


ONLY_US = ("-p", "pytest_vmsnap.plugin.hooks")


@pytest.fixture(autouse=True)
def _only_our_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs load this plugin (and xdist with -n) and nothing else installed here: fast,
    and independent of the machine's plugins. One test checks the entry point itself."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def _args(args: tuple[str, ...]) -> tuple[str, ...]:
    return (*ONLY_US, *(("-p", "xdist.plugin") if "-n" in args else ()), *args)


def _inner(p: pytest.Pytester, *args: str) -> pytest.RunResult:
    return p.runpytest_inprocess(*_args(args))


def _sub(p: pytest.Pytester, *args: str) -> pytest.RunResult:
    return p.runpytest_subprocess(*_args(args))


def _install(src: Path, dst: Path, mode: int) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    dst.chmod(mode)
    return dst


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user repository: the SQLite example's config and scripts under ``backup/``."""
    _install(EXAMPLE_CONFIG, pytester.path / "backup" / "VMSnapshotScriptPluginConfig.json", 0o600)
    _install(SAMPLES / "pre.sh", pytester.path / "backup" / "pre.sh", 0o700)
    _install(SAMPLES / "post.sh", pytester.path / "backup" / "post.sh", 0o700)
    pytester.makeini(
        """
        [pytest]
        vmsnap_config = backup/VMSnapshotScriptPluginConfig.json
        vmsnap_pre = backup/pre.sh
        vmsnap_post = backup/post.sh
        vmsnap_app = sqlite
        vmsnap_quiesce = lock
        """
    )
    return pytester


@pytest.fixture
def canned(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The project with a conftest that answers every cycle with a canned RunResult."""
    monkeypatch.setenv("CANNED_VERDICT", oracle.APPLICATION)
    project.makeconftest(CANNED_CONFTEST)
    return project


def _text(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)


# --- without --vmsnap -----------------------------------------------------------------------


def test_plugin_import_is_cheap() -> None:
    code = (
        "import sys, pytest_vmsnap.plugin.hooks; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('pytest_vmsnap'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "pytest_vmsnap.plugin.hooks" in out
    heavy = ("harness", "framework", "battery", "vm", "apps", "oracle", "workload", "report")
    assert [m for m in out if m.split(".")[1:2] and m.split(".")[1] in heavy] == []


def test_without_vmsnap_nothing_is_collected_or_imported(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")  # the installed entry point loads it
    project.makepyfile(
        test_app="""
        import sys

        def test_only_mine():
            heavy = [m for m in sys.modules if m.startswith((
                "pytest_vmsnap.cycle", "pytest_vmsnap.framework", "pytest_vmsnap.plugin.battery",
                "pytest_vmsnap.vm", "pytest_vmsnap.apps", "pytest_vmsnap.evidence",
            ))]
            assert heavy == []
        """
    )
    collected = project.runpytest_subprocess("--collect-only", "-q")
    assert collected.ret == 0
    assert "vmsnap::" not in collected.stdout.str()
    collected.stdout.fnmatch_lines(["test_app.py::test_only_mine", "1 test collected*"])
    ran = project.runpytest_subprocess("-p", "no:cacheprovider")
    ran.assert_outcomes(passed=1)
    assert "vmsnap summary" not in ran.stdout.str()


# --- collection ----------------------------------------------------------------------------


def test_battery_items_have_readable_names(project: pytest.Pytester) -> None:
    result = _inner(project, "--vmsnap", "--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"vmsnap::{name}" for name in CHECK_NAMES])
    result.stdout.fnmatch_lines([f"{len(CHECK_NAMES)} tests collected*"])
    tree = _inner(project, "--vmsnap", "--collect-only")
    tree.stdout.fnmatch_lines(
        [f"collected {len(CHECK_NAMES)} items", "<VmsnapBattery vmsnap>", "  <VmsnapItem lint>"]
    )


def test_k_deselects_battery_items_and_counts_stay_right(project: pytest.Pytester) -> None:
    result = _inner(project, "--vmsnap", "--collect-only", "-k", "quiesce or liveness")
    out = _deselected("quiesce", "liveness")
    result.stdout.fnmatch_lines(
        [f"collected {len(CHECK_NAMES)} items / {out} deselected / 2 selected"]
    )
    assert "-" not in result.stdout.str().split("collected", 1)[1].split("\n", 1)[0].strip("- ")


def test_battery_is_collected_next_to_the_users_tests(project: pytest.Pytester) -> None:
    project.makepyfile(test_app="def test_mine():\n    pass\n")
    result = _inner(project, "--vmsnap", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["test_app.py::test_mine", "vmsnap::lint", f"{len(CHECK_NAMES) + 1} tests collected*"]
    )


# --- settings ------------------------------------------------------------------------------


SETTINGS_TEST = """
import json
from pathlib import Path

def test_dump(vmsnap_settings, request):
    s = vmsnap_settings
    Path(request.config.rootpath, "settings.json").write_text(json.dumps({
        "config": str(s.config), "pre": str(s.pre), "app": s.app, "disks": s.disks,
        "fs": s.fs, "profile": s.profile, "quiesce": s.quiesce,
    }))
"""


def test_options_win_over_ini_and_ini_paths_follow_the_ini_file(project: pytest.Pytester) -> None:
    project.makepyfile(test_settings=SETTINGS_TEST)
    (project.path / "sub").mkdir()
    other = _install(EXAMPLE_CONFIG, project.path / "sub" / "other.json", 0o600)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project.path / "sub")  # ini paths stay relative to the ini file
        result = _inner(
            project,
            str(project.path),
            "--vmsnap-app",
            "postgres",
            "--vmsnap-disks",
            "2",
            "--vmsnap-config",
            "other.json",  # options: relative to the current directory
        )
    result.assert_outcomes(passed=1)
    s = json.loads((project.path / "settings.json").read_text())
    assert s["app"] == "postgres" and s["disks"] == 2  # option over ini / default
    assert s["quiesce"] == "lock"  # ini
    assert s["fs"] == "ext4" and s["profile"] == "extension"  # defaults
    assert s["config"] == str(other.resolve())
    assert s["pre"] == str((project.path / "backup" / "pre.sh").resolve())


def test_settings_fixture_works_without_any_vmsnap_setting(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_defaults(vmsnap_settings):
            assert vmsnap_settings.config is None and vmsnap_settings.app == "sqlite"
        """
    )
    _inner(pytester).assert_outcomes(passed=1)


# --- usage errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "ERROR: vmsnap: no config given (vmsnap_config / --vmsnap-config)"),
        (["--vmsnap-config", "nope.json"], "ERROR: vmsnap: config */nope.json does not exist"),
        (["--vmsnap-config", "c.json", "--vmsnap-disks", "two"], "ERROR: vmsnap: disks must*"),
        (["--vmsnap-config", "c.json", "--vmsnap-fs", "zfs"], "ERROR: vmsnap: fs 'zfs' is not*"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_4(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    _install(EXAMPLE_CONFIG, pytester.path / "c.json", 0o600)
    result = _sub(pytester, "--vmsnap", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1, errors
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in _text(result)
    assert "test session starts" not in result.stdout.str()


def test_usage_error_stops_xdist_before_any_worker(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = _sub(pytester, "--vmsnap", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: vmsnap: no config given*"])
    assert "Traceback" not in _text(result)


# --- lint item -----------------------------------------------------------------------------


def test_lint_item_fails_readably_for_a_broken_config(project: pytest.Pytester) -> None:
    config = project.path / "backup" / "VMSnapshotScriptPluginConfig.json"
    data = json.loads(config.read_text())
    data["timeoutInSeconds"] = "thirty"
    config.write_text(json.dumps(data))
    result = _inner(project, "--vmsnap", "-k", "lint", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1, deselected=_deselected("lint"))
    result.stdout.fnmatch_lines(
        [
            "*_ vmsnap: lint _*",
            "error 304 IncorrectPluginhostFile:*timeoutInSeconds is a JSON string*",
            "    -> Fix the value types*",
            "FAILED vmsnap::lint - *",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "def runtest" not in result.stdout.str()  # no source listing of the plugin
    case = ET.parse(project.path / "junit.xml").find(".//testcase")
    assert case is not None and case.get("name") == "lint"


def test_lint_item_passes_for_the_example(project: pytest.Pytester) -> None:
    result = _inner(project, "--vmsnap", "-k", "lint")
    result.assert_outcomes(passed=1, deselected=_deselected("lint"))
    assert "vmsnap summary" not in result.stdout.str()  # lint runs no cycle


# --- cycles, summary, reports (canned) -----------------------------------------------------


MAIN_WORDS = ("application-consistent", "quiesce", "liveness")
MAIN_LINE = (
    "main: application-consistent | status 0 health 0 | frozen 12 ms | pre 1.00s x1 | post 1.00s x1"
)


def test_summary_line_for_the_main_cycle(canned: pytest.Pytester) -> None:
    result = _inner(canned, "--vmsnap", "-k", "application-consistent or quiesce or liveness")
    result.assert_outcomes(passed=3, deselected=_deselected(*MAIN_WORDS))
    result.stdout.fnmatch_lines(
        [
            "*= vmsnap summary =*",
            "app sqlite | vm host | disks 1 ext4 | snapshot reflink | profile extension | pacing *",
            MAIN_LINE,
        ]
    )
    # One cycle, shared by the three checks: one line.
    assert result.stdout.str().count("main: ") == 1


def test_failed_cycle_check_explains_without_a_traceback(
    canned: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANNED_VERDICT", oracle.CRASH)
    result = _inner(canned, "--vmsnap", "-k", "application-consistent or quiesce or liveness")
    result.assert_outcomes(failed=3, deselected=_deselected(*MAIN_WORDS))
    result.stdout.fnmatch_lines(
        [
            "*_ vmsnap: cycle under load is application-consistent _*",
            "expected application-consistent, got crash-consistent (framework status 1, *",
            "  why: canned: crash-consistent",
            "*_ vmsnap: quiesce probe _*",
            "quiesce probe: a write on a fresh connection was accepted*",
            "  (vmsnap_quiesce = lock: the scripts claim to hold a lock)",
            "*_ vmsnap: liveness after post-script _*",
            "after the post-script the application could not write within the bound: refused*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_junit_xml_carries_the_verdict_properties(canned: pytest.Pytester) -> None:
    result = _inner(canned, "--vmsnap", "-k", "application-consistent", "--junitxml=j.xml")
    result.assert_outcomes(passed=1, deselected=_deselected("application-consistent"))
    case = ET.parse(canned.path / "j.xml").find(".//testcase")
    assert case is not None
    assert case.get("name") == "cycle under load is application-consistent"
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props == {
        "vmsnap.main.verdict": "application-consistent",
        "vmsnap.main.status": "0",
        "vmsnap.main.health_code": "0",
        "vmsnap.main.consistency": "application",
    }


def test_report_dir_gets_one_json_per_cycle(canned: pytest.Pytester) -> None:
    result = _inner(canned, "--vmsnap", "-k", "application-consistent", "--vmsnap-report", "r")
    result.assert_outcomes(passed=1, deselected=_deselected("application-consistent"))
    report = canned.path / "r"
    data = json.loads((report / "main.json").read_text())
    assert data["verdict"] == "application-consistent" and data["status"] == 0
    assert data["tag"] == "vmsnap-c0ffee" and data["app"] == "sqlite"
    assert (report / "index.html").is_file()
    result.stdout.fnmatch_lines([f"per-cycle JSON: {report}/*.json", "HTML report: *index.html"])


def test_report_dir_from_ini_is_relative_to_the_ini_file(canned: pytest.Pytester) -> None:
    ini = canned.path / "tox.ini"  # written by pytester.makeini
    ini.write_text(ini.read_text() + "\nvmsnap_report = out/reports\n")
    _inner(canned, "--vmsnap", "-k", "application-consistent")
    assert (canned.path / "out" / "reports" / "main.json").is_file()


def test_xdist_summary_and_reports_come_from_the_workers(canned: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = _sub(
        canned,
        "--vmsnap",
        "-n",
        "2",
        "-k",
        "application-consistent or liveness",
        "--vmsnap-report",
        "r",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=2)
    # Two items, round robin: each worker ran the main cycle once, in its own context.
    result.stdout.fnmatch_lines(["*= vmsnap summary =*"])
    lines = sorted(line for line in result.outlines if line.startswith("main ["))
    assert [line.split(":", 1)[0] for line in lines] == ["main [gw0]", "main [gw1]"]
    assert all(": application-consistent | status 0 health 0" in line for line in lines)
    names = sorted(p.name for p in (canned.path / "r").glob("*.json"))
    assert names == ["main-gw0.json", "main-gw1.json"]


# --- the user fixtures (canned cycles) -----------------------------------------------------


def test_cycle_fixture_precedence_factory_marker_option_ini(canned: pytest.Pytester) -> None:
    canned.makepyfile(
        test_mine="""
        import pytest

        pytestmark = pytest.mark.vmsnap(profile="documented", fs="btrfs")

        @pytest.mark.vmsnap(app="redis", fs="xfs")
        def test_precedence(vmsnap_cycle, seen_settings):
            result = vmsnap_cycle(fs="ext4", workload_seconds="2.5")
            s = seen_settings[-1]
            assert s.fs == "ext4"                  # factory argument
            assert s.app == "redis"                # closest marker (ini says sqlite)
            assert s.profile == "documented"       # module marker
            assert s.disks == 3                    # command-line option
            assert s.quiesce == "lock"             # ini
            assert s.workload_seconds == 2.5
            assert s.config.name == "VMSnapshotScriptPluginConfig.json"
            result.assert_application_consistent().assert_status(0, 0).assert_quiesced()
            result.assert_live()

        def test_paths_are_relative_to_the_rootdir(vmsnap_cycle, seen_settings, request):
            vmsnap_cycle(pre="backup/post.sh", report="out")
            s = seen_settings[-1]
            assert s.pre == request.config.rootpath / "backup" / "post.sh"
            assert s.report_dir == request.config.rootpath / "out"
        """
    )
    _inner(canned, "--vmsnap-disks", "3").assert_outcomes(passed=2)


def test_cycle_fixture_runs_show_in_summary_junit_and_reports(canned: pytest.Pytester) -> None:
    canned.makepyfile(
        test_mine="""
        def test_twice(vmsnap_cycle):
            vmsnap_cycle().assert_application_consistent()
            vmsnap_cycle(name="second")
        """
    )
    result = _inner(canned, "--junitxml=j.xml", "--vmsnap-report", "r")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*= vmsnap summary =*", "test_twice: application-consistent | *", "second: *"]
    )
    assert "app sqlite | vm host" not in result.stdout.str()  # no battery without --vmsnap
    props = {
        p.get("name"): p.get("value") for p in ET.parse(canned.path / "j.xml").iter("property")
    }
    assert props["vmsnap.test_twice.verdict"] == "application-consistent"
    assert props["vmsnap.second.status"] == "0"
    assert sorted(p.name for p in (canned.path / "r").glob("*.json")) == [
        "second.json",
        "test_twice.json",
    ]


def test_cycle_assertions_fail_with_the_explanation(
    canned: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANNED_VERDICT", oracle.CRASH)
    canned.makepyfile(
        test_mine="""
        def test_consistent(vmsnap_cycle):
            vmsnap_cycle().assert_application_consistent()

        def test_status(vmsnap_cycle):
            vmsnap_cycle().assert_status(0, 0)

        def test_quiesced(vmsnap_cycle):
            vmsnap_cycle().assert_quiesced()

        def test_live(vmsnap_cycle):
            vmsnap_cycle().assert_live()
        """
    )
    result = _inner(canned)
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "E *AssertionError: expected application-consistent, got crash-consistent *",
            "E *  why: canned: crash-consistent",
            "E *AssertionError: expected framework status 0 with health code 0 (success), got "
            "status 1 with health code 301 Post-ScriptExecutionFailed (crash-consistent)",
            "E *  why: canned: crash-consistent",
            "E *AssertionError: a write on a fresh connection was accepted between the end *",
            "E *  probe: canned",
            "E *AssertionError: after the post-script the application could not write within "
            "10 s: refused: canned: read-only",
        ]
    )
    out = result.stdout.str()
    assert "{'" not in out  # never a wall of dicts
    assert "result.py" not in out  # the assert_* frames are hidden


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("vmsnap_cycle(colour='red')", "*unknown vmsnap setting 'colour'*"),
        ("vmsnap_cycle(fs='zfs')", "*vmsnap_cycle(): fs 'zfs' is not one of ext4, xfs, btrfs"),
        ("vmsnap_cycle(config=None)", "*vmsnap_cycle(): no config given*"),
        ("vmsnap_vm(disks=9)", "*vmsnap_vm(): disks must be 1..4, not 9"),
        ("vmsnap_vm(kind='dir')", "*vmsnap_vm(): kind 'dir' has no VM to hand out*"),
    ],
)
def test_factory_argument_errors_are_readable(
    canned: pytest.Pytester, call: str, message: str
) -> None:
    canned.makepyfile(
        test_mine=f"""
        def test_bad(vmsnap_cycle, vmsnap_vm):
            {call}
        """
    )
    result = _inner(canned)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])


def test_vm_fixture_skips_without_root(canned: pytest.Pytester) -> None:
    canned.makepyfile(
        test_mine="""
        import os

        def test_vm(vmsnap_vm, monkeypatch):
            monkeypatch.setattr(os, "geteuid", lambda: 1000)
            vmsnap_vm()
        """
    )
    result = _inner(canned, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*vmsnap_vm needs root*"])


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = _inner(pytester, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.vmsnap(**settings)*"])
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.vmsnap(app="sqlite")
        def test_marked():
            pass
        """
    )
    _inner(pytester, "--strict-markers").assert_outcomes(passed=1)


# --- RunResult assertions, directly ----------------------------------------------------------


def _result(verdict: str = oracle.APPLICATION, **evidence: object) -> RunResult:
    ev = oracle.Evidence(**evidence)  # type: ignore[arg-type]
    return RunResult(
        Settings(),
        verdict=verdict,
        reasons=[f"because {verdict}"],
        cycle=CycleRecord(status=1, health_code=codes.PRE_TIMEOUT, message=""),
        evidence=ev,
    )


def test_assert_verdict_and_chaining() -> None:
    r = _result(oracle.CRASH, liveness_ok=True)
    assert r.assert_verdict(oracle.CRASH).assert_live() is r
    with pytest.raises(AssertionError) as err:
        r.assert_application_consistent()
    text = str(err.value)
    assert text.startswith("expected application-consistent, got crash-consistent")
    assert "  why: because crash-consistent" in text
    with pytest.raises(ValueError, match="unknown verdict 'great'"):
        r.assert_verdict("great")


def test_assert_status_names_the_codes() -> None:
    r = _result()
    assert r.assert_status(1) is r
    assert r.assert_status(1, codes.PRE_TIMEOUT) is r
    with pytest.raises(AssertionError) as err:
        r.assert_status(0, 0)
    first = str(err.value).splitlines()[0]
    assert first == (
        "expected framework status 0 with health code 0 (success), got status 1 with health "
        f"code {codes.PRE_TIMEOUT} Pre-ScriptTimeout (application-consistent)"
    )
    assert str(err.value).count("framework status 0") == 1


def test_assert_quiesced_and_live_explain_the_probe() -> None:
    assert _result(quiesce_probe={"result": "refused"}).assert_quiesced()
    with pytest.raises(AssertionError, match="the quiesce probe did not run"):
        _result().assert_quiesced()
    with pytest.raises(AssertionError, match="was accepted between the end of the pre-script"):
        _result(quiesce_probe={"result": "accepted", "detail": "committed"}).assert_quiesced()
    with pytest.raises(AssertionError, match="liveness probe did not run"):
        _result().assert_live()
    with pytest.raises(AssertionError, match="within 10 s: blocked: busy"):
        _result(
            liveness_ok=False, liveness={"last": {"result": "blocked", "detail": "busy"}}
        ).assert_live()


def test_run_result_json_carries_the_tag() -> None:
    r = _result()
    r.tag = "vmsnap-abc123-gw1"
    assert r.to_dict()["tag"] == "vmsnap-abc123-gw1"
    assert os.environ.get("CANNED_VERDICT") is None  # the canned conftest never leaks out


class _LocalVm:
    """Runs the client helper on this host (where no application is provisioned)."""

    name = "local"

    def popen(self, argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, **kwargs)  # type: ignore[call-overload]


def test_vm_client_reports_a_failed_connection_in_one_line() -> None:
    from pytest_vmsnap.apps.remote import ClientError, RemoteClient

    if Path("/var/lib/app").exists():
        pytest.skip("this host has a /var/lib/app")
    with pytest.raises(ClientError) as err:
        RemoteClient(_LocalVm(), "sqlite", 1.0)
    assert str(err.value) == (
        "sqlite client: connect: OperationalError: unable to open database file"
    )
