"""VMware Tools' vmbackup plugin behind the interface every framework offers (:mod:`..engine`)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import Given, Hosting, Observer, Placement
from ..interfaces import Freezer, Snapshotter
from ..outcome import FrameworkCycle
from ..records import Finding
from ..scripts import Clock, Pacing, Spawn
from . import codes, config, cycle, discovery

HARNESS_BOUND_S = 120.0
"""How long the harness waits for the whole cycle at most, whatever ``timeout`` says.

vmtoolsd's own abort timer defaults to 900 s and ``timeout=0`` turns it off; the harness must
end all the same. When this bound comes first the engine does what vmtoolsd would do when
its timer fired (or, with no timer, stops) and says so in a ``HarnessBound`` finding. Pass
``harness_bound_s`` to :class:`VMwareEngine` to watch a longer real timeout."""


@dataclass(frozen=True)
class VMwareEngine:
    """The vmbackup plugin of open-vm-tools on Linux (:mod:`.cycle`)."""

    harness_bound_s: float = HARNESS_BOUND_S
    sync: Callable[[], None] = field(default=os.sync, compare=False)
    """The null provider's ``sync()`` (tests pass a recorder)."""
    name: str = "vmware"
    title: str = "VMware Tools (open-vm-tools vmbackup)"

    def host(self, given: Given) -> Hosting:
        """A hook goes into ``backupScripts.d`` under its own name (the names' order is the
        scripts' order); a pre/post pair becomes the legacy ``/usr/sbin/pre-freeze-script``
        and ``/usr/sbin/post-thaw-script``; a config is ``tools.conf``. Nothing is generated:
        with no ``tools.conf`` every default already runs the scripts (``execScripts=true``)."""
        if "document" in given.roles:
            return Hosting(refused="VMware Tools runs no SSM document; give a hook script")
        placements: list[Placement] = []
        if "config" in given.roles:
            placements.append(Placement("config", config.TOOLS_CONF))
        if "hook" in given.roles:
            if {"pre", "post"} & given.roles:
                return Hosting(
                    refused="give either one backupScripts.d hook or the legacy "
                    "pre-freeze/post-thaw pair, not both: the harness installs one convention"
                )
            name = os.path.basename(given.hook_name) or "50-quiesce"
            placements.append(Placement("hook", f"{discovery.SCRIPTS_DIR}/{name}"))
            where = f"{discovery.SCRIPTS_DIR}/{name}"
            calls = f"bash -c '\"{where}\" freeze|thaw|freezeFail [scriptArg]'"
        elif {"pre", "post"} & given.roles:
            if "pre" in given.roles:
                placements.append(Placement("pre", discovery.LEGACY_FREEZE))
            if "post" in given.roles:
                placements.append(Placement("post", discovery.LEGACY_THAW))
            calls = (
                f"bash -c '\"{discovery.LEGACY_FREEZE}\" freeze'; "
                f"bash -c '\"{discovery.LEGACY_THAW}\" thaw|freezeFail'"
            )
        else:
            return Hosting(refused="VMware Tools needs a script: give a hook or a pre/post pair")
        return Hosting(placements=tuple(placements), calls=calls)

    def precheck(self, root: Path) -> list[Finding]:
        """What vmbackup skips or cannot start before anything runs, in its own words."""
        root = Path(root)
        cfg = config.load(root)
        out: list[Finding] = []
        if cfg.load_error:
            out.append(
                codes.finding(
                    "ConfigNotLoaded",
                    f"{config.TOOLS_CONF}: {cfg.load_error}. vmtoolsd drops the whole file "
                    "and runs with the default of every key.",
                    "Fix the line named; every line must be a [group], key=value, blank or a "
                    "# comment.",
                )
            )
        if cycle.provider(cfg) is None:
            out.append(
                codes.finding(
                    "QuiesceNotInitialized",
                    "forceQuiesce=true with quiesceFS=false or enableSyncDriver=false: "
                    "'Requested quiescing cannot be initialized.'; no script runs.",
                    "Set quiesceFS=true and enableSyncDriver=true, or drop forceQuiesce.",
                )
            )
        if not cfg.exec_scripts:
            out.append(
                codes.finding(
                    "ScriptsDisabled",
                    "execScripts=false in [vmbackup]: vmtoolsd runs no script.",
                    "Remove execScripts=false (the default is true).",
                )
            )
            return out
        slots = discovery.script_list(root)
        runnable = [s for s in slots if discovery.is_file(root, s)]
        if not runnable:
            out.append(
                codes.finding(
                    "NoScripts",
                    f"No regular file in {discovery.SCRIPTS_DIR} and no "
                    f"{discovery.LEGACY_FREEZE} or {discovery.LEGACY_THAW}: nothing to run.",
                    f"Install the script in {discovery.SCRIPTS_DIR} (mode 0755).",
                )
            )
        for location in sorted({*runnable, *_legacy(root)}):
            mode = os.stat(discovery.host_path(root, location)).st_mode
            if not mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
                out.append(
                    codes.finding(
                        "ScriptNotExecutable",
                        f"{location} has no execute bit: vmtoolsd runs it all the same and "
                        "bash fails with 'Permission denied' (126), which fails the quiesce.",
                        f"chmod 0755 {location}",
                    )
                )
        for skipped in discovery.skipped_entries(root):
            out.append(
                codes.finding(
                    "NotARegularFile",
                    f"{skipped.location} is {skipped.why}: vmbackup skips it without a word.",
                    "Put the script itself directly in the directory.",
                )
            )
        return out

    def run_cycle(
        self,
        root: Path | str,
        *,
        freezer: Freezer | None = None,
        snapshotter: Snapshotter | None = None,
        clock: Clock | None = None,
        spawn: Spawn | None = None,
        pacing: Pacing | None = None,
        observer: Observer | None = None,
        env: Mapping[str, str] | None = None,
    ) -> FrameworkCycle:
        return cycle.run_cycle(
            root,
            options=cycle.Options(self.harness_bound_s, self.sync),
            freezer=freezer,
            snapshotter=snapshotter,
            clock=clock,
            spawn=spawn,
            pacing=pacing,
            observer=observer,
            env=env,
        )


def _legacy(root: Path) -> list[str]:
    legacy = (discovery.LEGACY_FREEZE, discovery.LEGACY_THAW)
    return [p for p in legacy if discovery.is_file(root, p)]


def make(profile: str = "extension") -> VMwareEngine:
    """The engine, for :func:`~pytest_vmsnap.framework.engines.get` (``profile`` is Azure's)."""
    return VMwareEngine()
