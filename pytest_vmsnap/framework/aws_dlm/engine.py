"""AWS DLM's engine behind the interface every framework offers (:mod:`..engine`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..engine import Given, Hosting, Observer
from ..interfaces import Freezer, Snapshotter
from ..outcome import FrameworkCycle
from ..records import Finding
from ..scripts import Clock, Pacing, Spawn
from . import hosting
from .agent import agent_env, from_spawn, real_starter
from .cycle import precheck_findings, run_cycle


@dataclass(frozen=True)
class AwsDlmEngine:
    """DLM's pre/post scripts: a policy's ``Scripts`` settings and an SSM command document
    run by the SSM agent (:mod:`.cycle`, :mod:`.agent`)."""

    name: str = "aws-dlm"
    title: str = "AWS Data Lifecycle Manager pre/post scripts (SSM command document)"
    dry_run: bool = True
    """Send ``command=dry-run`` once before the pre-script (when DLM does is not documented)."""
    time_scale: float = 1.0
    """Every timeout (DLM's ExecutionTimeout, the agent's timeoutSeconds) times this: 1 for
    real runs; unit tests shrink it so that a 10 s timeout costs a fraction of a second."""

    def host(self, given: Given) -> Hosting:
        """The document and policy at the harness's paths; scripts at fixed paths; without a
        document, the smallest one that runs them (:mod:`.hosting`)."""
        return hosting.host(given)

    def precheck(self, root: Path) -> list[Finding]:
        """A policy DLM's API refuses, a document DLM refuses; DLM checks nothing on the
        instance (no owner, mode or existence of a script: the document runs them)."""
        return precheck_findings(Path(root))[0]

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
        """One schedule run. ``freezer`` is never used: DLM does not freeze. ``pacing``
        changes nothing: no delay of DLM's is documented."""
        root = Path(root)
        starter = real_starter if spawn is None else from_spawn(spawn)
        return run_cycle(
            root,
            starter=starter,
            env=agent_env(root, env),
            snapshotter=snapshotter,
            clock=clock,
            observer=observer,
            dry_run=self.dry_run,
            time_scale=self.time_scale,
        )


def make(profile: str = "extension") -> AwsDlmEngine:
    """The engine, for :func:`~pytest_vmsnap.framework.engines.get` (no profiles)."""
    return AwsDlmEngine()
