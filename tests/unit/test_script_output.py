"""Failures a script hid behind exit code 0 become findings (issue 11)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_vmsnap.evidence.script_output import masked_failures


def script(exit_code: int | None = 0, stdout: str = "", stderr: str = "") -> dict[str, Any]:
    return {"ran": True, "exit_code": exit_code, "stdout": stdout, "stderr": stderr}


@pytest.mark.parametrize(
    ("stderr", "what"),
    [
        ("ERROR:  permission denied for function pg_backup_start", "database client"),
        ('psql:/tmp/q.sql:3: ERROR:  syntax error at or near "FLUSH"', "database client"),
        ("ERROR 1045 (28000): Access denied for user 'root'@'localhost'", "database client"),
        ("/etc/azure/pre.sh: 12: mysql: not found", "not found"),
        ("bash: fsfreeze: command not found", "not found"),
        ("(error) NOPERM this user has no permissions", "redis-cli"),
    ],
)
def test_an_error_line_behind_exit_zero_is_a_finding(stderr: str, what: str) -> None:
    (finding,) = masked_failures({"pre": script(stderr=f"starting\n{stderr}\n")})
    assert finding["name"] == "MaskedScriptFailure" and what in finding["message"]
    assert stderr.strip()[:60] in finding["message"] and "exit code" in finding["action"]


def test_a_failing_exit_code_or_clean_output_adds_nothing() -> None:
    noisy = "ERROR:  relation does not exist"
    assert masked_failures({"pre": script(1, stderr=noisy)}) == []  # the framework says so
    assert masked_failures({"post": {"ran": False, "stderr": noisy}}) == []
    clean = "pre: WAL checkpointed, write lock held on /var/lib/app/app.db\nNOTICE:  ok"
    assert masked_failures({"pre": script(stdout=clean), "post": script()}) == []


def test_several_error_lines_are_counted_in_one_finding_per_script() -> None:
    out = "ERROR:  a\nERROR:  b\n"
    findings = masked_failures({"pre": script(stdout=out), "post": script(stderr=out)})
    assert [f["message"].split(",")[0] for f in findings] == [
        "the pre-script exited 0",
        "the post-script exited 0",
    ]
    assert all("(2 such lines)" in f["message"] for f in findings)
