"""Azure's engine behind the interface every framework offers (:mod:`..engine`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..engine import Given, Hosting, Observer, Placement
from ..interfaces import Freezer, Snapshotter
from ..records import Finding
from ..scripts import FAITHFUL, Clock, Pacing, Spawn
from . import codes, profiles
from .checks import precheck
from .config import PLUGIN_CONFIG
from .cycle import CycleResult, run_cycle
from .environment import extension_spawn


@dataclass(frozen=True)
class AzureEngine:
    """The Linux VMBackup extension's script framework (:mod:`.cycle`)."""

    profile: profiles.Profile = profiles.EXTENSION
    name: str = "azure"
    title: str = "Azure VMSnapshot script framework (Linux VMBackup extension)"

    def host(self, given: Given) -> Hosting:
        """The config goes to /etc/azure; the scripts where the config's locations say."""
        if "config" not in given.roles:
            return Hosting(
                refused=f"Azure runs no script without its config ({PLUGIN_CONFIG}): give --config"
            )
        pre, post = _locations(given.config)
        placements = [Placement("config", PLUGIN_CONFIG)]
        if "hook" in given.roles:
            return Hosting(
                refused="Azure calls a pre- and a post-script named in its config; "
                "a hook can serve as both only through the config's own "
                "locations and params"
            )
        for role, location in (("pre", pre), ("post", post)):
            if role in given.roles and location:
                placements.append(Placement(role, location))
        return Hosting(
            placements=tuple(placements),
            calls="sh <preScriptLocation> <preScriptParams...>; "
            "sh <postScriptLocation> <postScriptParams...>",
        )

    def precheck(self, root: Path) -> list[Finding]:
        pc = precheck(root, profile=self.profile)
        return [codes.lookup(pc.code).as_finding(pc.detail)] if pc.code else []

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
    ) -> CycleResult:
        return run_cycle(
            root,
            freezer=freezer,
            snapshotter=snapshotter,
            profile=self.profile,
            clock=clock,
            spawn=spawn or extension_spawn(env),
            pacing=pacing or FAITHFUL,
            observer=observer,
        )


def _locations(config: bytes | None) -> tuple[str | None, str | None]:
    try:
        data = json.loads((config or b"").decode("utf-8"))
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    pre, post = data.get("preScriptLocation"), data.get("postScriptLocation")
    return (pre if isinstance(pre, str) else None, post if isinstance(post, str) else None)


def make(profile: str = "extension") -> AzureEngine:
    """The engine, for :func:`~pytest_vmsnap.framework.engines.get`."""
    return AzureEngine(profiles.get(profile))
