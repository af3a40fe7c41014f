"""The fork server: calls answered by forked children, errors as one line, kills by PID, and
every child gone when the server ends. Runs on this machine (a "VM" whose popen is local)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap.vm.forkserver import CallError, ForkServer
from pytest_vmsnap.vm.helpers import PACKAGE_ROOT


class LocalVM:
    """A stand-in whose processes run right here."""

    name = "local"

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT)
        return subprocess.Popen(argv, env=env, **kwargs)


def gone(pid: int, within_s: float = 5.0) -> bool:
    """Whether ``pid`` has ended (a zombie counts: it no longer runs)."""
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def server() -> Any:
    fs = ForkServer(LocalVM(), ["json"])
    yield fs
    fs.close()


def test_call_returns_the_value_from_a_new_process(server: ForkServer) -> None:
    assert server.call("os:getpid") != os.getpid()
    assert server.call("json:loads", '{"a": [1, 2]}') == {"a": [1, 2]}
    first, second = server.call("os:getpid"), server.call("os:getpid")
    assert first != second  # a fresh child per call


def test_a_raised_exception_is_one_line_with_its_type(server: ForkServer) -> None:
    with pytest.raises(CallError, match=r"json:loads: JSONDecodeError: Expecting value"):
        server.call("json:loads", "not json")
    with pytest.raises(CallError, match="ModuleNotFoundError"):
        server.call("no_such_module_here:f")
    # the server is still fine afterwards
    assert server.call("json:dumps", [1]) == "[1]"


def test_prints_in_the_child_do_not_break_the_protocol(server: ForkServer) -> None:
    assert server.call("builtins:print", "noise on stdout") is None
    assert server.call("json:dumps", "after") == '"after"'


def test_calls_run_side_by_side_and_a_kill_ends_only_its_own(server: ForkServer) -> None:
    slow = server.submit("time:sleep", 60)
    assert server.call("json:dumps", 1, timeout=10) == "1"  # not queued behind the sleep
    for _ in range(200):
        if slow.pid is not None:
            break
        time.sleep(0.01)
    assert slow.pid is not None and not slow.done()
    slow.kill()
    assert slow.wait(10)
    with pytest.raises(CallError, match="killed by signal 9"):
        slow.result(0)
    assert gone(slow.pid)


def test_a_timeout_kills_the_child(server: ForkServer) -> None:
    call = server.submit("time:sleep", 60)
    with pytest.raises(CallError, match=r"did not finish in 0\.3 s"):
        call.result(0.3)
    assert call.wait(10) and call.pid is not None and gone(call.pid)


def test_close_kills_running_children_and_ends_the_server(server: ForkServer) -> None:
    call = server.submit("time:sleep", 60)
    for _ in range(200):
        if call.pid is not None:
            break
        time.sleep(0.01)
    assert call.pid is not None
    began = time.monotonic()
    server.close()
    assert time.monotonic() - began < 5
    assert gone(call.pid)
    with pytest.raises(CallError, match="ended"):
        call.result(1)
    with pytest.raises(CallError, match="ended"):
        server.call("os:getpid", timeout=1)


def test_a_dead_server_fails_pending_and_later_calls_in_one_line() -> None:
    fs = ForkServer(LocalVM(), ["json"])
    try:
        pending = fs.submit("time:sleep", 60)
        for _ in range(200):
            if pending.pid is not None:
                break
            time.sleep(0.01)
        fs._proc.kill()  # the server itself dies (its child is orphaned, not answered)
        with pytest.raises(CallError, match="the fork server in VM local ended"):
            pending.result(10)
        with pytest.raises(CallError, match="ended"):
            fs.call("os:getpid", timeout=5)
        if pending.pid is not None:
            os.kill(pending.pid, 9)
    finally:
        fs.close()


def test_a_preload_that_fails_is_left_to_the_calls_that_need_it() -> None:
    fs = ForkServer(LocalVM(), ["no_such_module_here", "json"], python=sys.executable)
    try:
        assert fs.call("json:dumps", 2, timeout=10) == "2"
        with pytest.raises(CallError, match="ModuleNotFoundError: No module named"):
            fs.call("no_such_module_here:f", timeout=10)
    finally:
        fs.close()
