"""Writers with a recorded history: every acknowledged write, with its time.

Runs inside the stand-in VM as its own process, like the application would (forked from the
VM's fork server, or ``python -m pytest_vmsnap.evidence.workload --app APP --history FILE``),
named ``vmsnap-workload`` so lock views can tell it from a quiesce holder. Two writers run until
a SIGTERM: one appends numbered rows to the log table, one moves money between bank accounts
in multi-row transactions. Each acknowledged write becomes one JSON line in the history file
(in the VM's memory, its ``/run``, never on its disks): ``{"op", "seq", "t0", "t1"}`` with
monotonic times, so the oracle can tell which writes were acknowledged before the pre-script
returned. Failed writes (timeouts, refusals) are recorded too, with ``"error"``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..apps import get_app
from ..apps.base import BANK_ACCOUNTS, WORKLOAD_PROCESS_NAME


class History:
    """Thread-safe JSON-lines writer."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.lock = threading.Lock()

    def record(self, **fields: object) -> None:
        line = json.dumps(fields)
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()


def _writer(
    app: str,
    kind: str,
    writer: int,
    history: History,
    stop: threading.Event,
    pause_s: float,
    op_timeout_s: float,
) -> None:
    client = None
    seq = writer * 10_000_000  # disjoint sequence ranges per writer
    rng = random.Random(writer)
    while not stop.is_set():
        try:
            if client is None:
                client = get_app(app).client(op_timeout_s)
            t0 = time.monotonic()
            if kind == "append":
                seq += 1
                client.append(seq, writer)
                history.record(op="append", seq=seq, t0=t0, t1=time.monotonic())
            else:
                src, dst = rng.sample(range(1, BANK_ACCOUNTS + 1), 2)
                client.transfer(src, dst, rng.randint(1, 100))
                history.record(op="transfer", t0=t0, t1=time.monotonic())
        except Exception as err:  # a failed write is data, not a crash
            history.record(
                op=kind,
                seq=seq if kind == "append" else None,
                t0=t0,
                t1=time.monotonic(),
                error=" ".join(str(err).split())[:200],
            )
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
                client = None
            stop.wait(0.05)
        if pause_s:
            stop.wait(pause_s)
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()


def run(
    app: str,
    history_path: Path | str,
    pause_s: float = 0.002,
    op_timeout_s: float = 30.0,
) -> None:
    """Write until a SIGTERM (run inside the VM, as its own process, in its main thread)."""
    _name_process(WORKLOAD_PROCESS_NAME)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    history_path = Path(history_path)
    history_path.parent.mkdir(parents=True, exist_ok=True)
    with history_path.open("a") as out:
        history = History(out)
        history.record(op="start", t0=time.monotonic(), t1=time.monotonic())
        threads = [
            threading.Thread(
                target=_writer,
                args=(app, kind, i + 1, history, stop, pause_s, op_timeout_s),
                daemon=True,
            )
            for i, kind in enumerate(("append", "transfer"))
        ]
        for t in threads:
            t.start()
        while not stop.wait(0.05):
            pass
        for t in threads:
            t.join(timeout=op_timeout_s + 5)
        history.record(op="stop", t0=time.monotonic(), t1=time.monotonic())


def _name_process(name: str) -> None:
    """Set this process's name (``comm``), by which the probes tell its locks from others'."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(name[:15])


@dataclass
class Ack:
    """One line of the history."""

    op: str
    seq: int | None
    t0: float
    t1: float
    error: str | None = None


def parse_history(text: str) -> list[Ack]:
    """The acks of a history written by :func:`run` (a torn or foreign line is ignored)."""
    acks = []
    for line in text.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict) and {"op", "t0", "t1"} <= d.keys():
            acks.append(Ack(d["op"], d.get("seq"), d["t0"], d["t1"], d.get("error")))
    return acks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_vmsnap.evidence.workload")
    parser.add_argument("--app", required=True)
    parser.add_argument("--history", type=Path, required=True)
    parser.add_argument("--pause", type=float, default=0.002)
    parser.add_argument("--op-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    run(args.app, args.history, args.pause, args.op_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
