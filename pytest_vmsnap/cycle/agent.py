"""Runs the framework cycle inside a stand-in VM, like the extension's daemon runs inside a VM.

Started by :class:`pytest_vmsnap.cycle.driver.Agent` as ``python -m pytest_vmsnap.cycle.agent``
inside the VM, ahead of its cycle, which begins when the controller sends the cycle's
:class:`~.protocol.AgentOptions` (``{"start": {...}}``). It freezes through the guard
process (also inside the VM) and asks the controller on the host, over its stdin/stdout, to take
the snapshot. At each phase edge it reports an event and waits for the controller's answer, so
the controller can probe the application at exactly the right moment (``pre_end``).

Messages are JSON lines, their records in :mod:`.protocol`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from ..framework import engines
from ..framework.azure.config import VMBACKUP_CONF, parse_vmbackup_conf
from ..framework.interfaces import Freezer, NoOpFreezer, SnapshotResult
from ..framework.scripts import FAITHFUL, PROMPT
from .protocol import AgentOptions, Event, FreezeOptions, encode, snapshot_from_dict


class Channel:
    """JSON lines over a pair of pipes."""

    def __init__(self, inp: IO[bytes], out: IO[bytes]) -> None:
        self.inp, self.out = inp, out

    def send(self, kind: str, body: Any) -> None:
        self.out.write(encode(kind, body))
        self.out.flush()

    def receive(self) -> dict[str, Any]:
        line = self.inp.readline()
        if not line:
            raise EOFError("the controller closed the channel")
        return json.loads(line)

    def event(self, name: str) -> None:
        """Report a phase edge and wait until the controller has done what it does there."""
        self.out.write(Event(name, time.monotonic()).encode())
        self.out.flush()
        self.receive()


class RemoteSnapshotter:
    """Snapshotter whose snapshot is taken by the controller, on the host side."""

    real = True

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def snapshot(self) -> SnapshotResult:
        self.channel.send("snapshot", True)
        return snapshot_from_dict(self.channel.receive().get("snapshot_result", {}))


def make_freezer(opts: FreezeOptions, framework: str = "azure") -> Freezer:
    """The guard-process freezer for the VM's disks; Azure's is tuned by the VM's
    vmbackup.conf. The others' freezes get the guard's defaults: its self-thaw after 60 s is
    the harness's safety, which VMware's and qemu-ga's own freezes do not have (a cycle that
    stays frozen longer is reported as thawed early)."""
    if not opts.mounts:
        return NoOpFreezer()
    from ..vm.freeze import GuardFreezer

    conf = Path(VMBACKUP_CONF)
    tuning = (
        parse_vmbackup_conf(conf.read_text(errors="replace"))
        if framework == "azure" and conf.is_file()
        else None
    )
    return GuardFreezer(
        list(opts.mounts),
        timeout_s=tuning.freeze_timeout_s if tuning else 60,
        wait_s=tuning.safefreeze_wait_s if tuning else 66,
        skip=tuning.mounts_to_skip if tuning else (),
    )


def main(argv: list[str] | None = None) -> int:
    # Keep the channel on a private copy of stdout; stray prints go to stderr instead.
    channel = Channel(sys.stdin.buffer, os.fdopen(os.dup(1), "wb"))
    os.dup2(2, 1)
    try:
        # Started ahead: the cycle begins on this message.
        opts = AgentOptions.from_dict(channel.receive()["start"])
    except (EOFError, KeyError, ValueError):
        return 0  # the controller went on without a cycle
    freezer = make_freezer(opts.freeze, opts.framework)
    try:
        engine = engines.get(
            opts.framework, profile=opts.profile, options=dict(opts.framework_options)
        )
        result = engine.run_cycle(
            "/",
            freezer=freezer,
            snapshotter=RemoteSnapshotter(channel),
            pacing=FAITHFUL if opts.pacing == "faithful" else PROMPT,
            observer=channel.event,
            env=dict(opts.env),
        )
    finally:
        close = getattr(freezer, "close", None)
        if close is not None:
            close()  # never leave a frozen file system behind, whatever happened
    channel.send("result", result.to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
