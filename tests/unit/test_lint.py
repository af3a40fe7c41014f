"""``vmsnap lint``: pre-check errors and every warning, on real files in temporary roots.

These tests run as root (ownership checks need it): files are made with real modes, and
non-root owners are uid/gid 65534 (nobody/nogroup).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap import lint as lint_mod
from pytest_vmsnap.lint import WARNING_IDS, Finding, LintReport, lint

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks need root")

NOBODY = 65534
CONFIG = "etc/azure/VMSnapshotScriptPluginConfig.json"
PRE = "etc/azure/scripts/pre.sh"
POST = "etc/azure/scripts/post.sh"

CLEAN_CONFIG: dict[str, Any] = {
    "pluginName": "ScriptRunner",
    "preScriptLocation": "/etc/azure/scripts/pre.sh",
    "postScriptLocation": "/etc/azure/scripts/post.sh",
    "preScriptParams": [],
    "postScriptParams": [],
    "preScriptNoOfRetries": 0,
    "postScriptNoOfRetries": 0,
    "timeoutInSeconds": 30,
    "ScriptsExecutionPollTimeSeconds": 3,
    "continueBackupOnFailure": True,
    "fsFreezeEnabled": True,
}
PRE_OK = "#!/bin/sh\nset -eu\necho pre\n"
POST_OK = "#!/bin/sh\nset -eu\necho post\n"


def write(path: Path, content: str | bytes, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    path.chmod(mode)
    return path


def make_root(
    tmp_path: Path,
    config: dict[str, Any] | None = None,
    *,
    pre: str | bytes | None = PRE_OK,
    post: str | bytes | None = POST_OK,
    drop: tuple[str, ...] = (),
    raw_config: str | None = None,
) -> Path:
    """A machine root with /etc/azure set up correctly unless told otherwise."""
    root = tmp_path / "vm"
    scripts = root / "etc/azure/scripts"
    scripts.mkdir(parents=True)
    for d in (root, root / "etc", root / "etc/azure", scripts):
        d.chmod(0o755)
    cfg = {**CLEAN_CONFIG, **(config or {})}
    for key in drop:
        cfg.pop(key)
    write(root / CONFIG, raw_config if raw_config is not None else json.dumps(cfg), 0o600)
    if pre is not None:
        write(root / PRE, pre, 0o700)
    if post is not None:
        write(root / POST, post, 0o700)
    return root


def ids(report: LintReport) -> list[str]:
    return [f.id for f in report.warnings]


def only(report: LintReport, wid: str) -> list[Finding]:
    return [f for f in report.warnings if f.id == wid]


# ---------------------------------------------------------------------------------------------
# Clean root, report shape, text output


def test_clean_root_has_no_findings(tmp_path: Path) -> None:
    report = lint(make_root(tmp_path))
    assert report.findings == []
    assert report.ok and report.errors == [] and report.warnings == []
    assert report.precheck_codes == {"extension": 0, "documented": 0}
    text = report.format_text()
    assert "no findings" in text
    assert "Traceback" not in text


def test_clean_root_is_clean_under_documented_profile_too(tmp_path: Path) -> None:
    report = lint(make_root(tmp_path), profile="documented")
    assert report.ok
    assert report.profile == "documented"


def test_text_output_shape(tmp_path: Path) -> None:
    root = make_root(tmp_path, pre="#!/bin/bash\nexit 0\n")
    (root / POST).chmod(0o750)
    text = lint(root).format_text()
    lines = text.splitlines()
    assert lines[0] == f"vmsnap lint {root} (profile extension)"
    err = next(i for i, line in enumerate(lines) if line.startswith("error "))
    assert lines[err].startswith("error 307 InsufficientPermissionforPost-Script: ")
    assert lines[err + 1].startswith("    -> ") and "chown root:root" in lines[err + 1]
    warn = next(i for i, line in enumerate(lines) if line.startswith("warning "))
    assert lines[warn].startswith("warning shebang-ignored: /etc/azure/scripts/pre.sh")
    assert lines[warn + 1].startswith("    -> ")
    assert err < warn  # errors first
    assert "1 error, 1 warning" in text
    assert "first failure" in text
    assert "Traceback" not in text


def test_to_dict_is_json_and_keeps_the_finding_shape(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"preScriptParams": "ab"})
    (root / PRE).chmod(0o744)
    data = json.loads(json.dumps(lint(root).to_dict()))
    assert data["ok"] is False
    assert data["profile"] == "extension"
    assert data["precheck"] == {"extension": 306, "documented": 306}
    (error,) = data["errors"]
    assert error["code"] == 306
    assert error["name"] == "InsufficientPermissionforPre-Script"
    assert error["id"] == "FailedPrepostPreScriptPermissionError"
    assert "744" in error["message"] and error["action"]
    warning = next(w for w in data["warnings"] if w["id"] == "params-string")
    assert warning["code"] is None and warning["severity"] == "warning"
    assert warning["path"] == "/etc/azure/VMSnapshotScriptPluginConfig.json"


def test_finding_format_text() -> None:
    f = Finding("warning", "crlf", "a message", "an action")
    assert f.format_text() == "warning crlf: a message\n    -> an action"
    e = Finding("error", "X", "m", "a", code=302, name="Pre-ScriptNotFound")
    assert e.format_text() == "error 302 Pre-ScriptNotFound: m\n    -> a"


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        lint(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        lint(tmp_path / "file")


def test_unknown_profile(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        lint(make_root(tmp_path), profile="nope")


def test_warning_ids_are_unique_and_stable() -> None:
    assert len(WARNING_IDS) == len(set(WARNING_IDS))
    assert all(i == i.lower() and " " not in i for i in WARNING_IDS)


# ---------------------------------------------------------------------------------------------
# Errors: the pre-check, as the extension runs it


def test_missing_config_is_316(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / CONFIG).unlink()
    report = lint(root)
    assert [e.code for e in report.errors] == [316]
    assert report.errors[0].name == "FailedPrepostPluginConfigNotFound"
    assert "error 316 FailedPrepostPluginConfigNotFound" in report.format_text()


@pytest.mark.parametrize("mode", [0o644, 0o700, 0o640, 0o604])
def test_config_mode_is_317(tmp_path: Path, mode: int) -> None:
    root = make_root(tmp_path)
    (root / CONFIG).chmod(mode)
    (error,) = lint(root).errors
    assert error.code == 317 and error.name == "IncorrectJSONConfigFile"
    assert f"{mode:o}" in error.message


def test_config_owner_is_317(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    os.chown(root / CONFIG, NOBODY, NOBODY)
    (error,) = lint(root).errors
    assert error.code == 317
    assert "nobody" in error.message


def test_config_warnings_are_still_given_when_the_config_is_rejected(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"preScriptParams": "x y"})
    (root / CONFIG).chmod(0o644)
    report = lint(root)
    assert [e.code for e in report.errors] == [317]
    assert "params-string" in ids(report)


def test_invalid_json_is_305_and_only_logged_by_the_extension(tmp_path: Path) -> None:
    report = lint(make_root(tmp_path, raw_config="{not json"))
    (error,) = report.errors
    assert error.code == 305 and error.name == "IncorrectJSONConfigFile"
    (diff,) = only(report, "profile-difference")
    assert "only writes it to its log" in diff.message


def test_missing_location_key_is_305(tmp_path: Path) -> None:
    (error,) = lint(make_root(tmp_path, drop=("postScriptLocation",))).errors
    assert error.code == 305
    assert "postScriptLocation" in error.message


def test_wrong_type_is_304(tmp_path: Path) -> None:
    (error,) = lint(make_root(tmp_path, {"timeoutInSeconds": "30"})).errors
    assert error.code == 304 and error.name == "IncorrectPluginhostFile"
    assert "timeoutInSeconds" in error.message


@pytest.mark.parametrize(
    ("missing", "code", "name"),
    [(PRE, 302, "Pre-ScriptNotFound"), (POST, 303, "Post-ScriptNotFound")],
)
def test_missing_script(tmp_path: Path, missing: str, code: int, name: str) -> None:
    root = make_root(tmp_path)
    (root / missing).unlink()
    (error,) = lint(root).errors
    assert (error.code, error.name) == (code, name)


def test_script_permissions_306_307(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / PRE).chmod(0o750)
    (error,) = lint(root).errors
    assert error.code == 306 and "750" in error.message
    (root / PRE).chmod(0o700)
    os.chown(root / POST, NOBODY, 0)
    (error,) = lint(root).errors
    assert error.code == 307 and "nobody" in error.message


def test_host_file_permission_is_314(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    host = write(root / "etc/azure/VMSnapshotPluginHost.conf", "[pre_post]\n", 0o666)
    report = lint(root)
    assert [e.code for e in report.errors] == [314]
    assert "666" in report.errors[0].message
    assert any("only writes it to its log" in f.message for f in only(report, "profile-difference"))
    host.chmod(0o644)
    assert 314 not in [e.code for e in lint(root).errors]


def test_host_file_without_plugins(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    write(root / "etc/azure/VMSnapshotPluginHost.conf", "[pre_post]\nnumberOfPlugins: 0\n", 0o644)
    report = lint(root)
    assert report.errors == []
    assert "host-no-plugins" in ids(report)


def test_host_file_names_another_config_path(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    write(
        root / "etc/azure/VMSnapshotPluginHost.conf",
        "[pre_post]\nnumberOfPlugins: 1\npluginName0: ScriptRunner\npluginPath0: /etc/azure\n"
        "pluginConfigPath0: /opt/backup/plugin.json\n",
        0o644,
    )
    cfg = {**CLEAN_CONFIG, "preScriptParams": "ab"}
    write(root / "opt/backup/plugin.json", json.dumps(cfg), 0o600)
    (root / "opt").chmod(0o755)
    (root / "opt/backup").chmod(0o777)
    report = lint(root)
    assert report.errors == []
    (params,) = only(report, "params-string")
    assert params.path == "/opt/backup/plugin.json"
    (writable,) = only(report, "writable-path")
    assert writable.path == "/opt/backup" and "/opt/backup/plugin.json" in writable.message


# ---------------------------------------------------------------------------------------------
# Profile differences


@pytest.mark.parametrize(("target", "mode"), [(PRE, 0o500), (POST, 0o400), (CONFIG, 0o400)])
def test_modes_the_code_accepts_but_the_docs_do_not(tmp_path: Path, target: str, mode: int) -> None:
    root = make_root(tmp_path)
    (root / target).chmod(mode)
    report = lint(root)
    assert report.errors == []
    assert report.precheck_codes["extension"] == 0
    assert report.precheck_codes["documented"] in (306, 307, 317)
    (diff,) = only(report, "profile-difference")
    assert "under the documented profile it fails with" in diff.message
    assert "chmod 700" in diff.action or "mode 700" in diff.action

    documented = lint(root, profile="documented")
    assert [e.code for e in documented.errors] == [report.precheck_codes["documented"]]
    (diff,) = only(documented, "profile-difference")
    assert "under the extension profile it passes" in diff.message


def test_retries_differ_between_profiles(tmp_path: Path) -> None:
    report = lint(make_root(tmp_path, {"postScriptNoOfRetries": 3}))
    (ignored,) = only(report, "retries-ignored")
    assert "postScriptNoOfRetries is 3" in ignored.message
    (diff,) = only(report, "profile-difference")
    assert "4 times" in diff.message and "runs it once" in diff.message


def test_missing_timeout_differs_between_profiles(tmp_path: Path) -> None:
    report = lint(make_root(tmp_path, drop=("timeoutInSeconds",)))
    assert {"timeout-missing", "profile-difference", "timeout-rounded"} <= set(ids(report))
    (diff,) = only(report, "profile-difference")
    assert "12 s" in diff.message and "30 s" in diff.message


def test_output_that_would_stall_the_real_extension(tmp_path: Path) -> None:
    pre = "#!/bin/sh\nset -ex\nfor t in a b; do echo $t; done\n"
    report = lint(make_root(tmp_path, pre=pre))
    (diff,) = only(report, "profile-difference")
    assert "set -x" in diff.message and "64 KiB" in diff.message and diff.line == 2
    assert "exec >>" in diff.action


def test_output_redirected_to_a_log_does_not_stall(tmp_path: Path) -> None:
    pre = "#!/bin/sh\nexec >>/var/log/pre.log 2>&1\nset -x\nmysqldump --all-databases\n"
    assert lint(make_root(tmp_path, pre=pre)).ok


def test_dump_to_stdout_would_stall(tmp_path: Path) -> None:
    pre = "#!/bin/sh\nmysqldump --all-databases\n"
    (diff,) = only(lint(make_root(tmp_path, pre=pre)), "profile-difference")
    assert "dump writes to stdout" in diff.message
    ok = "#!/bin/sh\nmysqldump --all-databases > /backup/all.sql\npg_dump -f /b/x.sql db\n"
    assert lint(make_root(tmp_path / "ok", pre=ok)).ok


def test_unbounded_background_process_differs_on_timeout(tmp_path: Path) -> None:
    pre = "#!/bin/sh\nsome-holder --lock &\necho started\n"
    (diff,) = only(lint(make_root(tmp_path, pre=pre)), "profile-difference")
    assert "background process (line 2)" in diff.message
    assert "kills its whole process group" in diff.message
    bounded = "#!/bin/sh\ntimeout 600 some-holder --lock &\n"
    assert lint(make_root(tmp_path / "b", pre=bounded)).ok
    not_background = "#!/bin/sh\ntrue && echo x 2>&1\n"
    assert lint(make_root(tmp_path / "c", pre=not_background)).ok


# ---------------------------------------------------------------------------------------------
# workload.conf


def test_workload_conf_takes_over(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"preScriptParams": "ab"}, pre="#!/bin/bash\n[[ x ]]\n")
    (root / PRE).chmod(0o777)
    write(root / "etc/azure/workload.conf", "[workload]\nworkload_name = mysql\n", 0o644)
    report = lint(root)
    assert report.errors == []
    assert ids(report) == ["workload-takes-over"]
    (warning,) = report.warnings
    assert "workload_name = mysql" in warning.message
    assert "not checked" in warning.message


@pytest.mark.parametrize("name", ["", "MySQL", "sqlite"])
def test_workload_conf_that_does_not_take_over(tmp_path: Path, name: str) -> None:
    root = make_root(tmp_path)
    write(root / "etc/azure/workload.conf", f"[workload]\nworkload_name = {name}\n", 0o644)
    assert lint(root).ok


# ---------------------------------------------------------------------------------------------
# Script contents


BASHISM_CASES = [
    ("if [[ -f /x ]]; then :; fi", "[[ ... ]]"),
    ('if [ "$a" == "b" ]; then :; fi', "== inside [ ]"),
    ("function quiesce {\n  :\n}", "function NAME"),
    ("dbs=(a b c)", "array assignment"),
    ('echo "${dbs[0]}"', "array expansion"),
    ("declare -a x", "declare/typeset"),
    ("printf $'a\\tb'", "$'...' quoting"),
    ("read -r x <<< 'a'", "<<< here-string"),
    ("mysql -e 'x' &> /dev/null", "&> redirection"),
    ("source /etc/default/app", "source FILE"),
    ('echo "${x//a/b}"', "${VAR/pattern/replacement}"),
    ('echo "${x:1:2}"', "${VAR:offset:length}"),
    ('echo "${x^^}"', "${VAR^^}"),
    ('echo "${PIPESTATUS[0]}"', "PIPESTATUS"),
    ("set -euo pipefail", "set -o pipefail"),
    ("(( n++ ))", "(( arithmetic ))"),
    ("let n=n+1", "let"),
    ('echo -e "a\\tb"', "echo -e"),
    ('if [ "$EUID" -ne 0 ]; then exit 1; fi', "bash-only variable"),
]


@pytest.mark.parametrize(("line", "construct"), BASHISM_CASES)
def test_bashism(tmp_path: Path, line: str, construct: str) -> None:
    pre = f"#!/bin/sh\n# comment\n{line}\n"
    report = lint(make_root(tmp_path, pre=pre))
    found = only(report, "bashism")
    assert any(construct in f.message for f in found), [f.message for f in found]
    hit = next(f for f in found if construct in f.message)
    assert hit.line == 3 and hit.path == "/etc/azure/scripts/pre.sh"
    assert "dash" in hit.message


def test_pipefail_message_says_the_script_stops(tmp_path: Path) -> None:
    report = lint(make_root(tmp_path, pre="#!/bin/sh\nset -o pipefail\necho after\n"))
    (bashism,) = only(report, "bashism")
    assert "Illegal option" in bashism.message and "exit code 2" in bashism.message


@pytest.mark.parametrize(
    "line",
    [
        'mysql -e"FLUSH TABLES WITH READ LOCK; source /etc/db/after.sql"',
        "mariadb -uroot -e \"SELECT 1; source /x.sql; SELECT '[[' == 'x'\"",
        'psql -c "CREATE FUNCTION f() ...; SELECT 1 == 1" postgres',
        "sqlite3 /var/lib/app.db \"BEGIN IMMEDIATE; SELECT 'function f'; COMMIT;\"",
        'redis-cli EVAL "local x = 1; let = 2; return x" 0',
        'mysql -e "\n  FLUSH TABLES;\n  source /etc/db/after.sql\n"',
    ],
)
def test_no_bashism_for_sql_given_to_a_client(tmp_path: Path, line: str) -> None:
    report = lint(make_root(tmp_path, pre=f"#!/bin/sh\n{line}\n"))
    assert only(report, "bashism") == [], report.format_text()


def test_sql_source_and_shell_source_in_one_script(tmp_path: Path) -> None:
    pre = (
        '#!/bin/sh\nmysql -e "FLUSH TABLES; source /etc/db/a.sql"\n'
        "source /etc/default/db\n"
        'echo "${dbs[0]} and $EUID inside quotes are still shell"\n'
    )
    found = only(lint(make_root(tmp_path, pre=pre)), "bashism")
    assert {(f.line, f.message.split(" uses ")[1][:9]) for f in found} == {
        (3, "source FI"),
        (4, "array exp"),
        (4, "bash-only"),
    }


@pytest.mark.parametrize("line", ['sh -c "cd /tmp; source ./env"', 'eval "cd /tmp; source ./env"'])
def test_double_quoted_text_that_sh_runs_again_is_still_checked(tmp_path: Path, line: str) -> None:
    assert only(lint(make_root(tmp_path, pre=f"#!/bin/sh\n{line}\n")), "bashism")


def test_no_bashism_in_comments_quotes_or_heredocs(tmp_path: Path) -> None:
    pre = (
        "#!/bin/sh\n"
        "# in bash you would write [[ -f x ]] or set -o pipefail\n"
        "echo 'no [[ here, nor ${x//a/b}'  # nor [[ here\n"
        'echo "$# args" ${#HOME} ${1:-default} ${HOME:+set} $((1 + 2))\n'
        "cat > /tmp/x.sql <<'EOF'\n"
        "SELECT 1 == 1; function f {}; [[ x ]]\n"
        "EOF\n"
        "mysql <<-EOF2\n"
        "\tSELECT '[[';\n"
        "\tEOF2\n"
        '[ "$a" = "b" ] && echo ok\n'
    )
    report = lint(make_root(tmp_path, pre=pre))
    assert report.ok, report.format_text()


def test_bashism_lines_are_grouped(tmp_path: Path) -> None:
    pre = "#!/bin/sh\n" + "[[ -n x ]] && :\n" * 7
    (bashism,) = only(lint(make_root(tmp_path, pre=pre)), "bashism")
    assert "lines 2, 3, 4, 5, 6 and 2 more" in bashism.message


def test_sh_syntax_error_from_dash(tmp_path: Path) -> None:
    if shutil.which("dash") is None and shutil.which("sh") is None:
        pytest.skip("no sh to check syntax with")
    pre = "#!/bin/sh\necho first\nif then\n"
    report = lint(make_root(tmp_path, pre=pre))
    (syntax,) = only(report, "sh-syntax")
    assert syntax.line == 3
    assert "/etc/azure/scripts/pre.sh" in syntax.message
    assert str(tmp_path) not in syntax.message  # the VM path, not this host's
    assert "exit code 2" in syntax.message


def test_checkbashisms_is_used_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    write(
        bindir / "checkbashisms",
        "#!/bin/sh\n"
        'grep -q lib.sh "$2" || exit 0\n'
        'echo "possible bashism in $2 line 3 (sourced script with arguments):" >&2\n'
        'echo "possible bashism in $2 line 2 ([[ ... ]]):" >&2\n'
        "exit 1\n",
        0o755,
    )
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    pre = "#!/bin/sh\n[[ -f x ]] && :\n. ./lib.sh arg\n"
    report = lint(make_root(tmp_path, pre=pre))
    (cb,) = only(report, "checkbashisms")  # line 2 is already a `bashism` finding
    assert cb.line == 3 and "sourced script with arguments" in cb.message
    assert [f.line for f in only(report, "bashism")] == [2]


def test_checkbashisms_absent_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lint_mod.shutil, "which", lambda name: None)
    report = lint(make_root(tmp_path, pre="#!/bin/sh\nif then\n"))
    assert "checkbashisms" not in ids(report)
    assert "sh-syntax" not in ids(report)  # no shell to check with either: skipped quietly


def test_crlf(tmp_path: Path) -> None:
    report = lint(make_root(tmp_path, pre="#!/bin/sh\r\necho a\r\nexit 0\r\n"))
    (crlf,) = only(report, "crlf")
    assert crlf.line == 1 and "3 lines" in crlf.message
    assert "dos2unix" in crlf.action


def test_utf8_bom(tmp_path: Path) -> None:
    report = lint(make_root(tmp_path, pre=b"\xef\xbb\xbf#!/bin/sh\necho a\n"))
    assert "utf8-bom" in ids(report)


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        ("#!/bin/sh", None),
        ("#! /bin/sh", None),
        ("#!/usr/bin/sh", None),
        ("#!/bin/dash", None),
        ("#!/usr/bin/env sh", None),
        ("#!/bin/bash", "the shebang is ignored"),
        ("#!/usr/bin/env bash", "the shebang is ignored"),
        ("#!/bin/ksh", "the shebang is ignored"),
        ("#!/bin/sh -e", "the options -e never apply"),
        ("#!/usr/bin/env sh -eu", "the options -eu never apply"),
    ],
)
def test_shebang(tmp_path: Path, first: str, expected: str | None) -> None:
    report = lint(make_root(tmp_path, pre=f"{first}\necho hi\n"))
    found = only(report, "shebang-ignored")
    if expected is None:
        assert found == []
        assert report.ok
    else:
        (warning,) = found
        assert expected in warning.message and warning.line == 1
        assert first in warning.message


def test_python_script(tmp_path: Path) -> None:
    pre = "#!/usr/bin/python3\nimport os\nif [[ x ]]: pass\n"
    report = lint(make_root(tmp_path, pre=pre))
    assert set(ids(report)) == {"shebang-ignored", "not-shell"}  # no shell noise on top
    (not_shell,) = only(report, "not-shell")
    assert "python3" in not_shell.message and "exec /usr/bin/python3" in not_shell.action


def test_python_without_shebang(tmp_path: Path) -> None:
    report = lint(make_root(tmp_path, pre="import subprocess\nsubprocess.run(['sync'])\n"))
    assert ids(report) == ["not-shell"]


def test_binary_script(tmp_path: Path) -> None:
    report = lint(make_root(tmp_path, pre=b"\x7fELF\x02\x01\x01\x00" + bytes(64)))
    (warning,) = report.warnings
    assert warning.id == "not-shell" and "binary" in warning.message


def test_exit_2(tmp_path: Path) -> None:
    pre = "#!/bin/sh\n# exit 2 in a comment\nexit 20\n[ -f x ] || exit 2\n"
    (warning,) = only(lint(make_root(tmp_path, pre=pre)), "exit-2")
    assert warning.line == 4 and "300/301" in warning.message


def test_script_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(lint_mod, "_read_head", refuse)
    report = lint(make_root(tmp_path))
    assert ids(report) == ["script-unreadable", "script-unreadable"]
    assert "Permission denied" in report.warnings[0].message


def test_same_script_for_pre_and_post_is_linted_once(tmp_path: Path) -> None:
    script = "#!/bin/bash\nmysql -e 'FLUSH TABLES WITH READ LOCK'\nexit 2\n"
    root = make_root(
        tmp_path, {"postScriptLocation": "/etc/azure/scripts/pre.sh"}, pre=script, post=None
    )
    report = lint(root)
    assert sorted(ids(report)) == ["exit-2", "lock-released-on-exit", "shebang-ignored"]


# ---------------------------------------------------------------------------------------------
# Database heuristics


def test_read_lock_in_a_client_that_exits(tmp_path: Path) -> None:
    pre = '#!/bin/sh\nmysql -e "FLUSH TABLES WITH READ LOCK; SET GLOBAL read_only = ON;"\n'
    (warning,) = lint(make_root(tmp_path, pre=pre)).warnings
    assert warning.id == "lock-released-on-exit" and warning.line == 2
    assert "session" in warning.message and "SLEEP" in warning.action


def test_read_lock_held_in_a_background_session(tmp_path: Path) -> None:
    pre = (
        "#!/bin/sh\n"
        "mkfifo /run/q\n"
        "( echo 'FLUSH TABLES WITH READ LOCK; SELECT SLEEP(600);' | mysql ) &\n"
    )
    assert lint(make_root(tmp_path, pre=pre)).ok


def test_read_lock_in_a_heredoc_is_seen(tmp_path: Path) -> None:
    pre = "#!/bin/sh\nmysql <<EOF\nflush tables with read lock;\nEOF\n"
    (warning,) = lint(make_root(tmp_path, pre=pre)).warnings
    assert warning.id == "lock-released-on-exit" and warning.line == 3


def test_lock_only_matters_in_the_pre_script(tmp_path: Path) -> None:
    post = "#!/bin/sh\nmysql -e 'UNLOCK TABLES; FLUSH TABLES WITH READ LOCK'\n"
    assert lint(make_root(tmp_path, post=post)).ok


def test_sqlite_lock_released_on_exit(tmp_path: Path) -> None:
    pre = "#!/bin/sh\nsqlite3 /var/lib/app/app.db 'BEGIN IMMEDIATE;'\n"
    assert ids(lint(make_root(tmp_path, pre=pre))) == ["lock-released-on-exit"]


def test_pg_start_backup_removed(tmp_path: Path) -> None:
    post = '#!/bin/sh\npsql -c "SELECT pg_stop_backup();"\n'
    (warning,) = lint(make_root(tmp_path, post=post)).warnings
    assert warning.id == "pg-start-backup-removed"
    assert "PostgreSQL 15" in warning.message and warning.path == "/etc/azure/scripts/post.sh"


def test_pg_backup_start_in_a_session_that_ends(tmp_path: Path) -> None:
    pre = "#!/bin/sh\npsql -c \"SELECT pg_backup_start('snap', true);\"\n"
    (warning,) = lint(make_root(tmp_path, pre=pre)).warnings
    assert warning.id == "pg-backup-start-session"
    assert "aborts it when the session ends" in warning.message
    held = "#!/bin/sh\nmkfifo /run/pg\n(psql < /run/pg) & exec 3>/run/pg\n" + (
        "echo \"SELECT pg_backup_start('snap'); SELECT pg_sleep(600);\" >&3\n"
    )
    assert "pg-backup-start-session" not in ids(lint(make_root(tmp_path / "h", pre=held)))


def test_bgsave_without_waiting(tmp_path: Path) -> None:
    pre = "#!/bin/sh\nredis-cli BGSAVE\n"
    (warning,) = lint(make_root(tmp_path, pre=pre)).warnings
    assert warning.id == "redis-bgsave-no-wait" and "rdb_bgsave_in_progress" in warning.action
    waits = (
        "#!/bin/sh\nbefore=$(redis-cli LASTSAVE)\nredis-cli bgsave\n"
        'while [ "$(redis-cli LASTSAVE)" = "$before" ]; do sleep 1; done\n'
    )
    assert lint(make_root(tmp_path / "w", pre=waits)).ok


def test_script_that_freezes_a_file_system(tmp_path: Path) -> None:
    pre = "#!/bin/sh\nsync\nfsfreeze -f /var/lib/mysql\n"
    (warning,) = lint(make_root(tmp_path, pre=pre)).warnings
    assert warning.id == "script-freezes-fs" and warning.line == 3


SET_SUPER_READ_ONLY = (
    "#!/bin/sh\nmysql -e 'SET GLOBAL read_only = ON; SET GLOBAL super_read_only = ON'\n"
)


def test_super_read_only_fails_on_mariadb(tmp_path: Path) -> None:
    (warning,) = lint(make_root(tmp_path, pre=SET_SUPER_READ_ONLY)).warnings
    assert warning.id == "super-read-only" and warning.line == 2
    assert "MySQL variable (5.7.8 and later)" in warning.message
    assert "It fails on MariaDB with ERROR 1193" in warning.message
    assert "SET GLOBAL read_only = ON" in warning.action and "NO_LOCK_NO_ADMIN" in warning.action


def test_super_read_only_on_a_machine_that_runs_mariadb(tmp_path: Path) -> None:
    root = make_root(tmp_path, post="#!/bin/sh\nmysql -e 'SELECT @@global.super_read_only'\n")
    write(root / "usr/sbin/mariadbd", "", 0o755)
    (warning,) = lint(root).warnings
    assert warning.path == "/etc/azure/scripts/post.sh"
    assert "This machine runs MariaDB (/usr/sbin/mariadbd is installed)" in warning.message
    client = '#!/bin/sh\nmariadb -e "SET GLOBAL super_read_only=1"\n'
    (warning,) = lint(make_root(tmp_path / "c", pre=client)).warnings
    assert "pre.sh runs the mariadb client" in warning.message


def test_super_read_only_named_but_not_used(tmp_path: Path) -> None:
    pre = (
        "#!/bin/sh\n# SET GLOBAL super_read_only = ON on MySQL\n"
        "mysql -e \"SHOW VARIABLES LIKE 'super_read_only'\"\n"
    )
    assert lint(make_root(tmp_path, pre=pre)).ok


# ---------------------------------------------------------------------------------------------
# Files a pre-script brings in (sourced, run, fed to a client), read under the root


def _db_files(root: Path) -> None:
    """A wrapper that runs a main script, which sources its helpers through a for loop (the
    shape of the MySQL sample scripts); the helper takes the lock."""
    (root / "opt").mkdir(mode=0o755, exist_ok=True)
    write(
        root / "opt/db/main.sh",
        "#!/bin/bash\nfor lib in /opt/db/env.sh /opt/db/lib.sh; do\n"
        "  source ${lib}\ndone\nquiesce\n",
        0o700,
    )
    write(root / "opt/db/env.sh", 'CLIENT="/usr/bin/mysql --defaults-file=/root/.my.cnf"\n', 0o600)
    write(
        root / "opt/db/lib.sh",
        "# helpers\nquiesce() {\n"
        '  ${CLIENT} -e "FLUSH TABLES WITH READ LOCK; SET GLOBAL read_only = ON;"\n}\n',
        0o600,
    )
    write(
        root / "opt/db/lock.sql",
        "-- FLUSH TABLES WITH READ LOCK in a comment\nSELECT 1;\nFLUSH TABLES WITH READ LOCK;\n",
        0o600,
    )


def test_lock_in_a_file_the_pre_script_runs_and_that_sources_it(tmp_path: Path) -> None:
    root = make_root(tmp_path, pre="#!/bin/sh\n# wrapper\n/bin/bash /opt/db/main.sh pre\n")
    _db_files(root)
    (warning,) = lint(root).warnings
    assert warning.id == "lock-released-on-exit"
    assert (warning.path, warning.line) == ("/opt/db/lib.sh", 3)
    assert (
        "line 3 of /opt/db/lib.sh, sourced on line 3 of /opt/db/main.sh, run on line 3"
        in warning.message
    )
    assert warning.message.startswith("/etc/azure/scripts/pre.sh takes a lock (")


@pytest.mark.parametrize(
    ("line", "how"),
    [
        ("mysql < /opt/db/lock.sql", "fed to mysql on line 2"),
        ("mysql -uroot </opt/db/lock.sql", "fed to mysql on line 2"),
        ('mysql -e "source /opt/db/lock.sql"', "sourced by mysql on line 2"),
        ('SQL=/opt/db/lock.sql; mariadb -e "\\. $SQL"', "sourced by mariadb on line 2"),
    ],
)
def test_lock_in_a_sql_file_fed_to_a_client(tmp_path: Path, line: str, how: str) -> None:
    root = make_root(tmp_path, pre=f"#!/bin/sh\n{line}\n")
    _db_files(root)
    (warning,) = lint(root).warnings
    assert warning.id == "lock-released-on-exit"
    assert (warning.path, warning.line) == ("/opt/db/lock.sql", 3)  # not the comment on 1
    assert f"line 3 of /opt/db/lock.sql, {how}" in warning.message


def test_lock_in_a_sourced_file_next_to_the_script(tmp_path: Path) -> None:
    pre = '#!/bin/sh\n. "$(dirname "$0")/lock.sh"\n'
    root = make_root(tmp_path, pre=pre)
    write(root / "etc/azure/scripts/lock.sh", "mysql -e 'FLUSH TABLES WITH READ LOCK'\n", 0o600)
    (warning,) = lint(root).warnings
    assert warning.path == "/etc/azure/scripts/lock.sh" and "sourced on line 2" in warning.message


def test_included_files_that_cannot_be_read_are_skipped(tmp_path: Path) -> None:
    pre = (
        '#!/bin/sh\n. /opt/db/missing.sh\nsh "$UNKNOWN/x.sh"\nmysql < /opt/db\n'
        "mysql < /opt/db/fifo\nsh /opt/db/escape.sh\n"
    )
    root = make_root(tmp_path, pre=pre)
    _db_files(root)
    os.mkfifo(root / "opt/db/fifo")
    # Outside the root, reached through a link: resolved as on the VM, where it is not there.
    write(tmp_path / "escape.sh", "mysql -e 'FLUSH TABLES WITH READ LOCK'\n", 0o600)
    (root / "opt/db/escape.sh").symlink_to("../../../escape.sh")
    assert lint(root).ok


def test_lock_in_an_included_file_held_by_the_script(tmp_path: Path) -> None:
    pre = "#!/bin/sh\nmkfifo /run/q\nmysql < /run/q &\nexec 3>/run/q\n. /opt/db/lib.sh\n"
    root = make_root(tmp_path, pre=pre)
    _db_files(root)
    assert "lock-released-on-exit" not in ids(lint(root))


def test_files_included_by_a_post_script_are_not_followed(tmp_path: Path) -> None:
    root = make_root(tmp_path, post="#!/bin/sh\n/bin/bash /opt/db/main.sh post\n")
    _db_files(root)
    assert lint(root).ok


# ---------------------------------------------------------------------------------------------
# A pre-script that waits for what only the post-script does


def test_pre_script_waits_for_its_lock_holder(tmp_path: Path) -> None:
    pre = (
        "#!/bin/sh\n"
        'mysql -e "FLUSH TABLES WITH READ LOCK; SELECT SLEEP(86400)" &\n'
        "echo $! > /run/holder.pid\n"
        "wait\n"
    )
    post = '#!/bin/sh\nkill "$(cat /run/holder.pid)"\n'
    report = lint(make_root(tmp_path, pre=pre, post=post))
    (warning,) = only(report, "pre-waits-on-post")
    assert (warning.path, warning.line) == ("/etc/azure/scripts/pre.sh", 4)
    assert "waits ('wait' on line 4) for the mysql session" in warning.message
    assert "until the post-script ends it (post-script line 2)" in warning.message
    assert "308" in warning.message and "however large the timeout" in warning.message
    assert "nohup setsid" in warning.action and "pid to a file" in warning.action
    assert "Raising timeoutInSeconds does not help" in warning.action


def test_pre_script_loops_on_a_flag_the_post_script_removes(tmp_path: Path) -> None:
    pre = (
        "#!/bin/sh\nFLAG=/run/vmsnap-hold\n"
        'mysql -e "FLUSH TABLES WITH READ LOCK; SELECT SLEEP(600)" &\n'
        'touch "$FLAG"\nwhile [ -e "$FLAG" ]; do sleep 1; done\n'
    )
    post = "#!/bin/sh\nrm -f /run/vmsnap-hold\n"
    (warning,) = only(lint(make_root(tmp_path, pre=pre, post=post)), "pre-waits-on-post")
    assert warning.line == 5 and "until /run/vmsnap-hold is removed" in warning.message


def test_pre_script_that_backgrounds_its_holder_and_returns(tmp_path: Path) -> None:
    pre = (
        "#!/bin/sh\n"
        'nohup setsid mysql -e "FLUSH TABLES WITH READ LOCK; SELECT SLEEP(600)" >/dev/null 2>&1 &\n'
        "echo $! > /run/holder.pid\n"
        "sleep 2\n"
    )
    post = '#!/bin/sh\nkill "$(cat /run/holder.pid)"\nrm -f /run/holder.pid\n'
    assert "pre-waits-on-post" not in ids(lint(make_root(tmp_path, pre=pre, post=post)))


def test_one_script_for_pre_and_post_is_not_compared_with_itself(tmp_path: Path) -> None:
    script = (
        '#!/bin/sh\ncase "$1" in\n  pre) until [ -f /run/thaw ]; do sleep 1; done ;;\n'
        "  post) touch /run/thaw ;;\nesac\n"
    )
    root = make_root(
        tmp_path, {"postScriptLocation": "/etc/azure/scripts/pre.sh"}, pre=script, post=None
    )
    assert "pre-waits-on-post" not in ids(lint(root))


# ---------------------------------------------------------------------------------------------
# Config values


def test_params_string(tmp_path: Path) -> None:
    (warning,) = lint(make_root(tmp_path, {"preScriptParams": "/data"})).warnings
    assert warning.id == "params-string"
    assert "'/', 'd', 'a', 't', 'a'" in warning.message
    assert '["/data"]' in warning.action


@pytest.mark.parametrize("value", [5, True, None, 1.5])
def test_params_that_crash_the_plugin_thread(tmp_path: Path, value: Any) -> None:
    (warning,) = lint(make_root(tmp_path, {"postScriptParams": value})).warnings
    assert warning.id == "params-crash"
    assert "(311)" in warning.message and "30 minutes" in warning.message


def test_params_object(tmp_path: Path) -> None:
    (warning,) = lint(make_root(tmp_path, {"preScriptParams": {"db": "x"}})).warnings
    assert warning.id == "params-not-list" and '"db"' in warning.message


def test_params_items_that_are_not_strings(tmp_path: Path) -> None:
    (warning,) = lint(make_root(tmp_path, {"preScriptParams": ["a", 5, True, None]})).warnings
    assert warning.id == "params-non-string-item"
    assert 'true -> "True"' in warning.message and 'null -> "None"' in warning.message


def test_params_empty_items_from_the_template(tmp_path: Path) -> None:
    (warning,) = lint(make_root(tmp_path, {"preScriptParams": ["", ""]})).warnings
    assert warning.id == "params-empty-item" and "$# = 2" in warning.message


def test_plugin_name_not_a_string(tmp_path: Path) -> None:
    report = lint(make_root(tmp_path, {"pluginName": 7}))
    assert report.errors == []
    assert ids(report) == ["plugin-name-not-string"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"timeoutInSeconds": 30}, []),
        ({"timeoutInSeconds": 10}, ["timeout-rounded"]),
        ({"timeoutInSeconds": 7, "ScriptsExecutionPollTimeSeconds": 5}, ["timeout-rounded"]),
        ({"timeoutInSeconds": 7, "ScriptsExecutionPollTimeSeconds": 1}, []),
        ({"timeoutInSeconds": 3600}, ["timeout-capped"]),
        ({"timeoutInSeconds": 4000, "ScriptsExecutionPollTimeSeconds": 4}, ["timeout-capped"]),
        ({"timeoutInSeconds": 0}, ["timeout-not-positive"]),
        ({"timeoutInSeconds": -5}, ["timeout-not-positive"]),
        ({"ScriptsExecutionPollTimeSeconds": 0}, ["poll-ignored"]),
        (
            {"ScriptsExecutionPollTimeSeconds": 9, "timeoutInSeconds": 10},
            ["poll-ignored", "timeout-rounded"],
        ),
        ({"ScriptsExecutionPollTimeSeconds": 2.5}, ["poll-truncated"]),
        ({"ScriptsExecutionPollTimeSeconds": "2"}, []),
    ],
)
def test_timeouts_and_poll(tmp_path: Path, config: dict[str, Any], expected: list[str]) -> None:
    report = lint(make_root(tmp_path, config))
    assert report.errors == []
    assert ids(report) == expected


def test_timeout_rounding_message(tmp_path: Path) -> None:
    (warning,) = lint(make_root(tmp_path, {"timeoutInSeconds": 10})).warnings
    assert "after 12 s" in warning.message and "ceil(10/3)*3" in warning.message


def test_timeout_cap_follows_the_host_file(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"timeoutInSeconds": 900})
    write(
        root / "etc/azure/VMSnapshotPluginHost.conf",
        "[pre_post]\ntimeoutInSeconds: 600\nnumberOfPlugins: 1\npluginName0: ScriptRunner\n"
        "pluginPath0: /etc/azure\n"
        "pluginConfigPath0: /etc/azure/VMSnapshotScriptPluginConfig.json\n",
        0o644,
    )
    (warning,) = lint(root).warnings
    assert warning.id == "timeout-capped" and "600 s" in warning.message


def test_timeout_missing(tmp_path: Path) -> None:
    report = lint(make_root(tmp_path, drop=("timeoutInSeconds",)))
    (missing,) = only(report, "timeout-missing")
    assert "10 s" in missing.message and "30" in missing.message


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"preScriptNoOfRetries": 1}, ["retries-ignored", "profile-difference"]),
        ({"preScriptNoOfRetries": "1"}, ["retries-not-number"]),
        ({"postScriptNoOfRetries": None}, ["retries-not-number"]),
        ({"preScriptNoOfRetries": 0}, []),
    ],
)
def test_retries(tmp_path: Path, config: dict[str, Any], expected: list[str]) -> None:
    assert ids(lint(make_root(tmp_path, config))) == expected


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("continueBackupOnFailure", "false", "error 2"),
        ("fsFreezeEnabled", "false", '"false" acts as true'),
        ("fsFreezeEnabled", None, "acts as false"),
        ("continueBackupOnFailure", 2, "True & 2) it gives 0"),
    ],
)
def test_flags_that_are_not_booleans(tmp_path: Path, key: str, value: Any, fragment: str) -> None:
    (warning,) = lint(make_root(tmp_path, {key: value})).warnings
    assert warning.id == "flag-not-boolean" and fragment in warning.message


@pytest.mark.parametrize("value", [True, False, 0, 1])
def test_flags_that_work(tmp_path: Path, value: Any) -> None:
    root = make_root(tmp_path, {"continueBackupOnFailure": value, "fsFreezeEnabled": value})
    assert lint(root).ok


@pytest.mark.parametrize(
    ("key", "meant"),
    [("timeoutInSecond", "timeoutInSeconds"), ("TimeoutInSeconds", "timeoutInSeconds")],
)
def test_unknown_key_close_to_a_real_one(tmp_path: Path, key: str, meant: str) -> None:
    root = make_root(tmp_path, {key: 60})
    unknown = only(lint(root), "unknown-key")
    assert len(unknown) == 1 and f'"{meant}"' in unknown[0].message


def test_unrelated_extra_key_is_fine(tmp_path: Path) -> None:
    assert lint(make_root(tmp_path, {"_comment": "managed by ansible"})).ok


def test_duplicate_key(tmp_path: Path) -> None:
    text = json.dumps(CLEAN_CONFIG)[:-1] + ', "timeoutInSeconds": 60}'
    (warning,) = lint(make_root(tmp_path, raw_config=text)).warnings
    assert warning.id == "duplicate-key" and "timeoutInSeconds" in warning.message


def test_odd_json_values_do_not_crash(tmp_path: Path) -> None:
    nested: Any = []
    for _ in range(50):
        nested = [nested]
    odd = {
        "timeoutInSeconds": 10**30,
        "preScriptNoOfRetries": float("inf"),
        "postScriptParams": [nested, "x" * 500],
        "ScriptsExecutionPollTimeSeconds": -(10**40),
    }
    report = lint(make_root(tmp_path, odd))
    assert {"timeout-capped", "retries-ignored", "params-non-string-item"} <= set(ids(report))
    assert "Traceback" not in report.format_text()
    deep = "[" * 100_000 + "]" * 100_000
    assert [e.code for e in lint(make_root(tmp_path / "d", raw_config=deep)).errors] == [304]


# ---------------------------------------------------------------------------------------------
# Who can replace the scripts


def test_parent_directory_writable_by_everyone(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "etc/azure/scripts").chmod(0o777)
    (warning,) = lint(root).warnings
    assert warning.id == "writable-path" and warning.path == "/etc/azure/scripts"
    assert "writable by every user" in warning.message
    assert "/etc/azure/scripts/pre.sh and /etc/azure/scripts/post.sh" in warning.message
    assert "chmod go-w /etc/azure/scripts" in warning.action


def test_parent_directory_owned_by_another_user(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    os.chown(root / "etc/azure", NOBODY, 0)
    (warning,) = lint(root).warnings
    assert warning.id == "writable-path" and warning.path == "/etc/azure"
    assert "nobody (uid 65534)" in warning.message
    assert "VMSnapshotScriptPluginConfig.json" in warning.message  # the config is there too


def test_group_writable_directory(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    scripts = root / "etc/azure/scripts"
    scripts.chmod(0o775)
    assert lint(root).ok  # group root: only root's own group can write
    os.chown(scripts, 0, NOBODY)
    (warning,) = lint(root).warnings
    assert warning.id == "writable-path" and "writable by group" in warning.message


def test_sticky_directory_is_not_replaceable(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"preScriptLocation": "/tmp/pre.sh"})
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    write(root / "tmp/pre.sh", PRE_OK, 0o700)
    assert lint(root).ok


def test_root_directory_itself_is_checked(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    root.chmod(0o757)
    (warning,) = lint(root).warnings
    assert warning.id == "writable-path" and warning.path == "/"


def test_symlinked_script_into_a_writable_directory(tmp_path: Path) -> None:
    root = make_root(tmp_path, pre=None)
    (root / "opt/app").mkdir(parents=True)
    (root / "opt").chmod(0o755)
    (root / "opt/app").chmod(0o777)
    write(root / "opt/app/pre.sh", PRE_OK, 0o700)
    # An absolute link target is read as a path on the VM, i.e. below the root.
    (root / PRE).symlink_to("/opt/app/pre.sh")
    if not (root / PRE).is_file():  # the pre-check follows links on this host, not the VM
        (root / PRE).unlink()
        (root / PRE).symlink_to("../../../opt/app/pre.sh")
    report = lint(root)
    assert report.errors == []
    (warning,) = report.warnings
    assert warning.id == "writable-path" and warning.path == "/opt/app"


def test_symlinked_directory_resolved_under_the_root(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "srv/real").mkdir(parents=True)
    (root / "srv").chmod(0o777)
    (root / "srv/real").chmod(0o755)
    (root / "etc/azure/link").symlink_to("/srv/real")
    report = lint(root)
    assert report.ok  # nothing points through the link yet
    cfg = {**CLEAN_CONFIG, "preScriptLocation": "/etc/azure/link/pre.sh"}
    (root / CONFIG).write_text(json.dumps(cfg))
    write(root / "srv/real/pre.sh", PRE_OK, 0o700)
    # Only the warnings: the pre-check itself follows an absolute link on this host, where
    # /srv/real does not exist (a limitation of checks.precheck with a root other than /).
    warnings = only(lint(root), "writable-path")
    assert [w.path for w in warnings] == ["/srv"]


# ---------------------------------------------------------------------------------------------
# Catalogue: every warning id has at least one case that produces it


@dataclass(frozen=True)
class Case:
    wid: str
    config: dict[str, Any] | None = None
    pre: str | bytes = PRE_OK
    post: str | bytes = POST_OK
    setup: Callable[[Path], None] | None = None


def _workload(root: Path) -> None:
    write(root / "etc/azure/workload.conf", "[workload]\nworkload_name = postgres\n", 0o644)


def _no_plugins(root: Path) -> None:
    write(root / "etc/azure/VMSnapshotPluginHost.conf", "[pre_post]\n", 0o644)


def _writable(root: Path) -> None:
    (root / "etc").chmod(0o777)


def _docs_mode(root: Path) -> None:
    (root / PRE).chmod(0o500)


CATALOGUE = [
    Case("workload-takes-over", setup=_workload),
    Case("host-no-plugins", setup=_no_plugins),
    Case("bashism", pre="#!/bin/sh\n[[ -n x ]]\n"),
    Case("sh-syntax", pre="#!/bin/sh\nfor x in 1; do\n"),
    Case("crlf", pre="#!/bin/sh\r\necho\r\n"),
    Case("utf8-bom", pre=b"\xef\xbb\xbfecho\n"),
    Case("shebang-ignored", pre="#!/bin/bash\necho\n"),
    Case("not-shell", pre="#!/usr/bin/env python3\nprint(1)\n"),
    Case("exit-2", post="#!/bin/sh\nexit 2\n"),
    Case("params-string", {"postScriptParams": "x"}),
    Case("params-not-list", {"postScriptParams": {"a": 1}}),
    Case("params-crash", {"preScriptParams": 3}),
    Case("params-non-string-item", {"preScriptParams": [1]}),
    Case("params-empty-item", {"postScriptParams": [""]}),
    Case("plugin-name-not-string", {"pluginName": None}),
    Case("timeout-missing", {"timeoutInSeconds": None}),
    Case("timeout-rounded", {"timeoutInSeconds": 31}),
    Case("timeout-capped", {"timeoutInSeconds": 99999}),
    Case("timeout-not-positive", {"timeoutInSeconds": 0}),
    Case("poll-ignored", {"ScriptsExecutionPollTimeSeconds": 6}),
    Case("poll-truncated", {"ScriptsExecutionPollTimeSeconds": 1.5}),
    Case("retries-ignored", {"preScriptNoOfRetries": 2}),
    Case("retries-not-number", {"postScriptNoOfRetries": "2"}),
    Case("flag-not-boolean", {"fsFreezeEnabled": "true"}),
    Case("unknown-key", {"fsFreezeEnable": False}),
    Case("writable-path", setup=_writable),
    Case("profile-difference", setup=_docs_mode),
    Case("lock-released-on-exit", pre="#!/bin/sh\nmysql -e 'FLUSH TABLES WITH READ LOCK'\n"),
    Case("pg-start-backup-removed", pre="#!/bin/sh\npsql -c 'SELECT pg_start_backup(1)'\n"),
    Case("pg-backup-start-session", pre="#!/bin/sh\npsql -c 'SELECT pg_backup_start(1)'\n"),
    Case("redis-bgsave-no-wait", pre="#!/bin/sh\nredis-cli bgsave\n"),
    Case("script-freezes-fs", pre="#!/bin/sh\nxfs_freeze -f /data\n"),
    Case(
        "pre-waits-on-post",
        pre="#!/bin/sh\nuntil [ -f /run/thaw ]; do sleep 1; done\n",
        post="#!/bin/sh\ntouch /run/thaw\n",
    ),
    Case("super-read-only", post="#!/bin/sh\nmysql -e 'SET GLOBAL super_read_only = OFF'\n"),
]
# Covered by dedicated tests above (they need a fake tool, a failing read or raw JSON text).
ELSEWHERE = {"checkbashisms", "script-unreadable", "duplicate-key"}


def test_catalogue_covers_every_warning_id() -> None:
    assert {c.wid for c in CATALOGUE} | ELSEWHERE == set(WARNING_IDS)


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda c: c.wid)
def test_catalogue(tmp_path: Path, case: Case) -> None:
    config = dict(case.config or {})
    drop = tuple(k for k, v in config.items() if v is None and k == "timeoutInSeconds")
    for key in drop:
        config.pop(key)
    root = make_root(tmp_path, config, pre=case.pre, post=case.post, drop=drop)
    if case.setup:
        case.setup(root)
    report = lint(root)
    assert case.wid in ids(report), report.format_text()
    found = only(report, case.wid)[0]
    assert found.message and found.action
    assert f"warning {case.wid}: " in report.format_text()
    assert "Traceback" not in report.format_text()
