"""Conformance of the pre-check (spec sections 2.1, 2.2 file-level rules, and 3).

Every test runs on a pyfakefs file system, so modes and owners can be anything; owner names
come from an injected ``owner_name`` (a stand-in for the passwd database).
"""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap.framework.azure import codes
from pytest_vmsnap.framework.azure.checks import (
    DEFAULT_EXTENSION_DIR,
    Precheck,
    passwd_owner_name,
    precheck,
    resolve,
)
from pytest_vmsnap.framework.azure.profiles import DOCUMENTED, EXTENSION, Profile, get

ROOT = "/vm"
AZ = f"{ROOT}/etc/azure"
JSON_PATH = f"{AZ}/VMSnapshotScriptPluginConfig.json"
HOST_PATH = f"{AZ}/VMSnapshotPluginHost.conf"
WORKLOAD_PATH = f"{AZ}/workload.conf"
PRE = "/scripts/pre.sh"
POST = "/scripts/post.sh"

ALICE, TOOR, NOBODY_KNOWS = 1000, 1001, 4242

PASSWD = {0: "root", ALICE: "alice"}


def names(mapping: dict[int, str] | None = None) -> Callable[[int], str]:
    """A passwd stand-in: uid -> name, '' when the uid has no entry (as the extension sees it)."""
    table = PASSWD if mapping is None else mapping
    return lambda uid: table.get(uid, "")


def put(fs: Any, path: str, mode: int, uid: int = 0, contents: str = "exit 0\n") -> str:
    """Create a file with an exact mode and owner uid on the fake file system."""
    if os.path.lexists(path):
        os.remove(path)
    fs.create_file(path, contents=contents)
    os.chmod(path, mode)
    os.chown(path, uid, 0)
    return path


def write_json(fs: Any, mode: int = 0o600, uid: int = 0, **overrides: Any) -> dict[str, Any]:
    """The plugin JSON with both script locations set; ``key=DROP`` removes a key."""
    cfg: dict[str, Any] = {
        "pluginName": "ScriptRunner",
        "preScriptLocation": PRE,
        "postScriptLocation": POST,
        "preScriptParams": [],
        "postScriptParams": [],
        "timeoutInSeconds": 30,
        "continueBackupOnFailure": True,
        "fsFreezeEnabled": True,
    }
    for key, value in overrides.items():
        if value is DROP:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    put(fs, JSON_PATH, mode, uid, json.dumps(cfg))
    return cfg


DROP = object()


def octal(mode: int) -> str:
    """Test ids for modes, as ls -l people read them."""
    return f"{mode:o}"


def vm(fs: Any, pre_mode: int = 0o700, post_mode: int = 0o700, **json_overrides: Any) -> None:
    """A correctly configured VM: JSON 600 root, both scripts 700 root."""
    write_json(fs, **json_overrides)
    put(fs, ROOT + PRE, pre_mode)
    put(fs, ROOT + POST, post_mode)


def check(
    owner: Callable[[int], str] | None = None, profile: Profile = EXTENSION, **kw: Any
) -> Precheck:
    return precheck(ROOT, profile=profile, owner_name=owner or names(), **kw)


# --------------------------------------------------------------------------------------
# Section 3: both scripts, in the exact order, first failure wins
# --------------------------------------------------------------------------------------


def test_clean_configuration_passes(fs: Any) -> None:
    """Sec. 3: a root-owned 600 JSON and two root-owned 700 scripts pass with code 0."""
    vm(fs)
    pc = check()
    assert pc.code == 0
    assert pc.pre_path == Path(ROOT + PRE)
    assert pc.post_path == Path(ROOT + POST)
    assert pc.dobackup is True and pc.fs_freeze is True
    assert any("are 600" in line for line in pc.log)  # 4.7 "Permissions of the file X are NNN"


# Each state: None = missing, "mode" = 755, "owner" = owned by alice, "ok" = root 700.
ORDER_CASES = [
    # (pre, post, expected code) — sec. 3 steps 3-8, first failure wins
    ("missing", "missing", codes.PRE_NOT_FOUND),
    ("missing", "mode", codes.PRE_NOT_FOUND),
    ("mode", "missing", codes.PRE_PERMISSION),
    ("mode", "owner", codes.PRE_PERMISSION),
    ("owner", "missing", codes.PRE_PERMISSION),
    ("owner", "ok", codes.PRE_PERMISSION),
    ("mode+owner", "ok", codes.PRE_PERMISSION),
    ("ok", "missing", codes.POST_NOT_FOUND),
    ("ok", "mode", codes.POST_PERMISSION),
    ("ok", "owner", codes.POST_PERMISSION),
    ("ok", "mode+owner", codes.POST_PERMISSION),
    ("ok", "ok", 0),
]


def _make_script(fs: Any, path: str, state: str) -> None:
    if state == "missing":
        return
    mode = 0o755 if "mode" in state else 0o700
    uid = ALICE if "owner" in state else 0
    put(fs, ROOT + path, mode, uid)


@pytest.mark.parametrize(("pre", "post", "expected"), ORDER_CASES)
def test_validation_order_first_failure_wins(
    fs: Any, record_property: Any, pre: str, post: str, expected: int
) -> None:
    """Sec. 3 steps 3-8: pre existence 302, pre mode 306, pre owner 306, post existence 303,
    post mode 307, post owner 307 — both scripts checked before either runs; first wins."""
    write_json(fs)
    _make_script(fs, PRE, pre)
    _make_script(fs, POST, post)
    pc = check()
    record_property("expected", f"code {expected}")
    record_property("got", f"code {pc.code}")
    assert pc.code == expected


def test_mode_is_checked_before_owner(fs: Any) -> None:
    """Sec. 3 steps 4-5: with a bad mode and a bad owner, the mode failure is what is reported."""
    vm(fs)
    put(fs, ROOT + PRE, 0o750, uid=ALICE)
    pc = check()
    assert pc.code == codes.PRE_PERMISSION
    assert "mode 750" in pc.detail


@pytest.mark.parametrize(
    "mode", [0o700, 0o600, 0o500, 0o400, 0o000, 0o4700, 0o2700, 0o1700], ids=octal
)
def test_script_mode_owner_bits_free(fs: Any, mode: int) -> None:
    """Sec. 3 'exact permission semantics': only the last three octal digits count, owner bits
    are free and setuid/setgid/sticky are ignored (700/600/500/400/000/4700 pass)."""
    vm(fs, pre_mode=mode, post_mode=mode)
    assert check().code == 0


@pytest.mark.parametrize(
    "mode", [0o710, 0o701, 0o740, 0o704, 0o750, 0o755, 0o777, 0o707], ids=octal
)
def test_script_mode_group_other_must_be_zero(fs: Any, mode: int) -> None:
    """Sec. 3 step 4: the group digit and the other digit must both be 0 (710, 701, 740, 704
    fail) -> 306 for the pre-script."""
    vm(fs, pre_mode=mode)
    assert check().code == codes.PRE_PERMISSION


@pytest.mark.parametrize("mode", [0o710, 0o701, 0o740, 0o704], ids=octal)
def test_post_script_mode_group_other_must_be_zero(fs: Any, mode: int) -> None:
    """Sec. 3 step 7: the same mode rule for the post-script -> 307."""
    vm(fs, post_mode=mode)
    assert check().code == codes.POST_PERMISSION


@pytest.mark.parametrize(
    ("passwd", "uid", "expected"),
    [
        ({0: "root"}, 0, 0),
        ({0: "root", ALICE: "alice"}, ALICE, codes.PRE_PERMISSION),
        ({0: "root", TOOR: "toor"}, TOOR, codes.PRE_PERMISSION),
        ({0: "root"}, NOBODY_KNOWS, codes.PRE_PERMISSION),  # no passwd entry -> ''
        ({0: "root", 7: "Root"}, 7, codes.PRE_PERMISSION),  # the comparison is case-sensitive
    ],
    ids=["root", "alice", "toor", "no-passwd-entry", "Root"],
)
def test_script_owner_is_judged_by_name(
    fs: Any, passwd: dict[int, str], uid: int, expected: int
) -> None:
    """Sec. 3 step 5: the owner *name* through passwd must be exactly 'root': 'toor',
    'alice', 'Root' and a uid without a passwd entry ('') all fail with 306."""
    vm(fs)
    os.chown(ROOT + PRE, uid, 0)
    assert check(names(passwd)).code == expected


def test_uid0_alias_named_toor_fails(fs: Any) -> None:
    """Sec. 3: 'a uid-0 alias with another name fails'. When getpwuid(0) answers 'toor'
    (the alias comes first in passwd) every root-owned file fails the name test; the JSON is
    checked first, so the pre-check stops at 317 — and the script rule alone gives 306."""
    vm(fs)
    assert check(names({0: "toor"})).code == codes.CONFIG_PERMISSION
    os.chown(JSON_PATH, 7, 0)  # isolate the script rule: the JSON reads as root
    assert check(names({0: "toor", 7: "root"})).code == codes.PRE_PERMISSION


def test_post_owner_no_passwd_entry(fs: Any) -> None:
    """Sec. 3 step 8: a post-script owned by a uid without passwd entry fails with 307."""
    vm(fs)
    os.chown(ROOT + POST, NOBODY_KNOWS, 0)
    pc = check()
    assert pc.code == codes.POST_PERMISSION
    assert "no passwd entry" in pc.detail


def test_passwd_owner_name_uses_the_real_database() -> None:
    """Sec. 3: ownership is read through the passwd database; a missing entry gives ''."""
    assert passwd_owner_name(0) == pwd.getpwuid(0).pw_name
    unknown = next(u for u in range(2_000_000_000, 2_000_001_000) if not _has_uid(u))
    assert passwd_owner_name(unknown) == ""


def _has_uid(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


# --------------------------------------------------------------------------------------
# Symlinks, locations of odd types, relative paths
# --------------------------------------------------------------------------------------


def test_symlink_to_root_700_file_passes(fs: Any) -> None:
    """Sec. 3: stat follows symlinks; a link (owned by alice, in a 777 dir) to a root 700
    file passes — the link's own owner and the directories are never examined."""
    vm(fs)
    put(fs, f"{ROOT}/real/pre.sh", 0o700)
    os.remove(ROOT + PRE)
    fs.create_symlink(ROOT + PRE, f"{ROOT}/real/pre.sh")
    os.chown(ROOT + PRE, ALICE, 0, follow_symlinks=False)
    os.chmod(f"{ROOT}/scripts", 0o777)
    assert check().code == 0


def test_symlink_to_755_file_fails(fs: Any) -> None:
    """Sec. 3: the mode of the symlink's target is what counts: a link to 755 fails (306)."""
    vm(fs)
    put(fs, f"{ROOT}/real/pre.sh", 0o755)
    os.remove(ROOT + PRE)
    fs.create_symlink(ROOT + PRE, f"{ROOT}/real/pre.sh")
    assert check().code == codes.PRE_PERMISSION


def test_dangling_symlink_is_not_found(fs: Any) -> None:
    """Sec. 3 step 3: a dangling symlink is not a regular file -> 302."""
    vm(fs)
    os.remove(ROOT + PRE)
    fs.create_symlink(ROOT + PRE, f"{ROOT}/nowhere.sh")
    assert check().code == codes.PRE_NOT_FOUND


def test_directory_is_not_a_script(fs: Any) -> None:
    """Sec. 3 step 6: a directory at the post location is not a regular file -> 303."""
    vm(fs)
    os.remove(ROOT + POST)
    fs.create_dir(ROOT + POST)
    assert check().code == codes.POST_NOT_FOUND


def test_empty_string_location_is_not_found(fs: Any) -> None:
    """Sec. 2.2 table / 10: preScriptLocation "" (the template default) -> 302 NotFound."""
    vm(fs, preScriptLocation="")
    assert check().code == codes.PRE_NOT_FOUND


def test_empty_post_location_is_not_found(fs: Any) -> None:
    """Sec. 2.2 table: postScriptLocation "" -> 303."""
    vm(fs, postScriptLocation="")
    assert check().code == codes.POST_NOT_FOUND


@pytest.mark.parametrize("value", [None, 5, 1.5, [PRE], {"p": PRE}, True])
def test_non_string_pre_location_is_host_parsing(fs: Any, value: Any) -> None:
    """Sec. 2.2 table: a null (or other non-string) location raises TypeError in the
    plugin -> 304, and load_modules returns its defaults dobackup=True, F=True."""
    vm(fs, preScriptLocation=value, continueBackupOnFailure=False, fsFreezeEnabled=False)
    pc = check()
    assert pc.code == codes.HOST_PARSING
    assert pc.dobackup is True
    assert pc.fs_freeze is True


def test_non_string_post_location_is_host_parsing(fs: Any) -> None:
    """Sec. 2.2 table: postScriptLocation null -> 304 (after the pre-script passed)."""
    vm(fs, postScriptLocation=None)
    assert check().code == codes.HOST_PARSING


def test_relative_location_resolves_against_extension_dir(fs: Any) -> None:
    """Sec. 2.2 table: relative paths resolve against the extension directory (daemon cwd)."""
    vm(fs, preScriptLocation="pre.sh")
    put(fs, f"{ROOT}{DEFAULT_EXTENSION_DIR}/pre.sh", 0o700)
    pc = check()
    assert pc.code == 0
    assert pc.pre_path == resolve(Path(ROOT), "pre.sh")


# --------------------------------------------------------------------------------------
# dobackup / fs_freeze returned with the code (sec. 3 steps 1-2)
# --------------------------------------------------------------------------------------


def test_not_found_with_continue_false_stops_backup(fs: Any) -> None:
    """Sec. 3 step 2: after the JSON loaded, dobackup = continueBackupOnFailure; 302 with
    continueBackupOnFailure false -> dobackup False."""
    vm(fs, continueBackupOnFailure=False)
    os.remove(ROOT + PRE)
    pc = check()
    assert (pc.code, pc.dobackup, pc.fs_freeze) == (codes.PRE_NOT_FOUND, False, True)


def test_script_error_carries_raw_freeze_flag(fs: Any) -> None:
    """Sec. 6 notation: F is returned as read; a 307 with fsFreezeEnabled false gives F False."""
    vm(fs, post_mode=0o770, fsFreezeEnabled=False)
    pc = check()
    assert (pc.code, pc.dobackup, pc.fs_freeze) == (codes.POST_PERMISSION, True, False)


def test_raw_values_are_kept(fs: Any) -> None:
    """Sec. 2.2 table: continueBackupOnFailure "false" is kept as the (truthy) string."""
    vm(fs, continueBackupOnFailure="false", fsFreezeEnabled=0)
    pc = check()
    assert pc.code == 0
    assert pc.dobackup == "false"
    assert pc.fs_freeze == 0


def test_config_parsing_305_ignores_continue_on_failure(fs: Any) -> None:
    """Sec. 3 step 1: config not loaded -> 305 with dobackup True (C ignored) and F True."""
    put(fs, JSON_PATH, 0o600, contents='{"preScriptLocation": "/x", ')
    pc = check()
    assert (pc.code, pc.dobackup, pc.fs_freeze) == (codes.CONFIG_PARSING, True, True)


def test_config_parsing_305_partial_read_keeps_freeze_flag(fs: Any) -> None:
    """Sec. 2.2 'partial-read effect': a bad poll value is read after fsFreezeEnabled, so
    false is honoured; dobackup is still True (305 ignores continueBackupOnFailure)."""
    vm(
        fs,
        continueBackupOnFailure=False,
        fsFreezeEnabled=False,
        ScriptsExecutionPollTimeSeconds="soon",
    )
    pc = check()
    assert (pc.code, pc.dobackup, pc.fs_freeze) == (codes.CONFIG_PARSING, True, False)


def test_missing_required_key_is_305(fs: Any) -> None:
    """Sec. 2.2 general rules: a missing preScriptLocation key -> KeyError -> 305."""
    vm(fs, preScriptLocation=DROP)
    assert check().code == codes.CONFIG_PARSING


def test_top_level_list_is_304(fs: Any) -> None:
    """Sec. 2.2 general rules: a top level that is not an object -> 304."""
    put(fs, JSON_PATH, 0o600, contents="[1, 2]")
    assert check().code == codes.HOST_PARSING


def test_string_timeout_is_304(fs: Any) -> None:
    """Sec. 2.2 table: timeoutInSeconds as a string -> TypeError on Python 3 -> 304."""
    vm(fs, timeoutInSeconds="30")
    pc = check()
    assert (pc.code, pc.dobackup, pc.fs_freeze) == (codes.HOST_PARSING, True, True)


# --------------------------------------------------------------------------------------
# Section 2.2 file-level rules: the JSON file
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o200, 0o000, 0o4600], ids=octal)
def test_json_mode_accepted(fs: Any, mode: int) -> None:
    """Sec. 2.2: JSON modes 600/400/200/000 pass (owner-x clear, group/other zero)."""
    vm(fs)
    os.chmod(JSON_PATH, mode)
    assert check().code == 0


@pytest.mark.parametrize(
    "mode", [0o700, 0o500, 0o100, 0o640, 0o644, 0o604, 0o610, 0o601], ids=octal
)
def test_json_mode_rejected(fs: Any, mode: int) -> None:
    """Sec. 2.2: JSON owner-x bit forbidden (700, 500 fail) and group/other must be 0 -> 317."""
    vm(fs)
    os.chmod(JSON_PATH, mode)
    pc = check()
    assert pc.code == codes.CONFIG_PERMISSION
    assert (pc.dobackup, pc.fs_freeze) == (True, True)
    assert pc.config is None  # a failing plugin is not loaded: scripts are not examined


@pytest.mark.parametrize("uid", [ALICE, NOBODY_KNOWS])
def test_json_owner_not_root(fs: Any, uid: int) -> None:
    """Sec. 2.2: JSON owner name != root (or no passwd entry) -> 317 (318 never raised)."""
    vm(fs)
    os.chown(JSON_PATH, uid, 0)
    assert check().code == codes.CONFIG_PERMISSION


def test_json_missing_is_316(fs: Any) -> None:
    """Sec. 2.2: JSON not a regular file -> 316 (the normal state of an unconfigured VM)."""
    fs.create_dir(AZ)
    pc = check()
    assert (pc.code, pc.dobackup, pc.fs_freeze) == (codes.CONFIG_NOT_FOUND, True, True)


def test_json_directory_is_316(fs: Any) -> None:
    """Sec. 2.2: os.path.isfile on a directory is False -> 316."""
    fs.create_dir(JSON_PATH)
    assert check().code == codes.CONFIG_NOT_FOUND


def test_json_symlink_followed(fs: Any) -> None:
    """Sec. 2.2: isfile/stat follow symlinks: a link to a root 600 JSON passes."""
    vm(fs)
    os.rename(JSON_PATH, f"{ROOT}/real.json")
    fs.create_symlink(JSON_PATH, f"{ROOT}/real.json")
    assert check().code == 0


# --------------------------------------------------------------------------------------
# Section 2.1: the plugin-host file
# --------------------------------------------------------------------------------------

HOST_TEXT = """[pre_post]
timeoutInSeconds: 1800
numberOfPlugins: 1
pluginName0: ScriptRunner
pluginPath0: /etc/azure
pluginConfigPath0: /etc/azure/VMSnapshotScriptPluginConfig.json
"""


@pytest.mark.parametrize(
    "mode", [0o644, 0o640, 0o600, 0o604, 0o444, 0o400, 0o700, 0o744], ids=octal
)
def test_host_file_mode_accepted(fs: Any, mode: int) -> None:
    """Sec. 2.1 step 3: group and other digits may each be 0 or 4; the owner digit is free."""
    vm(fs)
    put(fs, HOST_PATH, mode, contents=HOST_TEXT)
    assert check().code == 0


@pytest.mark.parametrize(
    "mode", [0o664, 0o666, 0o646, 0o654, 0o645, 0o620, 0o602, 0o610], ids=octal
)
def test_host_file_mode_rejected(fs: Any, mode: int) -> None:
    """Sec. 2.1 step 3: a group/other digit outside {0, 4} (664, 666, 646 ...) -> 314."""
    vm(fs)
    put(fs, HOST_PATH, mode, contents=HOST_TEXT)
    assert check().code == codes.HOST_PERMISSION


@pytest.mark.parametrize("uid", [ALICE, NOBODY_KNOWS])
def test_host_file_owner_not_root(fs: Any, uid: int) -> None:
    """Sec. 2.1 step 4: host file owner name != root -> 314 as well (315 never raised)."""
    vm(fs)
    put(fs, HOST_PATH, 0o644, uid=uid, contents=HOST_TEXT)
    assert check().code == codes.HOST_PERMISSION


def test_host_file_missing_without_shipped_copy(fs: Any) -> None:
    """Sec. 2.1 step 2: no host file in /etc/azure nor in the extension -> 313."""
    vm(fs)
    pc = check(shipped_host_file=False)
    assert (pc.code, pc.dobackup, pc.fs_freeze) == (codes.HOST_NOT_FOUND, True, True)


def test_host_file_falls_back_to_shipped_copy(fs: Any) -> None:
    """Sec. 2.1: without /etc/azure/VMSnapshotPluginHost.conf the shipped copy is used."""
    vm(fs)
    pc = check(shipped_host_file=True)
    assert pc.code == 0
    assert pc.host is not None and pc.host.timeout_s == 1800


def test_host_file_checked_before_json(fs: Any) -> None:
    """Sec. 2.1/2.2 order: the host file's 314 wins over a JSON that would fail with 317."""
    vm(fs)
    os.chmod(JSON_PATH, 0o644)
    put(fs, HOST_PATH, 0o666, contents=HOST_TEXT)
    assert check().code == codes.HOST_PERMISSION


def test_host_file_unparsable_is_304(fs: Any) -> None:
    """Sec. 2.1 step 5: a bad int in the host file -> 304."""
    vm(fs)
    put(
        fs, HOST_PATH, 0o644, contents=HOST_TEXT.replace("numberOfPlugins: 1", "numberOfPlugins: x")
    )
    assert check().code == codes.HOST_PARSING


def test_host_file_other_config_path(fs: Any) -> None:
    """Sec. 2.2: the JSON path comes from pluginConfigPath0 (no other search location)."""
    vm(fs)
    put(fs, HOST_PATH, 0o644, contents=HOST_TEXT.replace("VMSnapshotScriptPluginConfig", "x"))
    assert check().code == codes.CONFIG_NOT_FOUND


def test_host_file_zero_plugins(fs: Any) -> None:
    """Sec. 2.1: numberOfPlugins 0 -> no plugin is loaded, no script is examined."""
    vm(fs)
    os.remove(ROOT + PRE)
    put(fs, HOST_PATH, 0o644, contents="[pre_post]\nnumberOfPlugins: 0\n")
    pc = check()
    assert pc.code == 0
    assert pc.config is None


# --------------------------------------------------------------------------------------
# Errata E8: every pluginConfigPath<i> of the host file; the last loading turn decides
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plug:
    """One plugin of a multi-plugin host file. ``state``: ok, missing (no JSON), json-mode
    (JSON 644 -> 317), pre-missing (302), pre-mode (306), malformed (305) or string-timeout
    (304); ``name`` is its pluginName<i>."""

    state: str = "ok"
    C: Any = True
    F: Any = True
    name: str = "ScriptRunner"


def plugins_vm(fs: Any, plugs: list[Plug], count: int | None = None) -> None:
    """A host file listing ``plugs`` (``numberOfPlugins`` = ``count`` or their number); plugin
    i's JSON is /etc/azure/plugin<i>.json and its scripts /scripts/p<i>-pre.sh, -post.sh."""
    lines = ["[pre_post]", f"numberOfPlugins: {len(plugs) if count is None else count}"]
    for i, plug in enumerate(plugs):
        lines += [f"pluginName{i}: {plug.name}", f"pluginPath{i}: /etc/azure"]
        lines.append(f"pluginConfigPath{i}: /etc/azure/plugin{i}.json")
        _make_plugin(fs, i, plug)
    put(fs, HOST_PATH, 0o644, contents="\n".join(lines) + "\n")


def _make_plugin(fs: Any, i: int, plug: Plug) -> None:
    pre, post = f"/scripts/p{i}-pre.sh", f"/scripts/p{i}-post.sh"
    cfg: dict[str, Any] = {"preScriptLocation": pre, "postScriptLocation": post}
    cfg.update(continueBackupOnFailure=plug.C, fsFreezeEnabled=plug.F)
    if plug.state == "string-timeout":
        cfg["timeoutInSeconds"] = "30"
    text = "{oops" if plug.state == "malformed" else json.dumps(cfg)
    if plug.state != "missing":
        put(fs, f"{AZ}/plugin{i}.json", 0o644 if plug.state == "json-mode" else 0o600, 0, text)
    if plug.state != "pre-missing":
        put(fs, ROOT + pre, 0o755 if plug.state == "pre-mode" else 0o700)
    put(fs, ROOT + post, 0o700)


def e8_summary(code: int, loaded: list[int], runs: list[int], dobackup: Any, F: Any) -> str:
    """One line for the conformance table: the pre-check's verdict and whose scripts run."""
    return f"code {code}, loaded {loaded}, scripts of {runs}, dobackup {dobackup}, F {F}"


OK, BAD = Plug(), Plug(C=False, F=False)
E8_CASES = [
    # (id, plugins, numberOfPlugins, (code, loaded, whose scripts run, dobackup, F))
    ("both-valid", [BAD, OK], None, (0, [0, 1], [0, 1], True, True)),
    ("both-valid-last-flags-win", [OK, BAD], None, (0, [0, 1], [0, 1], False, False)),
    (
        "first-pre-missing-last-valid",
        [Plug("pre-missing", C=False), OK],
        None,
        (0, [0, 1], [0, 1], True, True),
    ),
    ("first-pre-mode-last-valid", [Plug("pre-mode"), OK], None, (0, [0, 1], [0, 1], True, True)),
    ("first-malformed-last-valid", [Plug("malformed"), OK], None, (0, [0, 1], [0, 1], True, True)),
    (
        "first-valid-last-pre-missing",
        [OK, Plug("pre-missing", C=False)],
        None,
        (codes.PRE_NOT_FOUND, [0, 1], [], False, True),
    ),
    (
        "first-valid-last-malformed",
        [BAD, Plug("malformed")],
        None,
        (codes.CONFIG_PARSING, [0, 1], [], True, True),
    ),
    (
        "first-missing-last-valid",
        [Plug("missing"), OK],
        None,
        (codes.CONFIG_NOT_FOUND, [], [], True, True),
    ),
    (
        "first-valid-last-missing",
        [BAD, Plug("missing")],
        None,
        (codes.CONFIG_NOT_FOUND, [0], [], True, False),
    ),
    (
        "valid-missing-valid",
        [OK, Plug("missing"), OK],
        None,
        (codes.CONFIG_NOT_FOUND, [0], [], True, True),
    ),
    (
        "first-valid-last-json-mode",
        [OK, Plug("json-mode")],
        None,
        (codes.CONFIG_PERMISSION, [0], [], True, True),
    ),
    (
        "first-valid-last-string-timeout",
        [BAD, Plug("string-timeout")],
        None,
        (codes.HOST_PARSING, [0], [], True, False),
    ),
    (
        "first-valid-last-not-importable",
        [BAD, Plug(name="MyPlugin")],
        None,
        (codes.HOST_PARSING, [0], [], True, False),
    ),
    ("count-beyond-listed", [BAD], 2, (codes.HOST_PARSING, [0], [], False, False)),
    (
        "first-missing-count-beyond-listed",
        [Plug("missing")],
        2,
        (codes.CONFIG_NOT_FOUND, [], [], True, True),
    ),
    (
        "not-importable-json-missing",
        [Plug("missing", name="MyPlugin")],
        None,
        (codes.CONFIG_NOT_FOUND, [], [], True, True),
    ),
    ("not-importable", [Plug(name="MyPlugin")], None, (codes.HOST_PARSING, [], [], True, True)),
]


@pytest.mark.parametrize(
    ("plugs", "count", "expected"),
    [pytest.param(plugs, count, exp, id=case) for case, plugs, count, exp in E8_CASES],
)
def test_every_plugin_config_path_last_turn_decides(
    fs: Any,
    record_property: Any,
    plugs: list[Plug],
    count: int | None,
    expected: tuple[int, list[int], list[int], Any, Any],
) -> None:
    """Errata E8 (PluginHost.py:106-171): every pluginConfigPath<i> is loaded in turn and the
    last turn decides the code, dobackup and F; a JSON failing the file checks (316/317) is
    read again on every later turn, so later entries are never reached; every loaded plugin's
    scripts run when the pre-check passes, whatever its own validation said."""
    plugins_vm(fs, plugs, count)
    pc = check()
    got = e8_summary(
        pc.code,
        [p.entry.index for p in pc.plugins],
        [p.entry.index for p in pc.script_plugins],
        pc.dobackup,
        pc.fs_freeze,
    )
    record_property("expected", e8_summary(*expected))
    record_property("got", got)
    assert got == e8_summary(*expected)


def test_an_overridden_plugin_keeps_its_own_verdict(fs: Any) -> None:
    """Errata E8: a plugin whose validation failed (302) before a valid last plugin is still
    loaded with its own code and paths: the extension runs its scripts (``sh`` of a missing
    file), and the log says its failure did not decide."""
    plugins_vm(fs, [Plug("pre-missing"), OK])
    pc = check()
    assert pc.code == 0
    first, last = pc.plugins
    assert (first.code, last.code) == (codes.PRE_NOT_FOUND, 0)
    assert first.pre_path == Path(ROOT + "/scripts/p0-pre.sh")
    assert pc.config is last.config and pc.pre_path == last.pre_path
    assert any("plugin 0" in line and "FailedPrepostPreScriptNotFound" in line for line in pc.log)


def test_a_plugin_that_fails_to_load_hides_the_later_entries(fs: Any) -> None:
    """Errata E8: with a missing pluginConfigPath0 the loop re-reads entry 0 on each turn
    (noOfPlugins never grows), so entry 1 is never read, not even its missing options."""
    plugins_vm(fs, [Plug("missing")], count=5)
    pc = check()
    assert pc.code == codes.CONFIG_NOT_FOUND
    assert pc.detail == "/etc/azure/plugin0.json does not exist"
    assert pc.plugins == [] and pc.config is None


def test_single_plugin_host_file_is_unchanged(fs: Any) -> None:
    """Sec. 2.1: one pluginConfigPath (the shipped host file) loads exactly that plugin and
    logs no per-plugin line."""
    vm(fs)
    pc = check()
    assert pc.code == 0 and [p.entry.index for p in pc.script_plugins] == [0]
    assert not any(line.startswith("plugin 0") for line in pc.log)


# --------------------------------------------------------------------------------------
# workload.conf takes over (sec. 1, 11.1)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mysql", "oracle", "mariadb", "postgres"])
def test_workload_conf_takes_over(fs: Any, name: str) -> None:
    """Sec. 11.1: a supported workload_name makes the extension skip PluginHost entirely:
    even a broken JSON config is never looked at."""
    put(fs, WORKLOAD_PATH, 0o644, contents=f"[workload]\nworkload_name = {name}\n")
    put(fs, JSON_PATH, 0o777, uid=ALICE, contents="not json")
    pc = check()
    assert pc.workload_takes_over
    assert pc.code == 0
    assert pc.config is None


@pytest.mark.parametrize("name", ["MySQL", "", "sqlite"])
def test_workload_conf_other_names_use_classic_flow(fs: Any, name: str) -> None:
    """Sec. 11.1: workload_name is case-sensitive; 'MySQL', empty or unknown -> classic flow."""
    put(fs, WORKLOAD_PATH, 0o644, contents=f"[workload]\nworkload_name = {name}\n")
    fs.create_dir(AZ + "/empty")
    pc = check()
    assert not pc.workload_takes_over
    assert pc.code == codes.CONFIG_NOT_FOUND


# --------------------------------------------------------------------------------------
# The documented profile's exact modes (sec. 14) versus the extension's rules
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script_mode", "extension_code", "documented_code"),
    [
        (0o700, 0, 0),
        (0o600, 0, codes.PRE_PERMISSION),
        (0o500, 0, codes.PRE_PERMISSION),
        (0o4700, 0, 0),
        (0o750, codes.PRE_PERMISSION, codes.PRE_PERMISSION),
    ],
    ids=["700", "600", "500", "4700", "750"],
)
def test_documented_script_mode_is_exactly_700(
    fs: Any, script_mode: int, extension_code: int, documented_code: int
) -> None:
    """Sec. 14 'Script permission': the docs demand 700; the code accepts any owner bits.
    A 600 script fails under the documented profile and passes under the extension."""
    vm(fs, pre_mode=script_mode)
    assert check(profile=EXTENSION).code == extension_code
    assert check(profile=DOCUMENTED).code == documented_code


@pytest.mark.parametrize(
    ("json_mode", "extension_code", "documented_code"),
    [
        (0o600, 0, 0),
        (0o400, 0, codes.CONFIG_PERMISSION),
        (0o200, 0, codes.CONFIG_PERMISSION),
        (0o700, codes.CONFIG_PERMISSION, codes.CONFIG_PERMISSION),
    ],
    ids=["600", "400", "200", "700"],
)
def test_documented_json_mode_is_exactly_600(
    fs: Any, json_mode: int, extension_code: int, documented_code: int
) -> None:
    """Sec. 14 'JSON permission': the docs demand 600; the code accepts 400/200/000 too."""
    vm(fs)
    os.chmod(JSON_PATH, json_mode)
    assert check(profile=EXTENSION).code == extension_code
    assert check(profile=DOCUMENTED).code == documented_code


def test_default_timeout_per_profile(fs: Any) -> None:
    """Sec. 14 'Default timeout': 10 s in the code when the key is absent, 30 s in the README."""
    vm(fs, timeoutInSeconds=DROP)
    ext = check(profile=EXTENSION)
    doc = check(profile=DOCUMENTED)
    assert ext.config is not None and ext.config.timeout_s == 10
    assert doc.config is not None and doc.config.timeout_s == 30


def test_profile_is_an_explicit_flag() -> None:
    """Sec. 15: 'decide explicitly whether the harness mimics the code or the docs; expose
    it as a flag': the two profiles are looked up by name, anything else is refused."""
    assert get("extension") is EXTENSION and get("documented") is DOCUMENTED
    assert get(DOCUMENTED) is DOCUMENTED
    assert (EXTENSION.rerun_on_retry, EXTENSION.kill_on_timeout) == (False, False)
    assert (DOCUMENTED.rerun_on_retry, DOCUMENTED.kill_on_timeout) == (True, True)
    with pytest.raises(ValueError, match="unknown profile"):
        get("azure")
