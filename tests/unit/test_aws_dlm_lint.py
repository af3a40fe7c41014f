"""``vmsnap lint --framework aws-dlm``: errors from the engine's pre-check, warnings by id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap.data import sample_scripts
from pytest_vmsnap.framework.aws_dlm import codes
from pytest_vmsnap.framework.aws_dlm.document import DOCUMENT_PATH
from pytest_vmsnap.framework.aws_dlm.engine import AwsDlmEngine
from pytest_vmsnap.framework.aws_dlm.policy import POLICY_PATH
from pytest_vmsnap.lint import aws_dlm_lint, report
from pytest_vmsnap.lint.frameworks import lint_framework, warning_ids

SAMPLES = sample_scripts()


def doc(lines: list[str], allowed: list[str] | None = None) -> dict[str, Any]:
    return {
        "schemaVersion": "2.2",
        "parameters": {
            "command": {
                "type": "String",
                "allowedValues": allowed or ["pre-script", "post-script", "dry-run"],
            }
        },
        "mainSteps": [
            {"action": "aws:runShellScript", "name": "run", "inputs": {"runCommand": lines}}
        ],
    }


def case(pre: str = "echo pre", post: str = "echo post", first: str = "#!/bin/sh") -> list[str]:
    return [
        first,
        'case "{{ command }}" in',
        f"  pre-script) {pre} ;;",
        f"  post-script) {post} ;;",
        "  dry-run) exit 0 ;;",
        "esac",
    ]


def lint(tmp_path: Path, document: Any = None, policy: Any = None) -> list[report.Finding]:
    root = tmp_path / "root"
    for path, data in ((DOCUMENT_PATH, document), (POLICY_PATH, policy)):
        if data is not None:
            p = root / path.lstrip("/")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(data))
    root.mkdir(exist_ok=True)
    return aws_dlm_lint.lint(root, AwsDlmEngine())


def ids(findings: list[report.Finding]) -> list[str]:
    return [f.id for f in findings]


def test_correct_document_is_clean(tmp_path: Path) -> None:
    assert lint(tmp_path, doc(case())) == []


def test_errors_from_precheck(tmp_path: Path) -> None:
    found = lint(tmp_path, None, {"ExecutionTimeout": 300})
    assert [(f.severity, f.id) for f in found] == [
        (report.ERROR, codes.POLICY_REJECTED),
        (report.ERROR, codes.DOCUMENT_REJECTED),
    ]


@pytest.mark.parametrize(
    ("document", "policy", "wid"),
    [
        (doc(case(), allowed=["pre-script", "post-script"]), None, "aws-dlm-allowed-value-missing"),
        (doc(["echo same for all"]), None, "aws-dlm-command-unused"),
        (
            doc(["# dry-run is not handled", 'if [ "{{ command }}" = pre-script ]; then :; fi']),
            None,
            "aws-dlm-dry-run-not-handled",
        ),
        (doc(case(pre="sleep 300 &")), None, "aws-dlm-background-holds-output"),
        (doc(case(pre="sleep 10")), None, "aws-dlm-sleep-exceeds-timeout"),
        (doc(case(pre="[[ -f /x ]]", first="set -e")), None, "aws-dlm-bash-without-shebang"),
        (doc(case(pre="fsfreeze -f /data")), None, "aws-dlm-freeze-without-auto-thaw"),
        (doc(case(pre="cat ~/.my.cnf")), None, "aws-dlm-home-unset"),
        (doc(case()), {"Stages": ["POST"]}, "aws-dlm-fallback-without-pre"),
        (doc(case(pre="mariadb -e 'FLUSH TABLES WITH READ LOCK'")), None, "lock-released-on-exit"),
    ],
)
def test_warning(tmp_path: Path, document: Any, policy: Any, wid: str) -> None:
    found = lint(tmp_path, document, policy)
    assert wid in ids(found)
    assert all(f.severity == report.WARNING for f in found)


@pytest.mark.parametrize(
    ("document", "policy", "wid"),
    [
        (doc(case(pre="sleep 300 >/dev/null 2>&1 &")), None, "aws-dlm-background-holds-output"),
        (
            doc(case(pre="(sleep 9; echo) </dev/null &>/dev/null &")),
            None,
            "aws-dlm-background-holds-output",
        ),
        (doc(case(pre="sleep 9")), None, "aws-dlm-sleep-exceeds-timeout"),
        (doc(case(pre="sleep 20")), {"ExecutionTimeout": 30}, "aws-dlm-sleep-exceeds-timeout"),
        (doc(case(pre="[[ -f /x ]]", first="#!/bin/bash")), None, "aws-dlm-bash-without-shebang"),
        (
            doc(case(pre="fsfreeze -f /d; (sleep 60; fsfreeze -u /d) >/dev/null 2>&1 &")),
            None,
            "aws-dlm-freeze-without-auto-thaw",
        ),
        (doc(case()), {"Stages": ["PRE", "POST"]}, "aws-dlm-fallback-without-pre"),
    ],
)
def test_no_warning(tmp_path: Path, document: Any, policy: Any, wid: str) -> None:
    assert wid not in ids(lint(tmp_path, document, policy))


def test_ids_registered() -> None:
    assert set(aws_dlm_lint.WARNING_IDS) <= set(warning_ids())
    assert all(i.startswith("aws-dlm-") for i in aws_dlm_lint.WARNING_IDS)


def test_lint_framework_entry(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    rep = lint_framework(root, "aws-dlm")
    assert [f.id for f in rep.findings] == [codes.DOCUMENT_REJECTED]


@pytest.mark.parametrize(
    ("app", "name", "expected"),
    [
        (app, name, expected)
        for app in ("mariadb", "postgres", "sqlite")
        for name, expected in (
            ("document.json", set()),
            ("document-no-dry-run.json", {"aws-dlm-dry-run-not-handled"}),
            ("document-slow-pre.json", {"aws-dlm-sleep-exceeds-timeout"}),
            (
                "document-lock-dies.json",
                {"pg-backup-start-session" if app == "postgres" else "lock-released-on-exit"},
            ),
        )
    ],
)
def test_samples(tmp_path: Path, app: str, name: str, expected: set[str]) -> None:
    folder = SAMPLES / app / "aws-dlm"
    found = lint(
        tmp_path,
        json.loads((folder / name).read_text()),
        json.loads((folder / "policy.json").read_text()),
    )
    assert set(ids(found)) == expected
