"""The small interface every quiesce framework's engine offers.

An engine is one framework's rules, pure (no pytest, no Docker, no VM): where it looks for the
scripts and its config inside a machine's root, how it calls them, its timeouts, its freeze
(or none) and its outcome on every failure. The harness hands it a :class:`Freezer` and a
:class:`Snapshotter`, which are the stand-in VM's (or no-ops in unit tests), and reads its
account of the cycle as a :class:`~.records.CycleRecordJson`.

The engines are named in :mod:`.engines`, which builds one by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .interfaces import Freezer, Snapshotter
from .records import CycleRecordJson, Finding
from .scripts import Clock, Pacing, Spawn

Observer = Callable[[str], None]
"""Called with an event name at each phase edge; the controller probes at some of them."""

EVENTS = (
    "precheck_end",
    "pre_start",
    "pre_end",
    "freeze_start",
    "freeze_call",
    "frozen",
    "snapshot_start",
    "snapshot_end",
    "thawed",
    "post_start",
    "post_end",
)
"""The events an engine reports, in this order, each when it happens (events of a phase the
framework does not have, a freeze say, are not reported). ``pre_end`` is reported once every
freeze-side script has ended (the quiesce probe runs then); ``freeze_call`` just before the
engine asks its freezer to freeze (with no freeze, ``snapshot_start`` is the capture point);
the ``post_*`` events around the thaw-side scripts."""

ROLES = ("config", "pre", "post", "hook", "document")
"""The user's files by role: the framework's config, a pre-script and a post-script, a hook
(one script called with a verb such as ``freeze``/``thaw``), and AWS's SSM command document."""


@dataclass(frozen=True)
class Given:
    """What the user hands the harness for one framework, before anything is installed."""

    roles: frozenset[str]
    """The roles of :data:`ROLES` the user gave a file for."""
    config: bytes | None = None
    """The config's content, when given: a framework whose config names the scripts'
    locations (Azure) places them from it."""
    hook_name: str = ""
    """The hook file's own name: a framework that runs a directory of scripts keeps it (their
    order is the names' order)."""

    @classmethod
    def of(cls, files: Mapping[str, Path]) -> Given:
        """What the engine is told of the user's ``files`` (by role): which roles, the
        config's content (None when it cannot be read), the hook's name."""
        config = None
        if "config" in files:
            try:
                config = Path(files["config"]).read_bytes()
            except OSError:
                config = None
        hook = files.get("hook")
        return cls(frozenset(files), config, Path(hook).name if hook else "")


@dataclass(frozen=True)
class Placement:
    """One of the user's files, installed where the framework looks for it."""

    role: str
    location: str
    """Absolute, inside the VM."""


@dataclass(frozen=True)
class Generated:
    """A file the harness writes because the framework needs it and the user gave none: the
    smallest one a user must write for the framework to run the scripts at all."""

    location: str
    content: bytes
    mode: int
    why: str


@dataclass(frozen=True)
class Hosting:
    """How a framework hosts the user's files, or why it cannot."""

    placements: tuple[Placement, ...] = ()
    generated: tuple[Generated, ...] = ()
    refused: str = ""
    """Not empty: this framework cannot run these files as given, and this sentence says why
    (a pre/post pair where the framework calls one hook with a verb, say)."""
    calls: str = ""
    """How the framework calls them, in one line (``sh <pre>`` ...): the compare table's
    column."""

    @property
    def hosted(self) -> bool:
        return not self.refused


class CycleOutcome(Protocol):
    """An engine's account of one cycle."""

    status: int
    """0: the framework reports an application-consistent snapshot; 1: a snapshot it does not
    call application-consistent; otherwise no snapshot (Azure: its error code; the others: 2)."""

    @property
    def snapshot_taken(self) -> bool: ...

    def to_dict(self) -> CycleRecordJson: ...


class Engine(Protocol):
    """One framework's engine."""

    name: str
    """As in ``--framework``: ``azure``, ``gcp``, ``vmware``, ``qemu-ga``, ``aws-dlm``."""
    title: str
    """What the report calls it (``VMware Tools (open-vm-tools vmbackup)``)."""

    def host(self, given: Given) -> Hosting:
        """Where each of the user's files goes inside the VM, and what the harness must write
        besides (a config the framework needs to run any script), or why it cannot host them."""
        ...

    def precheck(self, root: Path) -> list[Finding]:
        """What the framework itself would refuse or skip on the machine whose ``/`` is
        ``root`` before it runs anything (a missing script, no exec bit, disabled in its
        config), each with the framework's own words and the fix. Empty: it would run them."""
        ...

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
    ) -> CycleOutcome:
        """Run one complete cycle as the framework does, on the machine whose ``/`` is ``root``.

        ``spawn`` None starts scripts as the framework's agent does (its environment, working
        directory and standard streams, with ``env`` added); tests inject their own.
        """
        ...
