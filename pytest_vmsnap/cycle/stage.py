"""Installs the user's config and scripts into a machine root, as they would be on the VM.

The config becomes ``<root>/etc/azure/VMSnapshotScriptPluginConfig.json``; local pre/post
files go to the config's ``preScriptLocation``/``postScriptLocation``. Modes are kept as the
user gave them, unless ``modes`` declares the ones the files have when deployed (git keeps
only 644 and 755), and files are owned by root unless an owner is named: permission mistakes
are part of what is tested. :attr:`Staged.sources` maps every installed file back to the
user's, so that what the framework or lint says about it can name the user's file.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..framework.azure.checks import DEFAULT_EXTENSION_DIR, resolve
from ..framework.azure.config import PLUGIN_CONFIG
from ..framework.engine import Hosting
from ..lint.sources import Source
from ..vm import linux

log = logging.getLogger(__name__)

Modes = Mapping[str, int] | Sequence[tuple[str, int]]
"""Declared modes by role (``config``, ``pre``, ``post``), as in ``Settings.modes``."""


class StageError(ValueError):
    """The user's files cannot be installed (one clear sentence, no traceback)."""


@dataclass
class Staged:
    """What was installed where (paths inside the machine and on this host)."""

    root: Path
    config: Path
    pre_location: str | None = None
    post_location: str | None = None
    notes: list[str] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    """Each installed file: the user's path, where it went, its mode and the mode given."""


def shown(path: Path | str) -> str:
    """``path`` as its user names it: relative to the working directory when under it."""
    path = Path(path)
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_locations(config: Path) -> tuple[str | None, str | None]:
    """The two script locations from a config, or None where the config does not say."""
    try:
        data = json.loads(config.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    pre, post = data.get("preScriptLocation"), data.get("postScriptLocation")
    return (pre if isinstance(pre, str) else None, post if isinstance(post, str) else None)


@dataclass(frozen=True)
class Containment:
    """Where writes may land in a running stand-in VM: the mounts whose writes stay inside it
    (its overlays, private tmpfs and disks), as mount points seen by the VM's PID ``pid``."""

    pid: int
    private: tuple[str, ...]


def stage(
    root: Path | str,
    config: Path | str,
    pre: Path | str | None = None,
    post: Path | str | None = None,
    owner: str | None = None,
    containment: Containment | None = None,
    at: tuple[str | None, str | None] = (None, None),
    modes: Modes = (),
) -> Staged:
    """Install ``config`` (and ``pre``/``post`` when given) into the machine rooted at ``root``.

    ``modes`` (by role: ``config``, ``pre``, ``post``) are the modes the files get in the
    machine, as deployed; a role it does not name keeps the mode its file has here.

    A config that names no readable location is installed all the same (the framework then
    reports what the extension would); a script for it goes to ``at`` (pre, post) when given,
    else it is not installed; ``Staged.notes`` say which.

    Every path is resolved inside ``root``, as the VM would resolve it: ``..`` and absolute
    symlinks never leave it (``openat2`` with ``RESOLVE_IN_ROOT``). With ``containment`` a
    location on a mount that is not one of the VM's private mounts (a host directory bound
    into it, a host directory not overlaid) is refused rather than written to this host.
    """
    root, config = Path(root), Path(config)
    _check_source(config, "config")
    uid, gid = _owner_ids(owner)
    declared = dict(modes)
    root.mkdir(parents=True, exist_ok=True)  # a machine root of our own (lint, directory VM)
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        staged = Staged(root=root, config=resolve(root, PLUGIN_CONFIG))
        staged.sources.append(_source("config", config, PLUGIN_CONFIG, declared))
        _install(config, root_fd, PLUGIN_CONFIG, uid, gid, containment, staged.sources[-1])
        pre_loc, post_loc = read_locations(config)
        staged.pre_location, staged.post_location = pre_loc, post_loc
        places = (("pre", pre, pre_loc, at[0]), ("post", post, post_loc, at[1]))
        for which, src, loc, fallback in places:
            if src is None:
                continue
            _check_source(Path(src), f"{which}-script")
            if not loc:
                # The config is installed as given and the cycle runs as the extension would
                # run it (it reports 305/304): the script goes where the user says, or nowhere.
                why = _why_no_location(config, which)
                if not fallback:
                    staged.notes.append(f"{src} was not installed: {why}")
                    continue
                staged.notes.append(f"{src} was installed at {fallback} (--{which}-at): {why}")
                loc = fallback
            staged.sources.append(_source(which, Path(src), loc, declared))
            _install(Path(src), root_fd, loc, uid, gid, containment, staged.sources[-1])
    finally:
        os.close(root_fd)
    for s in staged.sources:
        if s.declared and s.installed_mode != s.mode:
            log.info(
                "%s installed at %s with mode %03o (declared) instead of its own %03o",
                s.path,
                s.location,
                s.installed_mode,
                s.mode,
            )
    return staged


def stage_hosted(
    root: Path | str,
    hosting: Hosting,
    files: Mapping[str, Path],
    owner: str | None = None,
    containment: Containment | None = None,
    modes: Modes = (),
) -> Staged:
    """Install the user's ``files`` (by role) where a framework other than Azure looks for
    them (``hosting``, from its engine), and the files it needs that the user did not give.

    The same rules as :func:`stage`: paths resolved inside ``root``, nothing written to a
    mount the VM shares with this host, modes as given or declared, owner root unless named.
    """
    if hosting.refused:
        raise StageError(hosting.refused)
    root = Path(root)
    uid, gid = _owner_ids(owner)
    declared = dict(modes)
    root.mkdir(parents=True, exist_ok=True)
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    config = next((p.location for p in hosting.placements if p.role == "config"), None)
    staged = Staged(root=root, config=root / (config or "").lstrip("/"))
    try:
        for place in hosting.placements:
            src = files.get(place.role)
            if src is None:
                continue
            _check_source(Path(src), place.role)
            staged.sources.append(_source(place.role, Path(src), place.location, declared))
            _install(Path(src), root_fd, place.location, uid, gid, containment, staged.sources[-1])
        for gen in hosting.generated:
            with tempfile.NamedTemporaryFile(prefix="vmsnap-gen-") as tmp:
                tmp.write(gen.content)
                tmp.flush()
                made = Source("generated", gen.location, gen.location, gen.mode, gen.mode, True)
                _install(Path(tmp.name), root_fd, gen.location, 0, 0, containment, made)
            staged.notes.append(f"the harness wrote {gen.location}: {gen.why}")
    finally:
        os.close(root_fd)
    return staged


def _owner_ids(owner: str | None) -> tuple[int, int]:
    """The uid and gid of ``owner`` (root when None); StageError for an unknown user."""
    if not owner:
        return 0, 0
    try:
        entry = pwd.getpwnam(owner)
    except KeyError:
        raise StageError(f"owner {owner!r} is not a user on this machine") from None
    return entry.pw_uid, entry.pw_gid


def _source(role: str, src: Path, location: str, declared: Mapping[str, int]) -> Source:
    mode = src.stat().st_mode & 0o7777
    return Source(
        role=role,
        path=shown(src),
        location=location,
        mode=mode,
        installed_mode=declared.get(role, mode),
        declared=role in declared,
    )


def _check_source(path: Path, what: str) -> None:
    if path.is_dir():
        raise StageError(f"{what} {path} is a directory, not a file")
    if not path.is_file():
        raise StageError(f"{what} {path} does not exist")


def _why_no_location(config: Path, which: str) -> str:
    """Why the config names no usable ``<which>ScriptLocation``, in the user's terms."""
    key = f"{which}ScriptLocation"
    try:
        data = json.loads(config.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        return f"the config is not UTF-8 text (byte {err.start}), so it names no {key}"
    except ValueError as err:
        return f"the config is not valid JSON ({err}), so it names no {key}"
    except RecursionError:
        return f"the config's JSON is nested too deeply to read, so it names no {key}"
    except OSError as err:
        return f"the config cannot be read ({err.strerror})"
    if not isinstance(data, dict):
        return f"the config is a JSON {type(data).__name__}, not an object with a {key}"
    if key not in data:
        return f"the config has no {key}"
    return f"the config's {key} is {data[key]!r}, not a path"


def _install(
    src: Path,
    root_fd: int,
    location: str,
    uid: int,
    gid: int,
    containment: Containment | None,
    source: Source,
) -> None:
    """Copy ``src`` to ``location`` inside the root (with ``source.installed_mode``, owned by
    uid:gid); anything the VM's file system refuses is one line (StageError)."""
    if "\0" in location:
        raise StageError(f"{location!r} contains a NUL byte: no file can have that name")
    try:
        _install_in_root(src, root_fd, location, uid, gid, containment, source.installed_mode)
    except OSError as err:
        raise StageError(
            f"cannot install {src} at {location} in the VM: {err.strerror or err}"
        ) from None


def _install_in_root(
    src: Path,
    root_fd: int,
    location: str,
    uid: int,
    gid: int,
    containment: Containment | None,
    mode: int,
) -> None:
    path = os.path.normpath(os.path.join(DEFAULT_EXTENSION_DIR, location))
    parent, name = os.path.split(path)
    if name in ("", ".", ".."):
        raise StageError(f"{location} is a directory in the VM, not a file to install")
    dir_fd = _make_dirs(root_fd, parent, location, containment)
    try:
        if containment is not None:
            _check_private(dir_fd, location, containment)
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except (IsADirectoryError, PermissionError) as err:
            # unlink(2) of a directory fails with EISDIR, or EPERM on some file systems.
            if _is_dir(dir_fd, name):
                raise StageError(
                    f"{location} is a directory in the VM, not a file to install"
                ) from None
            raise StageError(f"cannot replace {location} in the VM: {err.strerror}") from None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
        try:
            with open(src, "rb") as data:
                while chunk := data.read(1 << 20):
                    os.write(fd, chunk)
            os.fchmod(fd, mode)
            if os.geteuid() == 0:
                os.fchown(fd, uid, gid)
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def _is_dir(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _make_dirs(
    root_fd: int, parent: str, location: str, containment: Containment | None, hops: int = 0
) -> int:
    """An ``O_PATH`` descriptor of ``parent`` inside the root, made as ``mkdir -p`` would make
    it; every step is resolved inside the root, and nothing is made on a shared mount. A
    symlink on the way whose target is missing leads to that target, made inside the root."""
    parts = [p for p in parent.split("/") if p]
    for i in range(len(parts) + 1):
        sub = "/".join(parts[:i]) or "."
        try:
            fd = linux.openat2(root_fd, sub, _DIR, resolve=linux.IN_ROOT)
        except FileNotFoundError:
            above = linux.openat2(
                root_fd, "/".join(parts[: i - 1]) or ".", _DIR, resolve=linux.IN_ROOT
            )
            try:
                link = _readlink(above, parts[i - 1])
                if link is not None and hops < 40:  # the kernel's own limit (ELOOP)
                    here = "/" + "/".join(parts[: i - 1])
                    target = os.path.normpath(os.path.join(here, link, *parts[i:]))
                    return _make_dirs(root_fd, target, location, containment, hops + 1)
                if containment is not None:
                    _check_private(above, location, containment)
                os.mkdir(parts[i - 1], 0o755, dir_fd=above)
            except OSError as err:
                raise StageError(
                    f"cannot create {'/' + sub} in the VM for {location}: {err.strerror}"
                ) from None
            finally:
                os.close(above)
            fd = linux.openat2(root_fd, sub, _DIR, resolve=linux.IN_ROOT)
        except NotADirectoryError:
            raise StageError(f"{location}: /{sub} is a file in the VM, not a directory") from None
        if i < len(parts):
            os.close(fd)
        else:
            return fd
    raise AssertionError("unreachable")


def _readlink(dir_fd: int, name: str) -> str | None:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None


def _check_private(dir_fd: int, location: str, containment: Containment) -> None:
    """Refuse a directory whose mount is not one of the VM's private mounts."""
    mounts = {m.mount_id: m.target for m in linux.read_mounts(containment.pid)}
    where = mounts.get(linux.mount_id(dir_fd))
    if where not in containment.private:
        raise StageError(
            f"{location} is on {where or 'a mount of this host'}, which is not the stand-in "
            "VM's own (the harness's files are read-only there): keep scripts under "
            "/etc/azure, /opt, /usr/local or /root"
        )


_DIR = os.O_PATH | os.O_DIRECTORY
