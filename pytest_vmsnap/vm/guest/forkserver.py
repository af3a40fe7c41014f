"""The fork server's server half, run inside a stand-in VM (the protocol, and the controller's
side, are in :mod:`pytest_vmsnap.vm.forkserver`).

``python -m pytest_vmsnap.vm.guest.forkserver MODULE...`` imports the modules once, then forks
a child per call. The server never opens a connection or starts a thread itself, so forking
it is safe.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import selectors
import signal
import sys
import traceback
from typing import Any


def _child(request: dict[str, Any], out: int) -> None:
    """Run one call in the forked child, write its JSON answer to ``out``, and exit."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(2, 1)  # stray prints must not reach the protocol pipe
        module, _, name = request["call"].partition(":")
        value = getattr(importlib.import_module(module), name)(*request.get("args", []))
        data = json.dumps({"ok": value})
    except BaseException as err:
        traceback.print_exc()
        data = json.dumps({"error": f"{type(err).__name__}: {' '.join(str(err).split())[:2000]}"})
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    _write_all(out, data.encode())
    os._exit(0)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _ended(call_id: int, data: bytes, status: int) -> dict[str, Any]:
    """The answer for a child that closed its pipe with ``data`` and exit ``status``."""
    with contextlib.suppress(ValueError):
        return {"id": call_id, **json.loads(data)}
    if os.WIFSIGNALED(status):
        why = f"killed by signal {os.WTERMSIG(status)}"
    else:
        why = f"exit {os.waitstatus_to_exitcode(status)}"
    return {"id": call_id, "error": f"its process ended without an answer ({why})"}


def serve(inp: int = 0, out: int = 1) -> None:
    """Answer calls read from ``inp`` on ``out`` until ``inp`` ends."""
    sel = selectors.DefaultSelector()
    sel.register(inp, selectors.EVENT_READ, None)
    children: dict[int, int] = {}  # call id -> pid
    pending = b""

    def reply(message: dict[str, Any]) -> None:
        _write_all(out, (json.dumps(message) + "\n").encode())

    def start(request: dict[str, Any]) -> None:
        call_id = int(request["id"])
        if "signal" in request:
            pid = children.get(call_id)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(pid, signal.Signals(int(request["signal"])))
            return
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            _child(request, w)
        os.close(w)
        children[call_id] = pid
        sel.register(r, selectors.EVENT_READ, (call_id, pid, bytearray()))
        reply({"id": call_id, "pid": pid})

    while True:
        for key, _ in sel.select():
            if key.data is None:
                chunk = os.read(inp, 65536)
                if not chunk:
                    for pid in children.values():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                    return
                pending += chunk
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    with contextlib.suppress(ValueError):
                        start(json.loads(line))
                continue
            call_id, pid, data = key.data
            chunk = os.read(key.fd, 65536)
            if chunk:
                data += chunk
                continue
            sel.unregister(key.fd)
            os.close(key.fd)
            _, status = os.waitpid(pid, 0)
            del children[call_id]
            reply(_ended(call_id, bytes(data), status))


def main(argv: list[str] | None = None) -> int:
    modules = sys.argv[1:] if argv is None else argv
    for module in modules:
        # Best effort: a call that needs a module that cannot be imported says so itself.
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    serve()
    # Straight out: tearing down the preloaded modules (psycopg, redis-py) is time the VM's
    # stop would wait for, with nothing to flush or close.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
