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
class Precheck:
    """What the extension's ``PluginHost.pre_check`` returns, plus the evidence behind it."""

    code: int
    """0, or the first failing code (302-307, 304, 305, 313, 314, 316, 317)."""
    dobackup: Any = True
    """Raw ``continueBackupOnFailure`` once the JSON loaded; True before that."""
    fs_freeze: Any = True
    """Raw ``fsFreezeEnabled`` (forced True when the JSON could not be read)."""
    config: PluginConfig | None = None
    host: HostConfig | None = None
    workload: WorkloadConf | None = None
    pre_path: Path | None = None
    post_path: Path | None = None
    detail: str = ""
    log: list[str] = field(default_factory=list)

    @property
    def workload_takes_over(self) -> bool:
        """True when workload.conf makes the extension ignore the JSON script framework."""
        return self.workload is not None and self.workload.takes_over


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
    if not host.config.plugins:
        result.log.append("numberOfPlugins is 0: no script plugin is loaded")
        return result

    plugin = host.config.plugins[0]
    json_path = resolve(root, plugin.config_path)
    if not os.path.isfile(json_path):
        return _fail(result, codes.CONFIG_NOT_FOUND, f"{plugin.config_path} does not exist")
    st = os.stat(json_path)
    result.log.append(f"Permissions of the file {plugin.config_path} are {_digits(st.st_mode)}")
    json_owner = owner_name(st.st_uid)
    if not profile.config_mode_ok(st.st_mode) or json_owner != "root":
        why = (
            f"mode {_digits(st.st_mode)}"
            if not profile.config_mode_ok(st.st_mode)
            else f"owner {json_owner or '<no passwd entry>'} is not root"
        )
        return _fail(result, codes.CONFIG_PERMISSION, f"{plugin.config_path}: {why}")

    parsed = parse_plugin_json(
        json_path.read_bytes(),
        host_timeout_s=host.config.timeout_s,
        default_timeout_s=profile.default_timeout_s,
    )
    result.config = parsed.config
    if parsed.code == codes.CONFIG_PARSING:
        # validate_scripts returns dobackup=True and the freeze flag as far as it was read.
        result.fs_freeze = parsed.config.fs_freeze
        return _fail(result, parsed.code, parsed.detail)
    if parsed.code:
        return _fail(result, parsed.code, parsed.detail)

    cfg = parsed.config
    result.dobackup = cfg.continue_on_failure
    result.fs_freeze = cfg.fs_freeze
    for which, location in (("pre", cfg.pre_location), ("post", cfg.post_location)):
        code, detail, path = _check_script(root, which, location, profile, owner_name)
        if which == "pre":
            result.pre_path = path
        else:
            result.post_path = path
        if code == codes.HOST_PARSING:
            # The TypeError escapes validate_scripts, so load_modules returns its own
            # defaults (dobackup=True, fsFreeze_on=True), not the values read from the JSON.
            result.dobackup, result.fs_freeze = True, True
        if code:
            return _fail(result, code, detail)
    return result


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
