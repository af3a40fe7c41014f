"""A client of a stand-in VM's application, used from the host (``vmsnap_vm(...).client()``).

The application's sockets, loopback and paths are the VM's, so the connection lives inside the
VM, in a helper process ``python -m pytest_vmsnap.apps.remote APP TIMEOUT`` that holds one
:class:`~pytest_vmsnap.apps.base.Client` (as the application user, like the workload's) and
speaks JSON lines over its stdin/stdout: request ``{"op": "append", "args": [seq, writer]}``,
answer ``{"ok": value}`` or ``{"error": "one line"}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import time
from typing import Any

from ..vm.helpers import end_process
from .base import Client, State, VmLike

EXTRA_WAIT_S = 30.0
"""How much longer than the client's own timeout an answer may take."""


class ClientError(Exception):
    """The application refused an operation, or the helper in the VM ended (one line)."""


class RemoteClient(Client):
    """A :class:`Client` whose connection is made inside the VM by a helper process."""

    def __init__(self, vm: VmLike, app: str, timeout_s: float = 10.0) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self._buf = b""
        self._proc: subprocess.Popen[bytes] | None = vm.popen(
            [sys.executable, "-m", __name__, app, str(timeout_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            self._call("connect")
        except BaseException:
            self._end()
            raise

    def append(self, seq: int, writer: int) -> None:
        self._call("append", seq, writer)

    def transfer(self, src: int, dst: int, amount: int) -> None:
        self._call("transfer", src, dst, amount)

    def probe_write(self, timeout_s: float) -> tuple[str, str]:
        result, detail = self._call("probe_write", timeout_s, wait_s=timeout_s + EXTRA_WAIT_S)
        return result, detail

    def read_state(self) -> State:
        d = self._call("read_state")
        return State(set(d["seqs"]), d["bank_total"], d["bank_rows"])

    def close(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ClientError, OSError):
            self._call("close")
        self._end()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, op: str, *args: Any, wait_s: float | None = None) -> Any:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise ClientError(f"{self.app} client: already closed")
        try:
            proc.stdin.write((json.dumps({"op": op, "args": list(args)}) + "\n").encode())
            proc.stdin.flush()
        except OSError:
            raise ClientError(self._gone(op)) from None
        line = self._readline(self.timeout_s + EXTRA_WAIT_S if wait_s is None else wait_s)
        if not line:
            raise ClientError(self._gone(op))
        msg = json.loads(line)
        if "error" in msg:
            raise ClientError(f"{self.app} client: {op}: {msg['error']}")
        return msg.get("ok")

    def _readline(self, wait_s: float) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + wait_s
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    return b""
                chunk = os.read(fd, 65536)
                if not chunk:
                    return b""
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def _gone(self, op: str) -> str:
        """Why the helper did not answer, in one line."""
        proc = self._proc
        self._end()
        err = ""
        if proc is not None and proc.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                err = proc.stderr.read().decode(errors="replace").strip()
        tail = err.splitlines()[-1] if err else "no answer"
        return f"{self.app} client: {op}: the helper in the VM gave up: {tail}"

    def _end(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        end_process(proc, 5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def main(argv: list[str]) -> int:
    """The helper inside the VM: one connection, one JSON answer per request line."""
    from . import get_app

    app, timeout_s = argv[0], float(argv[1])
    client: Client | None = None
    for line in sys.stdin:
        request = json.loads(line)
        op, args = request["op"], request.get("args", [])
        value: Any = None
        try:
            if op == "connect":
                client = get_app(app).client(timeout_s)
            elif client is None:
                raise ClientError("not connected")
            elif op == "append":
                client.append(*args)
            elif op == "transfer":
                client.transfer(*args)
            elif op == "probe_write":
                value = list(client.probe_write(*args))
            elif op == "read_state":
                st = client.read_state()
                value = {"seqs": sorted(st.seqs), "bank_total": st.bank_total}
                value["bank_rows"] = st.bank_rows
            elif op == "close":
                client.close()
                client = None
            else:
                raise ClientError(f"unknown operation {op!r}")
            answer = {"ok": value}
        except Exception as err:
            answer = {"error": f"{type(err).__name__}: {' '.join(str(err).split())}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
        if op == "close":
            break
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
