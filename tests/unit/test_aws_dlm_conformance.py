"""Conformance of the AWS DLM engine: the policy's Script settings, the SSM document contract,
the SSM agent's runShellScript, and DLM's outcome table, one case per fact.

Each case writes a machine root in ``tmp_path`` with the document (and policy) at the harness's
paths and tiny shell steps, runs the engine with every timeout scaled by ``SCALE`` (DLM's
10 s ExecutionTimeout is then 0.5 s) and recording fakes for the freezer and snapshotter.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap.framework.aws_dlm import agent, codes, hosting
from pytest_vmsnap.framework.aws_dlm.document import DOCUMENT_PATH, parse_document, read_document
from pytest_vmsnap.framework.aws_dlm.engine import AwsDlmEngine, make
from pytest_vmsnap.framework.aws_dlm.policy import POLICY_PATH, parse_policy, read_policy
from pytest_vmsnap.framework.engine import EVENTS, Given
from pytest_vmsnap.framework.engines import get
from pytest_vmsnap.framework.interfaces import FreezeResult, SnapshotResult, ThawResult
from pytest_vmsnap.framework.outcome import APPLICATION, NO_SNAPSHOT, NOT_QUIESCED, FrameworkCycle

SCALE = 0.05
ENGINE = AwsDlmEngine(time_scale=SCALE)
UUID = re.compile(r"^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$")


class Rec:
    """Records freeze, thaw and snapshot calls into one list."""

    def __init__(self, snapshot_ok: bool = True) -> None:
        self.log: list[str] = []
        self.ok = snapshot_ok

    def freeze(self) -> FreezeResult:
        self.log.append("freeze")
        return FreezeResult(0)

    def thaw(self) -> ThawResult:
        self.log.append("thaw")
        return ThawResult(0)

    def snapshot(self) -> SnapshotResult:
        self.log.append("snapshot")
        if self.ok:
            return SnapshotResult(0, True, "fake")
        return SnapshotResult(9, False, "fake", message="disk copy failed")


def dispatch(pre: str = "echo pre", post: str = "echo post", dry: str = "echo dry") -> list[str]:
    return [
        "#!/bin/sh",
        'case "{{ command }}" in',
        f"  pre-script) {pre} ;;",
        f"  post-script) {post} ;;",
        f"  dry-run) {dry} ;;",
        "  *) exit 1 ;;",
        "esac",
    ]


def document(
    lines: list[str] | None = None,
    *,
    allowed: list[str] | None = None,
    params: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
    steps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "executionId": {
            "type": "String",
            "default": "None",
            "allowedPattern": "^(None|[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-"
            "[a-fA-F0-9]{4}-[a-fA-F0-9]{12})$",
        },
        "command": {
            "type": "String",
            "default": "dry-run",
            "allowedValues": allowed or ["pre-script", "post-script", "dry-run"],
        },
    }
    parameters.update(params or {})
    if steps is None:
        steps = [
            {
                "action": "aws:runShellScript",
                "name": "run",
                "inputs": {"runCommand": lines or dispatch(), **(inputs or {})},
            }
        ]
    return {"schemaVersion": "2.2", "parameters": parameters, "mainSteps": steps}


def machine(tmp_path: Path, doc: Any = None, policy: Any = None) -> Path:
    root = tmp_path / "root"
    root.mkdir(parents=True, exist_ok=True)
    if doc is not None:
        p = root / DOCUMENT_PATH.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    if policy is not None:
        p = root / POLICY_PATH.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(policy if isinstance(policy, str) else json.dumps(policy))
    return root


def run(
    root: Path, rec: Rec | None = None, engine: AwsDlmEngine = ENGINE
) -> tuple[FrameworkCycle, list[str], Rec]:
    rec = rec or Rec()
    events: list[str] = []
    result = engine.run_cycle(root, freezer=rec, snapshotter=rec, observer=events.append)
    return result, events, rec


def phases(result: FrameworkCycle) -> list[str]:
    return [c.phase for c in result.calls]


# --- policy: Script settings, defaults and limits -----------------------------------------


def test_policy_defaults_without_file(tmp_path: Path, record_property: Any) -> None:
    """API_Script defaults: Stages PRE and POST, ExecutionTimeout 10, MaximumRetryCount 0,
    ExecuteOperationOnScriptFailure true, when no policy file is placed."""
    s = read_policy(machine(tmp_path)).settings
    got = (s.stages, s.timeout_s, s.retries, s.crash_fallback, s.given)
    record_property("expected", "(('PRE', 'POST'), 10, 0, True, False)")
    record_property("got", str(got))
    assert got == (("PRE", "POST"), 10, 0, True, False)


@pytest.mark.parametrize(
    "script",
    [
        {"ExecutionTimeout": 9},
        {"ExecutionTimeout": 121},
        {"ExecutionTimeout": "30"},
        {"ExecutionTimeout": True},
        {"MaximumRetryCount": 4},
        {"MaximumRetryCount": -1},
        {"Stages": []},
        {"Stages": ["PRE", "PRE"]},
        {"Stages": ["MID"]},
        {"Stages": "PRE"},
        {"ExecuteOperationOnScriptFailure": "yes"},
        {"ExecutionHandlerService": "AWS_LAMBDA"},
        {"Timeout": 30},
    ],
    ids=lambda s: f"{next(iter(s))}={next(iter(s.values()))!r}",
)
def test_policy_out_of_limits_rejected(
    tmp_path: Path, script: dict[str, Any], record_property: Any
) -> None:
    """botocore dlm service-2.json: ScriptExecutionTimeout 10..120, ScriptMaximumRetryCount 0..3,
    StagesList 1..2 of PRE|POST, ExecutionHandlerService AWS_SYSTEMS_MANAGER: outside them the
    API refuses the policy, so nothing runs and no snapshot is taken."""
    root = machine(tmp_path, document(), {"ExecutionHandler": "doc", **script})
    result, events, rec = run(root)
    got = (result.status, result.outcome, result.calls, rec.log, events)
    record_property("expected", "NO_SNAPSHOT, POLICY_REJECTED, no call, no snapshot")
    record_property("got", f"{result.status}, {result.outcome}, {len(result.calls)} calls")
    assert got == (NO_SNAPSHOT, codes.POLICY_REJECTED, [], [], ["precheck_end"])


@pytest.mark.parametrize(
    "shape",
    ["script", "list", "scripts", "create-rule", "policy-details", "request"],
)
def test_policy_shapes(shape: str, record_property: Any) -> None:
    """The harness reads the Script object alone or inside Scripts / CreateRule /
    PolicyDetails / a create-lifecycle-policy request (the same settings each time)."""
    script = {
        "Stages": ["PRE"],
        "ExecutionTimeout": 30,
        "MaximumRetryCount": 2,
        "ExecuteOperationOnScriptFailure": False,
        "ExecutionHandler": "d",
    }
    rule = {"CreateRule": {"Interval": 24, "Scripts": [script]}}
    data: Any = {
        "script": script,
        "list": [script],
        "scripts": {"Scripts": [script]},
        "create-rule": {"Schedules": [rule]},
        "policy-details": {"PolicyType": "EBS_SNAPSHOT_MANAGEMENT", "Schedules": [rule]},
        "request": {"PolicyDetails": {"Schedules": [rule]}},
    }[shape]
    read = parse_policy(data)
    s = read.settings
    got = (read.error, s.stages, s.timeout_s, s.retries, s.crash_fallback)
    record_property("got", str(got))
    assert got == ("", ("PRE",), 30, 2, False)


def test_policy_one_script_only(record_property: Any) -> None:
    """ScriptsList max 1 (service-2.json; DLM's LimitExceededException for a second one)."""
    read = parse_policy({"Scripts": [{"Stages": ["PRE"]}, {"Stages": ["POST"]}]})
    record_property("got", read.error)
    assert "one" in read.error


def test_policy_not_json(tmp_path: Path, record_property: Any) -> None:
    """A policy file that is not JSON: the policy could not be created (POLICY_REJECTED)."""
    result, _, rec = run(machine(tmp_path, document(), "{Stages: PRE"))
    record_property("got", f"{result.outcome}: {result.message}")
    assert (result.status, result.outcome, rec.log) == (NO_SNAPSHOT, codes.POLICY_REJECTED, [])


def test_policy_vss_not_modelled(tmp_path: Path, record_property: Any) -> None:
    """ExecutionHandler AWS_VSS_BACKUP runs AWS's Windows VSS document: not modelled, refused."""
    root = machine(tmp_path, document(), {"ExecutionHandler": "AWS_VSS_BACKUP"})
    result, _, rec = run(root)
    record_property("got", result.outcome)
    assert (result.outcome, rec.log, result.calls) == (codes.NOT_MODELLED, [], [])


# --- the document's contract --------------------------------------------------------------


def test_document_missing(tmp_path: Path, record_property: Any) -> None:
    """Without a document DLM has nothing to run: DOCUMENT_REJECTED, no snapshot."""
    result, events, rec = run(machine(tmp_path))
    record_property("got", f"{result.outcome}: {result.message}")
    assert (result.status, result.outcome, rec.log, events) == (
        NO_SNAPSHOT,
        codes.DOCUMENT_REJECTED,
        [],
        ["precheck_end"],
    )


@pytest.mark.parametrize("variant", ["no-command", "no-allowed-values", "empty-allowed"])
def test_document_without_command_allowed_values(
    tmp_path: Path, variant: str, record_property: Any
) -> None:
    """DLM refuses the policy: "The specified SSM document must provide allowed values in
    {parameters.command.allowedValues}" (create-lifecycle-policy's InvalidRequestException)."""
    doc = document()
    if variant == "no-command":
        doc["parameters"]["action"] = doc["parameters"].pop("command")
    elif variant == "no-allowed-values":
        del doc["parameters"]["command"]["allowedValues"]
    else:
        doc["parameters"]["command"]["allowedValues"] = []
    result, _, rec = run(machine(tmp_path, doc))
    record_property("expected", "DOCUMENT_REJECTED with DLM's words, no call, no snapshot")
    record_property("got", result.message)
    assert result.outcome == codes.DOCUMENT_REJECTED
    assert "{parameters.command.allowedValues}" in result.message
    assert (result.calls, rec.log) == ([], [])


def test_document_yaml_read_with_pyyaml(tmp_path: Path, record_property: Any) -> None:
    """A YAML document (AWS's templates are YAML) is read when PyYAML can be imported."""
    pytest.importorskip("yaml")
    text = (
        "schemaVersion: '2.2'\nparameters:\n  command:\n    type: String\n"
        "    allowedValues: [pre-script, post-script, dry-run]\nmainSteps:\n"
        "- action: aws:runShellScript\n  name: run\n  inputs:\n    runCommand:\n"
        "    - echo {{ command }}\n"
    )
    result, _, _ = run(machine(tmp_path, text))
    record_property(
        "got", f"{result.outcome} {[c.result.stdout.text().strip() for c in result.calls]}"
    )
    assert result.outcome == codes.SUCCESS
    assert [c.result.stdout.text().strip() for c in result.calls] == [
        "dry-run",
        "pre-script",
        "post-script",
    ]


def test_document_yaml_without_pyyaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_property: Any
) -> None:
    """Without PyYAML a non-JSON document is refused with a message that says so."""
    monkeypatch.setitem(sys.modules, "yaml", None)
    read = read_document(machine(tmp_path, "schemaVersion: '2.2'\n"))
    record_property("got", read.error)
    assert read.document is None and "PyYAML" in read.error and "JSON" in read.error


def test_document_lacking_dry_run(tmp_path: Path, record_property: Any) -> None:
    """allowedValues without dry-run: the dry-run SendCommand is refused (InvalidParameters),
    nothing runs for it; it is reported, the cycle goes on (docs: "treat it as a failed
    execution")."""
    doc = document(allowed=["pre-script", "post-script"])
    result, _, _ = run(machine(tmp_path, doc))
    dry = result.calls[0].result
    record_property("got", f"{result.outcome}; {dry.start_error}")
    assert phases(result) == ["dry-run", "pre", "post"]
    assert (dry.ran, dry.failed) == (False, True) and "InvalidParameters" in dry.start_error
    assert codes.DRY_RUN_FAILED in [f["name"] for f in result.findings]
    assert result.outcome == codes.SUCCESS


def test_document_lacking_post_script(tmp_path: Path, record_property: Any) -> None:
    """allowedValues without post-script: every post call is refused, so the post-script fails."""
    doc = document(allowed=["pre-script", "dry-run"])
    result, _, rec = run(machine(tmp_path, doc))
    record_property("got", result.outcome)
    assert (result.status, result.outcome, rec.log) == (
        NOT_QUIESCED,
        codes.POST_SCRIPT_FAILED,
        ["snapshot"],
    )


def test_document_parameter_without_default(tmp_path: Path, record_property: Any) -> None:
    """A parameter DLM does not pass and without a default: SendCommand is refused each time,
    so the pre-script fails (then the crash-consistent fallback)."""
    doc = document(params={"dbName": {"type": "String"}})
    result, _, rec = run(machine(tmp_path, doc))
    record_property("got", f"{result.outcome}; {result.pre.start_error if result.pre else ''}")
    assert result.outcome == codes.CRASH_CONSISTENT
    assert rec.log == ["snapshot"]
    assert all(not c.result.ran for c in result.calls)


def test_parameters_substituted(tmp_path: Path, record_property: Any) -> None:
    """parameters.go ReplaceParameter: {{ command }} and {{command}} both take the value;
    executionId is one UUID for the run; a declared parameter's default fills in."""
    lines = [
        "echo A={{ command }} B={{command}} C={{  executionId  }} D={{ dbName }} E={{ other }}"
    ]
    doc = document(lines, params={"dbName": {"type": "String", "default": "app"}})
    result, _, _ = run(machine(tmp_path, doc))
    outs = [c.result.stdout.text().strip() for c in result.calls]
    record_property("got", outs[1])
    ids = {o.split("C=")[1].split()[0] for o in outs}
    assert outs[1].startswith("A=pre-script B=pre-script C=")
    assert outs[1].endswith("D=app E={{ other }}")
    assert len(ids) == 1 and UUID.match(ids.pop())


# --- the SSM agent's runShellScript ---------------------------------------------------------


def test_script_file_and_argv(tmp_path: Path, record_property: Any) -> None:
    """runscript.go: runCommand lines joined by newlines into <orchestration>/<step>/_script.sh,
    mode 0700, run as ``sh -c <that path>``."""
    root = machine(tmp_path, document(["echo one", "echo two"]))
    result, _, _ = run(root)
    argv = result.calls[1].result.argv
    assert argv is not None
    script = root / argv[2].lstrip("/")
    record_property("got", f"{argv} mode {oct(script.stat().st_mode & 0o777)}")
    assert argv[:2] == ["sh", "-c"]
    assert re.match(
        r"^/var/lib/amazon/ssm/i-[0-9a-f]{17}/document/orchestration/[0-9a-f-]{36}/run/_script\.sh$",
        argv[2],
    )
    assert script.read_text() == "echo one\necho two\n"
    assert script.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("first", "expected"), [("#!/bin/bash", "bash"), ("#!/bin/sh", "none"), ("true", "none")]
)
def test_shebang_picks_interpreter(
    tmp_path: Path, first: str, expected: str, record_property: Any
) -> None:
    """``sh -c _script.sh`` executes the file: a #! first line picks the interpreter, without
    one sh runs it (so bash syntax needs #!/bin/bash as the runCommand's first line)."""
    if first.endswith("bash") and not Path("/bin/bash").exists():
        pytest.skip("no bash")
    doc = document([first, 'if [ -n "${BASH_VERSION:-}" ]; then echo bash; else echo none; fi'])
    result, _, _ = run(machine(tmp_path, doc))
    got = result.calls[1].result.stdout.text().strip()
    record_property("expected", expected)
    record_property("got", got)
    assert got == expected


def test_environment_and_cwd(tmp_path: Path, record_property: Any) -> None:
    """executers.go prepareEnvironment + the service unit: the agent's env (PATH, LANG, no HOME)
    plus AWS_SSM_INSTANCE_ID, AWS_SSM_REGION_NAME, AWS_SSM_PLATFORM_*, SSM_COMMAND_ID (one per
    command); cwd the unit's WorkingDirectory /usr/bin; stdin /dev/null."""
    lines = [
        'echo "id=$AWS_SSM_INSTANCE_ID region=$AWS_SSM_REGION_NAME cmd=$SSM_COMMAND_ID"',
        'echo "home=${HOME-unset} user=${USER-unset} path=$PATH"',
        'echo "pwd=$(pwd)"',
        "if read -r line; then echo stdin=data; else echo stdin=eof; fi",
        'echo "extra=${VMSNAP_EXTRA-unset}"',
    ]
    root = machine(tmp_path, document(lines))
    (root / "etc/os-release").write_text('NAME="Debian GNU/Linux"\nVERSION_ID="12"\n')
    result = ENGINE.run_cycle(root, env={"VMSNAP_EXTRA": "x"})
    out = [c.result.stdout.text() for c in result.calls]
    record_property("got", out[1].replace("\n", " | "))
    assert f"id={agent.INSTANCE_ID} region={agent.REGION}" in out[1]
    cmd_ids = {re.search(r"cmd=(\S+)", o).group(1) for o in out}  # type: ignore[union-attr]
    assert len(cmd_ids) == 3 and all(UUID.match(i) for i in cmd_ids)
    assert f"home=unset user=unset path={agent.SERVICE_ENV['PATH']}" in out[1]
    assert f"pwd={root / 'usr/bin'}" in out[1]
    assert "stdin=eof" in out[1] and "extra=x" in out[1]
    env = agent.agent_env(root)
    assert (env["AWS_SSM_PLATFORM_NAME"], env["AWS_SSM_PLATFORM_VERSION"]) == (
        "Debian GNU/Linux",
        "12",
    )


def test_working_directory_absolute(tmp_path: Path, record_property: Any) -> None:
    """runscript.go: an absolute workingDirectory is the script's cwd."""
    doc = document(["pwd"], inputs={"workingDirectory": "/var/tmp"})
    root = machine(tmp_path, doc)
    result, _, _ = run(root)
    got = result.calls[1].result.stdout.text().strip()
    record_property("got", got)
    assert got == str(root / "var/tmp")


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (None, 3600),
        (30, 30),
        ("45", 45),
        (7.9, 7),
        (4, 3600),
        (172801, 3600),
        ("x", 3600),
        (5, 5),
        (172800, 172800),
    ],
)
def test_step_timeout_parsing(raw: Any, seconds: int, record_property: Any) -> None:
    """pluginutil.ValidateExecutionTimeout: default 3600, accepted 5..172800, a number in a
    string read, a float cut; anything else the default."""
    record_property("got", agent.step_timeout(raw))
    assert agent.step_timeout(raw) == seconds


@pytest.mark.parametrize(
    ("code", "status"),
    [(0, "Success"), (1, "Failed"), (194, "SuccessAndReboot"), (137, "TimedOut")],
)
def test_exit_code_status(code: int, status: str, record_property: Any) -> None:
    """pluginutil_unix.go GetStatus: 0 Success, 194 SuccessAndReboot, 137 (the agent's 'stopped
    preemptively' code) TimedOut, anything else Failed."""
    record_property("got", agent._status(code))
    assert agent._status(code) == status


def test_failed_step_does_not_stop_next(tmp_path: Path, record_property: Any) -> None:
    """runpluginutil.go RunPlugins: steps run in order and a failed step does not stop the
    next; the command is Failed."""
    steps = [
        {"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["echo a; exit 3"]}},
        {"action": "aws:runShellScript", "name": "b", "inputs": {"runCommand": ["echo b"]}},
    ]
    result, _, _ = run(machine(tmp_path, document(steps=steps)))
    pre = result.calls[1].result
    record_property("got", f"{pre.stdout.text().split()} exit {pre.exit_code}")
    assert pre.stdout.text().split() == ["a", "b"] and pre.exit_code == 3 and pre.failed


@pytest.mark.parametrize(
    ("first", "on_failure", "ran", "failed"),
    [
        ("exit 168", "", ["a"], False),
        ("exit 169", "", ["a"], True),
        ("exit 3", "exit", ["a"], True),
        ("exit 3", "successAndExit", ["a"], False),
        ("exit 194", "", ["a"], True),
    ],
)
def test_control_flow_exits(
    tmp_path: Path,
    first: str,
    on_failure: str,
    ran: list[str],
    failed: bool,
    record_property: Any,
) -> None:
    """RunPlugins: exit 168 succeeds and skips the rest, 169 fails and skips the rest,
    onFailure exit/successAndExit stop after a failure, 194 (reboot) stops the steps (the
    harness does not reboot: the call fails)."""
    step_a: dict[str, Any] = {
        "action": "aws:runShellScript",
        "name": "a",
        "inputs": {"runCommand": [f"echo a; {first}"]},
    }
    if on_failure:
        step_a["onFailure"] = on_failure
    steps = [
        step_a,
        {"action": "aws:runShellScript", "name": "b", "inputs": {"runCommand": ["echo b"]}},
    ]
    result, _, _ = run(machine(tmp_path, document(steps=steps)))
    pre = result.calls[1].result
    record_property("got", f"ran {pre.stdout.text().split()} failed {pre.failed}")
    assert (pre.stdout.text().split(), pre.failed) == (ran, failed)


def test_precondition_and_other_platform_steps(tmp_path: Path, record_property: Any) -> None:
    """runpluginutil.go: a StringEquals platformType precondition for another platform skips
    the step; a non-shell step for another platform is skipped too."""
    steps = [
        {
            "action": "aws:runPowerShellScript",
            "name": "win",
            "precondition": {"StringEquals": ["platformType", "Windows"]},
            "inputs": {"runCommand": ["Write-Host win"]},
        },
        {
            "action": "aws:runShellScript",
            "name": "win2",
            "precondition": {"StringEquals": ["platformType", "Windows"]},
            "inputs": {"runCommand": ["echo win2"]},
        },
        {
            "action": "aws:runShellScript",
            "name": "lin",
            "precondition": {"StringEquals": ["platformType", "Linux"]},
            "inputs": {"runCommand": ["echo lin"]},
        },
    ]
    result, _, _ = run(machine(tmp_path, document(steps=steps)))
    out = result.calls[1].result.stdout.text().split()
    record_property("got", f"{result.outcome} {out}")
    assert result.outcome == codes.SUCCESS and out == ["lin"]


def test_non_shell_step_for_linux_not_modelled(tmp_path: Path, record_property: Any) -> None:
    """A step of another action that would run on Linux: the harness refuses the document."""
    steps = [{"action": "aws:downloadContent", "name": "d", "inputs": {}}]
    result, _, _ = run(machine(tmp_path, document(steps=steps)))
    record_property("got", result.message)
    assert result.outcome == codes.DOCUMENT_REJECTED and "aws:runShellScript" in result.message


def test_script_kills_itself(tmp_path: Path, record_property: Any) -> None:
    """A script killed by a signal: the ``sh -c`` the agent starts reports 128+9 = 137, which
    GetStatus reads as TimedOut (CommandStoppedPreemptivelyExitCode): the pre-script fails."""
    doc = document(dispatch(pre="kill -9 $$"))
    result, _, rec = run(machine(tmp_path, doc))
    record_property("got", f"{result.outcome} exit {result.pre.exit_code if result.pre else None}")
    assert result.pre is not None and (result.pre.exit_code, result.pre.timed_out) == (137, True)
    assert (result.outcome, rec.log) == (codes.CRASH_CONSISTENT, ["snapshot"])


def test_output_flood_does_not_stall(tmp_path: Path, record_property: Any) -> None:
    """The agent reads stdout as it comes (Go writers): 2 MB of output does not block the
    script; the result keeps head and tail."""
    doc = document(dispatch(pre="head -c 2000000 /dev/zero | tr '\\0' x; echo"))
    result, _, _ = run(machine(tmp_path, doc))
    pre = result.calls[1].result
    record_property("got", f"{result.outcome} bytes {pre.stdout.total}")
    assert result.outcome == codes.SUCCESS and pre.stdout.total >= 2_000_000


def test_background_child_holding_output_keeps_command_running(
    tmp_path: Path, record_property: Any
) -> None:
    """executers.go: stdout/stderr are Go writers, so Wait() returns only at EOF: a background
    child that keeps them open keeps the command running past ExecutionTimeout (DLM fails the
    attempt); the same child with its output redirected does not."""
    held = document(dispatch(pre="sleep 3 & echo started"))
    freed = document(dispatch(pre="sleep 3 >/dev/null 2>&1 & echo started"))
    r1, _, _ = run(machine(tmp_path / "held", held))
    r2, _, _ = run(machine(tmp_path / "freed", freed))
    record_property("expected", "held: PRE_SCRIPT_TIMED_OUT; redirected: SUCCESS")
    record_property("got", f"held: {r1.findings[0]['name']}; redirected: {r2.outcome}")
    assert r1.outcome == codes.CRASH_CONSISTENT and r1.findings[0]["name"] == codes.PRE_TIMED_OUT
    assert r1.pre is not None and r1.pre.exit_code is None and r1.pre.timed_out
    assert r2.outcome == codes.SUCCESS


def test_execution_timeout_left_running_then_ended(tmp_path: Path, record_property: Any) -> None:
    """API_Script ExecutionTimeout: DLM fails the attempt; it cannot cancel the command (no
    ssm:CancelCommand in its managed policy), so it runs on until the cycle ends; the harness
    then ends it and says so (SCRIPT_LEFT_RUNNING)."""
    marker = tmp_path / "alive"
    doc = document(dispatch(pre=f"echo $$ > {marker}; sleep 30"))
    t0 = time.monotonic()
    result, _, rec = run(machine(tmp_path, doc))
    took = time.monotonic() - t0
    pid = int(marker.read_text())
    names = [f["name"] for f in result.findings]
    record_property("got", f"{result.outcome} {names}")
    assert result.outcome == codes.CRASH_CONSISTENT and rec.log == ["snapshot"]
    assert names == [codes.PRE_TIMED_OUT, codes.LEFT_RUNNING]
    assert result.pre is not None and result.pre.left_running
    assert phases(result) == ["dry-run", "pre"]
    assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert took < 10 * SCALE + 3


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def test_agent_step_timeout_kills_group(tmp_path: Path, record_property: Any) -> None:
    """executers_unix.go killProcess: at the step's timeoutSeconds the agent SIGKILLs the whole
    process group and reports 137 (TimedOut), before DLM's longer ExecutionTimeout."""
    marker = tmp_path / "child"
    doc = document(
        dispatch(pre=f"(sleep 30; echo late > {marker}) >/dev/null 2>&1 & sleep 30"),
        inputs={"timeoutSeconds": 5},
    )
    root = machine(tmp_path, doc, {"ExecutionTimeout": 120})
    result, _, _ = run(root)
    pre = result.calls[1].result
    record_property("got", f"exit {pre.exit_code} timed_out {pre.timed_out}")
    assert (pre.exit_code, pre.timed_out) == (agent.STOPPED_EXIT, True)
    assert pre.duration_s < 120 * SCALE
    time.sleep(0.1)
    assert not marker.exists()
    assert codes.LEFT_RUNNING not in [f["name"] for f in result.findings]


# --- DLM's outcome table ------------------------------------------------------------------


def test_success_order_events_no_freeze(tmp_path: Path, record_property: Any) -> None:
    """script-flow.html: dry-run (the harness's validation call), pre-script, snapshot,
    post-script; DLM never freezes (the freezer is not called); tagged pre/post SUCCESS."""
    result, events, rec = run(machine(tmp_path, document()))
    record_property("expected", "APPLICATION SUCCESS dry-run,pre,post; snapshot only")
    record_property("got", f"{result.status} {result.outcome} {phases(result)} {rec.log}")
    assert (result.status, result.outcome) == (APPLICATION, codes.SUCCESS)
    assert phases(result) == ["dry-run", "pre", "post"]
    assert rec.log == ["snapshot"]
    assert events == [
        "precheck_end",
        "pre_start",
        "pre_end",
        "snapshot_start",
        "snapshot_end",
        "post_start",
        "post_end",
    ]
    assert [e for e in EVENTS if e in events] == events
    d = result.to_dict()
    assert d["consistency"] == "application" and d["freeze"]["enabled"] is False
    assert [p["phase"] for p in d["timeline"]] == ["precheck", "dry-run", "pre", "snapshot", "post"]


@pytest.mark.parametrize(
    ("fallback", "status", "outcome", "snap"),
    [
        (True, NOT_QUIESCED, codes.CRASH_CONSISTENT, ["snapshot"]),
        (False, NO_SNAPSHOT, codes.SNAPSHOT_SKIPPED, []),
    ],
)
def test_pre_fails(
    tmp_path: Path,
    fallback: bool,
    status: int,
    outcome: str,
    snap: list[str],
    record_property: Any,
) -> None:
    """script-flow.html step 3: retries disabled, pre fails: "Create crash-consistent snapshots,
    and do not run post script" (ExecuteOperationOnScriptFailure true) or "Skip snapshot
    creation for the target instance, and do not run post script" (false)."""
    doc = document(dispatch(pre="echo locked; exit 201"))
    root = machine(tmp_path, doc, {"ExecuteOperationOnScriptFailure": fallback})
    result, events, rec = run(root)
    record_property("got", f"{result.status} {result.outcome} {phases(result)} {rec.log}")
    assert (result.status, result.outcome, rec.log) == (status, outcome, snap)
    assert phases(result) == ["dry-run", "pre"]
    assert "post_start" not in events
    f = result.findings[0]
    assert (f["name"], f["code"]) == (codes.PRE_FAILED, 201)
    assert "auto thaw" not in result.message and "pre-script failed" in result.message


def test_pre_retries_whole_process(tmp_path: Path, record_property: Any) -> None:
    """MaximumRetryCount: "If the pre script fails, DLM retries the entire snapshot creation
    process"; here pre fails twice then succeeds: three pre calls, one snapshot, one post."""
    count = tmp_path / "count"
    pre = f"echo x >> {count}; [ $(wc -l < {count}) -ge 3 ]"
    root = machine(tmp_path, document(dispatch(pre=pre)), {"MaximumRetryCount": 3})
    result, _, rec = run(root)
    record_property("got", f"{result.outcome} {phases(result)}")
    assert phases(result) == ["dry-run", "pre", "pre", "pre", "post"]
    assert (result.outcome, rec.log) == (codes.SUCCESS, ["snapshot"])
    assert result.pre is not None and (result.pre.attempts, result.pre.retries_logged) == (3, 2)


def test_pre_retries_exhausted(tmp_path: Path, record_property: Any) -> None:
    """Retries exhausted without success: 1 + MaximumRetryCount pre calls, then the fallback."""
    root = machine(tmp_path, document(dispatch(pre="exit 1")), {"MaximumRetryCount": 2})
    result, _, rec = run(root)
    record_property("got", f"{result.outcome} {phases(result)}")
    assert phases(result) == ["dry-run", "pre", "pre", "pre"]
    assert (result.outcome, rec.log) == (codes.CRASH_CONSISTENT, ["snapshot"])


def test_post_fails_retried_alone(tmp_path: Path, record_property: Any) -> None:
    """script-flow.html step 7: a failed post is retried alone, then skipped; the snapshot
    exists, tagged aws:dlm:post-script=FAILED: not reported application-consistent."""
    root = machine(tmp_path, document(dispatch(post="exit 202")), {"MaximumRetryCount": 2})
    result, events, rec = run(root)
    record_property("got", f"{result.status} {result.outcome} {phases(result)}")
    assert phases(result) == ["dry-run", "pre", "post", "post", "post"]
    assert (result.status, result.outcome, rec.log) == (
        NOT_QUIESCED,
        codes.POST_SCRIPT_FAILED,
        ["snapshot"],
    )
    assert events.index("snapshot_end") < events.index("post_start")
    assert (result.findings[0]["name"], result.findings[0]["code"]) == (codes.POST_FAILED, 202)


def test_post_retry_succeeds(tmp_path: Path, record_property: Any) -> None:
    """A post that fails once and then succeeds with MaximumRetryCount 1: SUCCESS."""
    count = tmp_path / "count"
    post = f"echo x >> {count}; [ $(wc -l < {count}) -ge 2 ]"
    root = machine(tmp_path, document(dispatch(post=post)), {"MaximumRetryCount": 1})
    result, _, _ = run(root)
    record_property("got", f"{result.outcome} {phases(result)}")
    assert (result.outcome, phases(result)) == (codes.SUCCESS, ["dry-run", "pre", "post", "post"])


def test_stages_pre_only(tmp_path: Path, record_property: Any) -> None:
    """Stages PRE: DLM calls the document with pre-script only; no post call."""
    root = machine(tmp_path, document(), {"Stages": ["PRE"]})
    result, events, _ = run(root)
    record_property("got", f"{result.outcome} {phases(result)}")
    assert (result.status, result.outcome, phases(result)) == (
        APPLICATION,
        codes.SUCCESS,
        ["dry-run", "pre"],
    )
    assert "post_start" not in events


def test_stages_post_only(tmp_path: Path, record_property: Any) -> None:
    """Stages POST: no pre-script ("steps 1 to 3 are skipped"), snapshot, post: the snapshot
    is crash-consistent (NO_PRE_SCRIPT); no pre events."""
    root = machine(tmp_path, document(), {"Stages": ["POST"]})
    result, events, rec = run(root)
    record_property("got", f"{result.outcome} {phases(result)}")
    assert (result.status, result.outcome, phases(result)) == (
        NOT_QUIESCED,
        codes.NO_PRE_SCRIPT,
        ["dry-run", "post"],
    )
    assert "pre_start" not in events and rec.log == ["snapshot"]


def test_snapshot_failure(tmp_path: Path, record_property: Any) -> None:
    """The stand-in's snapshot fails: NO_SNAPSHOT, SNAPSHOT_FAILED; the post-script still runs
    (the engine's choice, DLM's docs are silent), so nothing stays held."""
    result, _, _ = run(machine(tmp_path, document()), Rec(snapshot_ok=False))
    record_property("got", f"{result.outcome} {phases(result)}")
    assert (result.status, result.outcome) == (NO_SNAPSHOT, codes.SNAPSHOT_FAILED)
    assert phases(result) == ["dry-run", "pre", "post"]


def test_dry_run_not_handled_runs_pre_action(tmp_path: Path, record_property: Any) -> None:
    """A document that treats anything but post-script as pre-script: DLM's dry-run call locks
    too (the action runs twice); the engine reports what ran, not a failure."""
    marker = tmp_path / "locks"
    cond = 'if [ "{{ command }}" = post-script ]'
    lines = [f"{cond}; then echo unlock; else echo lock >> {marker}; fi"]
    result, _, _ = run(machine(tmp_path, document(lines)))
    assert result.outcome == codes.SUCCESS
    got = marker.read_text().split()
    record_property("got", f"locks taken: {len(got)}")
    assert got == ["lock", "lock"]


def test_dry_run_can_be_disabled(tmp_path: Path, record_property: Any) -> None:
    """``dry_run=False``: the engine sends no dry-run call."""
    result, _, _ = run(
        machine(tmp_path, document()), engine=AwsDlmEngine(dry_run=False, time_scale=SCALE)
    )
    record_property("got", str(phases(result)))
    assert phases(result) == ["pre", "post"]


def test_pacing_changes_nothing(tmp_path: Path, record_property: Any) -> None:
    """No DLM delay is documented: FAITHFUL and PROMPT pacing run the same calls, quickly."""
    from pytest_vmsnap.framework.scripts import FAITHFUL, PROMPT

    got = []
    for pacing in (FAITHFUL, PROMPT):
        t0 = time.monotonic()
        r = ENGINE.run_cycle(machine(tmp_path, document()), pacing=pacing)
        got.append((r.outcome, phases(r), time.monotonic() - t0 < 2))
    record_property("got", str(got))
    assert got[0] == got[1] == (codes.SUCCESS, ["dry-run", "pre", "post"], True)


# --- hosting ------------------------------------------------------------------------------


def test_host_document_and_policy(record_property: Any) -> None:
    """A document goes to the harness's document path, the policy settings to its policy path;
    scripts given with them to the fixed paths; nothing generated."""
    h = hosting.host(Given(frozenset({"document", "config", "pre", "post"})))
    got = {p.role: p.location for p in h.placements}
    record_property("got", str(got))
    assert got == {
        "config": POLICY_PATH,
        "document": DOCUMENT_PATH,
        "pre": hosting.PRE_PATH,
        "post": hosting.POST_PATH,
    }
    assert not h.generated and not h.refused


def test_host_pair_generates_document(tmp_path: Path, record_property: Any) -> None:
    """A pre/post pair without a document: the smallest document that runs them, with the
    three allowed values; no policy file (DLM's defaults)."""
    h = hosting.host(Given(frozenset({"pre", "post"})))
    gen = h.generated[0]
    read = parse_document(json.loads(gen.content))
    assert read.document is not None
    text = "\n".join(read.document.steps[0].run_command)
    record_property("got", gen.why)
    assert gen.location == DOCUMENT_PATH and gen.mode == 0o644
    assert read.document.missing_commands == ()
    assert f"exec {hosting.PRE_PATH}" in text and f"exec {hosting.POST_PATH}" in text
    assert not any(g.location == POLICY_PATH for g in h.generated)


def test_host_hook_generates_freeze_thaw(record_property: Any) -> None:
    """A hook without a document: a document calling ``<hook> freeze`` / ``<hook> thaw``."""
    h = hosting.host(Given(frozenset({"hook"}), hook_name="myhook"))
    text = h.generated[0].content.decode()
    record_property("got", h.calls)
    assert f"exec {hosting.HOOK_PATH} freeze" in text and f"exec {hosting.HOOK_PATH} thaw" in text
    assert [p.location for p in h.placements] == [hosting.HOOK_PATH]


@pytest.mark.parametrize("roles", [set(), {"config"}, {"hook", "pre", "post"}])
def test_host_refusals(roles: set[str], record_property: Any) -> None:
    """Nothing to run (no document, pair or hook), or a hook and a pair together: refused."""
    h = hosting.host(Given(frozenset(roles)))
    record_property("got", h.refused)
    assert h.refused and not h.hosted


@pytest.mark.parametrize(
    ("mode", "shebang", "outcome", "exit_code"),
    [
        (0o755, True, codes.SUCCESS, 0),
        (0o644, True, codes.CRASH_CONSISTENT, 126),
        (0o755, False, codes.SUCCESS, 0),
    ],
    ids=["exec", "no-exec-bit", "no-shebang"],
)
def test_generated_document_runs_scripts(
    tmp_path: Path,
    mode: int,
    shebang: bool,
    outcome: str,
    exit_code: int,
    record_property: Any,
) -> None:
    """The generated document execs the script: without the exec bit sh reports Permission
    denied (126) and the pre-script fails; without a shebang sh runs it itself."""
    root = machine(tmp_path)
    h = hosting.host(Given(frozenset({"pre", "post"})))
    content = (
        h.generated[0].content.decode().replace("/usr/local/sbin", str(root / "usr/local/sbin"))
    )
    (root / DOCUMENT_PATH.lstrip("/")).parent.mkdir(parents=True)
    (root / DOCUMENT_PATH.lstrip("/")).write_text(content)
    for loc in (hosting.PRE_PATH, hosting.POST_PATH):
        p = root / loc.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(("#!/bin/sh\n" if shebang else "") + "echo ran\n")
        p.chmod(mode if loc == hosting.PRE_PATH else 0o755)
    result, _, _ = run(root)
    pre = result.calls[1].result
    record_property("got", f"{result.outcome} exit {pre.exit_code}")
    assert (result.outcome, pre.exit_code) == (outcome, exit_code)


def test_registry_and_precheck(tmp_path: Path, record_property: Any) -> None:
    """engines.get('aws-dlm') builds this engine; precheck names what DLM refuses and nothing
    about scripts (DLM checks no file on the instance)."""
    engine = get("aws-dlm")
    assert engine.name == "aws-dlm" and isinstance(make(), AwsDlmEngine)
    ok = engine.precheck(machine(tmp_path / "a", document(["/no/such/script"])))
    bad = engine.precheck(machine(tmp_path / "b", None, {"ExecutionTimeout": 5}))
    record_property("got", str([f["name"] for f in bad]))
    assert ok == []
    assert [f["name"] for f in bad] == [codes.POLICY_REJECTED, codes.DOCUMENT_REJECTED]
    assert os.path.basename(DOCUMENT_PATH) == "document.json"
