"""The extension's pre-check: host file, JSON file, then both scripts, before either runs.

Paths are resolved under a configurable root directory, so tests and stand-in VMs can place
``/etc/azure`` anywhere. Ownership is judged by *name* through the passwd database, as the
extension does (a uid-0 alias with another name fails).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import codes
from .config import (
    HOST_FILE,
    SHIPPED_HOST_FILE,
    WORKLOAD_CONF,
    HostConfig,
    PluginConfig,
    PluginEntry,
    WorkloadConf,
    parse_host_text,
    parse_plugin_json,
    parse_workload_conf,
)
from .profiles import EXTENSION, Profile

DEFAULT_EXTENSION_DIR = "/var/lib/waagent/Microsoft.Azure.RecoveryServices.VMSnapshotLinux"

OwnerName = Callable[[int], str]


def passwd_owner_name(uid: int) -> str:
    """The passwd name of ``uid``; '' when it has no entry (the extension then fails the check)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


@dataclass
class PluginCheck:
    """One plugin whose JSON passed the file checks, as ``ScriptRunner.validate_scripts``
    judged it: the code and the ``dobackup`` / freeze flag it returned, and its scripts."""

    entry: PluginEntry
    config: PluginConfig
    code: int = 0
    detail: str = ""
    dobackup: Any = True
    fs_freeze: Any = True
    pre_path: Path | None = None
    post_path: Path | None = None

    @property
    def raised(self) -> bool:
        """Every 304 of a plugin is an exception escaping ``validate_scripts``: the plugin
        host stops loading plugins there (``PluginHost.py:153, 166-169``)."""
        return self.code == codes.HOST_PARSING


@dataclass
class Precheck:
    """What the extension's ``PluginHost.pre_check`` returns, plus the evidence behind it.

    With several plugins in the host file the verdict is the last loading turn's (errata E8):
    ``code``, ``dobackup`` and ``fs_freeze`` are what that turn left, and ``config``,
    ``pre_path``, ``post_path`` are the last validated plugin's.
    """

    code: int
    """0, or the deciding code (302-307, 304, 305, 313, 314, 316, 317)."""
    dobackup: Any = True
    """Raw ``continueBackupOnFailure`` of the last plugin validated; True before that."""
    fs_freeze: Any = True
    """Raw ``fsFreezeEnabled`` (True when no JSON could be read; a later plugin that fails
    to load keeps the earlier plugin's value)."""
    config: PluginConfig | None = None
    host: HostConfig | None = None
    workload: WorkloadConf | None = None
    pre_path: Path | None = None
    post_path: Path | None = None
    detail: str = ""
    log: list[str] = field(default_factory=list)
    plugins: list[PluginCheck] = field(default_factory=list)
    """The plugins the host loaded, in order, whatever their own validation said."""

    @property
    def workload_takes_over(self) -> bool:
        """True when workload.conf makes the extension ignore the JSON script framework."""
        return self.workload is not None and self.workload.takes_over

    @property
    def script_plugins(self) -> list[PluginCheck]:
        """The plugins whose pre- and post-scripts the extension starts: every loaded plugin
        when the pre-check returned 0, also one whose own validation failed
        (``PluginHost.py:203-206, 250-253``); none otherwise (``handle.py:517-519, 524,
        534``)."""
        if self.code or self.workload_takes_over:
            return []
        return list(self.plugins)


def resolve(root: Path, path: str, cwd: str = DEFAULT_EXTENSION_DIR) -> Path:
    """Where the extension would look for ``path`` on a machine whose ``/`` is ``root``.

    Relative paths resolve against the extension directory (the daemon's cwd).
    """
    joined = os.path.join(cwd, path)  # an absolute path replaces cwd, as in the extension
    return Path(root) / joined.lstrip("/")


def precheck(
    root: Path | str = "/",
    profile: Profile = EXTENSION,
    owner_name: OwnerName = passwd_owner_name,
    shipped_host_file: bool = True,
) -> Precheck:
    """Run the pre-check exactly in the extension's order and return its verdict.

    ``shipped_host_file`` says whether the extension's own copy of the host file exists (it
    always does in a healthy install); when False and /etc/azure has none, the result is 313.
    """
    root = Path(root)
    result = Precheck(code=0)

    workload_path = resolve(root, WORKLOAD_CONF)
    if workload_path.is_file():
        result.workload = parse_workload_conf(_read_text(workload_path))
        if result.workload.takes_over:
            result.log.append(
                f"workload.conf names {result.workload.workload_name!r}: the "
                "enhanced flow runs and the JSON script config is ignored"
            )
            return result

    host_path = resolve(root, HOST_FILE)
    if os.path.isfile(host_path):
        mode = os.stat(host_path).st_mode
        owner = owner_name(os.stat(host_path).st_uid)
        result.log.append(f"Permissions of the file {HOST_FILE} are {_digits(mode)}")
        if mode & 0o033 or owner != "root":
            why = (
                f"mode {_digits(mode)} (group/other may only read)"
                if mode & 0o033
                else f"owner {owner or '<no passwd entry>'!s} is not root"
            )
            return _fail(result, codes.HOST_PERMISSION, f"{HOST_FILE}: {why}")
        host_text, host_source = _read_text(host_path), HOST_FILE
    elif shipped_host_file:
        host_text, host_source = SHIPPED_HOST_FILE, "<extension>/main/VMSnapshotPluginHost.conf"
    else:
        return _fail(
            result,
            codes.HOST_NOT_FOUND,
            f"{HOST_FILE} missing and no copy shipped with the extension",
        )

    host = parse_host_text(host_text, host_source)
    if host.config is None:
        return _fail(result, host.code, host.detail)
    result.host = host.config
    if host.config.count <= 0:
        result.log.append("numberOfPlugins is 0: no script plugin is loaded")
        return result
    return _load_plugins(root, host.config, result, profile, owner_name)


def _load_plugins(
    root: Path, host: HostConfig, result: Precheck, profile: Profile, owner_name: OwnerName
) -> Precheck:
    """``PluginHost.load_modules`` (``VMBackup/main/PluginHost.py:106-171`` at the spec's
    pinned commit b7eecd4b; errata E8).

    The loop runs ``numberOfPlugins`` times (line 127) and reads entry ``noOfPlugins``
    (lines 128-130), which grows only when a plugin loads (line 155): a JSON that fails the
    file checks (316/317, lines 136-146) is read again on every remaining turn and later
    entries are never reached. Each turn resets the code and ``dobackup`` (lines 133-134) but
    not the freeze flag, and the last turn's values are returned (line 171); an exception
    (304, lines 166-169) ends the loop with the values of that moment.
    """
    for _ in range(host.count):
        index = len(result.plugins)
        if index >= len(host.plugins):
            # config.get raises (lines 128-130) before the turn's reset (lines 133-134):
            # dobackup and the freeze flag keep the previous plugin's values.
            return _fail(result, codes.HOST_PARSING, host.unread)
        entry = host.plugins[index]
        result.code, result.detail, result.dobackup = 0, "", True
        code, detail = _check_plugin_file(root, entry, profile, owner_name, result.log)
        if code:
            # Not loaded: the remaining turns read this entry again, with the same outcome.
            result.code, result.detail = code, detail
            break
        if not entry.importable:  # __import__ only after the file checks (lines 148-150)
            return _fail(
                result,
                codes.HOST_PARSING,
                f"pluginName{index} is {entry.name!r}: only the bundled "
                "ScriptRunner module can be imported",
            )
        check = _validate_plugin(root, entry, host.timeout_s, profile, owner_name)
        result.config = check.config
        result.pre_path, result.post_path = check.pre_path, check.post_path
        if check.raised:
            return _fail(result, check.code, check.detail)  # dobackup True, freeze flag kept
        result.plugins.append(check)
        result.code, result.detail = check.code, check.detail
        result.dobackup, result.fs_freeze = check.dobackup, check.fs_freeze
        if host.count > 1:
            result.log.append(_loaded_line(check))
    if result.code:
        return _fail(result, result.code, result.detail)
    return result


def _loaded_line(check: PluginCheck) -> str:
    outcome = codes.lookup(check.code).name if check.code else "passed"
    return (
        f"plugin {check.entry.index} ({check.entry.config_path}) loaded, validation {outcome}: "
        "its scripts run if the last plugin's validation passes"
    )


def _check_plugin_file(
    root: Path, entry: PluginEntry, profile: Profile, owner_name: OwnerName, log: list[str]
) -> tuple[int, str]:
    """The JSON's file-level checks (``PluginHost.py:136-146``): 316, 317 or 0."""
    json_path = resolve(root, entry.config_path)
    if not os.path.isfile(json_path):
        return codes.CONFIG_NOT_FOUND, f"{entry.config_path} does not exist"
    st = os.stat(json_path)
    log.append(f"Permissions of the file {entry.config_path} are {_digits(st.st_mode)}")
    json_owner = owner_name(st.st_uid)
    if not profile.config_mode_ok(st.st_mode):
        return codes.CONFIG_PERMISSION, f"{entry.config_path}: mode {_digits(st.st_mode)}"
    if json_owner != "root":
        why = f"owner {json_owner or '<no passwd entry>'} is not root"
        return codes.CONFIG_PERMISSION, f"{entry.config_path}: {why}"
    return 0, ""


def _validate_plugin(
    root: Path, entry: PluginEntry, host_timeout_s: int, profile: Profile, owner_name: OwnerName
) -> PluginCheck:
    """``ScriptRunner.validate_scripts`` (``ScriptRunner.py:145-191``) for one plugin."""
    json_path = resolve(root, entry.config_path)
    parsed = parse_plugin_json(
        json_path.read_bytes(),
        host_timeout_s=host_timeout_s,
        default_timeout_s=profile.default_timeout_s,
    )
    cfg = parsed.config
    check = PluginCheck(entry, cfg, parsed.code, parsed.detail)
    if parsed.code == codes.CONFIG_PARSING:
        # validate_scripts returns dobackup=True and the freeze flag as far as it was read.
        check.fs_freeze = cfg.fs_freeze
        return check
    if parsed.code:
        return check
    check.dobackup, check.fs_freeze = cfg.continue_on_failure, cfg.fs_freeze
    for which, location in (("pre", cfg.pre_location), ("post", cfg.post_location)):
        code, detail, path = _check_script(root, which, location, profile, owner_name)
        if which == "pre":
            check.pre_path = path
        else:
            check.post_path = path
        if code:
            check.code, check.detail = code, detail
            return check
    return check


def _check_script(
    root: Path, which: str, location: Any, profile: Profile, owner_name: OwnerName
) -> tuple[int, str, Path | None]:
    key = f"{which}ScriptLocation"
    not_found, perm = (
        (codes.PRE_NOT_FOUND, codes.PRE_PERMISSION)
        if which == "pre"
        else (codes.POST_NOT_FOUND, codes.POST_PERMISSION)
    )
    if not isinstance(location, str):
        # os.path.isfile or the log line's string concatenation raises TypeError -> plugin host.
        return (
            codes.HOST_PARSING,
            f"{key} is {location!r}, not a string: the extension raises TypeError",
            None,
        )
    path = resolve(root, location)
    if not os.path.isfile(path):
        return not_found, f"{key} {location!r} is not a regular file", path
    st = os.stat(path)  # follows symlinks, like the extension
    if not profile.script_mode_ok(st.st_mode):
        rule = (
            "group and other digits must be 0"
            if profile.script_mode_exact is None
            else f"the docs require exactly {profile.script_mode_exact:o}"
        )
        return perm, f"{location}: mode {_digits(st.st_mode)} ({rule})", path
    owner = owner_name(st.st_uid)
    if owner != "root":
        return perm, f"{location}: owner {owner or '<no passwd entry>'} is not root", path
    return 0, "", path


def _fail(result: Precheck, code: int, detail: str) -> Precheck:
    result.code = code
    result.detail = detail
    result.log.append(f"pre-check failed: {codes.lookup(code).name}: {detail}")
    return result


def _digits(mode: int) -> str:
    return f"{mode & 0o777:03o}"  # the extension looks at the last three octal digits only


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")
