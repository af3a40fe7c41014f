"""Every numeric code the Azure VMSnapshotLinux extension can produce around pre/post scripts.

Numbers and internal names come from the extension's source (``common.py``,
``ExtensionErrorCodeHelper.py``); the docs' names are the service's user-facing error names.
Messages and recommended actions are written in our own words from the troubleshooting facts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..records import Finding


@dataclass(frozen=True)
class Code:
    """One framework code: number, the extension's internal name, the docs' name, and advice."""

    number: int
    name: str
    docs_name: str
    message: str
    action: str
    reported: bool = True  # False: the extension only logs it, the backup silently goes on

    def as_finding(self, detail: str = "") -> Finding:
        """The ``{code, name, message, action}`` record used in JSON results and reports."""
        message = f"{self.message} {detail}".strip()
        return {
            "code": self.number,
            "name": self.docs_name or self.name,
            "message": message,
            "action": self.action,
        }


SUCCESS_APP_CONSISTENT = 0
SUCCESS = 1
ERROR = 2

PRE_FAILED = 300
POST_FAILED = 301
PRE_NOT_FOUND = 302
POST_NOT_FOUND = 303
HOST_PARSING = 304
CONFIG_PARSING = 305
PRE_PERMISSION = 306
POST_PERMISSION = 307
PRE_TIMEOUT = 308
POST_TIMEOUT = 309
HOST_PRE_TIMEOUT = 310
HOST_POST_TIMEOUT = 311
CHECKSUM_MISMATCH = 312
HOST_NOT_FOUND = 313
HOST_PERMISSION = 314
HOST_OWNERSHIP = 315
CONFIG_NOT_FOUND = 316
CONFIG_PERMISSION = 317
CONFIG_OWNERSHIP = 318

FREEZE_FAILED = 121
FREEZE_TIMEOUT = 122
FREEZE_OPEN_MOUNT = 123
FREEZE_BINARY_MISSING = 124
COMMAND_TOO_LATE = 402

# Codes the extension logs but never reports: the backup goes on file-system consistent.
LOGGED_ONLY = frozenset(
    {HOST_PARSING, CONFIG_PARSING, HOST_NOT_FOUND, HOST_PERMISSION, CONFIG_NOT_FOUND}
)

_SCRIPT_LOGS = "Read the script's own output (shown in the report) and fix the cause."
_TIMEOUT_ACTION = (
    "Make the script finish sooner, or raise timeoutInSeconds in "
    "/etc/azure/VMSnapshotScriptPluginConfig.json (at most 1800; it is rounded up to a "
    "multiple of ScriptsExecutionPollTimeSeconds)."
)
_SCRIPT_PERM_ACTION = (
    "Make root the owner of the script and remove every group and other permission "
    "(chown root:root <script>; chmod 700 <script>)."
)

_ALL = [
    Code(
        0,
        "success_appconsistent",
        "",
        "Application-consistent snapshot: both scripts succeeded around the snapshot.",
        "Nothing to do.",
    ),
    Code(
        1,
        "success",
        "",
        "Snapshot taken, file-system consistent (not application-consistent).",
        "Check the health code for why the scripts did not make it application-consistent.",
    ),
    Code(
        2,
        "error",
        "",
        "The snapshot failed or is inconsistent (for example the freeze "
        "helper thawed on its own before the snapshot finished).",
        "Look at the freeze and snapshot timings; the service retries such backups.",
    ),
    Code(4, "ExtensionTempTerminalState", "", "Backup still in progress.", "Wait."),
    Code(
        PRE_FAILED,
        "FailedPrepostPreScriptFailed",
        "Pre-ScriptExecutionFailed",
        "The pre-script exited with a non-zero code, so the backup may not be "
        "application-consistent.",
        _SCRIPT_LOGS,
    ),
    Code(
        POST_FAILED,
        "FailedPrepostPostScriptFailed",
        "Post-ScriptExecutionFailed",
        "The post-script exited with a non-zero code; the application may still be quiesced.",
        _SCRIPT_LOGS + " Then check that the application accepts writes again.",
    ),
    Code(
        PRE_NOT_FOUND,
        "FailedPrepostPreScriptNotFound",
        "Pre-ScriptNotFound",
        "The pre-script is not a regular file at preScriptLocation.",
        "Put the pre-script at the exact path given in preScriptLocation "
        "(an absolute path; an empty value never matches).",
    ),
    Code(
        POST_NOT_FOUND,
        "FailedPrepostPostScriptNotFound",
        "Post-ScriptNotFound",
        "The post-script is not a regular file at postScriptLocation.",
        "Put the post-script at the exact path given in postScriptLocation "
        "(an absolute path; an empty value never matches).",
    ),
    Code(
        HOST_PARSING,
        "FailedPrepostPluginhostConfigParsing",
        "IncorrectPluginhostFile",
        "The plugin host could not load its configuration or the plugin (this includes a "
        "wrong type in VMSnapshotScriptPluginConfig.json, such as null or a string "
        "timeout). The extension only logs this and takes a file-system consistent backup.",
        "Fix the value types in the JSON config; if VMSnapshotPluginHost.conf is damaged, "
        "uninstall the extension so the next backup reinstalls it.",
        reported=False,
    ),
    Code(
        CONFIG_PARSING,
        "FailedPrepostPluginConfigParsing",
        "IncorrectJSONConfigFile",
        "VMSnapshotScriptPluginConfig.json is not valid JSON, lacks preScriptLocation or "
        "postScriptLocation, or has a non-numeric ScriptsExecutionPollTimeSeconds. The "
        "extension only logs this and takes a file-system consistent backup.",
        "Start again from the template config, fill in the two script locations, and "
        "validate the file with `vmsnap lint`.",
        reported=False,
    ),
    Code(
        PRE_PERMISSION,
        "FailedPrepostPreScriptPermissionError",
        "InsufficientPermissionforPre-Script",
        "The pre-script is not owned by a user named root, or group/other have permissions.",
        _SCRIPT_PERM_ACTION,
    ),
    Code(
        POST_PERMISSION,
        "FailedPrepostPostScriptPermissionError",
        "InsufficientPermissionforPost-Script",
        "The post-script is not owned by a user named root, or group/other have permissions.",
        _SCRIPT_PERM_ACTION,
    ),
    Code(
        PRE_TIMEOUT,
        "FailedPrepostPreScriptTimeout",
        "Pre-ScriptTimeout",
        "The pre-script was still running when the timeout expired.",
        _TIMEOUT_ACTION,
    ),
    Code(
        POST_TIMEOUT,
        "FailedPrepostPostScriptTimeout",
        "Post-ScriptTimeout",
        "The post-script was still running when the timeout expired.",
        _TIMEOUT_ACTION,
    ),
    Code(
        HOST_PRE_TIMEOUT,
        "FailedPrepostPluginhostPreTimeout",
        "Pre-ScriptTimeout",
        "The plugin host's watchdog gave up on the pre phase: the plugin never reported "
        "(typically a number in preScriptParams instead of a list of strings).",
        "Make preScriptParams a JSON list of strings.",
    ),
    Code(
        HOST_POST_TIMEOUT,
        "FailedPrepostPluginhostPostTimeout",
        "Post-ScriptTimeout",
        "The plugin host's watchdog gave up on the post phase: the plugin never reported "
        "(typically a number in postScriptParams instead of a list of strings).",
        "Make postScriptParams a JSON list of strings.",
    ),
    Code(
        CHECKSUM_MISMATCH,
        "FailedPrepostCheckSumMismatch",
        "IncorrectPluginhostFile",
        "Defined by the extension but never raised.",
        "Nothing to do.",
    ),
    Code(
        HOST_NOT_FOUND,
        "FailedPrepostPluginhostConfigNotFound",
        "IncorrectPluginhostFile",
        "VMSnapshotPluginHost.conf was found neither in /etc/azure nor in the extension. "
        "Logged only; the backup is file-system consistent.",
        "Uninstall the extension so the next backup reinstalls it.",
        reported=False,
    ),
    Code(
        HOST_PERMISSION,
        "FailedPrepostPluginhostConfigPermissionError",
        "IncorrectPluginhostFile",
        "VMSnapshotPluginHost.conf is writable by group or other, or not owned by root. "
        "Logged only; the backup is file-system consistent.",
        "chown root:root the file and chmod 644 (or 600) it.",
        reported=False,
    ),
    Code(
        HOST_OWNERSHIP,
        "FailedPrepostPluginhostConfigOwnershipError",
        "",
        "Defined by the extension but never raised.",
        "Nothing to do.",
    ),
    Code(
        CONFIG_NOT_FOUND,
        "FailedPrepostPluginConfigNotFound",
        "",
        "No /etc/azure/VMSnapshotScriptPluginConfig.json: scripts are not configured and "
        "the backup is file-system consistent.",
        "Create the config from the template if this VM needs application consistency.",
        reported=False,
    ),
    Code(
        CONFIG_PERMISSION,
        "FailedPrepostPluginConfigPermissionError",
        "IncorrectJSONConfigFile",
        "VMSnapshotScriptPluginConfig.json has the owner-execute bit or any group/other "
        "permission, or is not owned by root; the scripts are skipped.",
        "chown root:root /etc/azure/VMSnapshotScriptPluginConfig.json; chmod 600 it.",
    ),
    Code(
        CONFIG_OWNERSHIP,
        "FailedPrepostPluginConfigOwnershipError",
        "",
        "Defined by the extension but never raised.",
        "Nothing to do.",
    ),
    Code(
        FREEZE_FAILED,
        "FailedRetryableFsFreezeFailed",
        "",
        "The file-system freeze failed (FIFREEZE refused, or another freeze was in progress).",
        "Check that no other tool froze the file systems and that every mount supports "
        "freezing; the service retries.",
    ),
    Code(
        FREEZE_TIMEOUT,
        "FailedRetryableFsFreezeTimeout",
        "",
        "The freeze helper did not report 'frozen' in time.",
        "Look for processes stuck writing to the file systems; the service retries.",
    ),
    Code(
        FREEZE_OPEN_MOUNT,
        "FailedRetryableUnableToOpenMount",
        "",
        "The freeze helper could not open a mount point (for example one the pre-script "
        "unmounted).",
        "Do not mount or unmount file systems in the pre-script.",
    ),
    Code(
        FREEZE_BINARY_MISSING,
        "FailedSafeFreezeBinaryNotFound",
        "",
        "The freeze helper binary is missing.",
        "Reinstall the extension.",
    ),
    Code(
        COMMAND_TOO_LATE,
        "FailedGuestAgentInvokedCommandTooLate",
        "",
        "The backup command arrived or ran too late (140 minute deadline).",
        "Nothing in the scripts; the service retries.",
    ),
]

CODES: dict[int, Code] = {c.number: c for c in _ALL}


def lookup(number: int) -> Code:
    """The :class:`Code` for ``number``; an unknown number gets a generic entry."""
    found = CODES.get(number)
    if found is not None:
        return found
    return Code(
        number, f"Code{number}", "", f"Unknown framework code {number}.", "See the extension log."
    )


def is_success(number: int) -> bool:
    """True for the two success statuses (0 application-consistent, 1 file-system consistent)."""
    return number in (SUCCESS_APP_CONSISTENT, SUCCESS)
