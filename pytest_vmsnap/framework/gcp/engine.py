"""The guest agent's snapshot scripts behind the interface every framework offers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..engine import Generated, Given, Hosting, Observer, Placement
from ..interfaces import Freezer, Snapshotter
from ..outcome import FrameworkCycle
from ..records import Finding
from ..scripts import Clock, Pacing, Spawn
from . import codes, config, cycle, discovery
from .environment import agent_spawn

DEFAULT_DISKS = "0/1"
"""The disk list the stand-in's host sends (one disk: target 0, LUN 1). The real host sends
comma-separated ``target/lun`` pairs (``"1/2,3/4"`` in ``snapshot_service.proto``); which pairs
a VM's disks get is the host's business, so scripts should not depend on the values."""
DEFAULT_HANG_BOUND_S = 300.0
"""How long after the agent's deadline the harness keeps waiting for a script's output pipes
to close, where the real agent would wait for ever (a background process holding them)."""

MINIMAL_CONFIG = b"[Snapshots]\nenabled = true\n"
HOOK = "/usr/local/sbin/gcp-snapshot-hook"
"""Where a hook goes (GCP has no hook of its own: ``pre.sh``/``post.sh`` call it)."""
CALLS = (
    f"{discovery.PRE} <disks>, snapshot, {discovery.POST} <disks> (executed directly, one "
    "argument: the disk list, e.g. 0/1)"
)


@dataclass(frozen=True)
class GcpEngine:
    """Compute Engine guest-flush snapshots as google-guest-agent runs ``pre.sh``/``post.sh``.

    ``disks`` is the one argument each script gets; ``hang_bound_s`` bounds the wait the real
    agent would never end (see :data:`DEFAULT_HANG_BOUND_S`).
    """

    disks: str = DEFAULT_DISKS
    hang_bound_s: float = DEFAULT_HANG_BOUND_S
    name: str = "gcp"
    title: str = "Compute Engine guest-flush snapshots (google-guest-agent)"

    def host(self, given: Given) -> Hosting:
        """``pre`` -> pre.sh, ``post`` -> post.sh, ``config`` -> instance_configs.cfg; without a
        config, the smallest one that turns snapshots on. A hook goes to :data:`HOOK`, with
        the two one-line ``pre.sh``/``post.sh`` that call it with ``freeze`` and ``thaw``."""
        hook = "hook" in given.roles
        if hook and ("pre" in given.roles or "post" in given.roles):
            return Hosting(refused="give a pre-script and a post-script, or one hook, not both")
        if "document" in given.roles:
            return Hosting(
                refused="The guest agent reads no command document (that is AWS's): give a "
                "pre-script, a post-script and optionally instance_configs.cfg."
            )
        placements = [
            Placement(role, location)
            for role, location in (
                ("config", config.CONFIG_PATH),
                ("pre", discovery.PRE),
                ("post", discovery.POST),
            )
            if role in given.roles
        ]
        generated: tuple[Generated, ...] = ()
        if hook:
            placements.append(Placement("hook", HOOK))
            why = (
                "the agent runs pre.sh and post.sh, one per phase, with the disk list as "
                "their argument and no verb: these one-line wrappers, the smallest a user must "
                "write, call the hook with freeze and thaw"
            )
            generated = tuple(
                Generated(where, f"#!/bin/sh\nexec {HOOK} {verb}\n".encode(), 0o755, why)
                for where, verb in ((discovery.PRE, "freeze"), (discovery.POST, "thaw"))
            )
        if "config" not in given.roles:
            generated += (
                Generated(
                    config.CONFIG_PATH,
                    MINIMAL_CONFIG,
                    0o644,
                    "the agent handles no snapshot request unless [Snapshots] enabled = true "
                    "(its built-in default is false): the smallest config a user must write",
                ),
            )
        calls = CALLS + (f"; they exec {HOOK} freeze and {HOOK} thaw" if hook else "")
        return Hosting(placements=tuple(placements), generated=generated, calls=calls)

    def precheck(self, root: Path) -> list[Finding]:
        """What makes the agent fail for certain before a script does anything: a config that
        does not load or leaves snapshots off, a timeout of 0 or less, a script that is
        missing or that ``execve`` refuses."""
        try:
            cfg = config.load(root)
        except config.ConfigError as err:
            return [codes.finding(codes.CONFIG_LOAD_FAILED, f"{err}: the agent does not start.")]
        found: list[Finding] = []
        if not cfg.enabled:
            value = cfg.values["enabled"]
            detail = next((i for i in cfg.ignored if i.startswith("enabled")), "")
            found.append(
                codes.finding(
                    codes.SNAPSHOTS_NOT_ENABLED,
                    f"[Snapshots] enabled is false (from {value.source}"
                    + (f"; {detail}" if detail else "")
                    + "): the agent runs no snapshot listener and no script.",
                )
            )
            return found
        if cfg.timeout_ns <= 0:
            detail = next((i for i in cfg.ignored if i.startswith("timeout")), "")
            found.append(
                codes.finding(
                    codes.SCRIPT_TIMED_OUT,
                    f"timeout_in_seconds gives a deadline of {cfg.timeout_s:g} s"
                    + (f" ({detail})" if detail else "")
                    + ": every script's deadline has passed before it starts, so none runs.",
                    "Set timeout_in_seconds in [Snapshots] to a whole number of seconds "
                    "above 0 (default 60).",
                )
            )
        for which, location in discovery.SCRIPTS.items():
            if discovery.missing(root, location):
                found.append(codes.finding(codes.SCRIPT_NOT_FOUND, f"{location} does not exist."))
                continue
            problem = discovery.exec_problem(root, location)
            if problem:
                found.append(
                    codes.finding(
                        codes.UNHANDLED_SCRIPT_ERROR,
                        f"{problem.why}: executing it fails with '{problem.errno_text}' "
                        f"(return code -1) and the {which}-phase fails.",
                    )
                )
        return found

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
        """One cycle (:mod:`.cycle`). ``freezer`` is never called: the agent freezes nothing.
        ``pacing`` changes nothing: there is no documented or coded delay to keep."""
        del freezer, pacing
        return cycle.run_cycle(
            root,
            disks=self.disks,
            hang_bound_s=self.hang_bound_s,
            snapshotter=snapshotter,
            clock=clock,
            spawn=spawn or agent_spawn(env),
            observer=observer,
        )


def make(profile: str = "extension") -> GcpEngine:
    """The engine, for :func:`~pytest_vmsnap.framework.engines.get` (no profiles: ignored)."""
    del profile
    return GcpEngine()
