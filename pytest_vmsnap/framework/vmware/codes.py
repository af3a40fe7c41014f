"""The words vmbackup reports to the host, and the harness's findings built from them.

``VmBackupStatus`` codes and event names: vmware/open-vm-tools
``open-vm-tools/lib/include/vmware/guestrpc/vmbackup.h``. The host's faults: a failing
freeze-side script makes the quiesced snapshot fail with ``ApplicationQuiesceFault`` ("the
(user-supplied) custom pre-freeze script in the virtual machine exited with a non-zero return
code", vSphere Web Services API reference); ESXi's task message for a guest error is "the
guest OS has reported an error during quiescing. Error code was: <code> the error message
was: <message>".
"""

from __future__ import annotations

from ..records import Finding

VMBACKUP_SUCCESS = 0
VMBACKUP_INVALID_STATE = 1
VMBACKUP_SCRIPT_ERROR = 2
VMBACKUP_SYNC_ERROR = 3
VMBACKUP_REMOTE_ABORT = 4
VMBACKUP_UNEXPECTED_ERROR = 5

NAMES = {
    VMBACKUP_SUCCESS: "VMBACKUP_SUCCESS",
    VMBACKUP_INVALID_STATE: "VMBACKUP_INVALID_STATE",
    VMBACKUP_SCRIPT_ERROR: "VMBACKUP_SCRIPT_ERROR",
    VMBACKUP_SYNC_ERROR: "VMBACKUP_SYNC_ERROR",
    VMBACKUP_REMOTE_ABORT: "VMBACKUP_REMOTE_ABORT",
    VMBACKUP_UNEXPECTED_ERROR: "VMBACKUP_UNEXPECTED_ERROR",
}

# What result.outcome says (the framework's own word for the end of the cycle).
SUCCESS = "VMBACKUP_SUCCESS"
APPLICATION_QUIESCE_FAULT = "ApplicationQuiesceFault"
"""A freeze-side script failed (or could not start): no snapshot."""
SCRIPT_ERROR = "VMBACKUP_SCRIPT_ERROR"
"""A thaw-side script failed after the snapshot was taken."""
SYNC_ERROR = "VMBACKUP_SYNC_ERROR"
REMOTE_ABORT = "VMBACKUP_REMOTE_ABORT"
"""The operation was cancelled: the abort timer (``timeout``) or the host (a failed snapshot)."""
NOT_INITIALIZED = "QuiesceNotInitialized"
"""``vmbackup.start`` refused: "Error initializing quiesce operation." (no provider, or the
first freeze script could not be started)."""
VMTOOLSD_ABORTED = "VmtoolsdAborted"
"""vmtoolsd's ``g_error`` ("Unexpected machine state on error: SCRIPT_ERROR") ends the
process: reached when a freezeFail walk reports an error (see :mod:`.cycle`)."""
HARNESS_BOUND = "HarnessBound"
"""The harness stopped waiting where vmtoolsd would wait on (``timeout=0``)."""

SCRIPT_FAILED_EVENT = "Custom quiesce script failed."
START_FAILED_EVENT = "Error when starting custom quiesce scripts."
SYNC_ENABLE_EVENT = "Error when enabling the sync provider."
SYNC_NOTIFY_EVENT = "Error when notifying the sync provider."
CANCELED_EVENT = "Quiesce canceled."
INIT_ERROR = "Error initializing quiesce operation."


def finding(name: str, message: str, action: str, code: int | None = None) -> Finding:
    """One finding (``code``: the ``VmBackupStatus`` sent to the host, when there is one)."""
    return {"code": code, "name": name, "message": message, "action": action}
