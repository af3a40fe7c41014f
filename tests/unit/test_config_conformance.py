"""Conformance of the configuration parsers with spec section 2 (azure-framework.md).

Every case asserts the exact framework code and the parsed values the extension would hold at
that point. Section numbers in the docstrings refer to /work/shared/reference/azure-framework.md.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from pytest_vmsnap.framework.azure import profiles
from pytest_vmsnap.framework.azure.config import (
    SHIPPED_HOST_FILE,
    ConfigParse,
    HostParse,
    PluginConfig,
    _short_repr,
    host_watchdog_s,
    parse_host_text,
    parse_plugin_json,
    parse_vmbackup_conf,
    parse_workload_conf,
    timeout_budget,
)

PRE = "/etc/azure/pre.sh"
POST = "/etc/azure/post.sh"
LOCATIONS = {"preScriptLocation": PRE, "postScriptLocation": POST}


def parse(doc: Any, **kwargs: Any) -> ConfigParse:
    """Serialize ``doc`` with Python's json (NaN/Infinity allowed) and parse it."""
    return parse_plugin_json(json.dumps(doc).encode(), **kwargs)


def with_locations(**keys: Any) -> ConfigParse:
    return parse({**LOCATIONS, **keys})


def host(*lines: str) -> HostParse:
    return parse_host_text("\n".join(lines) + "\n")


def plugin_lines(i: int = 0, name: str = "ScriptRunner") -> list[str]:
    return [
        f"pluginName{i}: {name}",
        f"pluginPath{i}: /etc/azure",
        f"pluginConfigPath{i}: /etc/azure/VMSnapshotScriptPluginConfig.json",
    ]


# --------------------------------------------------------------------------------------------
# 2.2 defaults


def test_defaults_when_only_the_two_locations_are_given() -> None:
    """§2.2 table: timeout 10, poll 3, retries 0, continue true, freeze true, params []."""
    result = with_locations()
    assert result.code == 0
    cfg = result.config
    assert (cfg.pre_location, cfg.post_location) == (PRE, POST)
    assert cfg.timeout_s == 10 and cfg.poll_s == 3
    assert (cfg.pre_retries, cfg.post_retries) == (0, 0)
    assert cfg.continue_on_failure is True and cfg.fs_freeze is True
    assert cfg.pre_params == [] and cfg.post_params == []
    assert cfg.plugin_name == "ScriptRunner" and cfg.app_name is None
    assert cfg.present == frozenset(LOCATIONS)


def test_default_params_are_not_shared_between_configs() -> None:
    """§2.2 table: each parse starts from its own empty params list."""
    first, second = with_locations().config, with_locations().config
    first.pre_params.append("x")
    assert second.pre_params == []
    assert PluginConfig().post_params == []


def test_default_timeout_follows_the_profile() -> None:
    """§14: 10 s in the code (extension profile), 30 s in the README (documented profile)."""
    assert profiles.EXTENSION.default_timeout_s == 10
    assert profiles.DOCUMENTED.default_timeout_s == 30
    result = parse(LOCATIONS, default_timeout_s=profiles.DOCUMENTED.default_timeout_s)
    assert result.code == 0 and result.config.timeout_s == 30


def test_absent_timeout_is_not_capped_by_the_host_timeout() -> None:
    """§2.2 table: the default 10 is used as is; only a present timeoutInSeconds is min'd."""
    result = parse(LOCATIONS, host_timeout_s=5)
    assert result.code == 0 and result.config.timeout_s == 10
    assert parse({**LOCATIONS, "timeoutInSeconds": 10}, host_timeout_s=5).config.timeout_s == 5


def test_shipped_template_parses_with_empty_locations_and_two_empty_params() -> None:
    """§2.2 Template: empty locations (302 later), params ["", ""], timeout 30."""
    template = {
        "pluginName": "ScriptRunner",
        "preScriptLocation": "",
        "postScriptLocation": "",
        "preScriptParams": ["", ""],
        "postScriptParams": ["", ""],
        "preScriptNoOfRetries": 0,
        "postScriptNoOfRetries": 0,
        "timeoutInSeconds": 30,
        "continueBackupOnFailure": True,
        "fsFreezeEnabled": True,
    }
    result = parse(template)
    assert result.code == 0
    cfg = result.config
    assert (cfg.pre_location, cfg.post_location) == ("", "")
    assert cfg.pre_params == ["", ""] and cfg.post_params == ["", ""]
    assert cfg.timeout_s == 30 and cfg.poll_s == 3
    assert cfg.argv("pre") == ["sh", "", "", ""]


# --------------------------------------------------------------------------------------------
# 2.2 timeoutInSeconds: the 1800 cap, floats, bools, <= 0, NaN/Infinity


@pytest.mark.parametrize(
    ("value", "host_cap", "expected"),
    [
        pytest.param(1800, 1800, 1800, id="exactly-1800"),
        pytest.param(1801, 1800, 1800, id="1801-capped"),
        pytest.param(3600, 1800, 1800, id="3600-capped"),
        pytest.param(72000, 1800, 1800, id="72000-capped-issue-706"),
        pytest.param(5, 1800, 5, id="below-cap-kept"),
        pytest.param(120, 60, 60, id="host-file-cap-lower-than-1800"),
    ],
)
def test_json_timeout_is_min_of_value_and_host_timeout(
    value: int, host_cap: int, expected: int
) -> None:
    """§2.2 table: timeoutInSeconds -> min(value, hostTimeout), hostTimeout <= 1800."""
    result = parse({**LOCATIONS, "timeoutInSeconds": value}, host_timeout_s=host_cap)
    assert result.code == 0
    assert result.config.timeout_s == expected


def test_host_file_saying_more_than_1800_still_caps_the_json_timeout_at_1800() -> None:
    """§2.1: host timeout = min(int(value), 1800), then §2.2 min(json, host timeout)."""
    parsed_host = host(
        "[pre_post]", "timeoutInSeconds: 7200", "numberOfPlugins: 1", *plugin_lines()
    )
    assert parsed_host.code == 0 and parsed_host.config.timeout_s == 1800
    result = parse(
        {**LOCATIONS, "timeoutInSeconds": 7200}, host_timeout_s=parsed_host.config.timeout_s
    )
    assert result.code == 0 and result.config.timeout_s == 1800


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(2.5, 2.5, id="2.5"),
        pytest.param(0.5, 0.5, id="0.5"),
        pytest.param(1800.5, 1800, id="1800.5-capped"),
        pytest.param(30.0, 30.0, id="30.0"),
    ],
)
def test_float_timeouts_are_allowed(value: float, expected: float) -> None:
    """§2.2 table: timeoutInSeconds float allowed (min keeps the float unless capped)."""
    result = with_locations(timeoutInSeconds=value)
    assert result.code == 0
    assert result.config.timeout_s == expected
    assert type(result.config.timeout_s) is type(expected)


@pytest.mark.parametrize(
    ("value", "budget"),
    [pytest.param(True, (1, 3.0), id="true"), pytest.param(False, (0, 0.0), id="false")],
)
def test_bool_timeouts_are_numbers_to_min(value: bool, budget: tuple[int, float]) -> None:
    """§2.2/§4.4: min(True, 1800) is True (== 1): a bool is not a TypeError, it is 1 or 0 s."""
    result = with_locations(timeoutInSeconds=value)
    assert result.code == 0
    assert result.config.timeout_s is value
    assert timeout_budget(result.config.timeout_s, result.config.poll_s) == budget


@pytest.mark.parametrize("value", [0, -1, -5.5], ids=["0", "-1", "-5.5"])
def test_non_positive_timeouts_parse_and_time_out_at_once(value: float) -> None:
    """§2.2 table / §4.4: timeout <= 0 is accepted and times out at the first check."""
    result = with_locations(timeoutInSeconds=value)
    assert result.code == 0 and result.config.timeout_s == value
    assert timeout_budget(result.config.timeout_s, result.config.poll_s) == (0, 0.0)


def test_nan_timeout_is_kept_and_never_times_out() -> None:
    """§2.2 json accepts NaN; min(nan, 1800) is nan; §4.4 `curr >= nan` never fires."""
    result = parse_plugin_json(
        b'{"preScriptLocation": "/p", "postScriptLocation": "/q", "timeoutInSeconds": NaN}'
    )
    assert result.code == 0
    assert math.isnan(result.config.timeout_s)
    assert timeout_budget(result.config.timeout_s, result.config.poll_s) == (-1, math.inf)


def test_infinity_timeout_is_capped_to_the_host_timeout() -> None:
    """§2.2 json accepts Infinity; min(inf, 1800) is 1800 (600 polls of 3 s)."""
    result = parse_plugin_json(
        b'{"preScriptLocation": "/p", "postScriptLocation": "/q", "timeoutInSeconds": Infinity}'
    )
    assert result.code == 0 and result.config.timeout_s == 1800
    assert timeout_budget(result.config.timeout_s, 3) == (600, 1800.0)


def test_minus_infinity_timeout_is_kept_and_times_out_at_once() -> None:
    """§2.2 json accepts -Infinity; min keeps it; §4.4 T <= 0 times out at the first check."""
    result = parse_plugin_json(
        b'{"preScriptLocation": "/p", "postScriptLocation": "/q", "timeoutInSeconds": -Infinity}'
    )
    assert result.code == 0 and result.config.timeout_s == -math.inf
    assert timeout_budget(result.config.timeout_s, result.config.poll_s) == (0, 0.0)


def test_integer_timeout_beyond_float_range_is_a_host_parsing_error() -> None:
    """§2.1 item 5 (inferred): pollTotalCount = T / P raises OverflowError, uncaught -> 304."""
    huge = "-" + "9" * 400
    result = parse_plugin_json(
        f'{{"preScriptLocation": "/p", "postScriptLocation": "/q", "timeoutInSeconds": {huge}}}'
    )
    assert result.code == 304
    assert result.config.timeout_s == int(huge)
    assert "OverflowError" in result.detail


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("30", id="string"),
        pytest.param(None, id="null"),
        pytest.param([30], id="list"),
        pytest.param({"s": 30}, id="object"),
    ],
)
def test_wrong_timeout_type_is_a_host_parsing_error(value: Any) -> None:
    """§2.2 table: min(<non-number>, 1800) raises TypeError on Python 3 -> 304."""
    result = with_locations(timeoutInSeconds=value, pluginName="Mine", fsFreezeEnabled=False)
    assert result.code == 304
    assert "timeoutInSeconds" in result.detail
    # Read first, so nothing after it was read: defaults everywhere.
    cfg = result.config
    assert cfg.timeout_s == 10 and cfg.plugin_name == "ScriptRunner"
    assert cfg.pre_location is None and cfg.fs_freeze is True


# --------------------------------------------------------------------------------------------
# 2.2 ScriptsExecutionPollTimeSeconds


@pytest.mark.parametrize("value", [1, 2, 3, 4, 5], ids=lambda v: f"poll-{v}")
def test_poll_values_1_to_5_are_used(value: int) -> None:
    """§2.2 table: int(value) used only if 1 <= int <= 5."""
    result = with_locations(ScriptsExecutionPollTimeSeconds=value)
    assert result.code == 0 and result.config.poll_s == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0, id="0"),
        pytest.param(6, id="6"),
        pytest.param(-1, id="-1"),
        pytest.param(100, id="100"),
        pytest.param(0.5, id="0.5-truncates-to-0"),
        pytest.param(False, id="false-is-0"),
        pytest.param("0", id="string-0"),
    ],
)
def test_poll_values_outside_1_to_5_are_silently_ignored(value: Any) -> None:
    """§2.2 table: out of 1..5 -> silently ignored, poll stays 3, code 0."""
    result = with_locations(ScriptsExecutionPollTimeSeconds=value)
    assert result.code == 0 and result.config.poll_s == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("3", 3, id="string-3"),
        pytest.param(" 4 ", 4, id="string-with-spaces"),
        pytest.param(2.9, 2, id="2.9-truncated"),
        pytest.param(5.99, 5, id="5.99-truncated"),
        pytest.param(True, 1, id="true-is-1"),
    ],
)
def test_poll_value_goes_through_int(value: Any, expected: int) -> None:
    """§2.2 table: poll = int(value) ('3' -> 3, floats truncated, True -> 1)."""
    result = with_locations(ScriptsExecutionPollTimeSeconds=value)
    assert result.code == 0
    assert result.config.poll_s == expected and type(result.config.poll_s) is int


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("abc", id="abc"),
        pytest.param("2.5", id="string-2.5"),
        pytest.param("", id="empty-string"),
        pytest.param(math.nan, id="NaN"),
    ],
)
def test_non_numeric_poll_value_is_a_config_parsing_error(value: Any) -> None:
    """§2.2 table: int(value) raises ValueError (caught) -> 305."""
    result = with_locations(ScriptsExecutionPollTimeSeconds=value)
    assert result.code == 305
    assert result.config.poll_s == 3


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="null"),
        pytest.param([3], id="list"),
        pytest.param({"p": 3}, id="object"),
        pytest.param(math.inf, id="Infinity-overflows"),
    ],
)
def test_poll_value_raising_a_non_value_error_is_a_host_parsing_error(value: Any) -> None:
    """§2.2 table: null -> TypeError -> 304 (as list/object; int(inf) is OverflowError)."""
    result = with_locations(ScriptsExecutionPollTimeSeconds=value)
    assert result.code == 304
    assert result.config.poll_s == 3


# --------------------------------------------------------------------------------------------
# 2.2 required keys and the general parse rules


@pytest.mark.parametrize(
    ("doc", "pre"),
    [
        pytest.param({"postScriptLocation": POST}, None, id="pre-missing"),
        pytest.param({"preScriptLocation": PRE}, PRE, id="post-missing"),
        pytest.param({}, None, id="both-missing"),
        pytest.param({"prescriptlocation": PRE, "postScriptLocation": POST}, None, id="wrong-case"),
    ],
)
def test_missing_location_is_a_config_parsing_error(doc: dict[str, Any], pre: Any) -> None:
    """§2.2: a missing (case-sensitive) preScriptLocation/postScriptLocation -> KeyError -> 305."""
    result = parse(doc)
    assert result.code == 305
    assert "required key" in result.detail
    assert result.config.pre_location == pre and result.config.post_location is None


@pytest.mark.parametrize(
    "location",
    [pytest.param("", id="empty"), pytest.param(None, id="null"), pytest.param(7, id="number")],
)
def test_present_location_of_any_type_parses(location: Any) -> None:
    """§2.2 table: the value is only tested later ("" -> 302, null -> 304 in the pre-check)."""
    result = parse({"preScriptLocation": location, "postScriptLocation": location})
    assert result.code == 0
    assert result.config.pre_location == location and result.config.post_location == location


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b"{", id="unclosed"),
        pytest.param(
            b'{"preScriptLocation": "/p", "postScriptLocation": "/q",}', id="trailing-comma"
        ),
        pytest.param(b"{'preScriptLocation': '/p'}", id="single-quotes"),
        pytest.param(
            b'{"preScriptLocation": "/p", "postScriptLocation": "/q"} x', id="trailing-data"
        ),
        pytest.param(b"// comment\n{}", id="comment"),
        pytest.param(b'{"a": undefined}', id="undefined"),
    ],
)
def test_malformed_json_is_a_config_parsing_error(text: bytes) -> None:
    """§2.2 general rules: malformed JSON (ValueError) -> 305, nothing loaded."""
    result = parse_plugin_json(text)
    assert result.code == 305
    assert result.detail.startswith("not valid JSON")
    assert result.config.raw is None and result.config.present == frozenset()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            b'{"preScriptLocation": "/caf\xe9", "postScriptLocation": "/q"}', id="latin-1"
        ),
        pytest.param(b"\xff\xfe{\x00}\x00", id="utf-16-le"),
        pytest.param(b"\x80", id="lone-continuation-byte"),
    ],
)
def test_undecodable_bytes_are_a_config_parsing_error(data: bytes) -> None:
    """§2.2 general rules: UnicodeDecodeError is a ValueError -> 305."""
    result = parse_plugin_json(data)
    assert result.code == 305 and result.config.raw is None


def test_utf8_bom_is_a_config_parsing_error() -> None:
    """§2.2 general rules: json.load of a text file keeping the BOM raises ValueError -> 305."""
    data = b"\xef\xbb\xbf" + json.dumps(LOCATIONS).encode()
    result = parse_plugin_json(data)
    assert result.code == 305 and "BOM" in result.detail


@pytest.mark.parametrize(
    "data", [pytest.param(b"", id="empty"), pytest.param(b" \n\t", id="whitespace-only")]
)
def test_empty_file_is_a_config_parsing_error(data: bytes) -> None:
    """§2.2 general rules: an empty document is malformed JSON -> 305."""
    result = parse_plugin_json(data)
    assert result.code == 305


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[]", id="empty-list"),
        pytest.param(json.dumps([LOCATIONS]), id="list-of-config"),
        pytest.param('"config"', id="string"),
        pytest.param("42", id="integer"),
        pytest.param("1.5", id="float"),
        pytest.param("null", id="null"),
        pytest.param("true", id="boolean"),
    ],
)
def test_non_object_top_level_is_a_host_parsing_error(text: str) -> None:
    """§2.2 general rules: configData.keys() raises AttributeError, uncaught -> 304."""
    result = parse_plugin_json(text)
    assert result.code == 304
    assert "not an object" in result.detail
    assert result.config.raw == json.loads(text)


def test_nesting_too_deep_for_json_is_a_host_parsing_error() -> None:
    """§2.1 item 5: RecursionError is not a ValueError, escapes get_config -> 304."""
    result = parse_plugin_json(b"[" * 100_000)
    assert result.code == 304 and "nested" in result.detail


def test_str_input_is_parsed_like_bytes() -> None:
    """§2.2: the parser takes the file's text as well as its bytes."""
    result = parse_plugin_json(json.dumps({**LOCATIONS, "timeoutInSeconds": 20}))
    assert result.code == 0 and result.config.timeout_s == 20


# --------------------------------------------------------------------------------------------
# 2.2 partial-read effects


def test_fs_freeze_false_is_kept_when_a_later_poll_value_is_bad() -> None:
    """§2.2 partial read: fsFreezeEnabled is read before the poll key, so false is honoured."""
    result = with_locations(
        fsFreezeEnabled=False,
        continueBackupOnFailure=False,
        preScriptNoOfRetries=2,
        ScriptsExecutionPollTimeSeconds="abc",
    )
    assert result.code == 305
    cfg = result.config
    assert cfg.fs_freeze is False and cfg.continue_on_failure is False
    assert cfg.pre_retries == 2 and cfg.poll_s == 3


def test_fs_freeze_false_is_read_even_when_a_null_poll_escapes_as_304() -> None:
    """§2.2 partial read: the values are read; the 304 makes the pre-check force F=True (§6)."""
    result = with_locations(fsFreezeEnabled=False, ScriptsExecutionPollTimeSeconds=None)
    assert result.code == 304 and result.config.fs_freeze is False


def test_keys_after_a_missing_location_are_not_read() -> None:
    """§2.2 partial read: locations come before params/continue/freeze, so those stay default."""
    result = parse(
        {
            "timeoutInSeconds": 60,
            "appName": "app",
            "pluginName": "Mine",
            "preScriptLocation": PRE,
            "preScriptParams": ["a"],
            "continueBackupOnFailure": False,
            "fsFreezeEnabled": False,
        }
    )
    assert result.code == 305
    cfg = result.config
    assert cfg.timeout_s == 60 and cfg.app_name == "app" and cfg.plugin_name == "Mine"
    assert cfg.pre_location == PRE and cfg.post_location is None
    assert cfg.pre_params == [] and cfg.continue_on_failure is True and cfg.fs_freeze is True


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(5, id="number"),
        pytest.param(None, id="null"),
        pytest.param(["ScriptRunner"], id="list"),
        pytest.param({"n": 1}, id="object"),
        pytest.param(True, id="boolean"),
    ],
)
@pytest.mark.parametrize(
    "keys",
    [
        pytest.param({"preScriptLocation": PRE}, id="missing-post-location"),
        pytest.param({**LOCATIONS, "ScriptsExecutionPollTimeSeconds": "abc"}, id="bad-poll"),
    ],
)
def test_non_string_plugin_name_turns_a_caught_305_into_304(
    name: Any, keys: dict[str, Any]
) -> None:
    """§2.2 partial read: the 305 log line concatenates pluginName -> TypeError -> 304."""
    result = parse({**keys, "pluginName": name})
    assert result.code == 304
    assert result.config.plugin_name == name
    assert "pluginName" in result.detail


def test_non_string_plugin_name_alone_parses_but_argv_cannot_be_built() -> None:
    """§2.2 table / §4.4: pluginName only feeds log lines; the worker thread raises (310)."""
    result = with_locations(pluginName=42)
    assert result.code == 0 and result.config.plugin_name == 42
    assert result.config.argv("pre") is None and result.config.argv("post") is None


def test_malformed_json_is_305_whatever_plugin_name_it_would_contain() -> None:
    """§2.2: a ValueError from json happens before pluginName is read: the host name is logged."""
    result = parse_plugin_json(b'{"pluginName": 5, "preScriptLocation": ')
    assert result.code == 305 and result.config.plugin_name == "ScriptRunner"


# --------------------------------------------------------------------------------------------
# 2.2 unknown and duplicate keys, raw value types


def test_unknown_keys_are_ignored() -> None:
    """§2.2 general rules: unknown keys (including other spellings of known ones) are ignored."""
    result = with_locations(
        timeout=99, TimeoutInSeconds=99, scriptsExecutionPollTimeSeconds=5, extra={"a": [1]}
    )
    assert result.code == 0
    assert result.config.timeout_s == 10 and result.config.poll_s == 3
    assert "extra" in result.config.present


@pytest.mark.parametrize(
    ("text", "code", "timeout"),
    [
        pytest.param(
            '{"timeoutInSeconds": 5, "preScriptLocation": "/p", "postScriptLocation": "/q",'
            ' "timeoutInSeconds": 20}',
            0,
            20,
            id="last-number-wins",
        ),
        pytest.param(
            '{"timeoutInSeconds": "bad", "preScriptLocation": "/p", "postScriptLocation": "/q",'
            ' "timeoutInSeconds": 20}',
            0,
            20,
            id="bad-then-good-is-good",
        ),
        pytest.param(
            '{"timeoutInSeconds": 20, "preScriptLocation": "/p", "postScriptLocation": "/q",'
            ' "timeoutInSeconds": "bad"}',
            304,
            10,
            id="good-then-bad-is-bad",
        ),
    ],
)
def test_duplicate_keys_last_occurrence_wins(text: str, code: int, timeout: int) -> None:
    """§2.2 general rules: duplicate keys, last occurrence wins (Python json)."""
    result = parse_plugin_json(text)
    assert result.code == code and result.config.timeout_s == timeout


def test_duplicate_location_key_last_wins() -> None:
    """§2.2 general rules: duplicate keys, last occurrence wins (Python json)."""
    text = '{"preScriptLocation": "/a", "preScriptLocation": "/b", "postScriptLocation": "/q"}'
    result = parse_plugin_json(text)
    assert result.code == 0 and result.config.pre_location == "/b"


def test_values_keep_their_json_types() -> None:
    """§2.2 table: values are plain dict lookups ("false" stays a truthy string, 0 stays 0)."""
    result = with_locations(
        continueBackupOnFailure="false",
        fsFreezeEnabled=0,
        preScriptNoOfRetries="x",
        postScriptNoOfRetries=2.5,
        appName=["a"],
    )
    assert result.code == 0
    cfg = result.config
    assert cfg.continue_on_failure == "false" and cfg.fs_freeze == 0
    assert cfg.retries("pre") == "x" and cfg.retries("post") == 2.5
    assert cfg.app_name == ["a"]


@pytest.mark.parametrize(
    ("params", "argv_tail"),
    [
        pytest.param([], [], id="empty"),
        pytest.param(["", ""], ["", ""], id="template-empty-strings"),
        pytest.param([True, 5, None, 1.5], ["True", "5", "None", "1.5"], id="str-of-each"),
        pytest.param("ab", ["a", "b"], id="string-iterated-by-char"),
        pytest.param({"k": 1}, ["k"], id="object-iterates-keys"),
        pytest.param(7, None, id="number-raises-in-thread"),
        pytest.param(None, None, id="null-raises-in-thread"),
    ],
)
def test_params_become_argv_as_the_extension_builds_it(params: Any, argv_tail: Any) -> None:
    """§2.2 table / §4.1: argv = ['sh', location] + [str(p) for p in params]."""
    result = with_locations(preScriptParams=params, postScriptParams=params)
    assert result.code == 0 and result.config.pre_params == params
    expected = None if argv_tail is None else ["sh", PRE, *argv_tail]
    assert result.config.argv("pre") == expected


def deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def test_params_too_deep_for_str_cannot_become_argv() -> None:
    """§2.2 table / §4.1: str() raising inside the worker thread means no argv (310/311)."""
    cfg = PluginConfig(pre_location=PRE, pre_params=[deep_list(100_000)])
    assert cfg.argv("pre") is None


def test_error_details_stay_short_and_never_raise() -> None:
    """§2.2: the 304/305 detail names the value without dumping it whole."""
    result = with_locations(timeoutInSeconds="x" * 1000)
    assert result.code == 304 and len(result.detail) < 200 and "..." in result.detail
    assert _short_repr(deep_list(100_000)) == "<a deeply nested JSON array>"


# --------------------------------------------------------------------------------------------
# 4.4 / 15 timeout arithmetic


@pytest.mark.parametrize(
    ("timeout", "poll", "sleeps", "seconds"),
    [
        pytest.param(3, 2, 2, 4.0, id="T3-P2-4.0s"),
        pytest.param(10, 3, 4, 12.0, id="T10-P3-12s"),
        pytest.param(30, 3, 10, 30.0, id="T30-P3-30s"),
        pytest.param(1, 5, 1, 5.0, id="T1-P5-5s"),
        pytest.param(1800, 3, 600, 1800.0, id="T1800-P3"),
        pytest.param(1800, 4, 450, 1800.0, id="T1800-P4"),
        pytest.param(1799, 5, 360, 1800.0, id="T1799-P5-rounded-up"),
        pytest.param(2.5, 3, 1, 3.0, id="float-T2.5-P3"),
        pytest.param(0, 3, 0, 0.0, id="T0-immediate"),
        pytest.param(-5, 3, 0, 0.0, id="negative-immediate"),
        pytest.param(-math.inf, 3, 0, 0.0, id="minus-inf-immediate"),
        pytest.param(math.nan, 3, -1, math.inf, id="nan-never"),
        pytest.param(math.inf, 3, -1, math.inf, id="inf-never"),
        pytest.param(-(10**400), 3, 0, 0.0, id="huge-negative-int-immediate"),
    ],
)
def test_timeout_budget_is_ceil_t_over_p_times_p(
    timeout: float, poll: int, sleeps: int, seconds: float
) -> None:
    """§4.4: the timeout fires after ceil(T/P)*P s; T <= 0 at once; NaN never."""
    assert timeout_budget(timeout, poll) == (sleeps, seconds)


@pytest.mark.parametrize(
    ("poll", "seconds"),
    [(1, 1802.0), (2, 1804.0), (3, 1806.0), (4, 1808.0), (5, 1810.0)],
    ids=lambda v: str(v),
)
def test_host_watchdog_is_int_1800_over_p_plus_2_polls(poll: int, seconds: float) -> None:
    """§4.4 / §15: the host watchdog gives up after (int(1800/P)+2)*P s (1806 s at P=3)."""
    assert host_watchdog_s(poll) == seconds


# --------------------------------------------------------------------------------------------
# 2.1 plugin-host file


def test_shipped_host_file_gives_timeout_1800_and_one_script_runner_plugin() -> None:
    """§2.1 shipped content: timeoutInSeconds 1800, numberOfPlugins 1, ScriptRunner."""
    result = parse_host_text(SHIPPED_HOST_FILE)
    assert result.code == 0 and result.detail == ""
    assert result.config.timeout_s == 1800
    assert len(result.config.plugins) == 1
    plugin = result.config.plugins[0]
    assert plugin.name == "ScriptRunner" and plugin.path == "/etc/azure"
    assert plugin.config_path == "/etc/azure/VMSnapshotScriptPluginConfig.json"
    assert result.config.source == "/etc/azure/VMSnapshotPluginHost.conf"


def test_host_option_names_are_case_insensitive() -> None:
    """§2.1: parsed with ConfigParser, option names case-insensitive."""
    result = host(
        "[pre_post]",
        "TIMEOUTINSECONDS: 60",
        "NumberOfPlugins: 1",
        "PLUGINNAME0: ScriptRunner",
        "pluginpath0: /etc/azure",
        "PluginConfigPath0: /x.json",
    )
    assert result.code == 0 and result.config.timeout_s == 60
    assert result.config.plugins[0].config_path == "/x.json"


@pytest.mark.parametrize("delimiter", [":", "=", " = ", " : "], ids=repr)
def test_host_colon_and_equals_both_work(delimiter: str) -> None:
    """§2.1: ConfigParser accepts ':' or '=' between option and value."""
    lines = [f"timeoutInSeconds{delimiter}120", f"numberOfPlugins{delimiter}1"]
    lines += [line.replace(": ", delimiter) for line in plugin_lines()]
    result = host("[pre_post]", *lines)
    assert result.code == 0 and result.config.timeout_s == 120
    assert result.config.plugins[0].name == "ScriptRunner"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty-file"),
        pytest.param("[other]\ntimeoutInSeconds: 60\nnumberOfPlugins: 1\n", id="other-section"),
        pytest.param("[PRE_POST]\ntimeoutInSeconds: 60\nnumberOfPlugins: 1\n", id="section-case"),
    ],
)
def test_host_missing_section_means_timeout_1800_and_no_plugins(text: str) -> None:
    """§2.1: has_option is False without [pre_post]: timeout 1800, numberOfPlugins 0."""
    result = parse_host_text(text)
    assert result.code == 0
    assert result.config.timeout_s == 1800 and result.config.plugins == ()


def test_host_text_without_section_header_is_a_host_parsing_error() -> None:
    """§2.1 item 5: MissingSectionHeaderError while parsing -> 304."""
    result = parse_host_text("timeoutInSeconds: 60\n", source="/x.conf")
    assert result.code == 304 and result.config is None
    assert result.detail.startswith("/x.conf")


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param(["timeoutInSeconds: abc"], id="timeout-abc"),
        pytest.param(["timeoutInSeconds: 30.5"], id="timeout-float"),
        pytest.param(["timeoutInSeconds:"], id="timeout-empty"),
        pytest.param(["timeoutInSeconds: 30 ; comment"], id="timeout-inline-comment"),
        pytest.param(["numberOfPlugins: one"], id="plugins-one"),
        pytest.param(["numberOfPlugins: 1.0"], id="plugins-float"),
    ],
)
def test_host_bad_int_is_a_host_parsing_error(lines: list[str]) -> None:
    """§2.1 item 5: int(value) raises ValueError -> 304."""
    result = host("[pre_post]", *lines, *plugin_lines())
    assert result.code == 304 and result.config is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("1800", 1800, id="1800"),
        pytest.param("3600", 1800, id="3600-capped"),
        pytest.param("60", 60, id="60"),
        pytest.param("-5", -5, id="negative-kept-by-min"),
        pytest.param(" 90 ", 90, id="spaces-stripped"),
    ],
)
def test_host_timeout_is_min_of_int_value_and_1800(value: str, expected: int) -> None:
    """§2.1: host timeout = min(int(value), 1800), a hard ceiling even if the file says more."""
    result = host("[pre_post]", f"timeoutInSeconds: {value}", "numberOfPlugins: 0")
    assert result.code == 0 and result.config.timeout_s == expected


def test_host_timeout_absent_defaults_to_1800() -> None:
    """§2.1: without timeoutInSeconds the host timeout stays 1800."""
    result = host("[pre_post]", "numberOfPlugins: 1", *plugin_lines())
    assert result.code == 0 and result.config.timeout_s == 1800


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("MyPlugin", id="other-module"),
        pytest.param("scriptrunner", id="lower-case"),
        pytest.param("ScriptRunner.py", id="file-name"),
        pytest.param("PluginHost", id="module-without-ScriptRunner-class"),
    ],
)
def test_host_plugin_name_is_kept_and_judged_when_imported(name: str) -> None:
    """§2.1, errata E8: pluginName<i> is __import__ed only when the loading loop reaches it,
    after its JSON passed the file checks (PluginHost.py:148-150); the parser keeps the name
    and says it is not importable (the pre-check then gives 304)."""
    result = host("[pre_post]", "numberOfPlugins: 1", *plugin_lines(0, name))
    assert result.code == 0
    assert result.config.plugins[0].name == name
    assert not result.config.plugins[0].importable


def test_host_second_plugin_with_another_name_is_parsed() -> None:
    """§2.1, errata E8: entry 1 is read as written; whether it imports is the pre-check's
    business, once the loop gets there."""
    result = host("[pre_post]", "numberOfPlugins: 2", *plugin_lines(0), *plugin_lines(1, "X"))
    assert result.code == 0
    assert [(p.index, p.importable) for p in result.config.plugins] == [(0, True), (1, False)]


@pytest.mark.parametrize(
    "count",
    [pytest.param("0", id="0"), pytest.param("-1", id="negative"), pytest.param(None, id="absent")],
)
def test_host_zero_plugins_loads_nothing(count: str | None) -> None:
    """§2.1: numberOfPlugins is the loop count (default 0): no plugin, no error."""
    lines = [] if count is None else [f"numberOfPlugins: {count}"]
    result = host("[pre_post]", "timeoutInSeconds: 1800", *lines, *plugin_lines(0, "Ignored"))
    assert result.code == 0 and result.config.plugins == ()


def test_host_two_script_runner_plugins() -> None:
    """§2.1: for plugin i, pluginName<i>/pluginPath<i>/pluginConfigPath<i> are read."""
    result = host(
        "[pre_post]",
        "numberOfPlugins: 2",
        *plugin_lines(0),
        "pluginName1: ScriptRunner",
        "pluginPath1: /opt",
        "pluginConfigPath1: /opt/second.json",
    )
    assert result.code == 0
    assert [p.config_path for p in result.config.plugins] == [
        "/etc/azure/VMSnapshotScriptPluginConfig.json",
        "/opt/second.json",
    ]


@pytest.mark.parametrize(
    "missing",
    ["pluginName0", "pluginPath0", "pluginConfigPath0"],
)
def test_host_missing_plugin_option_is_left_for_the_loop(missing: str) -> None:
    """§2.1 item 5, errata E8: a missing pluginName0 (or path) raises NoOptionError when the
    loop reads entry 0 (PluginHost.py:128-130): no entry is readable and ``unread`` says why."""
    lines = [line for line in plugin_lines() if not line.startswith(missing + ":")]
    result = host("[pre_post]", "numberOfPlugins: 1", *lines)
    assert result.code == 0 and result.config.plugins == ()
    assert result.config.count == 1
    assert missing.lower() in result.config.unread.lower()


def test_host_more_plugins_counted_than_listed_reads_the_listed_ones() -> None:
    """§2.1 item 5, errata E8: numberOfPlugins 2 with only plugin 0 -> entry 0 is readable,
    pluginName1 raises NoOptionError once the loop gets to it."""
    result = host("[pre_post]", "numberOfPlugins: 2", *plugin_lines())
    assert result.code == 0 and len(result.config.plugins) == 1
    assert result.config.count == 2 and "pluginname1" in result.config.unread.lower()


def test_host_huge_plugin_count_reads_only_the_listed_entries() -> None:
    """Errata E8: the loop never reads past the first entry that raises, so a huge
    numberOfPlugins costs nothing more than the listed entries."""
    result = host("[pre_post]", "numberOfPlugins: 1000000000", *plugin_lines())
    assert result.code == 0 and len(result.config.plugins) == 1
    assert result.config.count == 1_000_000_000


def test_host_bare_percent_in_a_plugin_option_is_left_for_the_loop() -> None:
    """§2.1 item 5: Python 3's ConfigParser interpolates on get, so a bare '%' in
    pluginPath0 raises only when the loop reads entry 0."""
    lines = [line for line in plugin_lines() if not line.startswith("pluginPath0")]
    result = host("[pre_post]", "numberOfPlugins: 1", *lines, "pluginPath0: /etc/100%")
    assert result.code == 0 and result.config.plugins == ()
    assert "%" in result.config.unread


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param(["timeoutInSeconds: 60", "timeoutInSeconds: 90"], id="duplicate-option"),
        pytest.param(["[pre_post]"], id="duplicate-section"),
        pytest.param(["timeoutInSeconds"], id="option-without-value"),
    ],
)
def test_host_configparser_errors_are_host_parsing_errors(lines: list[str]) -> None:
    """§2.1 item 5: any ConfigParser exception while reading the file (Python 3 strict
    parser) -> 304."""
    base = ["[pre_post]", "numberOfPlugins: 1", "pluginName0: ScriptRunner"]
    base += ["pluginPath0: /etc/azure"]
    base += ["pluginConfigPath0: /etc/azure/VMSnapshotScriptPluginConfig.json"]
    result = host(*base, *lines)
    assert result.code == 304 and result.config is None


# --------------------------------------------------------------------------------------------
# 2.3 vmbackup.conf


def test_vmbackup_defaults_are_60_and_66_without_skips() -> None:
    """§2.3: timeout default 60 s, SafeFreezeWaitInSeconds default 66, MountsToSkip empty."""
    for text in ("", "[SnapshotThread]\n", "[Monitor]\ntimeout = 5\n", "garbage without header"):
        conf = parse_vmbackup_conf(text)
        assert (conf.freeze_timeout_s, conf.safefreeze_wait_s, conf.mounts_to_skip) == (60, 66, ())


def test_vmbackup_values_are_read_from_snapshot_thread() -> None:
    """§2.3: timeout, SafeFreezeWaitInSeconds, MountsToSkip in [SnapshotThread]."""
    conf = parse_vmbackup_conf(
        "[SnapshotThread]\nfsfreeze: True\nMountsToSkip = /mnt/resource\n"
        "SafeFreezeWaitInSeconds=600\ntimeout = 90\n"
    )
    assert conf.freeze_timeout_s == 90 and conf.safefreeze_wait_s == 600
    assert conf.mounts_to_skip == ("/mnt/resource",)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("/a,/b", ("/a", "/b"), id="two"),
        pytest.param("/a,,/b,", ("/a", "/b"), id="empty-entries-dropped"),
        pytest.param("/a, /b", ("/a", " /b"), id="space-kept-as-extension-splits"),
        pytest.param("", (), id="empty"),
        pytest.param("/data%", (), id="percent-falls-back-to-default"),
    ],
)
def test_vmbackup_mounts_to_skip_is_split_on_commas(value: str, expected: tuple[str, ...]) -> None:
    """§2.3: MountsToSkip is comma-separated (split(','), entries not stripped)."""
    conf = parse_vmbackup_conf(f"[SnapshotThread]\nmountstoskip = {value}\ntimeout = 7\n")
    assert conf.mounts_to_skip == expected and conf.freeze_timeout_s == 7


@pytest.mark.parametrize(
    ("lines", "timeout", "wait"),
    [
        pytest.param(["timeout = abc", "SafeFreezeWaitInSeconds = 100"], 60, 100, id="bad-timeout"),
        pytest.param(["timeout = 30", "SafeFreezeWaitInSeconds = 1.5"], 30, 66, id="bad-wait"),
        pytest.param(["timeout =", "SafeFreezeWaitInSeconds = %"], 60, 66, id="empty-and-percent"),
    ],
)
def test_vmbackup_bad_int_falls_back_to_the_default(
    lines: list[str], timeout: int, wait: int
) -> None:
    """§2.3: unparseable ints fall back to the defaults, key by key."""
    conf = parse_vmbackup_conf("\n".join(["[SnapshotThread]", *lines]) + "\n")
    assert (conf.freeze_timeout_s, conf.safefreeze_wait_s) == (timeout, wait)


# --------------------------------------------------------------------------------------------
# 11.1 workload.conf


@pytest.mark.parametrize("name", ["oracle", "mysql", "mariadb", "postgres"])
def test_workload_supported_name_takes_over(name: str) -> None:
    """§11.1: workload_name exactly oracle/mysql/mariadb/postgres bypasses the JSON framework."""
    conf = parse_workload_conf(f"[workload]\nworkload_name = {name}\ncommand_path =\n")
    assert conf.code == 0 and conf.workload_name == name and conf.takes_over is True


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("MySQL", id="MySQL"),
        pytest.param("ORACLE", id="ORACLE"),
        pytest.param("postgresql", id="postgresql"),
        pytest.param("mssql", id="mssql"),
        pytest.param('"mysql"', id="quoted"),
        pytest.param("mysql;", id="trailing-punctuation"),
        pytest.param("", id="template-empty"),
    ],
)
def test_workload_other_names_do_not_take_over(name: str) -> None:
    """§11.1: case-sensitive exact match; anything else leaves the classic flow in place."""
    conf = parse_workload_conf(f"[workload]\nworkload_name = {name}\n")
    assert conf.code == 0 and conf.workload_name == name and conf.takes_over is False


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("[other]\nworkload_name = mysql\n", id="other-section"),
        pytest.param("[workload]\ncommand_path = /usr/bin\n", id="no-workload-name"),
    ],
)
def test_workload_absent_name_does_not_take_over(text: str) -> None:
    """§11.1: no workload_name in [workload] -> classic flow."""
    conf = parse_workload_conf(text)
    assert conf.code == 0 and conf.takes_over is False and conf.workload_name == ""


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("workload_name = mysql\n", id="no-section-header"),
        pytest.param("[workload]\nworkload_name = mysql\nworkload_name = oracle\n", id="dup"),
        pytest.param("[workload]\nworkload_name = my%sql\n", id="percent"),
    ],
)
def test_workload_unparsable_file_is_501_and_does_not_take_over(text: str) -> None:
    """§11.1: parse exception -> 501; no workload name, so the classic flow is not bypassed."""
    conf = parse_workload_conf(text)
    assert conf.code == 501 and conf.takes_over is False
