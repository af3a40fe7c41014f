"""Writers with a recorded history: every acknowledged write, with its time and its role.

Runs inside the stand-in VM as its own process, like the application would (forked from the
VM's fork server, or ``python -m pytest_vmsnap.evidence.workload --app APP --history FILE``),
named ``vmsnap-workload`` so lock views can tell it from a quiesce holder. Per role (``writers``:
the application user, a privileged user, or both; see :data:`pytest_vmsnap.apps.base.ROLES`)
two writers run until a SIGTERM: one appends numbered rows to the log table, one moves money
between bank accounts in multi-row transactions. The first role writes from this process, the
privileged one (with ``both``) from a child process of its own, as an admin tool or a cron job
would, and for SQLite a second process on the same file; the child ends with this process.

Each acknowledged write becomes one JSON line in the history file (in the VM's memory, its
``/run``, never on its disks): ``{"op", "seq", "t0", "t1", "role"}`` with monotonic times, so
the oracle can tell which writes were acknowledged before the pre-script returned. Failed writes
(timeouts, refusals) are recorded too, with ``"error"``. Both processes append to the one file
(``O_APPEND``, one ``write`` per line), so lines never interleave.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import random
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..apps import get_app
from ..apps.base import APP_ROLE, BANK_ACCOUNTS, ROLES, WORKLOAD_PROCESS_NAME, Role, roles

KINDS = ("append", "transfer")
PR_SET_PDEATHSIG = 1


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


def writer_id(role: Role, kind: str) -> int:
    """The writer number of one role's writer of ``kind``: 1, 2 for the application user,
    3, 4 for the privileged one, whichever roles run (their sequence ranges never meet)."""
    return ROLES.index(role) * len(KINDS) + KINDS.index(kind) + 1


def _writer(
    app: str,
    kind: str,
    role: Role,
    history: History,
    stop: threading.Event,
    pause_s: float,
    op_timeout_s: float,
) -> None:
    client = None
    writer = writer_id(role, kind)
    seq = writer * 10_000_000  # disjoint sequence ranges per writer
    rng = random.Random(writer)
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            if client is None:
                client = get_app(app).client(op_timeout_s, role)
            t0 = time.monotonic()
            if kind == "append":
                seq += 1
                client.append(seq, writer)
                history.record(op="append", seq=seq, t0=t0, t1=time.monotonic(), role=role)
            else:
                src, dst = rng.sample(range(1, BANK_ACCOUNTS + 1), 2)
                client.transfer(src, dst, rng.randint(1, 100))
                history.record(op="transfer", t0=t0, t1=time.monotonic(), role=role)
        except Exception as err:  # a failed write is data, not a crash
            history.record(
                op=kind,
                seq=seq if kind == "append" else None,
                t0=t0,
                t1=time.monotonic(),
                role=role,
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
    writers: str = "both",
    pause_s: float = 0.002,
    op_timeout_s: float = 30.0,
) -> None:
    """Write as ``writers`` (``app``, ``privileged`` or ``both``) until a SIGTERM (run inside
    the VM, as its own process, in its main thread); returns once every writer has stopped."""
    _name_process(WORKLOAD_PROCESS_NAME)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    history_path = Path(history_path)
    history_path.parent.mkdir(parents=True, exist_ok=True)
    first, *others = roles(writers)
    # Forked before any thread starts (forking a process with threads is unsafe).
    children = [_fork_role(app, history_path, role, stop, pause_s, op_timeout_s) for role in others]
    _write_as(app, history_path, first, stop, pause_s, op_timeout_s, children)
    _reap(children, op_timeout_s + 10)


def _write_as(
    app: str,
    history_path: Path,
    role: Role,
    stop: threading.Event,
    pause_s: float,
    op_timeout_s: float,
    children: list[int],
) -> None:
    """One role's writers, until ``stop``; then ``children`` are asked to stop as well."""
    with history_path.open("a") as out:
        history = History(out)
        history.record(op="start", t0=time.monotonic(), t1=time.monotonic(), role=role)
        threads = [
            threading.Thread(
                target=_writer,
                args=(app, kind, role, history, stop, pause_s, op_timeout_s),
                name=f"vmsnap-{role}-{kind}",
                daemon=True,
            )
            for kind in KINDS
        ]
        for t in threads:
            t.start()
        while not stop.wait(0.05):
            pass
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for t in threads:
            t.join(timeout=op_timeout_s + 5)
        history.record(op="stop", t0=time.monotonic(), t1=time.monotonic(), role=role)


def _fork_role(
    app: str,
    history_path: Path,
    role: Role,
    stop: threading.Event,
    pause_s: float,
    op_timeout_s: float,
) -> int:
    """A child process writing as ``role``; it ends with this process (PR_SET_PDEATHSIG) and
    on a SIGTERM (the inherited handler sets its copy of ``stop``)."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # never return into the caller's stack: this is a copy of it
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() == parent:  # else the parent died before the prctl
            _write_as(app, history_path, role, stop, pause_s, op_timeout_s, [])
            code = 0
    except BaseException:
        traceback.print_exc()  # to the VM's stderr, as a call's own failure would
    finally:
        os._exit(code)


def _reap(children: list[int], timeout_s: float) -> None:
    """Wait for the children (their last writes are part of the record); kill one that has
    not ended within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    for pid in children:
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.02)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


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
    role: str = APP_ROLE
    """Who wrote it (``app`` or ``privileged``); lines from before roles were recorded: app."""


def parse_history(text: str) -> list[Ack]:
    """The acks of a history written by :func:`run` (a torn or foreign line is ignored)."""
    acks = []
    for line in text.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict) and {"op", "t0", "t1"} <= d.keys():
            role = str(d.get("role") or APP_ROLE)
            acks.append(Ack(d["op"], d.get("seq"), d["t0"], d["t1"], d.get("error"), role))
    return acks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_vmsnap.evidence.workload")
    parser.add_argument("--app", required=True)
    parser.add_argument("--history", type=Path, required=True)
    parser.add_argument("--writers", choices=("app", "privileged", "both"), default="both")
    parser.add_argument("--pause", type=float, default=0.002)
    parser.add_argument("--op-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    run(args.app, args.history, args.writers, args.pause, args.op_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
