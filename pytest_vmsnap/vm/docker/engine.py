"""The Docker engine behind the container stand-in: use one that answers, or run our own.

:meth:`Engine.ensure` first asks ``docker.from_env()`` (``DOCKER_HOST`` or the default socket)
for a ping. If an engine answers, it is used and never stopped by us. If none does, we start
Debian's ``dockerd`` ourselves, with everything it keeps in a project-owned place,
``$VMSNAP_HOME/docker/`` (``/var/tmp/vmsnap/docker`` by default): the data root ``data/`` (it
must be on a file system overlay2 supports; the host's ext4 is), the pid file ``dockerd.pid``,
the log ``dockerd.log`` and the record ``ours.json`` saying that we started it. It listens on
the default socket, so the docker CLI, the SDK and testcontainers all find it without
configuration. It runs with ``--bridge=none --iptables=false``: our containers have only a
loopback (like the host stand-in) and image builds use the host's network, so the engine
leaves no ``docker0`` bridge and no iptables chains behind when it stops.

Sharing between processes (pytest-xdist workers, parallel ``vmsnap run``): every process that
uses the engine holds a *user record* ``users/<pid>-<start time>`` while it does, and every
start or stop decision is taken under an exclusive ``flock`` on ``engine.lock``. So two workers
never both start a ``dockerd`` (the second waits on the lock, then finds the first one's engine
answering), and the last user to leave stops it, by the exact pid in the pid file, and only if
``ours.json`` says we started that very process (pid, start time and boot id all match). A user
that died without leaving counts as gone (its pid no longer runs with that start time), so a
crashed worker never keeps the engine alive forever. We chose this over "start once in the
xdist controller" because it needs nothing from the caller: ``vmsnap run``, a plain pytest
session and xdist workers all do the same thing, and none of them has to know about the others.
Inside one process, :class:`Engine` objects are counted, so nested ``with Engine():`` blocks
cost one ping, not a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import names
from ..errors import VmError
from ..helpers import PACKAGE_DIR
from ..linux import read_mounts

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
LABEL_TAG = "vmsnap.tag"
"""Every container we create carries this label, with its session tag as the value."""
LABEL_VM = "vmsnap.vm"
PACKAGE = PACKAGE_DIR
"""Our package on the host; containers get it read-only at :data:`IN_VM_PACKAGE`."""
IN_VM_LIB = "/usr/local/lib/vmsnap"
"""``PYTHONPATH`` inside a container VM. A fixed path, not the host's: the VM puts tmpfs on
``/tmp`` and ``/run``, which would hide a checkout living there."""
IN_VM_PACKAGE = f"{IN_VM_LIB}/pytest_vmsnap"


def package_mount() -> dict[str, str]:
    """The read-only bind of our package into a container: ``{host path: in-VM path}``."""
    return {str(PACKAGE): IN_VM_PACKAGE}


READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 40.0
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class EngineError(VmError):
    """No Docker engine could be found or started (the message says why)."""


def state_dir(home: Path | None = None) -> Path:
    """``$VMSNAP_HOME/docker``: data root, pid file, log, lock and user records."""
    return Path(home or names.vmsnap_home()) / "docker"


def configure_testcontainers() -> None:
    """Environment testcontainers needs here; call before importing it.

    Ryuk (its reaper) would have to be pulled from a registry, which cannot be reached, and we
    remove our containers ourselves. Because ``/.dockerenv`` exists on our hosts, testcontainers
    believes it runs inside a container; ``docker_host`` mode makes it use the engine's host.
    """
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")


# --- processes ----------------------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    return names._start_time(pid)


def _boot_id() -> str:
    return names._boot_id()


def _exe_name(pid: int) -> str:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return ""


def _alive(pid: int, start: str | None) -> bool:
    """``pid`` runs and is the process that started at ``start`` (not a reused pid)."""
    return start is not None and _start_time(pid) == start


def running_dockerds() -> list[int]:
    """Pids of every ``dockerd`` on this machine (ours or not)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _exe_name(int(entry.name)) == "dockerd":
            found.append(int(entry.name))
    return sorted(found)


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# --- the engine ---------------------------------------------------------------------------------


@dataclass
class _Shared:
    """Per-process state for one state dir: how many Engine objects hold it, and the client."""

    count: int = 0
    client: Any = None
    started: bool = False


_LOCK = threading.Lock()
_SHARED: dict[str, _Shared] = {}


class Engine:
    """A Docker engine that answers, held while this object is (``ensure`` ... ``release``)."""

    def __init__(self, home: Path | None = None, *, ready_timeout_s: float = READY_TIMEOUT_S):
        self.dir = state_dir(home)
        self.ready_timeout_s = ready_timeout_s
        self._held = False

    # paths
    @property
    def data_root(self) -> Path:
        return self.dir / "data"

    @property
    def pid_file(self) -> Path:
        return self.dir / "dockerd.pid"

    @property
    def log_file(self) -> Path:
        return self.dir / "dockerd.log"

    @property
    def ours_file(self) -> Path:
        return self.dir / "ours.json"

    @property
    def lock_file(self) -> Path:
        return self.dir / "engine.lock"

    @property
    def users_dir(self) -> Path:
        return self.dir / "users"

    # public API
    @property
    def client(self) -> Any:
        """The ``docker.DockerClient`` (``ensure`` first)."""
        shared = _SHARED.get(str(self.dir))
        if not self._held or shared is None or shared.client is None:
            raise EngineError("Engine.client used before Engine.ensure()")
        return shared.client

    @property
    def started_by_us(self) -> bool:
        """Whether the engine in use is a ``dockerd`` that a vmsnap process started."""
        record = self._read_ours()
        return record is not None and _alive(record["pid"], record.get("start"))

    def ensure(self) -> Any:
        """Find or start the engine; returns a ``docker.DockerClient``. Idempotent."""
        if self._held:
            return self.client
        key = str(self.dir)
        with _LOCK:
            shared = _SHARED.setdefault(key, _Shared())
            if shared.count == 0:
                with _flock(self.lock_file):
                    self._add_user()
                    try:
                        shared.client, shared.started = self._find_or_start()
                    except BaseException:
                        self._remove_user()
                        raise
            shared.count += 1
            self._held = True
            return shared.client

    def release(self) -> bool:
        """Let go; the last user on this machine stops a ``dockerd`` we started.

        Returns True if this call stopped the engine.
        """
        if not self._held:
            return False
        self._held = False
        key = str(self.dir)
        with _LOCK:
            shared = _SHARED[key]
            shared.count -= 1
            if shared.count > 0:
                return False
            with contextlib.suppress(Exception):
                shared.client.close()
            shared.client = None
            with _flock(self.lock_file):
                self._remove_user()
                if self.live_users():
                    return False
                return self._stop_ours()

    def __enter__(self) -> Engine:
        self.ensure()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def live_users(self) -> list[str]:
        """User records of processes that still run (dead ones are deleted on the way)."""
        live: list[str] = []
        if not self.users_dir.is_dir():
            return live
        for entry in self.users_dir.iterdir():
            pid, _, start = entry.name.partition("-")
            if pid.isdigit() and _alive(int(pid), start):
                live.append(entry.name)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
        return sorted(live)

    def stop_if_unused(self) -> bool:
        """Stop a ``dockerd`` we started whose users are all gone (for ``vmsnap cleanup``)."""
        with _flock(self.lock_file):
            if self.live_users():
                return False
            return self._stop_ours()

    # internals
    def _user_name(self) -> str:
        pid = os.getpid()
        return f"{pid}-{_start_time(pid)}"

    def _add_user(self) -> None:
        self.users_dir.mkdir(parents=True, exist_ok=True)
        (self.users_dir / self._user_name()).write_text(json.dumps({"boot": _boot_id()}))

    def _remove_user(self) -> None:
        with contextlib.suppress(OSError):
            (self.users_dir / self._user_name()).unlink()

    def _read_ours(self) -> dict[str, Any] | None:
        try:
            record = json.loads(self.ours_file.read_text())
            record["pid"] = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if record.get("boot") != _boot_id():
            return None
        return record

    def _find_or_start(self) -> tuple[Any, bool]:
        client = ping()
        if client is not None:
            return client, False
        if os.environ.get("DOCKER_HOST"):
            raise EngineError(
                f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer; unset it to let "
                "vmsnap start its own dockerd"
            )
        others = [p for p in running_dockerds() if not self._is_ours(p)]
        if others:
            # Someone else's engine is starting or stuck: never start a second on its socket.
            client = ping(wait_s=self.ready_timeout_s)
            if client is not None:
                return client, False
            raise EngineError(
                f"a dockerd (pid {', '.join(map(str, others))}) runs but does not answer on "
                f"{DEFAULT_SOCKET}; see its log, or stop it"
            )
        return self._start(), True

    def _is_ours(self, pid: int) -> bool:
        record = self._read_ours()
        return record is not None and record["pid"] == pid and _alive(pid, record.get("start"))

    def _start(self) -> Any:
        dockerd = shutil.which("dockerd", path=SBIN_PATH)
        if dockerd is None:
            raise EngineError(
                "no Docker engine answers and dockerd is not installed "
                "(apt-get install docker.io iptables; see scripts/install-deps.sh)"
            )
        if os.geteuid() != 0:
            raise EngineError("no Docker engine answers, and starting dockerd needs root")
        self.data_root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            self.pid_file.unlink()
        argv = [
            dockerd,
            "--data-root",
            str(self.data_root),
            "--pidfile",
            str(self.pid_file),
            "--host",
            DEFAULT_SOCKET,
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
        ]
        env = dict(os.environ)
        env["PATH"] = SBIN_PATH + ":" + env.get("PATH", "")
        began = time.monotonic()
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- vmsnap: {' '.join(argv)}\n".encode())
            log.flush()
            # setsid -f: dockerd is reparented away from us, so whichever process stops it
            # (the last user) leaves no zombie behind in the process that started it.
            launcher = subprocess.Popen(
                ["setsid", "-f", *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                close_fds=True,
            )
            launcher.wait(timeout=30)
        pid = 0
        deadline = began + self.ready_timeout_s
        while time.monotonic() < deadline:
            if not pid:
                pid = _read_pid(self.pid_file)
                if pid:
                    record = {"pid": pid, "start": _start_time(pid), "boot": _boot_id()}
                    record["data_root"] = str(self.data_root)
                    self.ours_file.write_text(json.dumps(record))
            client = ping()
            if client is not None and pid:
                self.startup_s = time.monotonic() - began
                return client
            if pid and _start_time(pid) is None:
                break
            time.sleep(0.1)
        tail = _tail(self.log_file)
        if pid and _start_time(pid) is not None:
            self._stop_ours()
        raise EngineError(f"dockerd did not answer within {self.ready_timeout_s:.0f} s: {tail}")

    def _stop_ours(self) -> bool:
        record = self._read_ours()
        if record is None:
            return False
        pid = record["pid"]
        if not _alive(pid, record.get("start")) or _exe_name(pid) != "dockerd":
            with contextlib.suppress(OSError):
                self.ours_file.unlink()
            return False
        if _read_pid(self.pid_file) not in (0, pid):
            raise EngineError(f"{self.pid_file} does not name the dockerd we started ({pid})")
        # dockerd stops the containerd it started on its way out: wait for that one too.
        children = [(c, _start_time(c)) for c in _children(pid)]
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and (
            _alive(pid, record["start"]) or any(_alive(c, s) for c, s in children)
        ):
            time.sleep(0.05)
        if _alive(pid, record["start"]):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        self._unmount_data_root()
        with contextlib.suppress(OSError):
            self.ours_file.unlink()
        return True

    def _unmount_data_root(self) -> None:
        """dockerd bind-mounts its data root onto itself (to make it private) and leaves that
        mount behind when it stops: remove it, by its exact path, once nothing is under it."""
        root = str(self.data_root)
        try:
            targets = [m.target for m in read_mounts()]
        except OSError:
            return
        if root in targets and not any(t.startswith(root + "/") for t in targets):
            subprocess.run(["umount", root], capture_output=True, check=False)


def ping(wait_s: float = 0.0) -> Any:
    """A ``docker.DockerClient`` whose engine answered a ping, or None (after ``wait_s``)."""
    import docker

    deadline = time.monotonic() + wait_s
    while True:
        client = None
        try:
            client = docker.from_env(timeout=10)
            if client.ping():
                return client
        except Exception:
            pass
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def list_ours(tag_prefix: str = names.TAG_PREFIX, client: Any = None) -> list[dict[str, str]]:
    """Containers (running or not) labelled ``vmsnap.tag=<tag>`` with a tag starting with
    ``tag_prefix``: ``[{"id", "name", "tag", "vm", "status", "image"}]``.

    Without an engine that answers there is nothing to list (no engine, no containers).
    """
    own = client is None
    client = client or ping()
    if client is None:
        return []
    try:
        found = []
        for c in client.containers.list(all=True, filters={"label": LABEL_TAG}):
            tag = c.labels.get(LABEL_TAG, "")
            if tag.startswith(tag_prefix):
                found.append(
                    {
                        "id": c.id,
                        "name": c.name,
                        "tag": tag,
                        "vm": c.labels.get(LABEL_VM, ""),
                        "status": c.status,
                        "image": ",".join(c.image.tags) if c.image else "",
                    }
                )
        return found
    finally:
        if own:
            with contextlib.suppress(Exception):
                client.close()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            found.extend(int(c) for c in task.read_text().split())
    return found


def _read_pid(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])
