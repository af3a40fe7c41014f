"""The pytest plugin, driven through ``pytester``: collection, settings, usage errors, reports,
summary (also under pytest-xdist), and the user fixtures with a canned cycle (no VM, no root).

Projects that need cycle results get a conftest that replaces ``cycle.run.run`` (and the
battery's reference to it) by a canned RunResult; ``CANNED_VERDICT`` picks the verdict.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_vmsnap import data
from pytest_vmsnap.cycle.protocol import CycleRecord
from pytest_vmsnap.cycle.result import RunResult
from pytest_vmsnap.evidence import oracle
from pytest_vmsnap.framework.azure import codes
from pytest_vmsnap.plugin.battery import battery
from pytest_vmsnap.settings import Settings

pytest_plugins = ["pytester"]

EXAMPLE_CONFIG = data.example("sqlite") / data.CONFIG_NAME
SAMPLES = data.sample_scripts("sqlite")

CHECK_NAMES = [c.name for c in battery(Settings(app="sqlite", quiesce="lock"))]
"""The battery for the test project's settings, in order."""


def _deselected(*words: str) -> int:
    """How many battery items ``-k "w1 or w2 ..."`` leaves out."""
    return sum(not any(w in name for w in words) for name in CHECK_NAMES)


CANNED_CONFTEST = '''
import logging
import os
from pathlib import Path

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
    logging.getLogger("pytest_vmsnap.cycle.run").info("build: canned stand-in")
    # Every cycle run, by any process of the session: "<worker> <config>".
    with open(Path(__file__).with_name("cycles.log"), "a") as log:
        log.write(f"{os.environ.get('PYTEST_XDIST_WORKER', '-')} {settings.config}\\n")
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


NODE_IDS = [
    "vmsnap::lint",
    "vmsnap::main",
    "vmsnap::quiesce",
    "vmsnap::liveness",
    "vmsnap::worst-window",
    "vmsnap::fault-pre-hangs",
    "vmsnap::fault-pre-fails",
    "vmsnap::fault-post-fails",
    "vmsnap::fault-post-missing",
    "vmsnap::fault-snapshot-fails",
    "vmsnap::baseline",
]


def test_battery_node_ids_have_no_spaces_or_colons(project: pytest.Pytester) -> None:
    """``vmsnap::<name>``, names of lower-case words and dashes (the fault items' names are
    their cycles' keys); ``--collect-only -v`` prints what each item checks."""
    result = _inner(project, "--vmsnap", "--collect-only", "-q")
    assert result.ret == 0
    ids = [line for line in result.outlines if line.startswith("vmsnap::")]
    assert ids == NODE_IDS == [f"vmsnap::{name}" for name in CHECK_NAMES]
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", i.split("::", 1)[1]) for i in ids)
    result.stdout.fnmatch_lines([f"{len(CHECK_NAMES)} tests collected*"])
    tree = _inner(project, "--vmsnap", "--collect-only", "-v")
    tree.stdout.fnmatch_lines(
        [
            f"*collected {len(CHECK_NAMES)} items",
            "<VmsnapBattery vmsnap>",
            "  <VmsnapItem lint>",
            "    The framework's own pre-check accepts the config and the scripts*",
            "  <VmsnapItem main>",
            "    The main cycle under a recorded write load is application-consistent*",
            "  <VmsnapItem fault-pre-hangs>",
            "    A pre-script that hangs past its timeout gets the outcome table's row*",
        ]
    )
    # As CI tools and shells take them: a -k word each, and --deselect by node ID.
    one = _inner(project, "--vmsnap", "--collect-only", "-q", "-k", "fault-pre-hangs")
    assert [line for line in one.outlines if line.startswith("vmsnap::")] == [NODE_IDS[5]]
    rest = _inner(project, "--vmsnap", "--collect-only", "-q", "--deselect", "vmsnap::worst-window")
    assert [line for line in rest.outlines if line.startswith("vmsnap::")] == [
        i for i in NODE_IDS if i != "vmsnap::worst-window"
    ]


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


TYPED_TEST = """
import json
from pathlib import Path

def test_dump(vmsnap_settings, request):
    s = vmsnap_settings
    Path(request.config.rootpath, "typed.json").write_text(json.dumps({
        "disks": s.disks, "worst_window_s": s.worst_window_s, "lint_strict": s.lint_strict,
        "env": s.env, "config": str(s.config),
    }))
"""
TYPED_WANT = {
    "disks": 2,
    "worst_window_s": 4.5,
    "lint_strict": True,
    "env": [["A", "1"], ["B", "x=y"]],
}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "pytest.ini",
            "[pytest]\nvmsnap_config = c.json\nvmsnap_disks = 2\nvmsnap_worst_window = 4.5\n"
            "vmsnap_lint_strict = true\nvmsnap_env =\n    A=1\n    B=x=y\n",
        ),
        (
            "pyproject.toml",  # the ini-style table: every value a string
            '[tool.pytest.ini_options]\nvmsnap_config = "c.json"\nvmsnap_disks = "2"\n'
            'vmsnap_worst_window = "4.5"\nvmsnap_lint_strict = "true"\n'
            'vmsnap_env = "A=1; B=x=y"\n',
        ),
        (
            "pyproject.toml",  # pytest 9's native table: typed values
            '[tool.pytest]\nvmsnap_config = "c.json"\nvmsnap_disks = 2\n'
            'vmsnap_worst_window = 4.5\nvmsnap_lint_strict = true\nvmsnap_env = ["A=1", "B=x=y"]\n',
        ),
    ],
    ids=["ini", "toml-ini-options", "toml-native"],
)
def test_ini_keys_are_typed_in_every_config_format(
    pytester: pytest.Pytester, name: str, text: str
) -> None:
    (pytester.path / name).write_text(text)
    _install(EXAMPLE_CONFIG, pytester.path / "c.json", 0o600)
    pytester.makepyfile(test_typed=TYPED_TEST)
    _inner(pytester).assert_outcomes(passed=1)
    got = json.loads((pytester.path / "typed.json").read_text())
    assert got.pop("config") == str(pytester.path / "c.json")
    assert got == TYPED_WANT


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "pyproject.toml",
            '[tool.pytest]\nvmsnap_disks = "2"\n',
            "ERROR: vmsnap: vmsnap_disks must be a whole number: *expects an int, got str: '2'",
        ),
        (
            "pyproject.toml",
            "[tool.pytest]\nvmsnap_lint_strict = 1\n",
            "ERROR: vmsnap: vmsnap_lint_strict must be true or false: *expects a bool, got int*",
        ),
        (
            "pytest.ini",
            "[pytest]\nvmsnap_disks = two\n",
            "ERROR: vmsnap: vmsnap_disks must be a whole number: invalid literal for int()*",
        ),
    ],
    ids=["toml-str-for-int", "toml-int-for-bool", "ini-word-for-int"],
)
def test_ini_values_of_the_wrong_type_are_usage_errors(
    pytester: pytest.Pytester, name: str, text: str, message: str
) -> None:
    (pytester.path / name).write_text(text)
    result = _sub(pytester, "--vmsnap")  # checked at session start, before any worker
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in _text(result)


def test_help_shows_types_metavars_and_defaults(pytester: pytest.Pytester) -> None:
    result = _inner(pytester, "--help")
    out = " ".join(result.stdout.str().split())  # help text is wrapped to the terminal
    for expected in (
        "--vmsnap-disks=N, --vmsnap-disks=N",  # no second spelling for a key without "_"
        "number of disks of the stand-in VM (1..4) (default: 1)",
        "--vmsnap-worst-window=S, --vmsnap-worst_window=S",
        "(0: no such item) (default: 10)",
        "--vmsnap-lint-strict the lint item fails",
        "(sqlite | postgres | mariadb | redis) (default: sqlite)",
        "vmsnap_disks (int):",
        "vmsnap_worst_window (float):",
        "vmsnap_lint_strict (bool):",
        "vmsnap_env (linelist):",
        "vmsnap_config (string):",
        "(default: false)",
    ):
        if expected.startswith("--vmsnap-disks"):
            assert "--vmsnap-disks=N" in out and "--vmsnap-disks=N, " not in out
            continue
        assert expected in out, expected
    assert "(default: ())" not in out and "(default: 10.0)" not in out


@pytest.mark.parametrize(
    ("mark", "message"),
    [
        (
            'vmsnap(colour="red")',
            "ERROR: test_marked.py::test_it: @pytest.mark.vmsnap: unknown vmsnap setting "
            "'colour' (known: *",
        ),
        (
            "vmsnap(disks=[2])",
            "ERROR: test_marked.py::test_it: @pytest.mark.vmsnap: disks must be a whole "
            "number, not [2]",
        ),
        (
            "vmsnap(window_s=True)",
            "ERROR: test_marked.py::test_it: @pytest.mark.vmsnap: window must be a number, "
            "not True",
        ),
        (
            'vmsnap("sqlite")',
            "ERROR: test_marked.py::test_it: @pytest.mark.vmsnap takes keyword arguments "
            "only, not ('sqlite',)",
        ),
    ],
)
def test_bad_marker_arguments_are_a_usage_error(
    pytester: pytest.Pytester, mark: str, message: str
) -> None:
    pytester.makepyfile(
        test_marked=f"""
        import pytest

        @pytest.mark.{mark}
        def test_it():
            pass

        def test_other():
            pass
        """
    )
    result = _sub(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in _text(result) and "TypeError" not in _text(result)
    assert "passed" not in result.stdout.str()  # stopped before any test ran


def test_bad_marker_under_xdist_errors_that_test(pytester: pytest.Pytester) -> None:
    """A worker cannot end the session (xdist would call it a crash): the marked test errors
    at its setup with the same sentence, the others run."""
    pytest.importorskip("xdist")
    pytester.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.vmsnap(disks=[2])
        def test_it():
            pass

        def test_other():
            pass
        """
    )
    result = _sub(pytester, "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["test_marked.py::test_it: @pytest.mark.vmsnap: disks must be a whole number, not [2]"]
    )
    assert "INTERNALERROR" not in _text(result) and "Traceback" not in _text(result)


# --- usage errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "ERROR: vmsnap: no config given (vmsnap_config / --vmsnap-config)"),
        (["--vmsnap-config", "nope.json"], "ERROR: vmsnap: config */nope.json does not exist"),
        (["--vmsnap-config", "c.json", "--vmsnap-disks", "two"], "ERROR: vmsnap: disks must*"),
        (["--vmsnap-config", "c.json", "--vmsnap-fs", "zfs"], "ERROR: vmsnap: vmsnap_fs 'zfs' is*"),
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
            "*_ vmsnap::lint: the extension's pre-check accepts the config and scripts _*",
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


LINT_BROKEN = Path(__file__).resolve().parents[2] / "fixtures" / "lint" / "broken" / "etc" / "azure"
NO_ROOT = (
    "needs root for loop devices and fsfreeze: run pytest as root (the lint item runs without it)"
)


@pytest.fixture
def broken(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with ``fixtures/lint/broken``'s files (modes 600/700): the pre-check passes
    and lint warns 12 times."""
    backup = pytester.path / "backup"
    _install(LINT_BROKEN / "VMSnapshotScriptPluginConfig.json", backup / "config.json", 0o600)
    _install(LINT_BROKEN / "scripts" / "pre.sh", backup / "pre.sh", 0o700)
    _install(LINT_BROKEN / "scripts" / "post.sh", backup / "post.sh", 0o700)
    pytester.makeini(
        """
        [pytest]
        vmsnap_config = backup/config.json
        vmsnap_pre = backup/pre.sh
        vmsnap_post = backup/post.sh
        vmsnap_app = mariadb
        """
    )
    return pytester


def test_lint_warnings_show_and_the_item_passes(broken: pytest.Pytester) -> None:
    result = _inner(broken, "--vmsnap", "-k", "lint", "-rP")
    result.assert_outcomes(passed=1, deselected=_deselected("lint"))
    out = result.stdout.str()
    assert out.count(": VmsnapLintWarning: ") == 12
    result.stdout.fnmatch_lines(
        [
            "*= warnings summary =*",
            "vmsnap::lint",
            "  backup/pre.sh:3: VmsnapLintWarning: bashism: backup/pre.sh (installed at "
            "/etc/azure/scripts/pre.sh) uses [[][[] ... ]] (line 3)*",
            "      -> Rewrite it in POSIX sh*",
            "    if [[][[] $(id -u) != 0 ]]; then",
        ]
    )
    result.stdout.fnmatch_lines(  # -rP: the item's own report
        [
            "*- Captured vmsnap lint call -*",
            "vmsnap lint backup/config.json, backup/pre.sh, backup/post.sh, installed as on *",
            "warning params-string: preScriptParams is a JSON string*",
            "0 errors, 12 warnings",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*= vmsnap summary =*",
            "lint: 0 errors, 12 warnings (VmsnapLintWarning: see the warnings summary; "
            "vmsnap_lint_strict = true fails the lint item on them)",
        ]
    )


@pytest.mark.parametrize(
    ("args", "first"),
    [
        (
            ["-W", "error::pytest_vmsnap.VmsnapLintWarning"],
            "lint warning, an error by the warning filters (-W error::pytest_vmsnap."
            "VmsnapLintWarning): timeout-missing: timeoutInSeconds is not set*",
        ),
        (["-o", "vmsnap_lint_strict=true"], "vmsnap lint backup/config.json, *"),
        (["--vmsnap-lint-strict"], "vmsnap lint backup/config.json, *"),
    ],
    ids=["W-error", "ini-strict", "option-strict"],
)
def test_lint_warnings_fail_the_item_when_asked(
    broken: pytest.Pytester, args: list[str], first: str
) -> None:
    result = _inner(broken, "--vmsnap", "-k", "lint", *args)
    result.assert_outcomes(failed=1, deselected=_deselected("lint"))
    result.stdout.fnmatch_lines(["*_ vmsnap::lint: *", first, "FAILED vmsnap::lint - *"])
    if "-W" not in args:
        result.stdout.fnmatch_lines(
            ["0 errors, 12 warnings", "(vmsnap_lint_strict = true: lint warnings fail this item)"]
        )
    assert "Traceback" not in result.stdout.str()


def test_without_root_the_cycle_items_skip_for_one_reason(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = _inner(project, "--vmsnap", "-rs")
    result.assert_outcomes(passed=1, skipped=len(CHECK_NAMES) - 1)  # lint ran
    skips = [line for line in result.outlines if line.startswith("SKIPPED")]
    assert skips == [
        f"SKIPPED [{len(CHECK_NAMES) - 1}] backup/VMSnapshotScriptPluginConfig.json: {NO_ROOT}"
    ]
    assert "vmsnap summary" not in result.stdout.str()  # no cycle ran


def test_an_unprivileged_user_gets_lint_and_one_skip_reason(project: pytest.Pytester) -> None:
    """The same, really run by ``nobody``: its own files, its own temporary directory."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("becoming another user needs root and setpriv")
    nobody = pwd.getpwnam("nobody")
    for path in (project.path, *project.path.rglob("*")):
        os.lchown(path, nobody.pw_uid, nobody.pw_gid)
    # The interpreter may live in root's home (pyenv): CAP_DAC_READ_SEARCH lets nobody read
    # it, and grants nothing a cycle needs (no CAP_SYS_ADMIN: no loop device, no freeze).
    caps = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    user = [f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    argv = ["setpriv", *user, *caps, "--", sys.executable, "-m", "pytest", *ONLY_US]
    done = subprocess.run(
        [*argv, "-p", "no:cacheprovider", "--vmsnap", "-rs"],
        cwd=project.path,
        env={**os.environ, "HOME": str(project.path), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert f"1 passed, {len(CHECK_NAMES) - 1} skipped" in out
    skips = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips == [
        f"SKIPPED [{len(CHECK_NAMES) - 1}] backup/VMSnapshotScriptPluginConfig.json: {NO_ROOT}"
    ]
    assert "Traceback" not in out


def test_report_header_and_live_phase_lines(canned: pytest.Pytester) -> None:
    verbose = _inner(canned, "--vmsnap", "-v", "-k", "main")
    verbose.assert_outcomes(passed=1, deselected=_deselected("main"))
    verbose.stdout.fnmatch_lines(
        [
            "vmsnap: app sqlite | vm host | profile extension | pacing faithful | writers both",
            "vmsnap: on this host: SQLite 3.* (sqlite3 CLI *)",
            "*collected*",
            "vmsnap::main ",
            "    vmsnap main: build: canned stand-in",
            "vmsnap::main PASSED*",
        ]
    )
    quiet = _inner(canned, "--vmsnap", "-k", "main")
    quiet.stdout.fnmatch_lines(["vmsnap: app sqlite | vm host *"])
    assert "canned stand-in" not in quiet.stdout.str()  # progress lines only with -v
    assert "vmsnap: app" not in _inner(canned, "-v").stdout.str()  # no header without --vmsnap
    unset = _inner(canned, "--vmsnap", "--collect-only", "-o", "vmsnap_app=")
    unset.stdout.fnmatch_lines(["vmsnap: app sqlite (default: vmsnap_app unset) | vm host *"])


# --- cycles, summary, reports (canned) -----------------------------------------------------


MAIN_WORDS = ("main", "quiesce", "liveness")
MAIN_CHECKS = "main or quiesce or liveness"
MAIN_LINE = (
    "main: application-consistent | status 0 health 0 | frozen 12 ms | pre 1.00s x1 | post 1.00s x1"
)


def test_summary_line_for_the_main_cycle(canned: pytest.Pytester) -> None:
    result = _inner(canned, "--vmsnap", "-k", MAIN_CHECKS)
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
    result = _inner(canned, "--vmsnap", "-k", MAIN_CHECKS)
    result.assert_outcomes(failed=3, deselected=_deselected(*MAIN_WORDS))
    result.stdout.fnmatch_lines(
        [
            "*_ vmsnap::main: cycle under load is application-consistent _*",
            "expected application-consistent, got crash-consistent (framework status 1, *",
            "  why: canned: crash-consistent",
            "*_ vmsnap::quiesce: quiesce probe _*",
            "quiesce probe: a write on a fresh connection was accepted*",
            "  (vmsnap_quiesce = lock: the scripts claim to hold a lock)",
            "*_ vmsnap::liveness: liveness after post-script _*",
            "after the post-script the application could not write within the bound: refused*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


# The xunit2 (JUnit 10) format as pytest writes it, in our own words: per element, the child
# elements and attributes it may have, the attributes it must have, and whether it holds text
# only. The rule that matters here: a <testcase> has no <properties> under xunit2.
_DECIMAL = r"[0-9]+(\.[0-9]+)?"
_SUITE_ATTRS = {
    "name", "tests", "failures", "errors", "skipped", "disabled", "time", "timestamp",
    "hostname", "id", "package", "file", "log", "url", "version", "group",
}  # fmt: skip
XUNIT2: dict[str, tuple[set[str], set[str], set[str], bool]] = {
    "testsuites": ({"testsuite"}, {"name", "time", "tests", "failures", "disabled", "errors"},
                   set(), False),
    "testsuite": ({"properties", "testcase", "system-out", "system-err"}, _SUITE_ATTRS,
                  {"name", "tests"}, False),
    "properties": ({"property"}, set(), set(), False),
    "property": (set(), {"name", "value"}, {"name", "value"}, False),
    "testcase": ({"skipped", "error", "failure", "system-out", "system-err"},
                 {"name", "classname", "time", "file", "line", "assertions", "status", "class",
                  "log", "group", "url"}, {"name"}, False),
    "skipped": (set(), {"message", "type"}, set(), True),
    "error": (set(), {"message", "type"}, set(), True),
    "failure": (set(), {"message", "type"}, set(), True),
    "system-out": (set(), set(), set(), True),
    "system-err": (set(), set(), set(), True),
}  # fmt: skip
_NUMERIC = {"time": _DECIMAL, "tests": "[0-9]+", "failures": "[0-9]+", "errors": "[0-9]+"}


def _schema_problems(document: Path) -> list[str]:
    """Where ``document`` breaks :data:`XUNIT2`: undeclared elements, children or
    attributes, missing required attributes, non-numeric counts and times."""
    out = []
    for node in ET.parse(document).iter():
        if node.tag not in XUNIT2:
            out.append(f"<{node.tag}> is not declared")
            continue
        children, attrs, required, text_only = XUNIT2[node.tag]
        out += [f"<{c.tag}> in <{node.tag}>" for c in node if c.tag not in children]
        out += [f"<{node.tag}> lacks {a}" for a in required - set(node.attrib)]
        out += [f"<{node.tag} {a}=...> is not declared" for a in set(node.attrib) - attrs]
        for a, value in node.attrib.items():
            pattern = _NUMERIC.get(a)
            if pattern and node.tag != "property" and not re.fullmatch(pattern, value):
                out.append(f"<{node.tag} {a}={value!r}> is not a number")
        if text_only and len(node):
            out.append(f"<{node.tag}> holds elements")
    return out


def test_junit_xml_carries_the_verdicts_as_valid_xunit2(canned: pytest.Pytester) -> None:
    """Under xunit2 (pytest's default) the verdicts are ``<testsuite>`` properties (as
    ``record_testsuite_property`` makes them) and the file is valid against the schema;
    under xunit1 each ``<testcase>`` also carries those of the cycles it used."""
    result = _inner(canned, "--vmsnap", "-k", MAIN_CHECKS, "--junitxml=j.xml")
    result.assert_outcomes(passed=3, deselected=_deselected(*MAIN_WORDS))
    assert "incompatible" not in result.stdout.str()  # record_property's xunit2 warning
    explicit = _inner(
        canned, "--vmsnap", "-k", MAIN_CHECKS, "--junitxml=j2.xml", "-o", "junit_family=xunit2"
    )
    explicit.assert_outcomes(passed=3, deselected=_deselected(*MAIN_WORDS))
    want = {
        "vmsnap.main.verdict": "application-consistent",
        "vmsnap.main.status": "0",
        "vmsnap.main.health_code": "0",
        "vmsnap.main.consistency": "application",
    }
    for name in ("j.xml", "j2.xml"):
        assert _schema_problems(canned.path / name) == []
        suite = ET.parse(canned.path / name).find(".//testsuite")
        assert suite is not None
        assert {p.get("name"): p.get("value") for p in suite.iter("property")} == want
        assert [c.get("name") for c in suite.iter("testcase")] == ["main", "quiesce", "liveness"]
        assert all(c.find("properties") is None for c in suite.iter("testcase"))

    legacy = _inner(
        canned, "--vmsnap", "-k", MAIN_CHECKS, "--junitxml=j1.xml", "-o", "junit_family=xunit1"
    )
    legacy.assert_outcomes(passed=3, deselected=_deselected(*MAIN_WORDS))
    suite = ET.parse(canned.path / "j1.xml").find(".//testsuite")
    assert suite is not None
    for case in suite.iter("testcase"):  # each check judged the main cycle
        assert {p.get("name"): p.get("value") for p in case.iter("property")} == want
    # What xunit2 forbids, and why the default gets suite properties only.
    assert "<properties> in <testcase>" in _schema_problems(canned.path / "j1.xml")


def test_schema_check_finds_what_xunit2_forbids(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text(
        '<testsuites><testsuite name="s" tests="1" failures="0" errors="0" time="1.5x">'
        '<testcase name="t" colour="red"><properties/></testcase><extra/>'
        "</testsuite></testsuites>"
    )
    assert sorted(_schema_problems(bad)) == sorted(
        [
            "<properties> in <testcase>",
            "<testcase colour=...> is not declared",
            "<extra> in <testsuite>",
            "<extra> is not declared",
            "<testsuite time='1.5x'> is not a number",
        ]
    )


def test_report_dir_gets_one_json_per_cycle(canned: pytest.Pytester) -> None:
    result = _inner(canned, "--vmsnap", "-k", "main", "--vmsnap-report", "r")
    result.assert_outcomes(passed=1, deselected=_deselected("main"))
    report = canned.path / "r"
    data = json.loads((report / "main.json").read_text())
    assert data["verdict"] == "application-consistent" and data["status"] == 0
    assert data["tag"] == "vmsnap-c0ffee" and data["app"] == "sqlite"
    assert (report / "index.html").is_file()
    result.stdout.fnmatch_lines([f"per-cycle JSON: {report}/*.json", "HTML report: *index.html"])


def test_report_dir_from_ini_is_relative_to_the_ini_file(canned: pytest.Pytester) -> None:
    ini = canned.path / "tox.ini"  # written by pytester.makeini
    ini.write_text(ini.read_text() + "\nvmsnap_report = out/reports\n")
    _inner(canned, "--vmsnap", "-k", "main")
    assert (canned.path / "out" / "reports" / "main.json").is_file()


def _cycles(project: pytest.Pytester) -> list[tuple[str, str]]:
    """The cycles the canned conftest ran: (worker, config)."""
    log = project.path / "cycles.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(w, c) for w, _, c in (line.partition(" ") for line in lines)]


def test_xdist_runs_the_shared_main_cycle_once(
    canned: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``-n 2`` the three items that judge the main cycle land on both workers and
    judge one cycle, run by one of them; its summary line and JSON come out once on the
    controller, and the session's temporary files are gone afterwards."""
    pytest.importorskip("xdist")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    args = ["--vmsnap", "-n", "2", "-v", "-k", MAIN_CHECKS, "--vmsnap-report", "r"]
    result = _sub(canned, *args, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    ran = {
        m.group(2): m.group(1)
        for m in (re.search(r"\[(gw\d)\].* PASSED (vmsnap::\S+)", x) for x in result.outlines)
        if m
    }
    assert sorted(ran) == ["vmsnap::liveness", "vmsnap::main", "vmsnap::quiesce"]
    assert set(ran.values()) == {"gw0", "gw1"}  # round robin: both workers judged it
    ((worker, _),) = _cycles(canned)  # one cycle in the whole session
    result.stdout.fnmatch_lines(["*= vmsnap summary =*"])
    lines = [line for line in result.outlines if line.startswith("main [")]
    assert len(lines) == 1
    assert lines[0].startswith(f"main [{worker}]: application-consistent | status 0 health 0 |")
    assert [p.name for p in (canned.path / "r").glob("*.json")] == [f"main-{worker}.json"]
    assert list(scratch.iterdir()) == []  # the shared directory went with the session


def test_fault_files_are_removed_at_the_end_of_the_session(
    canned: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault items' scripts and configs live in ``vmsnap-fault-*`` under the temporary
    directory while the session runs, and nothing of them is left after it."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    result = _sub(canned, "--vmsnap", "-k", "fault", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=5)  # a canned status 0 is no fault's row
    faults = [Path(c) for _, c in _cycles(canned) if c.startswith(str(scratch))]
    assert len(faults) == 4
    assert all(p.parent.parent.name.startswith("vmsnap-fault-") for p in faults)
    assert list(scratch.iterdir()) == []


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
