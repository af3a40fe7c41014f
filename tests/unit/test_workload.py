"""The workload's writers: one process per role, one history, and no process left behind.

A fake store stands in for the databases (the real ones are in tests/integration): its client
appends to a list and sleeps a moment, so only the workload's own mechanics are under test:
the privileged role forked into a process of its own, both roles' lines in one history, the
child stopped with the parent on SIGTERM and killed with it on SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pytest_vmsnap.evidence.workload import parse_history

WORKLOAD = """
import sys, time
import pytest_vmsnap.evidence.workload as w

class Fake:
    def __init__(self, role):
        self.role = role
    def append(self, seq, writer):
        time.sleep(0.002)
    def transfer(self, src, dst, amount):
        time.sleep(0.002)
    def close(self):
        pass

class FakeApp:
    def client(self, timeout_s, role="app"):
        return Fake(role)

w.get_app = lambda name: FakeApp()
w.run("fake", sys.argv[1], sys.argv[2], 0.001, 5.0)
"""


def _start(tmp_path: Path, writers: str) -> tuple[subprocess.Popen[bytes], Path, str]:
    history = tmp_path / "history.jsonl"
    token = f"vmsnap-test-{uuid.uuid4().hex}"  # names our processes in /proc
    proc = subprocess.Popen([sys.executable, "-c", WORKLOAD, str(history), writers, token])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        roles = {a.role for a in _acks(history) if a.seq}
        if roles >= ({"app", "privileged"} if writers == "both" else {writers}):
            return proc, history, token
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise AssertionError(
        f"no writes of every role: {history.read_text() if history.exists() else ''}"
    )


def _acks(history: Path) -> list:
    return parse_history(history.read_text()) if history.exists() else []


def _ours(token: str) -> list[int]:
    """PIDs whose command line holds ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _gone(token: str, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while _ours(token) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _ours(token)


def test_both_roles_write_from_two_processes_into_one_history(tmp_path: Path) -> None:
    proc, history, token = _start(tmp_path, "both")
    assert len(_ours(token)) == 2  # the app role's process and the privileged one's
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert _ours(token) == []  # the workload returned only once its child had ended
    lines = [json.loads(line) for line in history.read_text().splitlines()]  # none torn
    acks = parse_history(history.read_text())
    ops = [(a.op, a.role) for a in acks if a.op in ("start", "stop")]
    assert sorted(ops) == sorted(
        [("start", "app"), ("start", "privileged"), ("stop", "app"), ("stop", "privileged")]
    )
    writers = {(a.role, a.seq // 10_000_000) for a in acks if a.op == "append" and a.seq}
    assert writers == {("app", 1), ("privileged", 3)}  # disjoint sequence ranges
    assert all("error" not in line for line in lines)


@pytest.mark.parametrize("writers", ["app", "privileged"])
def test_one_role_writes_from_one_process(tmp_path: Path, writers: str) -> None:
    proc, history, token = _start(tmp_path, writers)
    assert len(_ours(token)) == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert {a.role for a in _acks(history)} == {writers}


def test_the_privileged_process_dies_with_the_workload(tmp_path: Path) -> None:
    """SIGKILL (the harness's last resort) leaves no writer behind: PR_SET_PDEATHSIG."""
    proc, _, token = _start(tmp_path, "both")
    assert len(_ours(token)) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert _gone(token), f"left running: {_ours(token)}"
