"""``/etc/vmware-tools/tools.conf``, section ``[vmbackup]``: the keys, their defaults, limits,
and what vmtoolsd does with a broken file.

Sources (vmware/open-vm-tools, ``open-vm-tools/``):
- ``services/plugins/vmbackup/stateMachine.c``: ``VmBackupStart`` (the ``vmbackup.start`` RPC
  reads ``quiesceApps``, ``quiesceFS``, ``execScripts`` (all default true), ``scriptArg``
  (none) and ``timeout`` from the file), ``VmBackupStartCommon`` (``enableSyncDriver``,
  ``enableNullDriver``, ``excludedFileSystems``, ``ignoreFrozenFileSystems``, the provider
  choice, the 15-minute abort timer), ``VmBackupGetTimeout`` (a negative value or one above
  ``G_MAXINT / 1000`` is replaced by the default, "Invalid timeout %d. Using default %us.");
- ``libvmtools/vmtoolsConfig.c``: ``VMTools_LoadConfig`` (a file that does not parse is
  dropped whole: "Cannot load config file: ..."; ``services/vmtoolsd/mainLoop.c``
  ``ToolsCore_ReloadConfig`` then uses an empty dictionary, so every key takes its default),
  ``VMTools_ConfigGet*`` (a value of the wrong type: a warning and the default);
- ``libvmtools/vmtoolsMisc.c`` ``VMToolsInitEnvGroup``: ``[unsetenvironment]`` and
  ``[setenvironment]`` change vmtoolsd's own environment, which the scripts inherit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import keyfile

TOOLS_CONF = "/etc/vmware-tools/tools.conf"
"""``GuestApp_GetConfPath()`` + ``tools.conf`` (``lib/guestApp/guestApp.c``: the install
path is hard-coded ``/etc/vmware-tools`` on Linux)."""
SECTION = "vmbackup"
DEFAULT_TIMEOUT_S = 15 * 60
"""``GUEST_QUIESCE_DEFAULT_TIMEOUT_IN_SEC`` (``vmBackupInt.h``): vCenter's own limit."""
G_MAXINT = 2**31 - 1
SERVICE = "vmsvc"
"""vmtoolsd's service name for ``<service>.<NAME>`` keys of the environment groups."""

BOOLEAN_KEYS = {
    "execScripts": True,
    "quiesceApps": True,
    "quiesceFS": True,
    "enableSyncDriver": True,
    "enableNullDriver": True,
    "ignoreFrozenFileSystems": False,
    "forceQuiesce": False,
    "allowHWProvider": True,
}
"""The booleans the Linux ``vmbackup.start`` path reads, with their defaults."""
STRING_KEYS = ("scriptArg", "excludedFileSystems")
INTEGER_KEYS = ("timeout",)
KNOWN_KEYS = frozenset(
    [
        *BOOLEAN_KEYS,
        *STRING_KEYS,
        *INTEGER_KEYS,
        "enableVSS",
        "vss.disableAppQuiescing",
        "vssUseDefault",
        "enableNVMe",
    ]
)
"""Every key of ``[vmbackup]`` open-vm-tools reads (the ``vss*``/``enableVSS`` ones on Windows,
``enableNVMe`` for a capability): anything else is ignored (a typo, say; keys are
case-sensitive)."""


@dataclass
class VmbackupConfig:
    """What the plugin uses for one quiesce request, after defaults and limits."""

    exec_scripts: bool = True
    quiesce_apps: bool = True
    quiesce_fs: bool = True
    enable_sync_driver: bool = True
    enable_null_driver: bool = True
    ignore_frozen_fs: bool = False
    force_quiesce: bool = False
    script_arg: str | None = None
    excluded_fs: str | None = None
    timeout_s: int = DEFAULT_TIMEOUT_S
    """0: no abort timer at all."""
    exists: bool = False
    load_error: str = ""
    """Not empty: the file did not parse and every key took its default."""
    warnings: list[str] = field(default_factory=list)
    """vmtoolsd's own warnings while reading the keys (a value it could not use)."""
    raw: dict[str, str] = field(default_factory=dict)
    """``[vmbackup]`` as written (after parsing), for lint."""
    env_unset: list[str] = field(default_factory=list)
    env_set: dict[str, str] = field(default_factory=dict)


def _key_file(root: Path) -> tuple[keyfile.KeyFile, bool, str]:
    path = root / TOOLS_CONF.lstrip("/")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return keyfile.KeyFile(), False, ""  # no file: not an error, an empty dictionary
    except OSError as err:
        return keyfile.KeyFile(), True, f"Failed to stat conf file: {err.strerror}"
    if not data:
        return keyfile.KeyFile(), True, ""
    try:
        return keyfile.parse(data), True, ""
    except keyfile.KeyFileError as err:
        if str(err) == "Key file does not start with a group":
            # G_KEY_FILE_ERROR_GROUP_NOT_FOUND is accepted by VMTools_LoadConfig, but GLib
            # stopped at the first line: the dictionary is empty all the same.
            return keyfile.KeyFile(), True, ""
        return keyfile.KeyFile(), True, f"Cannot load config file: {err}"


def load(root: Path | str) -> VmbackupConfig:
    """``tools.conf`` under ``root`` as the vmbackup plugin reads it for ``vmbackup.start``."""
    kf, exists, error = _key_file(Path(root))
    cfg = VmbackupConfig(exists=exists, load_error=error)
    cfg.raw = dict(kf.groups.get(SECTION, {}))

    def boolean(key: str) -> bool:
        default = BOOLEAN_KEYS[key]
        value = kf.raw(SECTION, key)
        if value is None:
            return default
        try:
            return keyfile.as_boolean(value)
        except keyfile.ValueError_ as err:
            cfg.warnings.append(f"Failed to get value for '[{SECTION}] {key}': {err}")
            return default

    def string(key: str) -> str | None:
        value = kf.raw(SECTION, key)
        if value is None:
            return None
        try:
            return keyfile.as_string(value)
        except keyfile.ValueError_ as err:
            cfg.warnings.append(f"Failed to get value for '[{SECTION}] {key}': {err}")
            return None

    cfg.exec_scripts = boolean("execScripts")
    cfg.quiesce_apps = boolean("quiesceApps")
    cfg.quiesce_fs = boolean("quiesceFS")
    cfg.enable_sync_driver = boolean("enableSyncDriver")
    cfg.enable_null_driver = boolean("enableNullDriver")
    cfg.ignore_frozen_fs = boolean("ignoreFrozenFileSystems")
    cfg.force_quiesce = boolean("forceQuiesce")
    cfg.script_arg = string("scriptArg")
    cfg.excluded_fs = string("excludedFileSystems")
    cfg.timeout_s = _timeout(kf, cfg)
    _environment(kf, cfg)
    return cfg


def _timeout(kf: keyfile.KeyFile, cfg: VmbackupConfig) -> int:
    """``VmBackupStart`` reads ``timeout`` with default 0 ("none given"); when that gives 0,
    ``VmBackupStartCommon`` reads it again with default 900. So: absent or unusable: 900; a
    written 0 reads 0 both times: no abort timer at all ("Treat "0" as no timeout.")."""
    value = kf.raw(SECTION, "timeout")
    if value is None:
        return DEFAULT_TIMEOUT_S
    try:
        number = keyfile.as_integer(value)
    except keyfile.ValueError_ as err:
        cfg.warnings.append(f"Failed to get value for '[{SECTION}] timeout': {err}")
        return DEFAULT_TIMEOUT_S
    if number < 0 or number > G_MAXINT // 1000:
        cfg.warnings.append(f"Invalid timeout {number}. Using default {DEFAULT_TIMEOUT_S}s.")
        return DEFAULT_TIMEOUT_S
    return number


def _environment(kf: keyfile.KeyFile, cfg: VmbackupConfig) -> None:
    """``[unsetenvironment]`` then ``[setenvironment]``, global keys then ``vmsvc.`` ones
    (``VMTools_SetupEnv`` is called for the global ones first), values right-stripped."""
    for global_vars in (True, False):
        for group, unset in (("unsetenvironment", True), ("setenvironment", False)):
            for key in kf.keys(group):
                name = _env_name(key, global_vars)
                if not name:
                    continue
                if unset:
                    cfg.env_unset.append(name)
                    cfg.env_set.pop(name, None)
                    continue
                try:
                    value = keyfile.as_string(kf.raw(group, key) or "")
                except keyfile.ValueError_:
                    continue
                cfg.env_set[name] = value.rstrip(" \t\n\r\f\v")


def _env_name(key: str, global_vars: bool) -> str:
    head, dot, tail = key.partition(".")
    if global_vars:
        return key if not dot else ""
    return tail if dot and head == SERVICE else ""
