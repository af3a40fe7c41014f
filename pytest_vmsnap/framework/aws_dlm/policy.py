"""The policy's ``Scripts`` element: which stages run, the timeout, retries, the fallback.

On AWS this is part of a lifecycle policy (``PolicyDetails.Schedules[].CreateRule.Scripts``),
stored by the DLM service, never a file on the instance. The harness reads the same JSON from
a file it places itself (:data:`POLICY_PATH`), so a user can test the settings they will give
``aws dlm create-lifecycle-policy``. Without that file DLM's defaults apply.

Fields, defaults and limits are the API model's (``boto/botocore``
``botocore/data/dlm/2018-01-12/service-2.json``: shapes ``Script``, ``StagesList`` 1..2 items,
``StageValues`` PRE|POST, ``ScriptExecutionTimeout`` 10..120, ``ScriptMaximumRetryCount`` 0..3,
``ScriptsList`` at most 1, ``ExecutionHandler`` required; API reference
https://docs.aws.amazon.com/dlm/latest/APIReference/API_Script.html: defaults PRE and POST,
timeout 10, retries 0, ``ExecuteOperationOnScriptFailure`` true). A value outside them is
refused by the API when the policy is created (InvalidRequestException), so the policy never
runs: :func:`read_policy` returns the reason instead of settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLICY_PATH = "/etc/vmsnap/aws-dlm/policy.json"
"""Where the harness places the policy's script settings (the harness's path: on AWS they live
in the DLM service, not on the instance)."""

STAGES = ("PRE", "POST")
DEFAULT_TIMEOUT_S = 10
TIMEOUT_RANGE = (10, 120)
DEFAULT_RETRIES = 0
RETRY_RANGE = (0, 3)
SERVICE = "AWS_SYSTEMS_MANAGER"
VSS_HANDLER = "AWS_VSS_BACKUP"
"""Windows VSS through ``AWSEC2-CreateVssSnapshot``: not modelled (a Windows feature)."""
SAP_HANA_HANDLER = "AWSSystemsManagerSAP-CreateDLMSnapshotForSAPHANA"
"""AWS's own SAP HANA document: not modelled."""

KEYS = (
    "Stages",
    "ExecutionHandlerService",
    "ExecutionHandler",
    "ExecuteOperationOnScriptFailure",
    "ExecutionTimeout",
    "MaximumRetryCount",
)


@dataclass(frozen=True)
class ScriptSettings:
    """One ``Script`` object of a policy, with DLM's defaults filled in."""

    stages: tuple[str, ...] = STAGES
    timeout_s: int = DEFAULT_TIMEOUT_S
    """``ExecutionTimeout``: per script (pre and post each), after which DLM fails the attempt."""
    retries: int = DEFAULT_RETRIES
    """``MaximumRetryCount``: a failed pre retries the whole process, a failed post only post."""
    crash_fallback: bool = True
    """``ExecuteOperationOnScriptFailure``: after a failed pre, take a crash-consistent
    snapshot (True) or none for this instance (False)."""
    handler: str = ""
    """``ExecutionHandler``: the document's name on AWS (the harness runs the one it placed)."""
    given: bool = False
    """Whether a policy file was there (False: DLM's defaults)."""
    unknown_keys: tuple[str, ...] = ()
    """Keys the ``Script`` shape does not have (the API refuses them too; kept for lint)."""

    @property
    def pre(self) -> bool:
        return "PRE" in self.stages

    @property
    def post(self) -> bool:
        return "POST" in self.stages


@dataclass(frozen=True)
class PolicyRead:
    """The settings, or why DLM's API would refuse the policy (``error`` not empty)."""

    settings: ScriptSettings
    error: str = ""
    unsupported: str = ""
    """Not empty: a handler this harness does not model (VSS, SAP HANA)."""


def read_policy(root: Path | str) -> PolicyRead:
    """The script settings of the policy file under ``root`` (defaults when there is none)."""
    path = Path(root) / POLICY_PATH.lstrip("/")
    if not path.exists():
        return PolicyRead(ScriptSettings())
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        return PolicyRead(ScriptSettings(given=True), error=f"{POLICY_PATH} is not JSON: {err}")
    return parse_policy(data)


def parse_policy(data: Any) -> PolicyRead:
    """Settings from a ``Script`` object, a one-item list of them, ``{"Scripts": [...]}``, or
    a whole ``PolicyDetails`` / create-lifecycle-policy request that holds one."""
    found = _find_script(data)
    if isinstance(found, str):
        return PolicyRead(ScriptSettings(given=True), error=found)
    if found is None:
        # {"Scripts": []} or a policy without scripts: DLM runs no script at all.
        return PolicyRead(
            ScriptSettings(stages=(), given=True),
            error="the policy has no Scripts element: DLM would run no document "
            "(crash-consistent snapshots only)",
        )
    return _settings(found)


def _find_script(data: Any) -> dict[str, Any] | str | None:
    """The one ``Script`` object in ``data``, None when a Scripts list is empty, or an error."""
    if isinstance(data, dict) and "PolicyDetails" in data:
        data = data["PolicyDetails"]
    if isinstance(data, dict) and isinstance(data.get("Schedules"), list):
        rules = [
            s["CreateRule"]
            for s in data["Schedules"]
            if isinstance(s, dict) and isinstance(s.get("CreateRule"), dict)
        ]
        with_scripts = [r for r in rules if "Scripts" in r]
        if len(with_scripts) > 1:
            # DLM's LimitExceededException: one script per schedule for one schedule per policy.
            return "more than one schedule has Scripts: DLM allows scripts in one schedule only"
        if not with_scripts:
            return None
        data = with_scripts[0]
    if isinstance(data, dict) and "Scripts" in data:
        data = data["Scripts"]
    if isinstance(data, list):
        if len(data) > 1:
            return "Scripts holds more than one script: DLM allows one (ScriptsList max 1)"
        if not data:
            return None
        data = data[0]
    if not isinstance(data, dict):
        return f"the policy's script settings must be a JSON object, not {type(data).__name__}"
    return data


def _settings(script: dict[str, Any]) -> PolicyRead:
    unknown = tuple(k for k in script if k not in KEYS)
    errors: list[str] = []
    if unknown:
        errors.append(
            f"unknown key(s) {', '.join(unknown)} (the Script shape has {', '.join(KEYS)})"
        )

    stages = script.get("Stages", list(STAGES))
    if (
        not isinstance(stages, list)
        or not 1 <= len(stages) <= 2
        or any(s not in STAGES for s in stages)
        or len(set(stages)) != len(stages)
    ):
        errors.append(f"Stages must be a list of PRE and/or POST (1 or 2 items), not {stages!r}")
        stages = list(STAGES)

    timeout = script.get("ExecutionTimeout", DEFAULT_TIMEOUT_S)
    if not _is_int(timeout) or not TIMEOUT_RANGE[0] <= timeout <= TIMEOUT_RANGE[1]:
        errors.append(
            f"ExecutionTimeout must be an integer from {TIMEOUT_RANGE[0]} to {TIMEOUT_RANGE[1]} "
            f"seconds, not {timeout!r}"
        )
        timeout = DEFAULT_TIMEOUT_S

    retries = script.get("MaximumRetryCount", DEFAULT_RETRIES)
    if not _is_int(retries) or not RETRY_RANGE[0] <= retries <= RETRY_RANGE[1]:
        errors.append(f"MaximumRetryCount must be an integer from 0 to 3, not {retries!r}")
        retries = DEFAULT_RETRIES

    fallback = script.get("ExecuteOperationOnScriptFailure", True)
    if not isinstance(fallback, bool):
        errors.append(f"ExecuteOperationOnScriptFailure must be true or false, not {fallback!r}")
        fallback = True

    service = script.get("ExecutionHandlerService", SERVICE)
    if service != SERVICE:
        errors.append(f"ExecutionHandlerService must be {SERVICE}, not {service!r}")

    handler = script.get("ExecutionHandler", "")
    if not isinstance(handler, str):
        errors.append(f"ExecutionHandler must be a document name or ARN, not {handler!r}")
        handler = ""

    settings = ScriptSettings(
        stages=tuple(s for s in STAGES if s in stages),
        timeout_s=int(timeout),
        retries=int(retries),
        crash_fallback=fallback,
        handler=handler,
        given=True,
        unknown_keys=unknown,
    )
    if errors:
        return PolicyRead(settings, error="; ".join(errors))
    if handler in (VSS_HANDLER, SAP_HANA_HANDLER):
        return PolicyRead(
            settings,
            unsupported=f"ExecutionHandler {handler} runs AWS's own document "
            "(Windows VSS or SAP HANA), which the harness does not model",
        )
    return PolicyRead(settings)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
