"""``vmsnap lint --framework vmware``: errors from the engine's pre-check, VMware's warnings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_vmsnap.data import sample_scripts
from pytest_vmsnap.framework.vmware import config, discovery
from pytest_vmsnap.framework.vmware.engine import make
from pytest_vmsnap.lint import report, vmware_lint

D = discovery.SCRIPTS_DIR
SAMPLES = sample_scripts()


def put(root: Path, location: str, text: str, mode: int = 0o755) -> None:
    path = root / location.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def ids(root: Path) -> list[str]:
    return [f.id for f in vmware_lint.lint(root, make())]


GOOD = '#!/bin/sh\ncase "$1" in freeze) : ;; thaw|freezeFail) : ;; esac\n'


def test_ids_are_prefixed_and_unique() -> None:
    assert len(set(vmware_lint.WARNING_IDS)) == len(vmware_lint.WARNING_IDS)
    assert all(i.startswith("vmware-") for i in vmware_lint.WARNING_IDS)


def test_a_correct_hook_is_clean(tmp_path: Path) -> None:
    put(tmp_path, f"{D}/50-app", GOOD)
    assert ids(tmp_path) == []


def test_precheck_refusals_are_errors(tmp_path: Path) -> None:
    put(tmp_path, f"{D}/50-app", GOOD, mode=0o644)
    put(tmp_path, config.TOOLS_CONF, "[vmbackup]\nnot a pair\n")
    findings = vmware_lint.lint(tmp_path, make())
    errors = [(f.severity, f.id) for f in findings if f.severity == report.ERROR]
    assert errors == [
        (report.ERROR, "ConfigNotLoaded"),
        (report.ERROR, "ScriptNotExecutable"),
    ]


def test_scripts_disabled_is_an_error(tmp_path: Path) -> None:
    put(tmp_path, f"{D}/50-app", GOOD)
    put(tmp_path, config.TOOLS_CONF, "[vmbackup]\nexecScripts=false\n")
    assert ids(tmp_path) == ["ScriptsDisabled"]


@pytest.mark.parametrize("name", ["README", "50-app.sh~", ".50-app.swp", "50-app.dpkg-old"])
def test_stray_files_in_the_directory(tmp_path: Path, name: str) -> None:
    put(tmp_path, f"{D}/{name}", GOOD)
    assert ids(tmp_path) == ["vmware-stray-file"]


@pytest.mark.parametrize(
    "body",
    [
        'case "$1" in freeze) : ;; thaw|freezefail) : ;; esac',
        'if [ "$1" = "FreezeFail" ]; then :; fi\n[ "$1" = freeze ]; [ "$1" = thaw ]',
    ],
)
def test_freezefail_spelled_otherwise_never_matches(tmp_path: Path, body: str) -> None:
    put(tmp_path, f"{D}/50-app", f"#!/bin/sh\n{body}\n")
    assert ids(tmp_path) == ["vmware-freezefail-spelling"]


def test_freeze_and_thaw_without_freezefail(tmp_path: Path) -> None:
    put(tmp_path, f"{D}/50-app", '#!/bin/sh\ncase "$1" in freeze) : ;; thaw) : ;; esac\n')
    assert ids(tmp_path) == ["vmware-no-freezefail"]


def test_legacy_freeze_without_thaw_beside_directory_scripts(tmp_path: Path) -> None:
    put(tmp_path, discovery.LEGACY_FREEZE, "#!/bin/sh\nexit 0\n")
    put(tmp_path, f"{D}/50-app", GOOD)
    assert ids(tmp_path) == ["vmware-legacy-thaw-missing"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[vmbackup]\ntimeout=0\n", ["vmware-timeout-zero"]),
        ("[vmbackup]\ntimeout=15m\n", ["vmware-timeout-invalid"]),
        ("[vmbackup]\ntimeout=-1\n", ["vmware-timeout-invalid"]),
        ("[vmbackup]\nexecScripts=False\n", ["vmware-bool-invalid"]),
        ("[vmbackup]\nexecscripts=false\n", ["vmware-unknown-key"]),
        ("[vmbackup]\nscriptArg=$(id)\n", ["vmware-scriptarg-shell"]),
        ("[vmbackup]\nenableSyncDriver=false\n", ["vmware-sync-driver-off"]),
        ("[vmbackup]\nscriptArg=nightly\ntimeout=600\n", []),
    ],
)
def test_config_pitfalls(tmp_path: Path, text: str, expected: list[str]) -> None:
    put(tmp_path, f"{D}/50-app", GOOD)
    put(tmp_path, config.TOOLS_CONF, text)
    assert ids(tmp_path) == expected


def test_a_script_that_freezes_a_file_system(tmp_path: Path) -> None:
    put(tmp_path, f"{D}/50-app", GOOD + "fsfreeze -f /data\n")
    assert ids(tmp_path) == ["vmware-script-freezes-fs"]


def test_unknown_key_suggests_the_right_case(tmp_path: Path) -> None:
    put(tmp_path, f"{D}/50-app", GOOD)
    put(tmp_path, config.TOOLS_CONF, "[vmbackup]\nexecscripts=false\n")
    (finding,) = vmware_lint.lint(tmp_path, make())
    assert "did you mean execScripts?" in finding.message


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("postgres/vmware/50-postgres.sh", []),
        ("postgres/vmware/50-postgres-readonly-no-freezefail.sh", ["vmware-no-freezefail"]),
        ("postgres/vmware/50-postgres-backup-session.sh", ["pg-backup-start-session"]),
        ("mariadb/vmware/50-mariadb.sh", []),
        ("mariadb/vmware/50-mariadb-no-freezefail.sh", ["vmware-no-freezefail"]),
        ("mariadb/vmware/50-mariadb-ftwrl-exits.sh", ["lock-released-on-exit"]),
        ("sqlite/vmware/50-sqlite.sh", []),
        ("sqlite/vmware/50-sqlite-no-freezefail.sh", ["vmware-no-freezefail"]),
        ("sqlite/vmware/50-sqlite-lock-released.sh", ["lock-released-on-exit"]),
    ],
)
def test_samples_lint_as_their_readme_says(
    tmp_path: Path, sample: str, expected: list[str]
) -> None:
    target = tmp_path / D.lstrip("/")
    target.mkdir(parents=True)
    shutil.copy(SAMPLES / sample, target / Path(sample).name)
    (target / Path(sample).name).chmod(0o755)  # as deployed (a wheel keeps no exec bit)
    assert ids(tmp_path) == expected


def test_samples_are_documented() -> None:
    for directory in SAMPLES.glob("*/vmware"):
        readme = (directory / "README.md").read_text()
        for script in directory.glob("*.sh"):
            assert script.read_text().startswith("#!/bin/sh")
            assert f"`{script.name}`" in readme
