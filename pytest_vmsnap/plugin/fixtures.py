"""Fixtures and the ``vmsnap`` marker for your own tests (registered by the plugin).

- ``vmsnap_settings`` (session): the :class:`~pytest_vmsnap.settings.Settings` from the
  command-line options over the ini keys; usable without ``--vmsnap``.
- ``vmsnap_vm`` (factory): ``box = vmsnap_vm(app="postgres", disks=2, fs="xfs", kind="host")``
  (or ``kind="container"``) -> a :class:`VmHandle`: a started stand-in VM (``box.vm``) with the
  config and scripts installed and the application (``box.app``) provisioned and running;
  ``box.client()`` is a connection to it as the application user. Released at the end of the
  test, pass or fail.
- ``vmsnap_cycle`` (factory): ``result = vmsnap_cycle(config=..., pre=..., post=..., app=...)``
  runs one complete cycle and returns the :class:`~pytest_vmsnap.cycle.run.RunResult` with its
  ``assert_*`` methods; the cycle shows in the vmsnap summary and the report directory.
- ``vmsnap_sqlite``, ``vmsnap_postgres``, ``vmsnap_mariadb``, ``vmsnap_redis``: a
  :class:`VmHandle` for that application.

Settings come, strongest first, from the factory's arguments, the closest
``@pytest.mark.vmsnap(...)`` marker, the command-line options, then the ini keys. Relative
paths given to a factory or a marker are relative to the rootdir (ini keys: to the ini file).

This module stays cheap to import: the harness, VMs and applications are imported on use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..apps.base import App, Client
    from ..cycle.result import RunResult
    from ..settings import Settings


def resolve_settings(
    base: Settings, node: pytest.Item | None, overrides: Mapping[str, Any], where: str
) -> Settings:
    """``base`` changed by the ``vmsnap`` markers on ``node`` (closest wins), then by
    ``overrides`` (the factory's arguments); a bad name or value fails the test in one line."""
    __tracebackhide__ = True
    from ..settings import SettingsError, read_values

    changes: dict[str, Any] = {}
    rootdir = Path(node.config.rootpath) if node is not None else Path.cwd()
    try:
        for mark in reversed(list(node.iter_markers("vmsnap")) if node is not None else []):
            if mark.args:
                raise SettingsError(
                    f"@pytest.mark.vmsnap takes keyword arguments only, not {mark.args!r}"
                )
            changes.update(read_values(mark.kwargs, base_dir=rootdir, where="@pytest.mark.vmsnap"))
        changes.update(read_values(overrides, base_dir=rootdir, where=where))
    except SettingsError as err:
        pytest.fail(str(err), pytrace=False)
    return base.with_(**changes)


def _fail_on_problems(settings: Settings, where: str, *, need_config: bool) -> None:
    __tracebackhide__ = True
    if not need_config and settings.config is None:
        # Validate everything else: any existing file stands in for the missing config.
        settings = settings.with_(config=Path(__file__))
    problems = settings.problems()
    if problems:
        pytest.fail(f"{where}: " + "; ".join(problems), pytrace=False)


@dataclasses.dataclass
class VmHandle:
    """A stand-in VM with its application provisioned and running (from ``vmsnap_vm``)."""

    vm: Any
    """The VM (:class:`~pytest_vmsnap.vm.host.HostVM` or ``ContainerVM``): ``run(argv)``,
    ``popen(argv)``, ``path("/etc/azure")`` (this host's path to a path inside the VM)."""
    app: App
    settings: Settings
    tag: str
    """The resource tag of everything this VM is made of (``vmsnap cleanup`` finds it)."""
    disks: list[Any]
    versions: dict[str, str]
    _clients: list[Client] = dataclasses.field(default_factory=list, repr=False)

    def client(self, timeout_s: float = 10.0) -> Client:
        """A new connection to the application as the application user (made inside the VM):
        ``append``, ``transfer``, ``probe_write(timeout_s)``, ``read_state()``, ``close()``."""
        from ..apps.remote import RemoteClient

        c = RemoteClient(self.vm, self.settings.app, timeout_s)
        self._clients.append(c)
        return c

    def run(self, argv: list[str], **kwargs: Any) -> Any:
        """``vm.run``: run a command inside the VM as root (raises on a non-zero exit unless
        ``check=False``); returns the CompletedProcess (bytes stdout/stderr)."""
        return self.vm.run(argv, **kwargs)

    def run_script(self, which: str, *, check: bool = True, timeout: float = 120) -> Any:
        """Run the installed pre- or post-script as the framework starts it,
        ``sh LOCATION PARAMS...`` as root, and wait for it (no framework around it)."""
        if which not in ("pre", "post"):
            raise ValueError(f"which is 'pre' or 'post', not {which!r}")
        if self.settings.config is None:
            raise ValueError("no config was installed (vmsnap_config / vmsnap_vm(config=...))")
        try:
            data = json.loads(self.settings.config.read_text())
        except RecursionError:
            raise ValueError("the config's JSON is nested too deeply to read") from None
        location = data.get(f"{which}ScriptLocation") if isinstance(data, dict) else None
        if not isinstance(location, str):
            raise ValueError(f"the config has no {which}ScriptLocation")
        params = [str(p) for p in data.get(f"{which}ScriptParams") or []]
        return self.vm.run(["sh", location, *params], check=check, timeout=timeout)

    def _close_clients(self) -> None:
        for c in self._clients:
            with contextlib.suppress(Exception):
                c.close()


@pytest.fixture(scope="session")
def vmsnap_settings(pytestconfig: pytest.Config) -> Settings:
    """The vmsnap settings of this run: command-line options over ini keys."""
    from .options import settings_from

    return settings_from(pytestconfig)


@pytest.fixture
def vmsnap_vm(
    request: pytest.FixtureRequest, vmsnap_settings: Settings
) -> Iterator[Callable[..., VmHandle]]:
    """Factory: ``vmsnap_vm(app=, disks=, fs=, kind="host"|"container", config=, pre=, ...)`` ->
    a :class:`VmHandle` (VM started, files installed, application provisioned and running).

    Every VM is released at the end of the test. Skips without root (loop devices, mounts).
    """
    stack = contextlib.ExitStack()
    count = 0

    def make(**overrides: Any) -> VmHandle:
        __tracebackhide__ = True
        nonlocal count
        settings = resolve_settings(vmsnap_settings, request.node, overrides, "vmsnap_vm()")
        _fail_on_problems(settings, "vmsnap_vm()", need_config=False)
        if settings.vm not in ("host", "container"):
            pytest.fail(
                f"vmsnap_vm(): kind {settings.vm!r} has no VM to hand out; use kind='host' "
                "or 'container'",
                pytrace=False,
            )
        if os.geteuid() != 0:
            pytest.skip("vmsnap_vm needs root (loop devices, mounts, namespaces)")
        from ..cycle import testbed

        count += 1
        si = stack.enter_context(testbed.build(settings, f"vm{count}"))
        handle = VmHandle(si.vm, si.app, settings, si.tag, si.disks, si.versions)
        stack.callback(handle._close_clients)
        return handle

    with stack:
        yield make


@pytest.fixture
def vmsnap_cycle(
    request: pytest.FixtureRequest, vmsnap_settings: Settings
) -> Callable[..., RunResult]:
    """Factory: ``vmsnap_cycle(config=, pre=, post=, app=, ..., name=, hooks=)`` runs one
    complete cycle (build, load, framework cycle, snapshot, restore, judge) and returns the
    :class:`~pytest_vmsnap.cycle.run.RunResult`: ``assert_application_consistent()``,
    ``assert_verdict(v)``, ``assert_status(status, health_code)``, ``assert_quiesced()``,
    ``assert_live()``. Without root the cycle runs in a directory stand-in (no freeze, no
    snapshot: never better than ``not-taken``).
    """
    count = 0

    def cycle(
        *,
        name: str | None = None,
        hooks: dict[str, Callable[..., Any]] | None = None,
        **overrides: Any,
    ) -> RunResult:
        __tracebackhide__ = True
        nonlocal count
        from ..cycle import run as cycle_run
        from .reporter import cycle_label, record_run, testcase_properties

        settings = resolve_settings(vmsnap_settings, request.node, overrides, "vmsnap_cycle()")
        _fail_on_problems(settings, "vmsnap_cycle()", need_config=True)
        count += 1
        node = request.node
        name = name or (node.name if count == 1 else f"{node.name}#{count}")
        with cycle_label(name):
            result = cycle_run.run(settings, hooks=hooks)
        record_run(node, name, result)
        testcase_properties(node, name, result)
        return result

    return cycle


@pytest.fixture
def vmsnap_sqlite(vmsnap_vm: Callable[..., VmHandle]) -> VmHandle:
    """A stand-in VM running SQLite (WAL mode, ``/var/lib/app/app.db``)."""
    return vmsnap_vm(app="sqlite")


@pytest.fixture
def vmsnap_postgres(vmsnap_vm: Callable[..., VmHandle]) -> VmHandle:
    """A stand-in VM running PostgreSQL (``/var/lib/postgresql/<major>/main``, port 5432; the
    newest major version installed, or ``vmsnap_pg_version``)."""
    return vmsnap_vm(app="postgres")


@pytest.fixture
def vmsnap_mariadb(vmsnap_vm: Callable[..., VmHandle]) -> VmHandle:
    """A stand-in VM running MariaDB 10.11 (``/var/lib/mysql``, port 3306)."""
    return vmsnap_vm(app="mariadb")


@pytest.fixture
def vmsnap_redis(vmsnap_vm: Callable[..., VmHandle]) -> VmHandle:
    """A stand-in VM running Redis 7 (``/var/lib/redis``, port 6379)."""
    return vmsnap_vm(app="redis")
