"""Python calls inside a stand-in VM without an interpreter start each: a fork server.

A cycle runs small Python steps inside its VMs many times (the workload, the quiesce and
liveness probes, the restored store's start and checks). Started fresh, each pays an
interpreter start and its imports: about 50 ms, plus 0.2 s for psycopg or redis-py, on the
critical path of every cycle (and a ``docker exec`` more in a container VM). The fork server is
one process per VM, ``python -m pytest_vmsnap.vm.guest.forkserver MODULE...``, that imports those
modules once and forks a child per call. The child is a new process of the VM (its own PID,
its own fresh connections), as a freshly started one would be, only warm.

Protocol, JSON lines over the server's stdin and stdout. Controller to server:
``{"id": N, "call": "module:function", "args": [...]}``, or ``{"id": N, "kill": true}`` (SIGKILL
that call's child, by its PID). Server to controller: ``{"id": N, "pid": P}`` once the child is
forked, then ``{"id": N, "ok": value}`` or ``{"id": N, "error": "one line"}`` when it ends. End of
input ends the server; it kills its remaining children by PID first. The server never opens a
connection or starts a thread itself, so forking it is safe.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from typing import IO, Any, Protocol

from .errors import VmError
from .helpers import end_process

SERVER_MODULE = "pytest_vmsnap.vm.guest.forkserver"
"""The server half, run inside the VM (:mod:`pytest_vmsnap.vm.guest.forkserver`)."""


class CallError(VmError):
    """The function raised inside the VM, or its process ended without an answer."""


class _Popen(Protocol):
    """What the controller needs of a VM: start a process inside it."""

    name: str

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]: ...


class Call:
    """One call running in a child of the fork server (see :meth:`ForkServer.submit`)."""

    def __init__(self, server: ForkServer, call_id: int, fn: str) -> None:
        self.server = server
        self.id = call_id
        self.fn = fn
        self.pid: int | None = None
        """The child's PID as the VM sees it, once forked."""
        self._done = threading.Event()
        self._reply: dict[str, Any] = {}

    def done(self) -> bool:
        """Whether the call has ended (answered, failed, or the server is gone)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the call ends; False if it is still running after ``timeout``."""
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> Any:
        """The function's return value; :class:`CallError` with its one-line error if it
        raised, or if it did not end within ``timeout`` (its child is then killed)."""
        if not self._done.wait(timeout):
            self.kill()
            raise CallError(f"VM {self.server.vm_name}: {self.fn} did not finish in {timeout:g} s")
        if "error" in self._reply:
            raise CallError(f"VM {self.server.vm_name}: {self.fn}: {self._reply['error']}")
        return self._reply.get("ok")

    def kill(self) -> None:
        """SIGKILL the call's child (by its PID, inside the VM); no-op once it ended."""
        self.signal(signal.SIGKILL)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the call's child (by its PID, inside the VM); no-op once it
        ended."""
        if not self._done.is_set():
            self.server._send({"id": self.id, "signal": int(sig)})

    def _finish(self, reply: dict[str, Any]) -> None:
        self._reply = reply
        self._done.set()


class ForkServer:
    """The controller's handle on a VM's fork server: :meth:`submit`, :meth:`call`, :meth:`close`.

    ``preload`` modules are imported by the server before its first fork (one that fails to
    import is left to the calls that need it). Thread-safe: calls may run side by side (the
    workload keeps running while a probe is made).
    """

    def __init__(
        self, vm: _Popen, preload: Sequence[str] = (), *, python: str = sys.executable
    ) -> None:
        self.vm_name = vm.name
        self._err: IO[bytes] = tempfile.TemporaryFile(prefix="vmsnap-forkserver-")  # noqa: SIM115 - lives with the server
        # Its own session: a Ctrl-C on the controller's terminal must not reach the VM's
        # processes; the controller ends them in order (closing stdin ends the server).
        self._proc = vm.popen(
            [python, "-m", SERVER_MODULE, *preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            start_new_session=True,
        )
        self._lock = threading.Lock()  # the calls table
        self._write_lock = threading.Lock()  # the request pipe (never held with the other)
        self._ids = itertools.count(1)
        self._calls: dict[int, Call] = {}
        self._gone = ""
        self._reader = threading.Thread(
            target=self._read, name=f"vmsnap-forkserver-{vm.name}", daemon=True
        )
        self._reader.start()

    def submit(self, fn: str, *args: Any) -> Call:
        """Start ``module:function(*args)`` in a new child; the arguments and the return
        value travel as JSON."""
        with self._lock:
            call = Call(self, next(self._ids), fn)
            self._calls[call.id] = call
            if self._gone:
                del self._calls[call.id]
                call._finish({"error": self._gone})
                return call
        self._send({"id": call.id, "call": fn, "args": list(args)})
        return call

    def call(self, fn: str, *args: Any, timeout: float | None = 120) -> Any:
        """Run ``module:function(*args)`` in a new child and return its value."""
        return self.submit(fn, *args).result(timeout)

    def close(self, timeout_s: float = 10.0) -> None:
        """End the server: its running children are killed by PID, then it exits."""
        end_process(self._proc, timeout_s)
        self._reader.join(timeout_s)
        if self._proc.stdout is not None:
            with contextlib.suppress(OSError):
                self._proc.stdout.close()
        self._err.close()

    def _send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        with self._write_lock:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
            except (OSError, ValueError):
                pass  # the reader sees the end and fails every pending call

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                reply = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                call = self._calls.get(reply.get("id"))
                if call is not None and ("ok" in reply or "error" in reply):
                    del self._calls[call.id]
            if call is None:
                continue
            if "pid" in reply:
                call.pid = reply["pid"]
            elif "ok" in reply or "error" in reply:
                call._finish(reply)
        with self._lock:
            self._gone = f"the fork server in VM {self.vm_name} ended: {self._stderr_tail()}"
            pending, self._calls = list(self._calls.values()), {}
        for call in pending:
            call._finish({"error": self._gone})

    def _stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._err.seek(0)
            lines = self._err.read().decode(errors="replace").strip().splitlines()
            if lines:
                return lines[-1]
        code = self._proc.poll()
        return "it closed its output" if code is None else f"exit {code}"
