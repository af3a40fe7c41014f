"""``vmsnap lint --framework qemu-ga``: the pre-check's errors and qemu-ga's pitfalls."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_vmsnap.data import sample_scripts
from pytest_vmsnap.framework.qemu_ga.engine import QemuGaEngine
from pytest_vmsnap.lint import qemu_ga_lint, report
from pytest_vmsnap.lint.frameworks import lint_framework

CONF = "[general]\nfsfreeze-hook=/etc/qemu/fsfreeze-hook\n"
D = "etc/qemu/fsfreeze-hook.d"
SAMPLES = sample_scripts()


def put(root: Path, location: str, text: str, mode: int = 0o755) -> None:
    path = root / location
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def ids(root: Path) -> list[str]:
    return sorted(f.id for f in qemu_ga_lint.lint(root, QemuGaEngine()))


def test_ids_are_stable_and_prefixed() -> None:
    """Every warning id is lower-case, dashed and starts with qemu-ga-."""
    assert all(i.startswith("qemu-ga-") and i == i.lower() for i in qemu_ga_lint.WARNING_IDS)
    assert len(set(qemu_ga_lint.WARNING_IDS)) == len(qemu_ga_lint.WARNING_IDS)


def test_precheck_errors_become_errors(tmp_path: Path) -> None:
    """No config: HOOK_NOT_ENABLED is an error finding named after the pre-check."""
    findings = qemu_ga_lint.lint(tmp_path, QemuGaEngine())
    assert [(f.severity, f.id) for f in findings] == [(report.ERROR, "HOOK_NOT_ENABLED")]


def test_daemon_args_warnings(tmp_path: Path) -> None:
    """-F in DAEMON_ARGS is ignored under systemd; '-F /path' means the default hook."""
    put(tmp_path, "etc/default/qemu-guest-agent", 'DAEMON_ARGS="-F /opt/hook"\n', 0o644)
    assert ids(tmp_path) == [
        "HOOK_NOT_ENABLED",
        "qemu-ga-daemon-args-ignored",
        "qemu-ga-f-space",
    ]


def test_direct_hook_pitfalls(tmp_path: Path) -> None:
    """A hook at the path: no shebang, no verb, output nowhere, a background holder, HOME."""
    put(tmp_path, "etc/qemu/qemu-ga.conf", CONF, 0o644)
    put(
        tmp_path,
        "etc/qemu/fsfreeze-hook",
        "echo start\nmysql --defaults-file=~/.my.cnf -e 'SELECT 1' &\n",
    )
    assert ids(tmp_path) == [
        "qemu-ga-background-holds-output",
        "qemu-ga-home-unset",
        "qemu-ga-no-shebang",
        "qemu-ga-output-lost",
        "qemu-ga-verb-ignored",
    ]


def test_redirected_background_is_fine(tmp_path: Path) -> None:
    """A background holder whose streams are redirected is not flagged."""
    put(tmp_path, "etc/qemu/qemu-ga.conf", CONF, 0o644)
    put(
        tmp_path,
        "etc/qemu/fsfreeze-hook",
        '#!/bin/sh\ncase "$1" in freeze) ( sleep 1 ) </dev/null >/dev/null 2>&1 & ;; esac\n',
    )
    assert ids(tmp_path) == []


@pytest.mark.parametrize(
    ("app", "script", "expected"),
    [
        ("postgres", "postgres.sh", {"qemu-ga-failure-hidden"}),
        (
            "postgres",
            "postgres-fails-hidden.sh",
            {"qemu-ga-failure-hidden", "pg-start-backup-removed"},
        ),
        (
            "postgres",
            "postgres-lock-dies.sh",
            {"qemu-ga-failure-hidden", "pg-backup-start-session"},
        ),
        ("postgres", "postgres-stdout.sh", {"qemu-ga-output-lost"}),
        ("mariadb", "mariadb.sh", {"qemu-ga-failure-hidden"}),
        ("mariadb", "mariadb-lock-dies.sh", {"lock-released-on-exit"}),
        ("mariadb", "mariadb-fails-hidden.sh", {"qemu-ga-failure-hidden"}),
        ("mariadb", "mariadb-stdout.sh", {"qemu-ga-output-lost", "qemu-ga-home-unset"}),
        ("sqlite", "sqlite.sh", {"qemu-ga-failure-hidden"}),
        ("sqlite", "sqlite-lock-dies.sh", {"lock-released-on-exit"}),
        ("sqlite", "sqlite-fails-hidden.sh", {"qemu-ga-failure-hidden"}),
        ("sqlite", "sqlite-stdout.sh", {"qemu-ga-output-lost"}),
    ],
)
def test_samples(tmp_path: Path, app: str, script: str, expected: set[str]) -> None:
    """Each sample installed in fsfreeze-hook.d: the warnings its README names."""
    put(tmp_path, "etc/qemu/qemu-ga.conf", CONF, 0o644)
    src = SAMPLES / app / "qemu-ga" / script
    (tmp_path / D).mkdir(parents=True)
    shutil.copy(src, tmp_path / D / script)
    (tmp_path / D / script).chmod(0o755)  # as deployed (an installed wheel keeps no exec bit)
    assert set(ids(tmp_path)) == expected


def test_lint_framework_entry(tmp_path: Path) -> None:
    """lint_framework('qemu-ga') finds this module and reports the pre-check's code."""
    rep = lint_framework(tmp_path, "qemu-ga")
    assert rep.precheck_codes == {"qemu-ga": 1}
    assert [f.id for f in rep.errors] == ["HOOK_NOT_ENABLED"]
