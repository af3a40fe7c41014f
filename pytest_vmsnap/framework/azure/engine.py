"""Azure's engine behind the interface every framework offers (:mod:`..engine`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..engine import Generated, Given, Hosting, Observer, Placement
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
        """The config goes to /etc/azure; the scripts where the config's locations say.

        Without a config (``vmsnap compare``) the harness writes the smallest one that runs
        them, the scripts beside it in /etc/azure: a pre/post pair as they are, a hook as
        both, with ``freeze`` and ``thaw`` as its params.
        """
        if "config" not in given.roles:
            return _generated(given)
        pre, post = _locations(given.config)
        placements = [Placement("config", PLUGIN_CONFIG)]
        for role, location in (("pre", pre), ("post", post)):
            if role in given.roles and location:
                placements.append(Placement(role, location))
        if "hook" in given.roles:
            return Hosting(
                refused="Azure calls the pre- and post-script its config names: with your own "
                "config, give the hook as --pre and --post (its params freeze and thaw)"
            )
        return Hosting(placements=tuple(placements), calls=CALLS)

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


CALLS = "sh <pre> <preScriptParams...>, sh <post> <postScriptParams...> (shebang ignored)"
AZURE_DIR = "/etc/azure"


def _generated(given: Given) -> Hosting:
    """The smallest config a user writes for these scripts (``vmsnap compare``)."""
    if "hook" in given.roles:
        hook = f"{AZURE_DIR}/{given.hook_name or 'hook.sh'}"
        pre = post = hook
        params: tuple[list[str], list[str]] = (["freeze"], ["thaw"])
        placements = [Placement("hook", hook)]
    elif {"pre", "post"} <= given.roles:
        pre, post = f"{AZURE_DIR}/pre-script.sh", f"{AZURE_DIR}/post-script.sh"
        params = ([], [])
        placements = [Placement("pre", pre), Placement("post", post)]
    else:
        return Hosting(
            refused="Azure runs no script without its config: give --config, or "
            "both --pre and --post"
        )
    config = {
        "pluginName": "ScriptRunner",
        "preScriptLocation": pre,
        "postScriptLocation": post,
        "preScriptParams": params[0],
        "postScriptParams": params[1],
        "preScriptNoOfRetries": 0,
        "postScriptNoOfRetries": 0,
        "timeoutInSeconds": 30,
        "continueBackupOnFailure": True,
        "fsFreezeEnabled": True,
    }
    why = (
        "Azure runs scripts only as its config names them; this is the smallest config "
        "(the values of the docs' sample config), owner root, mode 600 as the pre-check requires"
    )
    return Hosting(
        placements=tuple(placements),
        generated=(Generated(PLUGIN_CONFIG, json.dumps(config, indent=2).encode(), 0o600, why),),
        calls=f"sh {pre} {' '.join(params[0])}, sh {post} {' '.join(params[1])}".replace(
            " ,", ","
        ).strip()
        + " (shebang ignored)",
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
