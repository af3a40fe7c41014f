"""What a vmsnap run is about: the user's files and the stand-in VM's shape.

One dataclass for the CLI, the pytest plugin (command-line options over ini keys) and the
fixtures, so the three never disagree on defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

APPS = ("sqlite", "postgres", "mariadb", "redis")
VM_KINDS = ("host", "container", "dir")
SNAPSHOT_BACKENDS = ("reflink", "copy", "btrfs", "devmapper")
QUIESCE_KINDS = ("lock", "flush", "none")


@dataclass(frozen=True)
class Settings:
    """Inputs of one vmsnap cycle."""

    config: Path | None = None
    pre: Path | None = None
    post: Path | None = None
    app: str = "sqlite"
    vm: str = "host"
    disks: int = 1
    fs: str = "ext4"
    snapshot: str = "reflink"
    profile: str = "extension"
    quiesce: str = "none"
    """``lock``: the scripts claim to hold a lock, so writes must block while quiesced."""
    workload_seconds: float = 1.0
    owner: str | None = None
    pacing: str = "faithful"
    skew_s: float = 0.0
    """Seconds between the snapshots of consecutive disks (one freeze no longer covers all)."""
    snapshot_order: str = "layout"
    """``layout``: disks are snapshotted in the app's layout order; ``reverse``: last first
    (for PostgreSQL: the WAL disk before the data disk, the harmful order)."""
    baseline: bool = False
    """Crash-consistent baseline: the same snapshot with no scripts and no freeze."""
    report_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def problems(self) -> list[str]:
        """Usage errors, one sentence each (empty when the settings are usable)."""
        out = []
        if self.config is None:
            out.append("no config given (vmsnap_config / --vmsnap-config)")
        elif not self.config.is_file():
            out.append(f"config {self.config} does not exist")
        for name, path in (("pre", self.pre), ("post", self.post)):
            if path is not None and not path.is_file():
                out.append(f"{name}-script {path} does not exist")
        checks = (
            ("app", self.app, APPS),
            ("vm", self.vm, VM_KINDS),
            ("snapshot", self.snapshot, SNAPSHOT_BACKENDS),
            ("fs", self.fs, ("ext4", "xfs", "btrfs")),
            ("profile", self.profile, ("extension", "documented")),
            ("quiesce", self.quiesce, QUIESCE_KINDS),
            ("pacing", self.pacing, ("faithful", "prompt")),
        )
        for name, value, allowed in checks:
            if value not in allowed:
                out.append(f"{name} {value!r} is not one of {', '.join(allowed)}")
        if not 1 <= self.disks <= 4:
            out.append(f"disks must be 1..4, not {self.disks}")
        if self.skew_s < 0:
            out.append(f"skew must be >= 0 seconds, not {self.skew_s}")
        return out
