"""The one stand-in builder: pool, disks, VM, the user's files, the application running.

:func:`build` is what a cycle's source VM and the ``vmsnap_vm`` fixture are made with;
:func:`new_vm` makes a VM of the configured kind on given disks (the restored VM too).
Everything is released in reverse order on exit, whatever happened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..apps import get_app
from ..apps.base import App, AppOptions
from ..framework import engines
from ..lint.sources import Source
from ..settings import Settings
from ..vm import disks as vmdisks
from ..vm import names, reaper, snapshot
from ..vm.base import StandIn
from ..vm.model import Disk
from .signals import unwinding
from .stage import Containment, Staged, stage, stage_hosted

log = logging.getLogger(__name__)

FORKSERVER_PRELOAD = ("pytest_vmsnap.evidence.workload", "pytest_vmsnap.evidence.probe")
"""Imported by a source VM's fork server before anything runs."""


@dataclass
class Testbed:
    """A started stand-in VM with its application provisioned and running."""

    settings: Settings
    tag: str
    """The resource tag of everything the testbed is made of (``vmsnap cleanup`` finds it)."""
    app: App
    vm: StandIn
    disks: list[Disk]
    backend: Any
    """The snapshot backend (:func:`pytest_vmsnap.vm.snapshot.select_backend`)."""
    pool: vmdisks.Pool
    workdir: Path
    """A directory of the run beside the images (history, snapshots, restored disks)."""
    versions: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    staging_notes: list[str] = field(default_factory=list)
    """What installing the user's files could not do as asked (a script not installed)."""
    sources: list[Source] = field(default_factory=list)
    """The user's files installed in the VM (path, location, mode given, mode installed)."""


@contextlib.contextmanager
def build(
    settings: Settings,
    name: str = "source",
    *,
    timings: dict[str, float] | None = None,
) -> Iterator[Testbed]:
    """Build a stand-in VM as ``settings`` describe and release it on exit, whatever happens.

    A fresh tag, the reflink pool, the snapshot backend, one disk per spec of the app's layout
    (attached), the VM started on them, the user's config and scripts installed (when a
    config is given), the application provisioned and running. Needs root. ``timings`` (if
    given) is filled as the build goes (``vm_build_s``, ``provision_s``).
    """
    app = get_app(settings.app, app_options(settings))
    _release_dead_runs()
    tag = names.new_tag()
    timings = {} if timings is None else timings
    with contextlib.ExitStack() as own:
        t = time.monotonic()
        # First in, last out: if this process dies before the end, the reaper releases the
        # tag; if it gets to the end, the reaper finds nothing to do.
        containers = settings.vm == "container"
        watch = reaper.start(names.vmsnap_home(), tag, containers=containers)
        own.callback(watch.stop)
        own.callback(_release_rest, tag, containers)
        pool_fs: Literal["xfs", "btrfs"] = "btrfs" if settings.snapshot == "btrfs" else "xfs"
        pool = vmdisks.Pool.open(names.vmsnap_home(), tag, fs=pool_fs)
        # The owner record (made by Pool.open) goes last, once everything of the tag is gone.
        own.callback(vmdisks.release_path, names.owner_file(names.vmsnap_home(), tag))
        own.callback(pool.close)
        backend = snapshot.select_backend(settings.snapshot, pool.path)
        workdir = pool.path / f"{tag}-run"
        workdir.mkdir()
        own.callback(shutil.rmtree, workdir, True)
        disk_dir = pool
        if settings.snapshot == "btrfs":
            # The btrfs backend snapshots one subvolume holding all of the VM's images.
            subvol = pool.path / f"{tag}-source"
            snapshot.create_subvolume(subvol)
            own.callback(snapshot.delete_subvolume, subvol)
            disk_dir = dataclasses.replace(pool, path=subvol)
        source_disks = []
        for spec in app.layout(settings.disks, settings.fs):
            disk = vmdisks.create_disk(disk_dir, tag, name, spec)
            own.callback(vmdisks.release_path, disk.image)
            vmdisks.attach(disk)
            own.callback(vmdisks.detach, disk)
            source_disks.append(disk)
        vm = new_vm(settings, own, name, source_disks, tag)
        # The fork server imports the workload, the probes and the client library while the
        # application is provisioned: they start warm later, when their time counts.
        vm.warm(*FORKSERVER_PRELOAD, *app.client_modules)
        timings["vm_build_s"] = time.monotonic() - t
        log.info("VM %s of %s built in %.2f s", name, tag, timings["vm_build_s"])

        notes: list[str] = []
        sources: list[Source] = []
        assert vm.pid is not None
        staged = stage_files(settings, vm.path("/"), Containment(vm.pid, tuple(vm.private_dirs)))
        if staged is not None:
            notes, sources = staged.notes, staged.sources
        t = time.monotonic()
        app.provision(vm)
        timings["provision_s"] = time.monotonic() - t
        log.info("%s provisioned in %.2f s", settings.app, timings["provision_s"])
        yield Testbed(
            settings,
            tag,
            app,
            vm,
            source_disks,
            backend,
            pool,
            workdir,
            app.versions(vm),
            timings,
            notes,
            sources,
        )


def stage_files(
    settings: Settings, root: Path, containment: Containment | None = None
) -> Staged | None:
    """The user's files installed where the chosen framework looks for them (None: no file
    given, nothing to install)."""
    if settings.framework == "azure" and settings.config is not None:
        return stage(
            root,
            settings.config,
            settings.pre,
            settings.post,
            settings.owner,
            containment,
            at=(settings.pre_at, settings.post_at),
            modes=settings.modes,
        )
    files = settings.files()
    if not files:
        return None
    hosting = engines.get(settings.framework).host(settings.given())
    return stage_hosted(root, hosting, files, settings.owner, containment, settings.modes)


def app_options(settings: Settings) -> AppOptions:
    """What the settings say about the application's installation."""
    return AppOptions(pg_version=settings.pg_version, pg_bin=settings.pg_bin)


def _release_dead_runs() -> None:
    """What runs whose controller died left (their reaper normally got there first): found
    by tag and released, as ``vmsnap cleanup`` would; live runs are left alone."""
    from ..vm import cleanup

    found, report = cleanup.cleanup(names.vmsnap_home())
    if found.tags:
        log.warning(
            "released what dead runs left (%s): %s",
            ", ".join(found.tags),
            "; ".join(report.actions + report.errors),
        )


def _release_rest(tag: str, containers: bool) -> None:
    """The last step of every build's unwinding: release what a step interrupted half-way
    left of ``tag`` (a signal between a mount and its record, say), the owner record last.
    Normally there is nothing; the reaper is not asked, since this process is alive."""
    from ..vm import cleanup

    actions = []
    if containers:
        from ..vm.docker.container import remove_leftovers

        actions += remove_leftovers(tag, include_live=True)
    found = cleanup.find_leftovers(names.vmsnap_home(), tag_prefix=tag, include_live=True)
    if found.mounts or found.loops or found.files:
        report = cleanup.release(found)
        actions += report.actions + report.errors
    if actions:
        log.warning("released what an interrupted step of %s left: %s", tag, "; ".join(actions))


def new_vm(
    settings: Settings,
    stack: contextlib.ExitStack,
    name: str,
    disks: list[Disk],
    tag: str,
) -> StandIn:
    """Start a stand-in VM of the kind ``settings.vm`` names (host or container) on ``disks``;
    ``stack`` stops it (and, for a container, holds the Docker engine)."""
    vm: StandIn
    if settings.vm == "container":
        from ..vm.docker.container import ContainerVM
        from ..vm.docker.engine import Engine

        stack.enter_context(Engine())  # held for the whole run: both VMs use one engine
        vm = ContainerVM(name, disks, tag=tag, app=settings.app, user_image=settings.image)
    else:
        from ..vm.host import HostVM

        vm = HostVM(name, disks, tag=tag)
    vm.start()
    stack.callback(_stop, vm)
    return vm


def _stop(vm: StandIn) -> None:
    """End the VM; when a signal asks this process to end, its init gets 2 s to go on its own
    before it is killed (the VM's disks are thawed first either way)."""
    vm.stop(UNWIND_STOP_S if unwinding() else None)


UNWIND_STOP_S = 2.0
