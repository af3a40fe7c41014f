"""Installs the user's config and scripts into a machine root, as they would be on the VM.

The config becomes ``<root>/etc/azure/VMSnapshotScriptPluginConfig.json``; local pre/post
files go to the config's ``preScriptLocation``/``postScriptLocation``. Modes are kept as the
user gave them and files are owned by root unless an owner is named: permission mistakes are
part of what is tested.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..framework.checks import DEFAULT_EXTENSION_DIR, resolve
from ..framework.config import PLUGIN_CONFIG


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


def read_locations(config: Path) -> tuple[str | None, str | None]:
    """The two script locations from a config, or None where the config does not say."""
    try:
        data = json.loads(config.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    pre, post = data.get("preScriptLocation"), data.get("postScriptLocation")
    return (pre if isinstance(pre, str) else None, post if isinstance(post, str) else None)


def stage(
    root: Path | str,
    config: Path | str,
    pre: Path | str | None = None,
    post: Path | str | None = None,
    owner: str | None = None,
    private: list[str] | None = None,
) -> Staged:
    """Install ``config`` (and ``pre``/``post`` when given) into the machine rooted at ``root``.

    ``private``: the machine's directories whose writes stay in it (a stand-in VM's overlays
    and disks); a script location outside them is refused rather than written to this host.
    """
    root, config = Path(root), Path(config)
    if not config.is_file():
        raise StageError(f"config file {config} does not exist")
    uid = gid = 0
    if owner:
        try:
            entry = pwd.getpwnam(owner)
        except KeyError:
            raise StageError(f"owner {owner!r} is not a user on this machine") from None
        uid, gid = entry.pw_uid, entry.pw_gid
    target = resolve(root, PLUGIN_CONFIG)
    _install(config, target, uid, gid)
    staged = Staged(root=root, config=target)
    pre_loc, post_loc = read_locations(config)
    staged.pre_location, staged.post_location = pre_loc, post_loc
    for which, src, loc in (("pre", pre, pre_loc), ("post", post, post_loc)):
        if src is None:
            continue
        src = Path(src)
        if not src.is_file():
            raise StageError(f"{which}-script {src} does not exist")
        if not loc:
            raise StageError(f"the config has no usable {which}ScriptLocation to install {src} at")
        if private is not None and not _inside(loc, private):
            raise StageError(
                f"{which}ScriptLocation {loc} is outside the stand-in VM's private directories "
                f"({', '.join(private)}): installing it would write to this host; keep scripts "
                "under /etc/azure, /opt, /usr/local or /root"
            )
        _install(src, resolve(root, loc), uid, gid)
    return staged


def _inside(location: str, dirs: list[str]) -> bool:
    path = os.path.normpath(os.path.join(DEFAULT_EXTENSION_DIR, location))
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def _install(src: Path, dst: Path, uid: int, gid: int) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    shutil.copyfile(src, dst)
    os.chmod(dst, src.stat().st_mode & 0o7777)
    if os.geteuid() == 0:
        os.chown(dst, uid, gid)
