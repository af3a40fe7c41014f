"""The Docker engine: started by us when none answers, shared by refcount, stopped by the last
user, and nothing of it left afterwards (this module runs before anything holds the engine)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_vmsnap.vm.docker import engine as eng

REPO = Path(__file__).resolve().parents[2]


def _no_foreign_engine() -> None:
    """These tests start and stop dockerd themselves: skip if an engine is in use already."""
    client = eng.ping()
    if client is None:
        return
    client.close()
    held = eng.Engine()
    if not held.started_by_us:
        pytest.skip("a Docker engine that vmsnap did not start is running")
    if held.live_users():
        pytest.skip("our dockerd is in use by another process (xdist worker)")


def _unless_shared(engine: eng.Engine, stopped: bool) -> None:
    """Under xdist another worker may start using our engine meanwhile: then it stays up."""
    if not stopped and engine.live_users():
        pytest.skip(f"another process uses the engine now: {engine.live_users()}")


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        out += [int(c) for c in task.read_text().split()]
    return out


def test_engine_started_and_stopped_by_us(container_required: None) -> None:
    _no_foreign_engine()
    engine = eng.Engine()
    t0 = time.monotonic()
    client = engine.ensure()
    started_s = time.monotonic() - t0
    try:
        assert client.ping()
        assert engine.started_by_us
        pid = int(engine.pid_file.read_text())
        assert Path(f"/proc/{pid}/exe").resolve().name == "dockerd"
        assert pid in eng.running_dockerds()
        info = client.info()
        assert info["DockerRootDir"] == str(engine.data_root)
        assert info["Driver"] == "overlay2"
        assert str(engine.data_root).startswith(str(eng.state_dir()))
        helpers = _children(pid)  # the containerd dockerd runs for itself
        me = f"{os.getpid()}-{eng._start_time(os.getpid())}"
        assert me in engine.live_users()
        assert started_s < 15, f"dockerd took {started_s:.1f} s to answer"
    finally:
        stopped = engine.release()
    _unless_shared(engine, stopped)
    assert pid not in eng.running_dockerds()
    assert not any(eng._start_time(c) for c in helpers), "containerd outlived dockerd"
    assert eng.ping() is None
    assert not engine.ours_file.exists()
    assert engine.live_users() == []
    # --bridge=none --iptables=false: nothing of the engine stays in the network config
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "docker0" not in links
    # dockerd's self-bind of its data root is gone with it
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    assert not [m for m in mounts if m.startswith(str(engine.data_root))], mounts


def test_engine_shared_between_processes_last_user_stops_it(container_required: None) -> None:
    """Another process using the engine while we hold it does not stop it when it leaves;
    nested Engine objects in one process share one registration; a dead user does not count."""
    _no_foreign_engine()
    outer = eng.Engine()
    outer.ensure()
    try:
        pid = int(outer.pid_file.read_text())
        inner = eng.Engine()
        with inner:
            mine = [u for u in outer.live_users() if u.startswith(f"{os.getpid()}-")]
            assert len(mine) == 1  # one record per process, not per object
        assert eng._start_time(pid), "leaving a nested Engine stopped dockerd"
        code = (
            "from pytest_vmsnap.vm.docker.engine import Engine\n"
            "e = Engine(); e.ensure(); print(e.started_by_us, len(e.live_users()) >= 2);"
            " print(e.release())\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=60,
        ).stdout.split()
        assert out == ["True", "True", "False"], out  # it saw us, did not stop the engine
        assert eng._start_time(pid)
        # A user that died without leaving (pid 1 never has this start time): ignored.
        ghost = outer.users_dir / "1-0"
        ghost.write_text("{}")
    finally:
        stopped = outer.release()
    _unless_shared(outer, stopped)
    assert stopped, "the last live user did not stop dockerd (a dead user kept it?)"
    assert not (outer.users_dir / "1-0").exists()
    assert eng._start_time(pid) is None


def test_list_ours_without_engine_is_empty(container_required: None) -> None:
    _no_foreign_engine()
    if eng.ping() is not None:
        pytest.skip("an engine is running")
    assert eng.list_ours() == []


def test_configure_testcontainers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "false")
    monkeypatch.delenv("TESTCONTAINERS_CONNECTION_MODE", raising=False)
    eng.configure_testcontainers()
    assert os.environ["TESTCONTAINERS_RYUK_DISABLED"] == "true"
    assert os.environ["TESTCONTAINERS_CONNECTION_MODE"] == "docker_host"
