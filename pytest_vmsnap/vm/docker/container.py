"""The container stand-in VM: a Docker container from a locally built image, disks at real paths.

Same surface as :class:`~pytest_vmsnap.vm.host.HostVM` (``name``, ``kind``, ``disks``,
``start()``, ``popen()``, ``run()``, ``path()``, ``thaw_all()``, ``stop()``, context manager),
so the harness, the driver and the apps use either without knowing which.

- Image: ``vmsnap/<app image>:<hash>`` from :mod:`.images` (Debian packages laid out as on a
  server, services not started), the user's own image with our thin layer over it
  (``user_image``, :mod:`.layer`), or any image given. A ``VOLUME`` the image declares gets
  an empty tmpfs of the VM's own instead of an anonymous Docker volume (a directory of this
  host, which would outlive the VM).
- Disks: the VM's loop devices (attached by :mod:`.disks`) are passed in with
  ``--device /dev/loopN`` and ``--cap-add SYS_ADMIN`` (``--privileged`` cannot work here: the
  host's bounding set lacks CAP_SYS_RESOURCE). The container's PID 1 is
  ``/usr/bin/python3 -m pytest_vmsnap.vm.guest.container_init init SPEC``: it puts tmpfs on
  ``/tmp`` and ``/run``, mounts each disk at its real path (``/var/lib/postgresql``...), prints
  ``READY`` and waits. On SIGTERM (``docker stop``), or when the controller dies (it holds an
  ``flock`` on a lock file bind-mounted into the VM read-only; the init's own ``flock`` on it
  then returns), it thaws every disk, ends every other process of the VM, unmounts the disks
  and exits.
  The network is ``none``: the VM has its own loopback only, so default ports never collide,
  exactly like the host stand-in.
- Our package is mounted read-only at a fixed path (``/usr/local/lib/vmsnap``, never under the
  VM's private ``/tmp``) and ``PYTHONPATH`` points there;
  the interpreter is the image's ``/usr/bin/python3`` (Debian's 3.11). Commands whose argv[0]
  is this process's interpreter (``sys.executable``, which is how the harness and the apps run
  helper modules) are run with ``/usr/bin/python3`` instead.
- ``popen``/``run`` use ``docker exec -i <id> argv...``: the honest "inside the VM" path. The
  process gets the container's namespaces, cgroup, capabilities, seccomp profile and
  environment, as a process of a real VM would get its own. (``nsenter`` into the init pid
  would be faster, about 10 ms against 60 ms a call, but would run with the host's full
  capabilities and outside the container's cgroup: a script could then do what it could not
  do in the container.) Killing the ``docker exec`` client does not kill the process in the
  container; stopping the VM does (as for ``nsenter`` in the host stand-in).
- ``path(inside)`` is ``/proc/<init pid>/root/<inside>`` (``State.Pid`` from ``docker
  inspect``): host-side access to the container's mount namespace, as for the host stand-in;
  ``thaw_all`` issues FITHAW through those paths.
- No path of the VM is on a file system of this host (a script could freeze it): the init
  replaces Docker's file binds with copies and our package's bind with a read-only overlay
  (:func:`~pytest_vmsnap.vm.guest.container_init.seal_host_mounts`).
- Every container is labelled ``vmsnap.tag=<tag>`` and ``vmsnap.vm=<name>`` and named
  ``<tag>-<name>``; :func:`remove_leftovers` finds and removes them by label.

Containers are driven through testcontainers (``DockerContainer(...).with_kwargs(...)``, Ryuk
disabled) and the docker SDK for what testcontainers lacks (inspect, graceful stop, logs).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import names
from ..base import StandIn
from ..errors import VmError
from ..guest.container_init import CONTROLLER_LOCK
from ..linux import read_mounts, thaw
from ..model import Disk
from .engine import (
    IN_VM_LIB,
    LABEL_TAG,
    LABEL_VM,
    Engine,
    configure_testcontainers,
    list_ours,
    package_mount,
)

PYTHON = "/usr/bin/python3"
"""The interpreter inside every vmsnap image (Debian's python3)."""
INIT_MODULE = "pytest_vmsnap.vm.guest.container_init"
STOP_TIMEOUT_S = 20

configure_testcontainers()  # before anything imports testcontainers


class ContainerVM(StandIn):
    """A stand-in VM that is a Docker container; processes enter it through ``docker exec``."""

    kind = "container"

    def __init__(
        self,
        name: str,
        disks: Sequence[Disk],
        *,
        tag: str = "",
        app: str | None = None,
        image: str | None = None,
        user_image: str | None = None,
        stop_timeout_s: int = STOP_TIMEOUT_S,
    ) -> None:
        if app is None and image is None:
            raise ValueError("ContainerVM needs an app (to pick its image) or an image")
        if user_image is not None and app is None:
            raise ValueError("ContainerVM needs the app that runs in the user's image")
        self.name = name
        self.tag = tag
        self.disks = list(disks)
        self.app = app
        self.image = image
        self.user_image = user_image
        """The user's image (``vmsnap_image``), under the thin layer that :attr:`image` is."""
        self.stop_timeout_s = stop_timeout_s
        self.id: str | None = None
        self.pid: int | None = None
        self.timings: dict[str, float] = {}
        self._tc: Any = None
        self._engine: Engine | None = None
        self._lock_fd: int | None = None
        self._lock_path: Path | None = None
        self._docker = shutil.which("docker") or "docker"
        self._cli_env: dict[str, str] | None = None

    @property
    def container_name(self) -> str:
        if names.is_tag(self.tag):
            return names.vm_name(self.tag, self.name)
        return f"vmsnap-{names.component(self.name)}-{os.getpid()}-{id(self):x}"

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout_s: float = 60.0) -> ContainerVM:
        """Create and start the container, mount the disks inside, return once it is ready."""
        if self._tc is not None:
            return self
        for disk in self.disks:
            if not disk.loopdev:
                raise VmError(f"disk {disk.spec.name} of VM {self.name} is not attached")
        began = time.monotonic()
        self._engine = Engine()
        try:
            client = self._engine.ensure()
            self.timings["engine_s"] = time.monotonic() - began
            t = time.monotonic()
            if self.image is None and self.user_image is not None:
                from .layer import ensure_layer

                assert self.app is not None
                self.image = ensure_layer(self.user_image, self.app, client).ref
            elif self.image is None:
                from . import images

                assert self.app is not None
                self.image = images.image_for_app(self.app, client)
            self.timings["image_s"] = time.monotonic() - t
            t = time.monotonic()
            self._create(client)
            self._wait_ready(timeout_s)
            self.timings["container_s"] = time.monotonic() - t
        except BaseException as err:
            self._teardown()
            if isinstance(err, VmError | KeyboardInterrupt | SystemExit):
                raise
            raise VmError(f"VM {self.name} did not start: {err}") from err
        return self

    def _spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tag": self.tag,
            "mounts": [
                {
                    "dev": d.loopdev,
                    "target": d.spec.mountpoint,
                    "fs": d.spec.fs,
                    "options": d.mount_options,
                }
                for d in self.disks
            ],
        }

    def _create(self, client: Any) -> None:
        from testcontainers.core.container import DockerContainer

        assert self.image is not None  # start() chose it
        tc = DockerContainer(self.image)
        tc.with_name(self.container_name)
        tc.with_command([PYTHON, "-m", INIT_MODULE, "init", json.dumps(self._spec())])
        tc.with_env("PYTHONPATH", IN_VM_LIB)
        tc.with_env("PYTHONDONTWRITEBYTECODE", "1")
        for host_path, vm_path in package_mount().items():
            tc.with_volume_mapping(host_path, vm_path, "ro")
        tc.with_volume_mapping(str(self._hold_lock()), CONTROLLER_LOCK, "ro")
        devices = sorted({f"{d.loopdev}:{d.loopdev}:rwm" for d in self.disks})
        # An image's VOLUME would be an anonymous volume: a directory of this host, kept
        # after the VM. An empty tmpfs of the VM's own takes its place (as a fresh volume
        # for a data directory would be); a disk mounted at the application's path covers it.
        volumes = client.api.inspect_image(self.image).get("Config", {}).get("Volumes") or {}
        for path in sorted(volumes):
            tc.with_tmpfs_mount(path)
        tc.with_kwargs(
            devices=devices,
            cap_add=["SYS_ADMIN"],
            network="none",
            hostname=names.component(self.name)[:63],
            labels={LABEL_TAG: self.tag, LABEL_VM: self.name},
            working_dir="/",
            stop_signal="SIGTERM",
        )
        self._tc = tc
        tc.start()
        self.id = tc.get_wrapped_container().id
        self.pid = int(client.api.inspect_container(self.id)["State"]["Pid"]) or None
        # The CLI would ask the engine for its API version on every call: tell it once.
        self._cli_env = dict(os.environ)
        with contextlib.suppress(Exception):
            self._cli_env.setdefault("DOCKER_API_VERSION", client.api.api_version)

    def _hold_lock(self) -> Path:
        """Create and ``flock`` this VM's controller lock (released when this process ends)."""
        import fcntl

        path = controller_lock(self.container_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd, self._lock_path = fd, path
        return path

    def _drop_lock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None
        if self._lock_path is not None:
            with contextlib.suppress(OSError):
                self._lock_path.unlink()
            self._lock_path = None

    def _wait_ready(self, timeout_s: float) -> None:
        container = self._tc.get_wrapped_container()
        deadline = time.monotonic() + timeout_s
        while True:
            out = container.logs(stdout=True, stderr=False).decode(errors="replace")
            for line in out.splitlines():
                if line.startswith("READY"):
                    return
                if line.startswith("FAILED"):
                    raise VmError(f"VM {self.name} did not start: {line[7:].strip()}")
            container.reload()
            if container.status not in ("created", "running"):
                err = container.logs(stdout=False, stderr=True).decode(errors="replace")
                last = err.strip().splitlines()[-3:] or [container.status]
                raise VmError(f"VM {self.name} ended while starting: {' | '.join(last)}")
            if time.monotonic() > deadline:
                raise VmError(f"VM {self.name} was not ready within {timeout_s:.0f} s")
            time.sleep(0.03)

    def stop(self, timeout_s: float | None = None) -> None:
        """Thaw, ``docker stop`` (the init thaws again, ends the VM's processes and unmounts),
        then ``docker rm -f`` by exact id, and let go of the engine."""
        if self._tc is None:
            return
        self.thaw_all()
        self._end_forkserver()
        if self.id is not None:
            with contextlib.suppress(Exception):
                self._tc.get_wrapped_container().stop(timeout=int(timeout_s or self.stop_timeout_s))
        self._teardown()

    def _teardown(self) -> None:
        """Remove the container (by id) and release the engine; safe to call twice."""
        self._end_forkserver()
        if self._tc is not None:
            if self.pid is not None:
                self.thaw_all()
            with contextlib.suppress(Exception):
                self._tc.stop()  # docker rm -f <id> (and v=True: no anonymous volumes)
            self._tc = None
        self._drop_lock()
        self.pid = None
        if self._engine is not None:
            engine, self._engine = self._engine, None
            engine.release()

    def __enter__(self) -> ContainerVM:
        return self.start() if self._tc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- inside the VM -----------------------------------------------------------------------

    def _exec(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> list[str]:
        if self.id is None or self._tc is None:
            raise VmError(f"VM {self.name} is not running")
        argv = [str(a) for a in argv]
        if argv and _is_host_python(argv[0]):
            argv[0] = PYTHON
        cmd = [self._docker, "exec", "-i", "-e", f"PYTHONPATH={IN_VM_LIB}"]
        cmd += ["-e", "PYTHONDONTWRITEBYTECODE=1"]
        for key, value in sorted(_forwarded_env(env).items()):
            cmd += ["-e", f"{key}={value}"]
        cmd += ["-w", str(cwd or "/"), self.id, *argv]
        return cmd

    @property
    def private_dirs(self) -> list[str]:
        """The container's own root (its writable layer), its tmpfs ``/tmp`` and ``/run``, its
        disks; the package, the run directory and the lock are bound in from this host."""
        return ["/", "/tmp", "/run", *(d.spec.mountpoint for d in self.disks)]

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a process inside the VM (it dies with the VM). ``env`` entries named
        ``VMSNAP_*``/``PYTHON*`` and ``cwd`` are passed into the VM; stdin defaults to null."""
        cmd = self._exec(argv, kwargs.pop("env", None), kwargs.pop("cwd", None))
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(cmd, env=self._cli_env, **kwargs)

    def _enter(self, argv: Sequence[str]) -> list[str]:
        return self._exec(argv)

    def _enter_env(self) -> dict[str, str] | None:
        return self._cli_env


def _is_host_python(program: str) -> bool:
    """Whether ``program`` is this process's Python (which does not exist inside the VM)."""
    if program in (sys.executable, getattr(sys, "_base_executable", "")):
        return True
    with contextlib.suppress(OSError):
        return os.path.realpath(program) == os.path.realpath(sys.executable)
    return False


def _forwarded_env(env: dict[str, str] | None) -> dict[str, str]:
    """Variables passed into the VM: ``VMSNAP_*`` of this process, plus ``VMSNAP_*`` and
    ``PYTHON*`` entries of an explicit ``env`` (never the host's PATH, HOME or PYTHONPATH)."""
    out = {k: v for k, v in os.environ.items() if k.startswith("VMSNAP_")}
    for key, value in (env or {}).items():
        if key.startswith("VMSNAP_") or (key.startswith("PYTHON") and key != "PYTHONPATH"):
            out[key] = value
    return out


# --- leftovers ----------------------------------------------------------------------------------


LOCKS = Path("/dev/shm/vmsnap-vms")
"""Where controller locks live: a tmpfs, which cannot be frozen (the lock is bound into the
VM, where a script holds CAP_SYS_ADMIN)."""


def controller_lock(container_name: str) -> Path:
    """The lock file the controller of the container ``container_name`` holds while it lives."""
    return LOCKS / f"{container_name}.lock"


def remove_leftovers(
    tag_prefix: str = names.TAG_PREFIX,
    *,
    include_live: bool = False,
    home: Path | None = None,
) -> list[str]:
    """Stop and remove our containers whose ``vmsnap.tag`` starts with ``tag_prefix``.

    Tags whose owner process still runs (:func:`names.owner_alive`) are left alone unless
    ``include_live``. Each disk mount is thawed before the container is stopped (a frozen file
    system must never be unmounted). Returns one line per action; needs no running engine
    (then there is nothing to remove).
    """
    from .engine import ping

    client = ping()
    if client is None:
        return []
    home = Path(home or names.vmsnap_home())
    actions: list[str] = []
    try:
        for found in list_ours(tag_prefix, client):
            tag = found["tag"]
            if not include_live and names.is_tag(tag) and names.owner_alive(home, tag):
                actions.append(f"left {found['name']}: its session ({tag}) is still running")
                continue
            try:
                container = client.containers.get(found["id"])
                pid = int(container.attrs.get("State", {}).get("Pid") or 0)
                for mountpoint in _disk_mounts(pid):
                    if thaw(f"/proc/{pid}/root{mountpoint}"):
                        actions.append(f"thawed {mountpoint} in {found['name']}")
                if container.status == "running":
                    container.stop(timeout=STOP_TIMEOUT_S)
                container.remove(force=True)
                with contextlib.suppress(OSError):
                    controller_lock(found["name"]).unlink()
                actions.append(f"removed container {found['name']} ({found['id'][:12]})")
            except Exception as err:
                actions.append(f"could not remove {found['name']}: {err}")
    finally:
        with contextlib.suppress(Exception):
            client.close()
    return actions


def _disk_mounts(pid: int) -> list[str]:
    """Mount points of block devices inside the container whose init is ``pid``."""
    if pid <= 0:
        return []
    try:
        mounts = read_mounts(pid)
    except OSError:
        return []
    points = [m.target for m in mounts if m.source.startswith("/dev/loop")]
    return sorted(points, key=lambda p: -p.count("/"))
