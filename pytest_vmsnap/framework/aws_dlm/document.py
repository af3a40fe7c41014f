"""The SSM command document DLM runs: what it must declare, its steps, its parameters.

DLM calls one document (the policy's ``ExecutionHandler``) once per stage, with its
``command`` parameter set to ``pre-script``, ``post-script`` or ``dry-run``
(https://docs.aws.amazon.com/ebs/latest/userguide/script-flow.html). What the document does
with that value is up to its shell steps: DLM does not run scripts of its own, does not freeze,
and checks no file's owner or mode.

What a document must declare, and what happens when it does not:

- ``parameters.command`` with ``allowedValues``: without them DLM refuses the policy
  ("The specified SSM document must provide allowed values in
  {parameters.command.allowedValues}", InvalidRequestException from create-lifecycle-policy,
  recorded in a public lab write-up in the code index). So the policy never runs: no snapshot.
- the three values ``pre-script``, ``post-script``, ``dry-run`` among those allowedValues:
  "If your SSM document does not have those sections, then Amazon Data Lifecycle Manager will
  treat it as a failed execution" (automate-app-consistent-backups). Systems Manager refuses
  a SendCommand whose parameter value is not allowed (InvalidParameters), so the call of a
  missing value fails without anything running on the instance: modelled that way.
- ``executionId`` is optional; AWS's templates declare it (a UUID or ``None``) and DLM passes
  one when it is declared (inference: a value DLM passed to a document that does not declare
  it would be refused by SendCommand as an unknown parameter).

Steps: schema 2.2 ``mainSteps`` (or 1.2 ``runtimeConfig``) with ``aws:runShellScript``
(``runCommand``, ``workingDirectory``, ``timeoutSeconds``, ``precondition``, ``onFailure``).
Parameters are substituted as the SSM agent does (amazon-ssm-agent
``agent/framework/docparser/parameters/parameters.go``, ``ReplaceParameter``: every
``{{ name }}`` / ``{{name}}`` of a declared parameter, with ``$$`` read as ``$``).

The document is JSON; YAML is read only when PyYAML can be imported (else a clear message).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOCUMENT_PATH = "/etc/vmsnap/aws-dlm/document.json"
"""Where the harness places the document (the harness's path: on AWS the document lives in
Systems Manager and reaches the instance with each command)."""

COMMAND_VALUES = ("pre-script", "post-script", "dry-run")
"""What DLM passes as ``command``, by stage (and the validation run)."""
RUN_SHELL = "aws:runShellScript"
PLATFORM = "Linux"
"""The ``platformType`` the agent reports on a Linux instance (for ``precondition``)."""

POLICY_REJECTION = (
    "The specified SSM document must provide allowed values in {parameters.command.allowedValues}"
)
"""DLM's own words when the document has no ``command`` parameter with allowed values."""

_PARAM_NAME = re.compile(r"^[a-zA-Z0-9]+$")
"""Parameter names the agent substitutes (``paramNameRegex`` in parameters.go)."""


@dataclass(frozen=True)
class Parameter:
    """One declared parameter."""

    name: str
    default: str | None = None
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Step:
    """One ``aws:runShellScript`` step (a plugin run, in the agent's words)."""

    name: str
    action: str
    run_command: tuple[str, ...]
    working_directory: str = ""
    timeout: Any = None
    """``timeoutSeconds`` as written (the agent validates it: :func:`.agent.step_timeout`)."""
    precondition: Any = None
    on_failure: str = ""


@dataclass(frozen=True)
class Document:
    """A document that DLM accepts for a policy."""

    schema: str
    parameters: dict[str, Parameter]
    steps: tuple[Step, ...]

    @property
    def allowed_commands(self) -> tuple[str, ...]:
        return self.parameters["command"].allowed or ()

    @property
    def missing_commands(self) -> tuple[str, ...]:
        """Which of DLM's three values the document does not allow."""
        return tuple(v for v in COMMAND_VALUES if v not in self.allowed_commands)

    def arguments(self, command: str, execution_id: str) -> dict[str, str] | str:
        """The parameter values of DLM's SendCommand for ``command``, defaults filled in as
        Systems Manager does, or why Systems Manager refuses the call (InvalidParameters)."""
        given = {"command": command}
        if "executionId" in self.parameters:
            given["executionId"] = execution_id
        values: dict[str, str] = {}
        for name, param in self.parameters.items():
            value = given.get(name, param.default)
            if value is None:
                return (
                    f"InvalidParameters: parameter {name!r} has no default and DLM passes "
                    "only command (and executionId)"
                )
            if param.allowed is not None and value not in param.allowed:
                return (
                    f"InvalidParameters: {name} value {value!r} is not one of the "
                    f"document's allowedValues {list(param.allowed)}"
                )
            if param.pattern is not None and not _matches(param.pattern, value):
                return (
                    f"InvalidParameters: {name} value {value!r} does not match its "
                    f"allowedPattern {param.pattern}"
                )
            values[name] = value
        return values


@dataclass(frozen=True)
class DocumentRead:
    """The document, or why DLM (or Systems Manager) would not take it."""

    document: Document | None
    error: str = ""
    missing: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


def read_document(root: Path | str) -> DocumentRead:
    """The document at :data:`DOCUMENT_PATH` under ``root``."""
    path = Path(root) / DOCUMENT_PATH.lstrip("/")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return DocumentRead(
            None,
            error=f"no SSM command document at {DOCUMENT_PATH}: DLM needs one "
            "(the policy's ExecutionHandler) to run any script",
            missing=True,
        )
    except OSError as err:
        return DocumentRead(None, error=f"cannot read {DOCUMENT_PATH}: {err.strerror or err}")
    data = load(raw)
    if isinstance(data, str):
        return DocumentRead(None, error=data)
    return parse_document(data)


def load(raw: bytes) -> Any:
    """The document's content (JSON, or YAML when PyYAML is there); a string says why not."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return f"{DOCUMENT_PATH} is not UTF-8 text: {err}"
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        json_error = str(err)
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        return (
            f"{DOCUMENT_PATH} is not JSON ({json_error}); a YAML document needs PyYAML, which "
            "is not installed here: convert the document to JSON (its content is the same)"
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        return f"{DOCUMENT_PATH} is neither JSON ({json_error}) nor YAML ({err})"
    if not isinstance(data, dict):
        return f"{DOCUMENT_PATH} is not JSON ({json_error}) and not a YAML mapping"
    return data


def parse_document(data: Any) -> DocumentRead:
    """Check what DLM and Systems Manager check, and read the steps."""
    if not isinstance(data, dict):
        return DocumentRead(None, error="the document must be a JSON object")
    schema = data.get("schemaVersion")
    if not isinstance(schema, str) or not schema:
        return DocumentRead(
            None, error='the document has no schemaVersion (Systems Manager refuses it: use "2.2")'
        )
    params = data.get("parameters", {})
    if not isinstance(params, dict):
        return DocumentRead(None, error="parameters must be a JSON object")
    parameters: dict[str, Parameter] = {}
    for name, spec in params.items():
        if not isinstance(spec, dict) or not _PARAM_NAME.match(str(name)):
            return DocumentRead(None, error=f"parameter {name!r} is not a valid declaration")
        parameters[name] = _parameter(name, spec)
    command = parameters.get("command")
    if command is None or not command.allowed:
        return DocumentRead(None, error=f"DLM refuses the policy: {POLICY_REJECTION}")
    steps = _steps(data, schema)
    if isinstance(steps, str):
        return DocumentRead(None, error=steps)
    notes = tuple(
        f"command's allowedValues lack {v!r}: DLM's {v} call fails (SendCommand refused)"
        for v in COMMAND_VALUES
        if v not in command.allowed
    )
    return DocumentRead(Document(schema, parameters, steps), notes=notes)


def _parameter(name: str, spec: dict[str, Any]) -> Parameter:
    default = spec.get("default")
    allowed = spec.get("allowedValues")
    pattern = spec.get("allowedPattern")
    return Parameter(
        name,
        default=None if default is None else _text(default),
        allowed=tuple(_text(v) for v in allowed) if isinstance(allowed, list) else None,
        pattern=pattern if isinstance(pattern, str) else None,
    )


def _steps(data: dict[str, Any], schema: str) -> tuple[Step, ...] | str:
    if isinstance(data.get("mainSteps"), list):
        raw = [
            (str(s.get("name", f"step{i}")), str(s.get("action", "")), s.get("inputs"), s)
            for i, s in enumerate(data["mainSteps"])
            if isinstance(s, dict)
        ]
    elif isinstance(data.get("runtimeConfig"), dict):
        # Schema 1.2: each plugin's properties list; the plugin's name is its id.
        raw = []
        for action, plugin in data["runtimeConfig"].items():
            props = plugin.get("properties") if isinstance(plugin, dict) else None
            for p in props if isinstance(props, list) else [props]:
                raw.append((str(action), str(action), p, {}))
    else:
        return "the document has no mainSteps (schema 2.2) or runtimeConfig (schema 1.2)"
    if not raw:
        return "the document has no steps"
    steps = []
    for name, action, inputs, step in raw:
        precondition = step.get("precondition")
        if action != RUN_SHELL:
            if _platform_skips(precondition):
                continue  # the agent skips a step meant for another platform
            return (
                f"step {name!r} is {action or 'without an action'}: the harness runs "
                f"{RUN_SHELL} steps only"
            )
        if not isinstance(inputs, dict):
            return f"step {name!r} has no inputs"
        lines = inputs.get("runCommand")
        if isinstance(lines, str):
            lines = [lines]
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            return f"step {name!r}: runCommand must be a list of strings"
        steps.append(
            Step(
                name=name,
                action=action,
                run_command=tuple(lines),
                working_directory=str(inputs.get("workingDirectory") or ""),
                timeout=inputs.get("timeoutSeconds"),
                precondition=precondition,
                on_failure=str(step.get("onFailure") or inputs.get("onFailure") or ""),
            )
        )
    if not steps:
        return f"the document has no {RUN_SHELL} step for {PLATFORM}"
    return tuple(steps)


def _platform_skips(precondition: Any) -> bool:
    """A ``StringEquals [platformType, X]`` precondition for another platform."""
    check = precondition.get("StringEquals") if isinstance(precondition, dict) else None
    return (
        isinstance(check, list)
        and len(check) == 2
        and check[0] == "platformType"
        and check[1] != PLATFORM
    )


def precondition_skip(step: Step, values: dict[str, str]) -> str | None:
    """Why the agent skips ``step`` (None: it runs), as ``runpluginutil.evaluatePreconditions``
    does for the one operator there is, ``StringEquals``, with ``platformType`` or a
    document parameter; an unknown form fails the step (returned with ``FAIL:``)."""
    if step.precondition is None:
        return None
    check = step.precondition.get("StringEquals") if isinstance(step.precondition, dict) else None
    if not isinstance(check, list) or len(check) != 2 or len(step.precondition) != 1:
        return f"FAIL: unrecognized precondition {step.precondition!r}"
    left, right = (substitute(str(x), values) for x in check)
    if check[0] == "platformType":
        left = PLATFORM
    if left != right:
        return f"Step execution skipped due to unsatisfied preconditions: [{check[0]}, {check[1]}]"
    return None


def substitute(text: str, values: dict[str, str]) -> str:
    """Every ``{{ name }}`` of a declared parameter replaced by its value, once (a value that
    holds another ``{{ ... }}`` is not replaced again), as the agent does."""
    if not values:
        return text
    names = "|".join(re.escape(n) for n in sorted(values, key=len, reverse=True))
    pattern = re.compile(r"\{\{\s*(" + names + r")\s*\}\}")
    return pattern.sub(lambda m: values[m.group(1)].replace("$$", "$"), text)


def script_text(step: Step, values: dict[str, str]) -> str:
    """The ``_script.sh`` the agent writes for ``step``: the runCommand lines, parameters
    substituted, joined by newlines with a final one (``pluginutil.CreateScriptFile``)."""
    return "\n".join(substitute(line, values) for line in step.run_command) + "\n"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _matches(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True  # a pattern Python cannot read: do not invent a refusal
