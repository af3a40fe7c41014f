"""The user's own image as a stand-in VM: their image plus a thin layer of ours, built here.

``vmsnap_image = myorg/db:prod`` (``--image``) runs the container stand-in from an image the
user names, typically their production image, so the scripts meet the server, paths, users
and configuration they meet in production. What vmsnap itself runs inside the VM is added in
a thin layer (``recipes/layer/``), and only what the image lacks:

- ``python3`` (3.11 or newer) and the application's client library (``python3-psycopg``,
  ``python3-pymysql``, ``python3-redis``) for the in-VM agent, workload and probes;
- ``mount``/``umount`` and ``runuser`` (util-linux), ``useradd``/``groupadd``/``usermod``
  (passwd) for the VM's init and the application module;
- the service user (``postgres``, ``mysql``, ``redis``) with the ids it has on this host, an
  existing one renumbered (its files follow): the harness sets and reads owners from the host
  side (``vm.path``), as :mod:`.images` explains;
- the directories the application module writes its configuration into;
- no entrypoint, command, health check or user of the image's: the VM's init is PID 1, root.

Nothing of the application is added: an image without its server is refused, as is one that
has no ``/bin/sh``, or lacks something of ours and has no ``apt-get`` (not Debian- or
Ubuntu-based), or whose ``python3`` is too old. Missing packages come from the image's own
apt sources, so no apt source of this host is needed (the ``bookworm`` source is only needed
to debootstrap vmsnap's own base image, which a user image does not use).

The layer is ``vmsnap/layer-<image name>:<hash>``, the hash over the image's ID, the layer
recipe and its build arguments: a second run with the same image builds nothing, and a new
build of the user's image (a new ID) gets a new layer; older layers of the same image name
are removed once the new one exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import platform
import re
import tarfile
import time
from dataclasses import dataclass
from typing import Any

from .engine import _flock, state_dir
from .images import (
    BUILDER_VERSION,
    LABEL_RECIPE,
    RECIPES,
    Built,
    ImageError,
    _client,
    _exists,
    _hash_tree,
    build_args,
    recipe_name,
)

log = logging.getLogger(__name__)

LAYER_RECIPE = "layer"
LABEL_FROM = "vmsnap.layer.from"
"""The user's image name a layer was built over (and ``vmsnap.layer.from-id``, its ID)."""
LABEL_FROM_ID = "vmsnap.layer.from-id"
BASE_FILES = ("usr/sbin/policy-rc.d", "usr/local/sbin/vmsnap-users")
"""Files of our base image's overlay that the layer reuses (``recipes/base/rootfs/``)."""
REFUSED = "VMSNAP-REFUSED:"

COMMON_NEEDS = (
    "cmd:python3:python3",
    "cmd:mount:mount",
    "cmd:umount:mount",
    "cmd:runuser:util-linux",
    "cmd:useradd:passwd",
    "cmd:groupadd:passwd",
    "cmd:usermod:passwd",
)
"""What the VM's init, the agent and the application modules run inside any stand-in."""
CLIENT_NEEDS: dict[str, tuple[str, ...]] = {
    "pg15": ("py:psycopg:python3-psycopg",),
    "mariadb": ("py:pymysql:python3-pymysql",),
    "redis": ("py:redis:python3-redis",),
    "sqlite": ("py:sqlite3:python3",),
}
"""The client library of each application's in-VM code, with its Debian package."""
SERVERS: dict[str, str] = {
    "pg15": "PostgreSQL server|/usr/lib/postgresql/*/bin/postgres",
    "mariadb": "MariaDB or MySQL server|/usr/sbin/mariadbd /usr/sbin/mysqld "
    "/usr/libexec/mariadbd /usr/libexec/mysqld /usr/bin/mariadbd /usr/bin/mysqld",
    "redis": "Redis server|/usr/bin/redis-server /usr/local/bin/redis-server",
    "sqlite": "",
}
"""``LABEL|PATHS``: the application's server, which the image must have (SQLite has none)."""
APP_DIRS: dict[str, tuple[str, ...]] = {
    "pg15": (),
    "mariadb": ("/etc/mysql/conf.d",),
    "redis": ("/etc/redis",),
    "sqlite": (),
}
"""Directories the application module writes its configuration into."""
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le"}


class UnusableImage(ImageError):
    """The user's image cannot be a stand-in VM: the message says why, and the fix."""


_REFUSED: dict[str, str] = {}
"""Layers refused in this process, by tag: every cycle of a battery asks again, and a refusal
holds until the image (its ID) or the recipe changes."""


@dataclass(frozen=True)
class Source:
    """The user's image as found on this machine."""

    name: str
    id: str
    arch: str
    os: str


def layer_args(name: str) -> dict[str, str]:
    """Build arguments of the layer for recipe or app ``name``."""
    recipe = recipe_name(name)
    return {
        "VMSNAP_NEEDS": " ".join((*COMMON_NEEDS, *CLIENT_NEEDS[recipe])),
        "VMSNAP_SERVER": SERVERS[recipe],
        "VMSNAP_USERS": build_args(recipe)["VMSNAP_USERS"],
        "VMSNAP_DIRS": " ".join(APP_DIRS[recipe]),
    }


def layer_hash(image_id: str, app: str) -> str:
    """Hash of the layer over image ``image_id`` for ``app``: the image, recipe and arguments."""
    h = hashlib.sha256()
    h.update(f"layer\0{BUILDER_VERSION}\0{image_id}\0".encode())
    for key, value in sorted(layer_args(app).items()):
        h.update(f"{key}={value}\0".encode())
    _hash_tree(h, RECIPES / LAYER_RECIPE)
    for rel in BASE_FILES:
        h.update(rel.encode() + b"\0" + (RECIPES / "base" / "rootfs" / rel).read_bytes())
    return h.hexdigest()[:12]


def layer_repo(image: str) -> str:
    """``vmsnap/layer-<image name>``: a repository name Docker accepts, one per user image."""
    slug = re.sub(r"[^a-z0-9]+", "-", image.lower()).strip("-")[:80].strip("-")
    return f"vmsnap/layer-{slug or 'image'}"


def find_image(client: Any, image: str) -> Source:
    """The user's image on this machine, or :class:`UnusableImage` saying how to get it."""
    import docker

    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        raise UnusableImage(
            f"image {image} is not on this machine (vmsnap pulls nothing): docker pull, "
            "docker load or docker build it first"
        ) from None
    except docker.errors.APIError as err:
        raise UnusableImage(f"image {image}: {err.explanation or err}") from None
    attrs = found.attrs
    return Source(image, found.id, str(attrs.get("Architecture", "")), str(attrs.get("Os", "")))


def ensure_layer(image: str, app: str, client: Any = None) -> Built:
    """The stand-in image for the user's ``image`` running ``app``: the cached layer, or one
    built now over the image as it is (its ID). :class:`UnusableImage` when it cannot be."""
    client, engine = _client(client)
    try:
        began = time.monotonic()
        source = find_image(client, image)
        ref = f"{layer_repo(image)}:{layer_hash(source.id, app)}"
        if _exists(client, ref):
            return Built(ref, False, time.monotonic() - began)
        if ref in _REFUSED:
            raise UnusableImage(_REFUSED[ref])
        try:
            _check_platform(source)
            with _flock(state_dir() / "build.lock"):
                if _exists(client, ref):  # another worker built it while we waited
                    return Built(ref, False, time.monotonic() - began)
                log.info(
                    "building the vmsnap layer over %s (%s) for %s: first use of this image",
                    image,
                    source.id[7:19],
                    app,
                )
                seconds = _build(client, source, app, ref)
        except UnusableImage as err:
            _REFUSED[ref] = str(err)
            raise
        log.info("built %s in %.1f s", ref, seconds)
        _remove_stale(client, ref)
        return Built(ref, True, time.monotonic() - began, {"build_layer_s": seconds})
    finally:
        if engine is not None:
            engine.release()


def _check_platform(source: Source) -> None:
    here = _ARCH.get(platform.machine(), platform.machine())
    if source.os and source.os != "linux":
        raise UnusableImage(f"image {source.name} is a {source.os} image, not a Linux one")
    if source.arch and source.arch != here:
        raise UnusableImage(
            f"image {source.name} is built for {source.arch} and this machine runs {here}: "
            f"use the {here} build of the image"
        )


def _context() -> io.BytesIO:
    """The build context: the layer recipe and the base files it reuses, as a tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted((RECIPES / LAYER_RECIPE).iterdir()):
            tar.add(path, arcname=path.name)
        for rel in BASE_FILES:
            path = RECIPES / "base" / "rootfs" / rel
            tar.add(path, arcname=path.name)
    buf.seek(0)
    return buf


def _build(client: Any, source: Source, app: str, ref: str) -> float:
    import docker

    t = time.monotonic()
    logfile = state_dir() / f"build-{ref.split('/', 1)[1].split(':')[0]}.log"
    lines: list[str] = []
    refused = ""
    made: list[str] = []  # the steps' images, removed again if the build fails
    try:
        # The user's image by ID: the layer is built over exactly what was hashed. Its RUN
        # uses the host's network (our engine has no bridge) to reach the image's apt sources.
        for chunk in client.api.build(
            fileobj=_context(),
            custom_context=True,
            tag=ref,
            buildargs={"BASE": source.id, **layer_args(app)},
            network_mode="host",
            rm=True,
            forcerm=True,
            pull=False,
            labels={
                LABEL_RECIPE: ref.split(":")[1],
                LABEL_FROM: source.name,
                LABEL_FROM_ID: source.id,
            },
            decode=True,
        ):
            text = chunk.get("stream", "")
            lines.append(text)
            step = re.fullmatch(r" ---> ([0-9a-f]{12})\s*", text)
            if step and not source.id.startswith(f"sha256:{step.group(1)}"):
                made.append(step.group(1))
            if text.startswith("vmsnap-layer: "):
                log.info("%s", text[len("vmsnap-layer: ") :].strip())
            if REFUSED in text and not refused:
                refused = text.split(REFUSED, 1)[1].strip()
            if "error" in chunk:
                lines.append(chunk["error"])
                _remove_steps(client, made)
                raise UnusableImage(_refusal(source.name, refused, chunk["error"], logfile))
    except docker.errors.APIError as err:
        _remove_steps(client, made)
        raise ImageError(f"docker build of {ref} failed: {err}; see {logfile}") from None
    finally:
        logfile.parent.mkdir(parents=True, exist_ok=True)
        logfile.write_text("".join(lines))
    if not _exists(client, ref):
        raise ImageError(f"docker build did not create {ref}; see {logfile}")
    return time.monotonic() - t


def _remove_steps(client: Any, made: list[str]) -> None:
    """The images a failed build's steps left (untagged), last first; one that something
    else now builds on stays (Docker refuses to remove it)."""
    import docker

    for image in reversed(made):
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(image, noprune=False)


def _refusal(image: str, refused: str, error: str, logfile: Any) -> str:
    """One line: why the user's image cannot be a stand-in, and the fix."""
    if refused:
        return f"image {image} cannot be a stand-in VM: {refused}"
    if "/bin/sh" in error and "no such file" in error.lower():
        return (
            f"image {image} cannot be a stand-in VM: it has no /bin/sh (a distroless or "
            "scratch image); use the Debian or Ubuntu image it is built from, with your "
            "application installed"
        )
    if "exec format error" in error:
        return f"image {image} is built for another CPU architecture than this machine's"
    return f"the vmsnap layer over image {image} failed: {error.strip()}; see {logfile}"


def _remove_stale(client: Any, ref: str) -> None:
    """Remove older layers of the same user image name (by exact tag, ours only): the image
    was rebuilt. One that a running VM still uses stays (Docker refuses; tried next time)."""
    import docker

    repo = ref.split(":")[0]
    for image in client.images.list(name=repo):
        for tag in image.tags:
            if tag != ref and tag.startswith(repo + ":") and LABEL_FROM in image.labels:
                try:
                    client.images.remove(tag, noprune=False)
                    log.info("removed %s: an older layer of the same image name", tag)
                except docker.errors.APIError:
                    pass


__all__ = ["UnusableImage", "ensure_layer", "find_image", "layer_hash", "layer_repo"]
