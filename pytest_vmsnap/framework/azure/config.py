"""Parsing of ``VMSnapshotPluginHost.conf`` and ``VMSnapshotScriptPluginConfig.json``.

The extension reads the JSON with plain dict lookups in a fixed order and lets some Python
exceptions escape (304) while it catches others (305). We reproduce that order and those
outcomes as data, so the result is always a typed config or a code, never a raised exception.
"""

from __future__ import annotations

import configparser
import json
import math
from dataclasses import dataclass, field
from typing import Any

from . import codes

HOST_TIMEOUT_CAP_S = 1800
DEFAULT_POLL_S = 3
HOST_FILE = "/etc/azure/VMSnapshotPluginHost.conf"
PLUGIN_CONFIG = "/etc/azure/VMSnapshotScriptPluginConfig.json"
WORKLOAD_CONF = "/etc/azure/workload.conf"
VMBACKUP_CONF = "/etc/azure/vmbackup.conf"
SUPPORTED_WORKLOADS = ("oracle", "mysql", "mariadb", "postgres")

# The file shipped inside the extension, used when /etc/azure has none.
SHIPPED_HOST_FILE = """[pre_post]
timeoutInSeconds: 1800
numberOfPlugins: 1
pluginName0: ScriptRunner
pluginPath0: /etc/azure
pluginConfigPath0: /etc/azure/VMSnapshotScriptPluginConfig.json
"""

_MISSING = object()


@dataclass(frozen=True)
class PluginEntry:
    """One plugin listed in the host file (``pluginName<i>``, ``pluginPath<i>``,
    ``pluginConfigPath<i>``)."""

    name: str
    path: str
    config_path: str
    index: int = 0

    @property
    def importable(self) -> bool:
        """Whether ``__import__(name).ScriptRunner`` works: the extension's own ``main/`` comes
        first on ``sys.path``, so only its bundled module resolves."""
        return self.name == "ScriptRunner"


@dataclass(frozen=True)
class HostConfig:
    """The parsed plugin-host file.

    The extension reads plugin ``i``'s three options only when its loop reaches it
    (``PluginHost.py:127-130``), so a missing option is not an error of the file as such:
    ``plugins`` holds the readable entries from 0 on (at most ``count``), and ``unread`` says
    why entry ``len(plugins)`` raises when ``count`` asks for it (the pre-check then gives 304).
    """

    timeout_s: int
    plugins: tuple[PluginEntry, ...]
    source: str
    count: int = 0
    """``numberOfPlugins``: how many times the loading loop runs (0 when absent)."""
    unread: str = ""


@dataclass(frozen=True)
class HostParse:
    """Result of parsing the host file: a config, or code 304 with the reason."""

    config: HostConfig | None
    code: int
    detail: str = ""


def parse_host_text(text: str, source: str = HOST_FILE) -> HostParse:
    """Parse host-file text as the extension's ConfigParser does.

    304 when the file itself cannot be read (a ConfigParser error, a bad integer). Plugin
    entries are read lazily, as the extension does: their problems (a missing option, a
    module other than ScriptRunner) count only once the pre-check's loop reaches them.
    """
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text, source=source)
        timeout = HOST_TIMEOUT_CAP_S
        if parser.has_option("pre_post", "timeoutInSeconds"):
            timeout = min(int(parser.get("pre_post", "timeoutInSeconds")), HOST_TIMEOUT_CAP_S)
        count = 0
        if parser.has_option("pre_post", "numberOfPlugins"):
            count = int(parser.get("pre_post", "numberOfPlugins"))
    except (configparser.Error, ValueError) as err:
        return HostParse(None, codes.HOST_PARSING, f"{source}: {_one_line(err)}")
    plugins, unread = _plugin_entries(parser, count, source)
    return HostParse(HostConfig(timeout, plugins, source, count, unread), 0)


def _plugin_entries(
    parser: configparser.ConfigParser, count: int, source: str
) -> tuple[tuple[PluginEntry, ...], str]:
    # The loop never reads past the first entry that raises, so neither do we: this also
    # bounds the work for a huge numberOfPlugins.
    plugins: list[PluginEntry] = []
    for i in range(count):
        try:
            plugins.append(
                PluginEntry(
                    name=parser.get("pre_post", f"pluginName{i}"),
                    path=parser.get("pre_post", f"pluginPath{i}"),
                    config_path=parser.get("pre_post", f"pluginConfigPath{i}"),
                    index=i,
                )
            )
        except configparser.Error as err:  # NoOptionError, or an interpolation error
            return tuple(plugins), f"{source}: {_one_line(err)}"
    return tuple(plugins), ""


@dataclass
class PluginConfig:
    """``VMSnapshotScriptPluginConfig.json`` as the extension sees it.

    Values keep the JSON's own types where the extension keeps them (for example
    ``continue_on_failure`` may be the string ``"false"``, which is truthy).
    """

    pre_location: Any = None
    post_location: Any = None
    pre_params: Any = field(default_factory=list)
    post_params: Any = field(default_factory=list)
    timeout_s: Any = 10
    poll_s: int = DEFAULT_POLL_S
    pre_retries: Any = 0
    post_retries: Any = 0
    continue_on_failure: Any = True
    fs_freeze: Any = True
    plugin_name: Any = "ScriptRunner"
    app_name: Any = None
    present: frozenset[str] = frozenset()
    raw: Any = None

    def argv(self, which: str) -> list[str] | None:
        """``['sh', location, *params]`` as the extension builds it, or None when building it
        would raise inside the extension's worker thread (its watchdog then fires: 310/311)."""
        location = self.pre_location if which == "pre" else self.post_location
        params = self.pre_params if which == "pre" else self.post_params
        if not isinstance(self.plugin_name, str):
            return None  # 'Running prescript for ' + pluginName raises in the thread
        try:
            return ["sh", str(location), *[str(p) for p in params]]
        except (TypeError, RecursionError):
            return None

    def retries(self, which: str) -> Any:
        """The raw retry count for ``pre`` or ``post``."""
        return self.pre_retries if which == "pre" else self.post_retries


@dataclass(frozen=True)
class ConfigParse:
    """Result of reading the JSON: the config (possibly partial) and 0, 304 or 305."""

    config: PluginConfig
    code: int
    detail: str = ""


def parse_plugin_json(
    data: bytes | str, *, host_timeout_s: int = HOST_TIMEOUT_CAP_S, default_timeout_s: float = 10
) -> ConfigParse:
    """Parse the JSON exactly in the extension's key order.

    305 for what the extension catches (invalid JSON, undecodable bytes, a missing location
    key, a non-numeric poll value); 304 for what escapes to the plugin host (a wrong type that
    raises TypeError, a top level that is not an object, nesting too deep for ``json``, a
    timeout too large for ``timeout / poll``). Keys read before the failing one keep their
    values, as in the extension. Never raises.
    """
    cfg = PluginConfig(timeout_s=default_timeout_s)
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        raw = json.loads(text)
    except ValueError as err:  # includes UnicodeDecodeError and JSONDecodeError
        return ConfigParse(cfg, codes.CONFIG_PARSING, f"not valid JSON: {_one_line(err)}")
    except RecursionError:
        # Not a ValueError: it escapes ScriptRunner.get_config and the plugin host logs 304.
        return ConfigParse(
            cfg, codes.HOST_PARSING, "the JSON is nested too deeply for Python's json module"
        )
    cfg.raw = raw
    if not isinstance(raw, dict):
        return ConfigParse(
            cfg, codes.HOST_PARSING, f"the top level is a JSON {_json_type(raw)}, not an object"
        )
    cfg.present = frozenset(raw)

    def fail_type(key: str, value: Any) -> ConfigParse:
        return ConfigParse(
            cfg,
            codes.HOST_PARSING,
            f"{key} is a JSON {_json_type(value)} ({_short_repr(value)}): the extension "
            "raises TypeError on it",
        )

    def fail_caught(detail: str) -> ConfigParse:
        # The extension catches this, but its error log line concatenates pluginName.
        if not isinstance(cfg.plugin_name, str):
            return fail_type("pluginName", cfg.plugin_name)
        return ConfigParse(cfg, codes.CONFIG_PARSING, detail)

    if "timeoutInSeconds" in raw:
        value = raw["timeoutInSeconds"]
        if not _is_number(value):
            return fail_type("timeoutInSeconds", value)
        cfg.timeout_s = _py_min(value, host_timeout_s)
    if "pluginName" in raw:
        cfg.plugin_name = raw["pluginName"]
    if "appName" in raw:
        cfg.app_name = raw["appName"]
    for key, attr in (
        ("preScriptLocation", "pre_location"),
        ("postScriptLocation", "post_location"),
    ):
        if key not in raw:
            return fail_caught(f"required key {key} is missing")
        setattr(cfg, attr, raw[key])
    if "preScriptParams" in raw:
        cfg.pre_params = raw["preScriptParams"]
    if "postScriptParams" in raw:
        cfg.post_params = raw["postScriptParams"]
    if "continueBackupOnFailure" in raw:
        cfg.continue_on_failure = raw["continueBackupOnFailure"]
    if "preScriptNoOfRetries" in raw:
        cfg.pre_retries = raw["preScriptNoOfRetries"]
    if "postScriptNoOfRetries" in raw:
        cfg.post_retries = raw["postScriptNoOfRetries"]
    if "fsFreezeEnabled" in raw:
        cfg.fs_freeze = raw["fsFreezeEnabled"]
    if "ScriptsExecutionPollTimeSeconds" in raw:
        value = raw["ScriptsExecutionPollTimeSeconds"]
        try:
            poll = int(value)
        except (TypeError, OverflowError):
            return fail_type("ScriptsExecutionPollTimeSeconds", value)
        except ValueError:
            return fail_caught(
                f"ScriptsExecutionPollTimeSeconds {_short_repr(value)} is not an integer"
            )
        if 1 <= poll <= 5:
            cfg.poll_s = poll
    try:
        # The extension computes pollTotalCount = timeout / poll while loading the config; an
        # integer timeout beyond float range (only a huge negative one survives the min)
        # raises OverflowError there, which nothing catches before the plugin host.
        cfg.timeout_s / cfg.poll_s
    except OverflowError:
        return ConfigParse(
            cfg,
            codes.HOST_PARSING,
            "timeoutInSeconds / ScriptsExecutionPollTimeSeconds overflows a float: "
            "the extension raises OverflowError on it",
        )
    return ConfigParse(cfg, 0)


def timeout_budget(timeout_s: float, poll_s: int) -> tuple[int, float]:
    """(number of poll sleeps before the timeout fires, seconds until it fires).

    The extension sleeps P and re-checks while ``sleeps < T/P``; so it gives up after
    ``ceil(T/P)`` sleeps, i.e. at ``ceil(T/P)*P`` seconds. T <= 0 times out at the first
    check; NaN and +inf never time out (``sleeps >= T/P`` is never true); (-1, inf) says so.
    """
    try:
        ratio = timeout_s / poll_s
    except OverflowError:  # an int beyond float range: only its sign matters
        ratio = math.inf if timeout_s > 0 else -math.inf
    if math.isnan(ratio) or ratio == math.inf:
        return (-1, math.inf)
    if ratio <= 0:
        return (0, 0.0)
    sleeps = math.ceil(ratio)
    return (sleeps, float(sleeps) * poll_s)  # float product: no OverflowError near 1e308


def host_watchdog_s(poll_s: int, host_timeout_s: int = HOST_TIMEOUT_CAP_S) -> float:
    """When the plugin host gives up on a plugin thread that never reported (310/311): after
    ``int(T / P) + 2`` polls, T the host file's own timeout (errata E8), at most 1800."""
    return float((int(host_timeout_s / poll_s) + 2) * poll_s)


@dataclass(frozen=True)
class WorkloadConf:
    """``/etc/azure/workload.conf``: when it names a workload the JSON framework is bypassed."""

    workload_name: str
    takes_over: bool
    code: int = 0


def parse_workload_conf(text: str) -> WorkloadConf:
    """Read ``workload_name`` from ``[workload]``; 501 if the file cannot be parsed."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text)
        name = parser.get("workload", "workload_name", fallback="").strip()
    except configparser.Error:
        return WorkloadConf("", False, 501)
    return WorkloadConf(name, name in SUPPORTED_WORKLOADS)


@dataclass(frozen=True)
class VmBackupConf:
    """The freeze-related keys of ``/etc/azure/vmbackup.conf`` (section ``[SnapshotThread]``)."""

    freeze_timeout_s: int = 60
    safefreeze_wait_s: int = 66
    mounts_to_skip: tuple[str, ...] = ()


def parse_vmbackup_conf(text: str) -> VmBackupConf:
    """Parse vmbackup.conf; unparsable integers fall back to the defaults, as in the extension."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text)
    except configparser.Error:
        return VmBackupConf()

    def as_int(key: str, default: int) -> int:
        try:
            return int(parser.get("SnapshotThread", key))
        except (configparser.Error, ValueError):
            return default

    try:
        skip = parser.get("SnapshotThread", "MountsToSkip")
    except configparser.Error:  # absent, or e.g. a bare '%': the extension falls back to ''
        skip = ""
    # fsfreezer.freeze_safe does ``value.split(',')`` and tests ``mount_point not in list``:
    # entries are not stripped, so '/a, /b' skips '/a' but not '/b'. Empty entries match
    # no mount point and are dropped.
    return VmBackupConf(
        freeze_timeout_s=as_int("timeout", 60),
        safefreeze_wait_s=as_int("SafeFreezeWaitInSeconds", 66),
        mounts_to_skip=tuple(m for m in skip.split(",") if m),
    )


def _is_number(value: Any) -> bool:
    # bool is an int in Python, so min(True, 1800) works in the extension too.
    return isinstance(value, int | float)


def _py_min(value: float, cap: float) -> float:
    # Python's min keeps the first argument unless the second compares smaller: min(nan, x) is nan.
    return cap if cap < value else value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _short_repr(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except RecursionError:
        return f"<a deeply nested JSON {_json_type(value)}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())
