"""Runs the framework cycle inside a stand-in VM, like the extension's daemon runs inside a VM.

Started by :class:`pytest_vmsnap.cycle.driver.Agent` as ``python -m pytest_vmsnap.cycle.agent``
inside the VM, ahead of its cycle, which begins when the controller sends the cycle's options
(``{"start": {...}}``). It freezes through the guard
process (also inside the VM) and asks the controller on the host, over its stdin/stdout, to take
the snapshot. At each phase edge it reports an event and waits for the controller's answer, so
the controller can probe the application at exactly the right moment (``pre_end``).

Messages are JSON lines. Agent to controller: ``{"event": name, "t": monotonic}``,
``{"snapshot": true}``, ``{"result": cycle}``. Controller to agent: ``{"start": options}``,
``{"ack": true}``, ``{"snapshot_result": {...}}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from ..framework import profiles
from ..framework.config import VMBACKUP_CONF, parse_vmbackup_conf
from ..framework.cycle import run_cycle
from ..framework.interfaces import Freezer, NoOpFreezer, SnapshotResult
from ..framework.runner import FAITHFUL, PROMPT


class Channel:
    """JSON lines over a pair of pipes."""

    def __init__(self, inp: IO[bytes], out: IO[str]) -> None:
        self.inp, self.out = inp, out

    def send(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    def receive(self) -> dict[str, Any]:
        line = self.inp.readline()
        if not line:
            raise EOFError("the controller closed the channel")
        return json.loads(line)

    def event(self, name: str) -> None:
        """Report a phase edge and wait until the controller has done what it does there."""
        self.send({"event": name, "t": time.monotonic()})
        self.receive()


class RemoteSnapshotter:
    """Snapshotter whose snapshot is taken by the controller, on the host side."""

    real = True

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def snapshot(self) -> SnapshotResult:
        self.channel.send({"snapshot": True})
        reply = self.channel.receive().get("snapshot_result", {})
        return SnapshotResult(
            code=int(reply.get("code", 2)),
            taken=bool(reply.get("taken")),
            backend=str(reply.get("backend", "?")),
            duration_s=float(reply.get("duration_s", 0.0)),
            message=str(reply.get("message", "")),
            detail=dict(reply.get("detail", {})),
        )


def make_freezer(opts: dict[str, Any]) -> Freezer:
    """The guard-process freezer for the VM's disks, tuned by the VM's vmbackup.conf."""
    if not opts.get("mounts"):
        return NoOpFreezer()
    from ..vm.freeze import GuardFreezer

    conf = Path(VMBACKUP_CONF)
    tuning = parse_vmbackup_conf(conf.read_text(errors="replace")) if conf.is_file() else None
    timeout_s = opts.get("timeout_s") or (tuning.freeze_timeout_s if tuning else 60)
    wait_s = opts.get("wait_s") or (tuning.safefreeze_wait_s if tuning else 66)
    skip = tuple(opts.get("skip", ())) + (tuning.mounts_to_skip if tuning else ())
    return GuardFreezer(
        [tuple(m) for m in opts["mounts"]],
        timeout_s=timeout_s,
        wait_s=wait_s,
        skip=skip,
        freeze_delay_s=opts.get("delay_s", 0.0),
    )


def main(argv: list[str] | None = None) -> int:
    # Keep the channel on a private copy of stdout; stray prints go to stderr instead.
    channel = Channel(sys.stdin.buffer, os.fdopen(os.dup(1), "w"))
    os.dup2(2, 1)
    try:
        opts = channel.receive()["start"]  # started ahead: the cycle begins on this message
    except (EOFError, KeyError, ValueError):
        return 0  # the controller went on without a cycle
    freezer = make_freezer(opts.get("freeze", {}))
    try:
        result = run_cycle(
            opts.get("root", "/"),
            freezer=freezer,
            snapshotter=RemoteSnapshotter(channel),
            profile=profiles.get(opts.get("profile", "extension")),
            pacing=FAITHFUL if opts.get("pacing", "faithful") == "faithful" else PROMPT,
            observer=channel.event,
        )
    finally:
        close = getattr(freezer, "close", None)
        if close is not None:
            close()  # never leave a frozen file system behind, whatever happened
    channel.send({"result": result.to_dict()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
