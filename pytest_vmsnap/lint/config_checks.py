"""Warnings about the JSON config's values: keys, poll period, timeout, params, retries, flags.

The pre-check already rejects what the extension cannot parse (304/305); these are the values
it accepts but then uses differently from what the config seems to say.
"""

from __future__ import annotations

import difflib
import json
import math
from pathlib import Path
from typing import Any

from ..framework.azure.config import DEFAULT_POLL_S, host_watchdog_s, timeout_budget
from ..framework.azure.profiles import DOCUMENTED, EXTENSION
from .report import Collector
from .wording import MAX_SHOWN, as_arg, show

KNOWN_KEYS = (
    "pluginName",
    "appName",
    "preScriptLocation",
    "postScriptLocation",
    "preScriptParams",
    "postScriptParams",
    "preScriptNoOfRetries",
    "postScriptNoOfRetries",
    "timeoutInSeconds",
    "continueBackupOnFailure",
    "fsFreezeEnabled",
    "ScriptsExecutionPollTimeSeconds",
)


def load_config(out: Collector, path: Path) -> dict[str, Any] | None:
    """The config as a dict (None when absent or unparsable: the pre-check reports that).

    Keys set more than once are warned about here: only the parser sees them.
    """
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    try:
        if not path.is_file():
            return None
        raw = json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=pairs)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(raw, dict):
        return None
    for key in dict.fromkeys(duplicates):
        out.warn(
            "duplicate-key",
            f"The config sets {key} more than once; only the last value counts.",
            f"Keep a single {key} entry.",
            path=out.config_path,
        )
    return raw


def warn_config(out: Collector, raw: dict[str, Any], host_cap: int) -> None:
    """Warn about values the pre-check accepts but the extension ignores, caps or misreads.

    ``host_cap`` is the longest the plugin host waits for a script, in seconds.
    """
    for key in raw:
        if key in KNOWN_KEYS:
            continue
        match = [k for k in KNOWN_KEYS if k.lower() == key.lower()] or difflib.get_close_matches(
            key, KNOWN_KEYS, n=1, cutoff=0.75
        )
        if match:
            out.warn(
                "unknown-key",
                f"The config key {show(key)} is not one the extension reads (key names are "
                f'case-sensitive), so its value is ignored; "{match[0]}" was probably meant.',
                f'Rename {show(key)} to "{match[0]}".',
                path=out.config_path,
            )
    poll = _warn_poll(out, raw)
    _warn_timeout(out, raw, host_cap, poll)
    plugin_name = raw.get("pluginName", "ScriptRunner")
    if not isinstance(plugin_name, str):
        out.warn(
            "plugin-name-not-string",
            f"pluginName is {show(plugin_name)}, not a string: the plugin thread raises "
            "while writing its first log line, never runs the scripts, and the plugin host "
            f"gives up only after about {host_watchdog_s(poll) / 60:.0f} minutes (310).",
            'Use "pluginName": "ScriptRunner" (the value only appears in log lines).',
            path=out.config_path,
        )
    for which in ("pre", "post"):
        _warn_params(out, which, raw, poll)
        _warn_retries(out, which, raw, poll)
    for key in ("continueBackupOnFailure", "fsFreezeEnabled"):
        if key in raw:
            _warn_flag(out, key, raw[key])


def _warn_poll(out: Collector, raw: dict[str, Any]) -> int:
    """Check ScriptsExecutionPollTimeSeconds; return the poll period the extension uses."""
    if "ScriptsExecutionPollTimeSeconds" not in raw:
        return DEFAULT_POLL_S
    value = raw["ScriptsExecutionPollTimeSeconds"]
    try:
        poll = int(value)
    except (TypeError, ValueError, OverflowError):
        return DEFAULT_POLL_S  # the pre-check reports 304/305 for these
    if not 1 <= poll <= 5:
        out.warn(
            "poll-ignored",
            f"ScriptsExecutionPollTimeSeconds is {show(value)}: the extension uses it only "
            f"when it is between 1 and 5, so the default of {DEFAULT_POLL_S} s applies.",
            "Use a whole number from 1 to 5, or remove the key.",
            path=out.config_path,
        )
        return DEFAULT_POLL_S
    if isinstance(value, float) and value != poll:
        out.warn(
            "poll-truncated",
            f"ScriptsExecutionPollTimeSeconds is {value}: the extension truncates it to {poll}.",
            f"Write {poll} (a whole number from 1 to 5).",
            path=out.config_path,
        )
    return poll


def _warn_timeout(out: Collector, raw: dict[str, Any], host_cap: int, poll: int) -> None:
    if "timeoutInSeconds" not in raw:
        ext = timeout_budget(EXTENSION.default_timeout_s, poll)[1]
        doc = timeout_budget(DOCUMENTED.default_timeout_s, poll)[1]
        out.warn(
            "timeout-missing",
            "timeoutInSeconds is not set: the extension's code then allows "
            f"{EXTENSION.default_timeout_s:g} s per script (the template and the README say "
            f"{DOCUMENTED.default_timeout_s:g}).",
            "Set timeoutInSeconds explicitly, to what the slower script really needs plus a "
            "margin (at most 1800).",
            path=out.config_path,
        )
        out.warn(
            "profile-difference",
            f"timeoutInSeconds is absent: the extension profile gives each script {ext:g} s "
            f"before it times out, the documented profile {doc:g} s.",
            "Set timeoutInSeconds explicitly.",
            path=out.config_path,
        )
        timeout: float = EXTENSION.default_timeout_s
    else:
        value = raw["timeoutInSeconds"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return  # a non-number is the pre-check's 304
        if isinstance(value, float) and math.isnan(value):
            return  # NaN never times out; nothing sensible to say beyond "use a number"
        if value > host_cap:
            out.warn(
                "timeout-capped",
                f"timeoutInSeconds is {show(value)}, but the extension never waits more than "
                f"{host_cap} s for a script: it uses {host_cap}.",
                f"A quiesce that needs more than {host_cap} s will time out (308/309): make "
                "the pre-script shorter, and set at most 1800.",
                path=out.config_path,
            )
        timeout = min(value, host_cap)
        if timeout <= 0:
            out.warn(
                "timeout-not-positive",
                f"timeoutInSeconds is {show(value)}: the extension declares a timeout at its "
                "very first check, unless the script has already exited.",
                "Set a positive timeout, what the slower script needs plus a margin.",
                path=out.config_path,
            )
            return
    effective = timeout_budget(timeout, poll)[1]
    if effective != timeout:
        out.warn(
            "timeout-rounded",
            f"The timeout of {timeout:g} s is not a multiple of the {poll} s poll period: the "
            f"extension checks only every {poll} s, so a script times out after "
            f"{effective:g} s (ceil({timeout:g}/{poll})*{poll}), and a script that ends "
            "sooner is noticed only at the next check.",
            f"Use a timeoutInSeconds that is a multiple of {poll} (for example "
            f"{effective:g}), or a smaller ScriptsExecutionPollTimeSeconds.",
            path=out.config_path,
        )


def _warn_params(out: Collector, which: str, raw: dict[str, Any], poll: int) -> None:
    key = f"{which}ScriptParams"
    if key not in raw:
        return
    value = raw[key]
    watchdog = 310 if which == "pre" else 311
    if isinstance(value, str):
        if value:
            chars = ", ".join(repr(c) for c in value[:6]) + (", ..." if len(value) > 6 else "")
            out.warn(
                "params-string",
                f"{key} is a JSON string, not a list: the extension passes each character as "
                f"its own argument ({chars}).",
                f'Make it a list of strings: "{key}": [{json.dumps(value)}].',
                path=out.config_path,
            )
        return
    if isinstance(value, dict):
        out.warn(
            "params-not-list",
            f"{key} is a JSON object: the extension passes only its keys as arguments "
            f"({show(list(value))}), never the values.",
            f"Make {key} a list of strings.",
            path=out.config_path,
        )
        return
    if not isinstance(value, list):
        out.warn(
            "params-crash",
            f"{key} is {show(value)}, not a list: building the command line raises inside "
            f"the plugin thread, the {which}-script never runs, and the plugin host gives up "
            f"only after about {host_watchdog_s(poll) / 60:.0f} minutes ({watchdog}).",
            f'Make it a list of strings, for example "{key}": [] for no arguments.',
            path=out.config_path,
        )
        return
    odd = [item for item in value if not isinstance(item, str)]
    if odd:
        shown = ", ".join(f"{show(item)} -> {as_arg(item)}" for item in odd[:MAX_SHOWN])
        out.warn(
            "params-non-string-item",
            f"{key} holds values that are not strings; the extension passes Python's str() of "
            f"each ({shown}), so true arrives as 'True' and null as 'None'.",
            "Quote every parameter as a JSON string, spelled exactly as the script expects.",
            path=out.config_path,
        )
    if any(item == "" for item in value):
        out.warn(
            "params-empty-item",
            f"{key} contains empty strings (as the template does): each is passed as an empty "
            f"argument, so the {which}-script sees $# = {len(value)} and empty positional "
            "parameters.",
            "Remove the empty entries (use [] for no arguments) unless the script expects them.",
            path=out.config_path,
        )


def _warn_retries(out: Collector, which: str, raw: dict[str, Any], poll: int) -> None:
    key = f"{which}ScriptNoOfRetries"
    if key not in raw:
        return
    value = raw[key]
    if not isinstance(value, int | float):
        watchdog = 310 if which == "pre" else 311
        out.warn(
            "retries-not-number",
            f"{key} is {show(value)}, not a number: when the {which}-script fails, comparing "
            "the retry counter with it raises inside the plugin thread, and the plugin host "
            f"gives up only after about {host_watchdog_s(poll) / 60:.0f} minutes ({watchdog}) "
            "instead of reporting the failure.",
            f'Use a number: "{key}": 0.',
            path=out.config_path,
        )
        return
    if value > 0:
        out.warn(
            "retries-ignored",
            f"{key} is {show(value)}, but the extension never runs a failed script again: it "
            "only logs 'Retrying...' and keeps the first result.",
            f"Retry inside the {which}-script itself if an attempt can fail transiently, and "
            f"set {key} to 0 so the config says what happens.",
            path=out.config_path,
        )
        finite = isinstance(value, int) or math.isfinite(value)
        attempts = f"{math.ceil(value) + 1} times" if finite else "again and again"
        out.warn(
            "profile-difference",
            f"{key} is {show(value)}: the documented profile runs a failing {which}-script "
            f"{attempts}; the extension profile (the real code) runs it once.",
            f"Retry inside the {which}-script and set {key} to 0: then both agree.",
            path=out.config_path,
        )


def _warn_flag(out: Collector, key: str, value: Any) -> None:
    if isinstance(value, bool) or (value in (0, 1) and isinstance(value, int)):
        return
    if isinstance(value, str):
        why = f"any non-empty string is true for the extension, so {json.dumps(value)} acts as "
        why += "true" if value else "false"
    else:
        why = f"the extension tests its truthiness, so {show(value)} acts as "
        why += "true" if value else "false"
    if key == "continueBackupOnFailure":
        if isinstance(value, int):
            why += f"; yet combined with a boolean (True & {value}) it gives {True & value}"
        else:
            why += (
                "; and when a script fails the plugin host combines it with a boolean "
                "(True & value), which raises: the whole backup then fails with error 2"
            )
    out.warn(
        "flag-not-boolean",
        f"{key} is {show(value)}, not a JSON boolean: {why}.",
        f'Write a bare JSON boolean: "{key}": true or "{key}": false.',
        path=out.config_path,
    )
