"""Property tests for the configuration parsers (spec section 2, azure-framework.md).

``parse_plugin_json`` is checked against a reference written the way the extension's
``ScriptRunner.get_config`` is (plain dict lookups, ``min`` and ``int`` on the raw values, the
pluginName concatenated into the error log line, anything but ValueError/KeyError escaping to the
plugin host), so the real Python semantics decide each code, not type checks.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_vmsnap.framework.azure.config import (
    parse_host_text,
    parse_plugin_json,
    parse_vmbackup_conf,
    parse_workload_conf,
    timeout_budget,
)

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

KNOWN_KEYS = (
    "timeoutInSeconds",
    "pluginName",
    "appName",
    "preScriptLocation",
    "postScriptLocation",
    "preScriptParams",
    "postScriptParams",
    "continueBackupOnFailure",
    "preScriptNoOfRetries",
    "postScriptNoOfRetries",
    "fsFreezeEnabled",
    "ScriptsExecutionPollTimeSeconds",
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-(10**400), 10**400, 0, 1, 3, 5, 6, 1800, 1801]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["3", " 4 ", "2.5", "abc", "", "false", "ScriptRunner", "/etc/azure/x.sh"]),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
# Every JSON type, one level deep: cheap to draw for a dozen keys at once.
shallow_values = (
    scalars
    | st.lists(scalars, max_size=3)
    | st.dictionaries(st.text(max_size=4), scalars, max_size=2)
)
key_names = st.sampled_from(KNOWN_KEYS) | st.text(max_size=20)
config_dicts = st.dictionaries(key_names, shallow_values, max_size=12)
likely_valid = st.fixed_dictionaries(
    {"preScriptLocation": shallow_values, "postScriptLocation": shallow_values},
    optional={key: shallow_values for key in KNOWN_KEYS if not key.endswith("ScriptLocation")},
)
host_caps = st.sampled_from([1800, 60, 1, 0, -5])


def reference_get_config(data: bytes, host_cap: int = 1800) -> tuple[int, dict[str, Any]]:
    """The extension's get_config + validate_scripts prologue, as Python executes it."""
    s: dict[str, Any] = {
        "timeout": 10,
        "poll": 3,
        "name": "ScriptRunner",
        "freeze": True,
        "pre": None,
        "post": None,
    }
    try:
        try:
            config = json.loads(data.decode("utf-8"))
            keys = config.keys()
            if "timeoutInSeconds" in keys:
                s["timeout"] = min(config["timeoutInSeconds"], host_cap)
            if "pluginName" in keys:
                s["name"] = config["pluginName"]
            s["pre"] = config["preScriptLocation"]
            s["post"] = config["postScriptLocation"]
            if "fsFreezeEnabled" in keys:
                s["freeze"] = config["fsFreezeEnabled"]
            if "ScriptsExecutionPollTimeSeconds" in keys:
                poll = int(config["ScriptsExecutionPollTimeSeconds"])
                if 1 <= poll <= 5:
                    s["poll"] = poll
            s["ratio"] = s["timeout"] / s["poll"]  # pollTotalCount
        except (ValueError, KeyError):
            _ = "Error in " + s["name"] + " config file."  # the log line
            return 305, s
    except Exception:  # PluginHost.load_modules
        return 304, s
    return 0, s


def same(a: Any, b: Any) -> bool:
    """Equal with the same type; NaN equals NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def check_plugin_json(data: bytes, host_cap: int = 1800) -> None:
    result = parse_plugin_json(data, host_timeout_s=host_cap)
    assert result.code in (0, 304, 305)
    code, ref = reference_get_config(data, host_cap)
    assert result.code == code, result.detail
    cfg = result.config
    assert same(cfg.timeout_s, ref["timeout"])
    assert cfg.poll_s == ref["poll"] and type(cfg.poll_s) is int
    assert same(cfg.plugin_name, ref["name"]) and same(cfg.fs_freeze, ref["freeze"])
    if result.code == 0:
        raw = json.loads(data)
        assert isinstance(raw, dict) and cfg.present == frozenset(raw)
        assert "preScriptLocation" in raw and "postScriptLocation" in raw
        assert same(cfg.pre_location, raw["preScriptLocation"])
        assert same(cfg.post_location, raw["postScriptLocation"])
        assert 1 <= cfg.poll_s <= 5
        if "timeoutInSeconds" in raw:
            assert math.isnan(cfg.timeout_s) or cfg.timeout_s <= min(host_cap, 1800)
        else:  # the default is not passed through min
            assert cfg.timeout_s == 10
        sleeps, seconds = timeout_budget(cfg.timeout_s, cfg.poll_s)
        assert sleeps == -1 or seconds == sleeps * cfg.poll_s
        argv = cfg.argv("pre")
        assert argv is None or (argv[0] == "sh" and all(isinstance(a, str) for a in argv))
    else:
        assert result.detail


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


@FUZZ
@given(json_values)
def test_any_json_document_gives_0_304_or_305_like_the_extension(doc: Any) -> None:
    """§2.2: never raises; code and partial values match the extension's get_config."""
    check_plugin_json(encode(doc))


@FUZZ
@given(config_dicts, host_caps)
def test_dicts_with_known_keys_give_0_304_or_305_like_the_extension(
    doc: dict[str, Any], host_cap: int
) -> None:
    """§2.2: known keys mapped to every JSON type; codes and values match the reference."""
    check_plugin_json(encode(doc), host_cap)


@FUZZ
@given(likely_valid, host_caps)
def test_configs_with_both_locations_keep_the_invariants(
    doc: dict[str, Any], host_cap: int
) -> None:
    """§2.2: with both locations present, code 0 means poll in 1..5 and timeout capped."""
    check_plugin_json(encode(doc), host_cap)


@FUZZ
@given(st.binary(max_size=200) | likely_valid.map(encode).map(lambda b: b[: len(b) // 2] + b"\x80"))
def test_random_bytes_never_raise(data: bytes) -> None:
    """§2.2: undecodable or truncated bytes are 305 (or 304/0 when they happen to parse)."""
    check_plugin_json(data)


host_options = st.sampled_from(
    [
        "timeoutInSeconds",
        "TimeoutInSeconds",
        "numberOfPlugins",
        "pluginName0",
        "pluginPath0",
        "pluginConfigPath0",
        "pluginName1",
        "pluginPath1",
        "pluginConfigPath1",
        "other",
    ]
)
host_values = st.sampled_from(["1", "0", "2", "-1", "1800", "3600", "ScriptRunner", "x", "%"]) | (
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
)
host_lines = st.one_of(
    st.sampled_from(["[pre_post]", "[PRE_POST]", "[other]", "", "# c", "; c", "  cont"]),
    st.builds(
        lambda k, d, v: f"{k}{d}{v}", host_options, st.sampled_from([":", "=", " = "]), host_values
    ),
    st.text(max_size=30),
)


@FUZZ
@given(st.lists(host_lines, max_size=12).map("\n".join) | st.text())
def test_host_text_never_raises_and_gives_0_or_304(text: str) -> None:
    """§2.1: any host-file text parses to a config or 304; a config lists the readable
    entries 0, 1, ... (at most numberOfPlugins) and says why the next one cannot be read."""
    result = parse_host_text(text)
    assert result.code in (0, 304)
    if result.code == 0:
        config = result.config
        assert config is not None and config.timeout_s <= 1800
        assert [p.index for p in config.plugins] == list(range(len(config.plugins)))
        assert len(config.plugins) <= max(config.count, 0)
        assert bool(config.unread) == (len(config.plugins) < config.count)
    else:
        assert result.config is None and result.detail


@FUZZ
@given(st.text())
def test_vmbackup_and_workload_conf_never_raise(text: str) -> None:
    """§2.3 / §11.1: unparsable files fall back to defaults (vmbackup) or 501 (workload)."""
    for prefix in ("", "[SnapshotThread]\n", "[workload]\n"):
        conf = parse_vmbackup_conf(prefix + text)
        assert isinstance(conf.freeze_timeout_s, int) and isinstance(conf.safefreeze_wait_s, int)
        assert all(m for m in conf.mounts_to_skip)
        work = parse_workload_conf(prefix + text)
        assert work.code in (0, 501)
        assert work.takes_over == (work.workload_name in ("oracle", "mysql", "mariadb", "postgres"))
