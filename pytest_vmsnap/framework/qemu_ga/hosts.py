"""What the host does with the agent's answers (the agent only freezes and thaws on request).

- :data:`LIBVIRT` (``virsh snapshot-create --disk-only --quiesce``; oVirt and others use the
  same API): libvirt ``src/qemu/qemu_snapshot.c`` ``qemuSnapshotCreateActiveExternal``: with
  the quiesce flag a failed ``guest-fsfreeze-freeze`` (no agent, a hook that failed, a
  FIFREEZE error) ends the call with no snapshot and no thaw command (``thaw`` is set only
  when the freeze returned); after the snapshot it sends ``guest-fsfreeze-thaw`` and "report
  error only on an otherwise successful snapshot": a thaw error makes the whole call fail.
  libvirt's agent commands wait without a limit by default, so a hook that never ends holds
  the call forever.
- :data:`PROXMOX` (``vzdump``; ``PVE/VZDump/QemuServer.pm`` ``qga_fs_freeze``): a failed
  ``guest-fsfreeze-freeze`` is logged (``logerr``) and the backup goes on without the
  freeze, and ``guest-fsfreeze-thaw`` is always sent afterwards ("even on error, ensure we
  always thaw again"), so the thaw hook runs even after a failed freeze hook; a thaw error is
  logged. An agent that is not running: "skipping guest-agent 'fs-freeze', agent configured
  but not running?", and the backup goes on.
"""

from __future__ import annotations

LIBVIRT = "libvirt"
PROXMOX = "proxmox"
HOSTS = (LIBVIRT, PROXMOX)
