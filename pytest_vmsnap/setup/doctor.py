"""``vmsnap doctor``: can this machine run the harness? One line per check, each failure with
the exact Debian package or command that fixes it.

What is checked is what a cycle does, done for real where that is cheap: root; the tools of
the stand-in VM; the kernel's file systems and namespaces (an ``unshare`` like the host
stand-in's); a reflink pool made as a run makes it (:meth:`Pool.open
<pytest_vmsnap.vm.disks.Pool.open>`, a 1 GiB sparse XFS image when ``$VMSNAP_HOME`` cannot
reflink) with the snapshot backend's own probe; a loop device on a scratch ext4 image in it;
FIFREEZE and FITHAW on that image's mount through the project's freeze guard, then a FITHAW
that must find it thawed. Everything made carries a fresh run tag (``vmsnap cleanup`` finds
it if this process is killed) and is released by exact name on the way out, thawed first.
Then each application's server and client programs (found as the harness finds them,
:mod:`pytest_vmsnap.apps.discover`) and its Python client library, and for the container
stand-in whether a Docker engine answers and whether the images of the current recipes are
built (read from the engine, or from the data root of the engine vmsnap runs when none is
running; images are never built here).

A check is *required* when the options say the harness will need it (the applications named,
the stand-in kind, the file system and snapshot backend); the others are reported as ``warn``
and never change the exit code.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..apps.discover import (
    PATH_DIRS,
    NotInstalled,
    find_mariadb,
    find_postgres,
    find_program,
    postgres_versions,
)
from ..cycle.signals import sigterm_unwinds
from ..needs import (
    APP_LIBS,
    APP_PROGRAMS,
    CONTAINER_LIBS,
    CONTAINER_PROGRAMS,
    FS_PROGRAMS,
    LIBS,
    VM_PROGRAMS,
    Program,
    postgres_package,
)
from ..settings import APPS

log = logging.getLogger(__name__)

Status = Literal["ok", "FAIL", "warn", "skip"]
POOL_SIZE_GB = 1
SCRATCH_MB = 64
FREEZE_TIMEOUT_S = 10.0
"""The guard's own self-thaw: the scratch file system is frozen for milliseconds."""
APP_USERS = {"postgres": "postgres", "mariadb": "mysql", "redis": "redis"}
"""The service user each server runs as (``runuser -u``, file owners); the package makes it."""


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    """The Debian package or command that fixes a failure (empty when there is nothing to do)."""
    required: bool = True
    """A failure of a required check makes ``vmsnap doctor`` exit 1; other failures warn."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self, width: int = 20) -> str:
        """``STATUS name  detail`` and, when it did not pass, ``  fix: ...``."""
        text = f"{self.status:<4} {self.name:<{width}} {self.detail}"
        if self.fix and self.status in ("FAIL", "warn"):
            text += f"  fix: {self.fix}"
        return text


@dataclass(frozen=True)
class Options:
    """What the harness will be asked to do here (``vmsnap doctor``'s flags)."""

    apps: tuple[str, ...] = APPS
    vm: str = "host"
    fs: str = "ext4"
    snapshot: str = "reflink"
    pg_version: str | None = None
    pg_bin: str | None = None


@dataclass
class Report:
    """Every check, in order; ``ok`` when no required check failed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.status == "FAIL" and c.required for c in self.checks)

    def add(self, check: Check) -> Check:
        log.info("%s", check.line())
        self.checks.append(check)
        return check

    def format_text(self) -> str:
        width = max((len(c.name) for c in self.checks), default=0)
        lines = [c.line(width) for c in self.checks]
        failed = [c.name for c in self.checks if c.status == "FAIL" and c.required]
        warned = [c.name for c in self.checks if c.status in ("warn", "FAIL") and not c.required]
        if failed:
            lines.append(f"doctor: {len(failed)} required check(s) failed: {', '.join(failed)}")
        else:
            lines.append(
                "doctor: every required check passed"
                + (f" ({len(warned)} optional one(s) did not)" if warned else "")
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def which(name: str) -> str | None:
    """``name`` on this process's PATH or in the usual sbin/bin directories."""
    return shutil.which(name) or find_program([name], PATH_DIRS)


def _first(program: Program) -> str | None:
    for name in program.names:
        path = which(name)
        if path:
            return path
    return None


def _version_line(argv: list[str]) -> str:
    """The first line a program prints for ``--version`` ('' when it prints nothing)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else ""


_NUMBER = re.compile(r"[0-9]+\.[0-9]+(?:\.[0-9]+)?")


def short_version(line: str, name: str) -> str:
    """``name`` and the first dotted number of a ``--version`` line (``Redis server
    v=7.0.15 sha=...`` -> ``Redis 7.0.15``); ``name`` alone when there is none."""
    m = _NUMBER.search(line)
    return f"{name} {m[0]}" if m else name


def _dist_version(module: str) -> str:
    try:
        return importlib.metadata.version(LIBS[module].dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


# --- the checks ---------------------------------------------------------------------------------


def check_root() -> Check:
    uid = os.geteuid()
    if uid == 0:
        return Check("root", "ok", "running as root (loop devices, mounts, fsfreeze)")
    return Check(
        "root",
        "FAIL",
        f"running as uid {uid}: loop devices, mounts and fsfreeze need root (without it only "
        "`vmsnap lint` and a directory stand-in run)",
        fix="run it as root: sudo vmsnap doctor",
    )


def check_python() -> Check:
    v = sys.version_info
    detail = f"Python {v.major}.{v.minor}.{v.micro} ({sys.executable})"
    if v < (3, 11):
        return Check("python", "FAIL", detail + ": 3.11 or newer needed", fix="a Python >= 3.11")
    try:
        detail += f", pytest {importlib.metadata.version('pytest')}"
    except importlib.metadata.PackageNotFoundError:
        return Check("python", "FAIL", detail + ", no pytest", fix="pip install pytest-vmsnap")
    return Check("python", "ok", detail)


def check_programs(options: Options) -> list[Check]:
    """The stand-in VM's tools, one line per Debian package; ``mkfs`` per file system."""
    by_package: dict[str, list[Program]] = {}
    for program in VM_PROGRAMS:
        by_package.setdefault(program.package, []).append(program)
    needed_fs = {"ext4", options.fs}
    if options.snapshot == "btrfs":
        needed_fs.add("btrfs")
    checks = []
    for package, programs in by_package.items():
        checks.append(_programs_check(package, programs, required=True))
    for fs, program in FS_PROGRAMS.items():
        if fs == "ext4":
            continue  # in e2fsprogs' line above
        # xfs: the reflink pool is an XFS image whenever $VMSNAP_HOME cannot reflink.
        required = fs in needed_fs or (fs == "xfs" and options.snapshot == "reflink")
        checks.append(_programs_check(program.package, [program], required=required))
    return checks


def _programs_check(package: str, programs: list[Program], *, required: bool) -> Check:
    found = {p.names[0]: _first(p) for p in programs}
    lost = [name for name, path in found.items() if path is None]
    if lost:
        return Check(
            package,
            "FAIL" if required else "warn",
            f"not found: {', '.join(lost)}",
            fix=f"apt-get install {package}",
            required=required,
        )
    return Check(package, "ok", ", ".join(found), required=required)


def check_kernel(options: Options) -> list[Check]:
    """The file systems the VM needs in ``/proc/filesystems``, and its namespaces for real."""
    try:
        known = {line.split()[-1] for line in Path("/proc/filesystems").read_text().splitlines()}
    except OSError as err:
        return [Check("kernel", "FAIL", f"cannot read /proc/filesystems: {err.strerror}")]
    wanted = ["ext4", "overlay", "tmpfs", "xfs" if options.snapshot != "btrfs" else "btrfs"]
    if options.fs not in wanted:
        wanted.append(options.fs)
    lost = [fs for fs in wanted if fs not in known]
    fs_check = (
        Check(
            "file systems", "FAIL", f"the kernel lacks {', '.join(lost)}", fix="a kernel with them"
        )
        if lost
        else Check("file systems", "ok", "the kernel has " + ", ".join(wanted))
    )
    return [fs_check, check_namespaces()]


def check_namespaces() -> Check:
    """``unshare`` with the host stand-in's namespaces, running ``true``."""
    if os.geteuid() != 0:
        return Check("namespaces", "skip", "needs root")
    unshare = which("unshare")
    if unshare is None:
        return Check("namespaces", "FAIL", "unshare not found", fix="apt-get install util-linux")
    argv = [unshare, "--mount", "--net", "--uts", "--pid", "--fork", "--mount-proc", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return Check("namespaces", "FAIL", f"unshare: {err}", fix="apt-get install util-linux")
    if done.returncode:
        return Check(
            "namespaces",
            "FAIL",
            f"unshare --mount --net --uts --pid: {done.stderr.strip() or done.returncode}",
            fix="a kernel with mount, network, UTS and PID namespaces",
        )
    return Check("namespaces", "ok", "mount, network, UTS and PID namespaces (unshare)")


class _Reported(Exception):
    """A step of the scratch run failed and its check says so."""


def check_disks(options: Options) -> list[Check]:
    """A reflink pool, a loop device and a freeze, for real, as a run makes them; everything
    released again by exact name, thawed first."""
    names_ = ("reflink pool", "loop devices", "freeze")
    if os.geteuid() != 0:
        return [Check(n, "skip", "needs root") for n in names_]
    checks: list[Check] = []
    with sigterm_unwinds():
        try:
            _scratch_run(options, checks)
        except _Reported:
            pass
        except Exception as err:  # a step without its own check (the mount, a release)
            done = {c.name for c in checks}
            first = next((n for n in names_ if n not in done), names_[-1])
            checks.append(Check(first, "FAIL", f"{type(err).__name__}: {err}"))
    done = {c.name for c in checks}
    checks += [Check(n, "skip", "not reached") for n in names_ if n not in done]
    return checks


def _scratch_run(options: Options, checks: list[Check]) -> None:
    from ..vm import disks, names, reaper
    from ..vm.errors import VmError
    from ..vm.freeze import GuardFreezer
    from ..vm.linux import thaw
    from ..vm.model import DiskSpec
    from ..vm.snapshot import select_backend

    # The runs' own state directory: the owner record there keeps other runs' start-up
    # cleanup (which releases every tag nobody owns) away from this scratch run.
    home = names.vmsnap_home()
    tag = names.new_tag()
    pool_fs: Literal["xfs", "btrfs"] = "btrfs" if options.snapshot == "btrfs" else "xfs"
    mkfs_package = FS_PROGRAMS[pool_fs].package
    with contextlib.ExitStack() as own:
        # First in, last out, as a run's: if this process is killed, the reaper releases the
        # tag within seconds; if it gets to the end, the reaper finds nothing to do.
        own.callback(reaper.start(home, tag).stop)
        try:
            pool = disks.Pool.open(home, tag, fs=pool_fs, size_gb=POOL_SIZE_GB)
        except (VmError, OSError) as err:
            checks.append(
                Check(
                    "reflink pool",
                    "FAIL",
                    f"cannot make a pool in {home}: {err}",
                    fix=f"apt-get install {mkfs_package}",
                )
            )
            raise _Reported from err
        own.callback(disks.release_path, names.owner_file(home, tag))
        own.callback(pool.close)
        where = (
            f"a {POOL_SIZE_GB} GiB sparse {pool.fs} image in {home} ({pool.loopdev})"
            if pool.image
            else f"{home} itself ({pool.fs})"
        )
        try:
            backend = select_backend(options.snapshot, pool.path)
        except VmError as err:
            checks.append(
                Check(
                    "reflink pool", "FAIL", f"{where}: {err}", fix=f"apt-get install {mkfs_package}"
                )
            )
            raise _Reported from err
        checks.append(
            Check("reflink pool", "ok", f"{where}: the {backend.name} snapshot backend works")
        )

        try:
            disk = disks.create_disk(pool, tag, "doctor", DiskSpec("scratch", "/", SCRATCH_MB))
            own.callback(disks.release_path, disk.image)
            dev = disks.attach(disk)
            own.callback(disks.detach, disk)
        except (VmError, OSError) as err:
            checks.append(
                Check(
                    "loop devices",
                    "FAIL",
                    f"losetup: {err}",
                    fix="apt-get install mount (losetup); a kernel with loop devices",
                )
            )
            raise _Reported from err
        checks.append(Check("loop devices", "ok", f"losetup attached a scratch image to {dev}"))

        target = names.mount_dir(home, tag, "doctor", "scratch")
        before = {(r.kind, r.path) for r in disks.registered()}
        try:
            disks.mount(disk, target)
        finally:
            # The mount and the directories made for it, released newest first.
            made = [r for r in disks.registered() if (r.kind, r.path) not in before]
            own.callback(disks.REGISTRY.release, made)
        freezer = GuardFreezer([(str(target), "ext4")], timeout_s=FREEZE_TIMEOUT_S, wait_s=15)
        own.callback(freezer.close)
        frozen = freezer.freeze()
        thawed = freezer.thaw()
        still = thaw(target)  # FITHAW on a thawed file system fails: False is the good answer
        if frozen.code or thawed.code or still:
            detail = f"freeze: {frozen.message}; thaw: {thawed.message}"
            if still:
                detail += "; it was still frozen afterwards (thawed now)"
            checks.append(
                Check(
                    "freeze",
                    "FAIL",
                    detail,
                    fix="apt-get install util-linux; a kernel with FIFREEZE",
                )
            )
            return
        took = max(freezer.frozen_s.values(), default=0.0)
        checks.append(
            Check(
                "freeze",
                "ok",
                f"FIFREEZE and FITHAW on a scratch ext4 through the freeze "
                f"guard (frozen {took * 1000:.1f} ms, thawed after)",
            )
        )


# --- applications -------------------------------------------------------------------------------


def check_apps(options: Options) -> list[Check]:
    """Each application's programs and Python client library, on this machine."""
    host = options.vm == "host"
    checks = []
    for app in APPS:
        wanted = app in options.apps
        required = wanted and host
        if not wanted:
            continue
        checks.append(_server_check(app, options, required=required))
        checks += [_library_check(app, m, required=required) for m in APP_LIBS[app]]
    return checks


def _server_check(app: str, options: Options, *, required: bool) -> Check:
    try:
        if app == "postgres":
            return _postgres_check(options, required)
        if app == "mariadb":
            return _mariadb_check(required)
        if app == "sqlite":
            return _sqlite_check(required)
        return _named_programs_check(app, required)
    except NotInstalled as err:
        return Check(app, "FAIL" if required else "warn", err.what, err.fix, required)


def _postgres_check(options: Options, required: bool) -> Check:
    pg = find_postgres(options.pg_version, options.pg_bin)
    tools = ("initdb", "pg_ctl", "psql", "pg_controldata")
    lost = [p for p in tools if not os.access(pg.program(p), os.X_OK)]
    if lost:
        raise NotInstalled(
            f"{pg.bin} lacks {', '.join(lost)}", f"apt-get install {postgres_package(pg.version)}"
        )
    _user("postgres", postgres_package(pg.version))
    server = short_version(_version_line([pg.program("postgres"), "--version"]), "PostgreSQL")
    others = [v for v in postgres_versions() if v != pg.version]
    detail = f"{server} in {pg.bin}; the VM's cluster: {pg.data}"
    if others:
        detail += f" (also installed: {', '.join(others)})"
    return Check("postgres", "ok", detail, required=required)


def _mariadb_check(required: bool) -> Check:
    programs = find_mariadb()
    _user("mysql", "mariadb-server")
    line = _version_line([programs.server, "--version"])
    server = short_version(line, "MySQL" if "mariadb" not in line.lower() else "MariaDB")
    paths = ", ".join(asdict(programs).values())
    return Check("mariadb", "ok", f"{server}: {paths}", required=required)


def _sqlite_check(required: bool) -> Check:
    """The SQLite app needs only Python's sqlite3 module; the ``sqlite3`` shell is what
    scripts call (a missing one warns)."""
    try:
        import sqlite3
    except ImportError:
        return Check(
            "sqlite",
            "FAIL",
            "this Python has no sqlite3 module",
            fix="a Python built with SQLite (Debian's python3)",
            required=required,
        )
    module = f"Python's sqlite3 module with SQLite {sqlite3.sqlite_version}"
    shell = which("sqlite3")
    if shell is None:
        return Check(
            "sqlite",
            "warn",
            f"{module}; no sqlite3 shell for scripts",
            fix="apt-get install sqlite3",
            required=False,
        )
    version = short_version(_version_line([shell, "--version"]), "sqlite3")
    return Check("sqlite", "ok", f"{module}; {version} shell ({shell})", required=required)


def _named_programs_check(app: str, required: bool) -> Check:
    found = []
    for program in APP_PROGRAMS[app]:
        path = _first(program)
        if path is None:
            raise NotInstalled(f"{' or '.join(program.names)} is not installed", program.fix)
        found.append(path)
    if app in APP_USERS:
        _user(APP_USERS[app], APP_PROGRAMS[app][0].package)
    version = short_version(_version_line([found[0], "--version"]), app.capitalize())
    return Check(app, "ok", f"{version}: {', '.join(found)}", required=required)


def _user(name: str, package: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        what = f"no user {name!r} (the package makes it)"
        raise NotInstalled(what, f"apt-get install {package}") from None


def _library_check(app: str, module: str, *, required: bool) -> Check:
    lib = LIBS[module]
    name = f"{app} client"
    if lib.installed():
        return Check(name, "ok", f"{module} {_dist_version(module)}", required=required)
    return Check(
        name,
        "FAIL" if required else "warn",
        f"{module} is not installed in this Python ({sys.executable})",
        fix=lib.fix,
        required=required,
    )


# --- the container stand-in ---------------------------------------------------------------------


def check_container(options: Options) -> list[Check]:
    """Docker's client libraries, the engine, the programs and the images of the current
    recipes; required only for ``--vm container``."""
    required = options.vm == "container"
    bad: Status = "FAIL" if required else "warn"
    checks = []
    lost = [m for m in CONTAINER_LIBS if not LIBS[m].installed()]
    if lost:
        checks.append(
            Check(
                "container libraries",
                bad,
                f"not installed: {', '.join(lost)}",
                fix=LIBS[lost[0]].fix,
                required=required,
            )
        )
    else:
        versions = ", ".join(f"{m} {_dist_version(m)}" for m in CONTAINER_LIBS)
        checks.append(Check("container libraries", "ok", versions, required=required))
    for program in CONTAINER_PROGRAMS:
        if program.names[0] == "debootstrap":
            continue  # only for the base image: see the images' line
        checks.append(_programs_check(program.package, [program], required=required))
    client = _engine_client() if not lost else None
    checks.append(_engine_check(client, required, asked=not lost))
    checks += _images_checks(options, client, required)
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()
    return checks


def _engine_client() -> Any:
    from ..vm.docker.engine import ping

    try:
        return ping()
    except Exception:  # the SDK present but broken: reported as no engine
        return None


def _engine_check(client: Any, required: bool, *, asked: bool = True) -> Check:
    from ..vm.docker.engine import DEFAULT_SOCKET, state_dir

    bad: Status = "FAIL" if required else "warn"
    if client is not None:
        try:
            info = client.version()
            detail = f"answers on {DEFAULT_SOCKET}: Docker {info.get('Version', '?')}"
        except Exception:
            detail = f"answers on {DEFAULT_SOCKET}"
        return Check("docker engine", "ok", detail, required=required)
    dockerd = which("dockerd")
    if dockerd is None:
        return Check(
            "docker engine",
            bad,
            "no engine answers and dockerd is not installed",
            fix="apt-get install docker.io iptables",
            required=required,
        )
    if not asked:  # no Docker SDK to ask with: the line above says how to get it
        return Check(
            "docker engine", "skip", f"not asked (no Docker SDK); {dockerd} is installed", "", False
        )
    if os.geteuid() != 0:
        return Check(
            "docker engine",
            bad,
            "no engine answers; starting dockerd needs root",
            fix="run it as root",
            required=required,
        )
    return Check(
        "docker engine",
        "ok",
        f"none answers now; vmsnap starts its own ({dockerd}, data root {state_dir()}/data) "
        "while a container stand-in runs",
        required=required,
    )


def _images_checks(options: Options, client: Any, required: bool) -> list[Check]:
    from ..vm.docker import images

    try:
        refs = {app: images.image_ref(app) for app in options.apps}
        base = images.base_ref()
    except Exception as err:
        return [
            Check(
                "docker images",
                "FAIL" if required else "warn",
                f"cannot read the image recipes: {err}",
                required=required,
            )
        ]
    have: set[str] | None
    if client is not None:
        source = "the engine"
        have = {ref for ref in [base, *refs.values()] if _engine_has(client, ref)}
    else:
        have, source = _built_offline()
        if have is None:
            return [
                Check(
                    "docker images",
                    "skip",
                    "no engine answers, and vmsnap's engine has no data root yet: nothing built",
                    required=False,
                )
            ]
    missing = [ref for ref in refs.values() if ref not in have]
    checks = []
    if missing:
        checks.append(
            Check(
                "docker images",
                "warn",
                f"not built yet ({source}): {', '.join(missing)}; the first container "
                "stand-in builds them (debootstrap and apt: minutes, once)",
                fix="vmsnap run --vm container ... (doctor never builds images)",
                required=False,
            )
        )
    else:
        checks.append(
            Check(
                "docker images",
                "ok",
                f"built ({source}): {', '.join(refs.values())}",
                required=required,
            )
        )
    if base not in have:
        checks.append(_base_build_check(required))
    return checks


def _engine_has(client: Any, ref: str) -> bool:
    try:
        client.images.get(ref)
    except Exception:
        return False
    return True


def _built_offline() -> tuple[set[str] | None, str]:
    """The image tags of vmsnap's own engine, read from its data root while it is stopped
    (``image/overlay2/repositories.json``); None when there is none."""
    from ..vm.docker.engine import state_dir

    path = state_dir() / "data" / "image" / "overlay2" / "repositories.json"
    try:
        repos = json.loads(path.read_text()).get("Repositories", {})
    except (OSError, ValueError, AttributeError):
        return None, ""
    tags = {ref for refs in repos.values() if isinstance(refs, dict) for ref in refs}
    return tags, f"vmsnap's engine data root, {path.parent.parent.parent}"


def _base_build_check(required: bool) -> Check:
    """What building the base image needs: debootstrap and an apt source for bookworm."""
    from ..vm.docker import images

    bad: Status = "FAIL" if required else "warn"
    if which("debootstrap") is None:
        return Check(
            "base image build",
            bad,
            "debootstrap is not installed",
            fix="apt-get install debootstrap",
            required=required,
        )
    try:
        images.debian_mirror()
    except Exception as err:
        return Check(
            "base image build",
            bad,
            str(err),
            fix="an apt source for bookworm main in /etc/apt/sources.list.d",
            required=required,
        )
    return Check(
        "base image build",
        "ok",
        "debootstrap and an apt source for bookworm main are there",
        required=required,
    )


# --- all of it ----------------------------------------------------------------------------------

CheckGroup = Callable[[Options], list[Check]]


def _groups() -> Iterator[CheckGroup]:
    yield lambda o: [check_root(), check_python()]
    yield check_programs
    yield check_kernel
    yield check_disks
    yield check_apps
    yield check_container


def run_checks(options: Options | None = None) -> Report:
    """Every check for ``options`` (default: all applications, the host stand-in)."""
    options = options or Options()
    report = Report()
    for group in _groups():
        for check in group(options):
            report.add(check)
    return report
