"""Images for the container stand-in, built on this machine: no image registry is involved.

Base image ``vmsnap/base:<hash>``: ``debootstrap --variant=minbase bookworm ROOTFS MIRROR``,
where MIRROR is the Debian mirror this machine's apt is configured with (read at runtime from
``/etc/apt/sources.list.d/*.sources`` or ``/etc/apt/sources.list``; no host name is written in
this project). The rootfs gets the files under ``recipes/base/rootfs/`` (a
``policy-rc.d`` so package installs never start services, and the ``vmsnap-users`` helper) and
the machine's own bookworm apt sources, then ``tar -C ROOTFS -c . | docker import``.

Application images ``vmsnap/<name>:<hash>`` (``pg15``, ``mariadb``, ``redis``, ``sqlite``) are
built FROM the base with the recipes in ``recipes/<name>/Dockerfile``: Debian's packages
as a production server has them, util-linux, iproute2, procps, Debian's ``python3`` and the
Debian packages of the client libraries the in-VM code uses. Our package itself is not copied
in: the container stand-in mounts the repository read-only at its own path.

Cache: a tag is a hash of everything that goes into the image (the base's debootstrap
parameters and overlay files; a recipe's files, its base and its build arguments), so an image
that exists is what the recipe would build and :func:`ensure_image` returns at once. Builds
take an exclusive ``flock`` (``$VMSNAP_HOME/docker/build.lock``), so parallel pytest-xdist
workers build each image once: the others wait, then find it.

Service users (``postgres``, ``mysql``, ``redis``) are created in the image with the ids they
have on the building host, when the host has them: the harness reaches into a stand-in through
the host path ``vm.path(...)`` for both kinds of VM, and with equal ids an owner set or read
from the host side is the same owner inside the container.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import VmError
from .engine import IN_VM_LIB, LABEL_TAG, _flock, package_mount, state_dir

RECIPES = Path(
    os.environ.get("VMSNAP_IMAGE_RECIPES") or str(resources.files(__package__) / "recipes")
)
"""The recipes, shipped as package data: ``base/rootfs/`` and ``<name>/Dockerfile``
(``$VMSNAP_IMAGE_RECIPES`` overrides)."""
SUITE = "bookworm"
VARIANT = "minbase"
BASE_REPO = "vmsnap/base"
BUILDER_VERSION = "1"
"""Bump when the build steps in this module change what an image holds."""
LABEL_RECIPE = "vmsnap.recipe"
APP_IMAGES = {"postgres": "pg15", "mariadb": "mariadb", "redis": "redis", "sqlite": "sqlite"}
SERVICE_USERS: dict[str, tuple[str, ...]] = {
    "pg15": ("postgres",),
    "mariadb": ("mysql",),
    "redis": ("redis",),
    "sqlite": (),
}
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
)
IN_VM_MODULES = (
    "pytest_vmsnap.cycle.agent",
    "pytest_vmsnap.vm.guest.freeze_guard",
    "pytest_vmsnap.vm.guest.container_init",
    "pytest_vmsnap.vm.guest.forkserver",
    "pytest_vmsnap.evidence.workload",
    "pytest_vmsnap.evidence.probe",
    "pytest_vmsnap.apps.sqlite",
    "pytest_vmsnap.apps.postgres",
    "pytest_vmsnap.apps.mariadb",
    "pytest_vmsnap.apps.redis",
)
"""Modules the stand-in runs inside the VM with the image's /usr/bin/python3."""
CLIENT_MODULES: dict[str, tuple[str, ...]] = {
    "pg15": ("psycopg",),
    "mariadb": ("pymysql",),
    "redis": ("redis",),
    "sqlite": ("sqlite3",),
}
"""The client library each app's in-VM code imports (from the image's Debian packages)."""

Log = Callable[[str], None]


class ImageError(VmError):
    """An image could not be built (the message names the step and where its log is)."""


@dataclass
class Built:
    """The result of :func:`ensure_image`: which image, and whether this call built it."""

    ref: str
    built: bool
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)
    base: Built | None = None


# --- the apt mirror -----------------------------------------------------------------------------


@dataclass
class AptSource:
    """One apt source: a URI with suites and components (deb822 stanza or one-line entry)."""

    uris: list[str]
    suites: list[str]
    components: list[str]
    signed_by: str = ""


def apt_sources(root: Path | str = "/") -> list[AptSource]:
    """The enabled ``deb`` sources this machine's apt is configured with."""
    etc = Path(root) / "etc" / "apt"
    found: list[AptSource] = []
    files = sorted((etc / "sources.list.d").glob("*.sources"))
    for path in files:
        found.extend(_parse_deb822(path.read_text(errors="replace")))
    lists = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for path in lists:
        if path.is_file():
            found.extend(_parse_one_line(path.read_text(errors="replace")))
    return found


def _parse_deb822(text: str) -> list[AptSource]:
    out = []
    for stanza in _stanzas(text):
        fields = {k.lower(): v for k, v in stanza.items()}
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").strip().lower() == "no":
            continue
        out.append(
            AptSource(
                fields.get("uris", "").split(),
                fields.get("suites", "").split(),
                fields.get("components", "").split(),
                fields.get("signed-by", "").strip(),
            )
        )
    return out


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, key = {}, ""
            continue
        if raw[0] in " \t" and key:
            current[key] += "\n" + raw.strip()
            continue
        key, _, value = raw.partition(":")
        key = key.strip()
        current[key] = value.strip()
    return stanzas


def _parse_one_line(text: str) -> list[AptSource]:
    out = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        signed = ""
        if words and words[0].startswith("["):
            opts = []
            while words:
                opts.append(words.pop(0))
                if opts[-1].endswith("]"):
                    break
            for opt in " ".join(opts).strip("[]").split():
                if opt.startswith("signed-by="):
                    signed = opt.split("=", 1)[1]
        if len(words) >= 2:
            out.append(AptSource([words[0]], [words[1]], words[2:], signed))
    return out


def debian_mirror(root: Path | str = "/", suite: str = SUITE) -> str:
    """The URI of the configured mirror that serves ``suite`` with component ``main``."""
    for source in apt_sources(root):
        if suite in source.suites and "main" in source.components and source.uris:
            return source.uris[0]
    raise ImageError(
        f"no apt source for {suite} main is configured on this machine "
        "(/etc/apt/sources.list.d/*.sources or /etc/apt/sources.list)"
    )


def _rootfs_sources(rootfs: Path, suite: str = SUITE) -> str:
    """The machine's sources for ``suite`` (and -updates, -security), as a deb822 file."""
    stanzas = []
    for source in apt_sources("/"):
        suites = [s for s in source.suites if s == suite or s.startswith(suite + "-")]
        if not suites or not source.uris:
            continue
        lines = [
            "Types: deb",
            f"URIs: {' '.join(source.uris)}",
            f"Suites: {' '.join(suites)}",
            f"Components: {' '.join(source.components)}",
        ]
        signed = source.signed_by
        if signed and "\n" not in signed and (rootfs / signed.lstrip("/")).is_file():
            lines.append(f"Signed-By: {signed}")
        stanzas.append("\n".join(lines))
    return "\n\n".join(stanzas) + "\n"


# --- hashes -------------------------------------------------------------------------------------


def _hash_tree(h: Any, top: Path) -> None:
    for path in sorted(p for p in top.rglob("*") if p.is_file()):
        rel = path.relative_to(top).as_posix()
        h.update(f"{rel}\0{path.stat().st_mode & 0o7777:o}\0".encode())
        h.update(path.read_bytes())
        h.update(b"\0")


def base_hash() -> str:
    """Hash of what goes into the base image (not the mirror: any mirror serves the same)."""
    h = hashlib.sha256()
    h.update(f"base\0{BUILDER_VERSION}\0{SUITE}\0{VARIANT}\0".encode())
    h.update("\0".join(IMPORT_CHANGES).encode())
    _hash_tree(h, RECIPES / "base")
    return h.hexdigest()[:12]


def recipe_name(name: str) -> str:
    """A recipe name from an app name (``postgres`` -> ``pg15``) or a recipe name."""
    name = APP_IMAGES.get(name, name)
    if not (RECIPES / name / "Dockerfile").is_file():
        known = ", ".join(sorted(APP_IMAGES.values()))
        raise ImageError(f"no image recipe {name!r} (recipes/<name>/Dockerfile: {known})")
    return name


def build_args(name: str) -> dict[str, str]:
    """Build arguments for recipe ``name`` (the base is added by :func:`ensure_image`)."""
    users = []
    for user in SERVICE_USERS.get(name, ()):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue  # not on this host: the package picks the ids
        users.append(f"{user}:{entry.pw_uid}:{entry.pw_gid}:{entry.pw_dir}:{entry.pw_shell}")
    return {"VMSNAP_USERS": " ".join(users)}


def recipe_hash(name: str, base: str | None = None) -> str:
    """Hash of recipe ``name`` with its base and build arguments."""
    name = recipe_name(name)
    h = hashlib.sha256()
    h.update(f"image\0{BUILDER_VERSION}\0{name}\0{base or base_hash()}\0".encode())
    for key, value in sorted(build_args(name).items()):
        h.update(f"{key}={value}\0".encode())
    _hash_tree(h, RECIPES / name)
    return h.hexdigest()[:12]


def base_ref() -> str:
    return f"{BASE_REPO}:{base_hash()}"


def image_ref(name: str) -> str:
    """The tag the current recipe ``name`` (or app) builds: ``vmsnap/<name>:<hash>``."""
    name = recipe_name(name)
    return f"vmsnap/{name}:{recipe_hash(name)}"


# --- builds -------------------------------------------------------------------------------------


def _exists(client: Any, ref: str) -> bool:
    import docker

    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def _client(client: Any) -> tuple[Any, Any]:
    """The given client, or one from a held :class:`~.engine.Engine` (returned to release)."""
    if client is not None:
        return client, None
    from .engine import Engine

    engine = Engine()
    return engine.ensure(), engine


def ensure_base(client: Any = None, *, log: Log | None = None) -> Built:
    """The base image, built with debootstrap unless the current one exists."""
    client, engine = _client(client)
    try:
        ref = base_ref()
        began = time.monotonic()
        if _exists(client, ref):
            return Built(ref, False, time.monotonic() - began)
        with _flock(state_dir() / "build.lock"):
            if _exists(client, ref):  # another worker built it while we waited
                return Built(ref, False, time.monotonic() - began)
            steps = _build_base(client, ref, log or _progress)
        return Built(ref, True, time.monotonic() - began, steps)
    finally:
        if engine is not None:
            engine.release()


def _build_base(client: Any, ref: str, log: Log) -> dict[str, float]:
    for tool in ("debootstrap", "tar"):
        if shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            raise ImageError(f"{tool} is not installed (apt-get install debootstrap)")
    mirror = debian_mirror()
    work = state_dir() / "build"
    work.mkdir(parents=True, exist_ok=True)
    steps: dict[str, float] = {}
    logfile = state_dir() / "build-base.log"
    rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=work))
    try:
        t = time.monotonic()
        log(f"debootstrap --variant={VARIANT} {SUITE} (mirror from the apt config)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin:" + env.get("PATH", "")
        with open(logfile, "wb") as out:
            done = subprocess.run(
                ["debootstrap", f"--variant={VARIANT}", SUITE, str(rootfs), mirror],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=1800,
            )
        if done.returncode:
            raise ImageError(f"debootstrap failed (exit {done.returncode}); see {logfile}")
        steps["debootstrap_s"] = time.monotonic() - t
        # Our overlay files, and this machine's bookworm sources instead of debootstrap's one.
        shutil.copytree(RECIPES / "base" / "rootfs", rootfs, dirs_exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (rootfs / "etc/apt/sources.list").unlink()
        sources = rootfs / "etc/apt/sources.list.d/debian.sources"
        sources.parent.mkdir(parents=True, exist_ok=True)
        sources.write_text(_rootfs_sources(rootfs))
        t = time.monotonic()
        log(f"docker import {ref}")
        repo, tag = ref.split(":")
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert tar.stdout is not None
        try:
            client.api.import_image_from_stream(
                tar.stdout,
                repository=repo,
                tag=tag,
                changes=[*IMPORT_CHANGES, f"LABEL {LABEL_RECIPE}={tag}"],
            )
        finally:
            tar.stdout.close()
            tar_err = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
            tar.wait()
        if tar.returncode:
            raise ImageError(f"tar of the rootfs failed: {tar_err.strip()}")
        if not _exists(client, ref):
            raise ImageError(f"docker import did not create {ref}")
        steps["import_s"] = time.monotonic() - t
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return steps


def ensure_image(name: str, client: Any = None, *, log: Log | None = None) -> Built:
    """The image for recipe or app ``name``: built (base first) unless the current one exists.

    A cache hit costs one hash of the recipe files and one image lookup.
    """
    client, engine = _client(client)
    try:
        name = recipe_name(name)
        began = time.monotonic()
        ref = image_ref(name)
        if _exists(client, ref):
            return Built(ref, False, time.monotonic() - began)
        base = ensure_base(client, log=log)
        with _flock(state_dir() / "build.lock"):
            if _exists(client, ref):
                return Built(ref, False, time.monotonic() - began, base=base)
            steps = _build_recipe(client, name, ref, base.ref, log or _progress)
        return Built(ref, True, time.monotonic() - began, {**base.steps, **steps}, base)
    finally:
        if engine is not None:
            engine.release()


def _build_recipe(client: Any, name: str, ref: str, base: str, log: Log) -> dict[str, float]:
    import docker

    t = time.monotonic()
    log(f"docker build {ref} FROM {base}")
    logfile = state_dir() / f"build-{name}.log"
    tag = ref.split(":")[1]
    args = {"BASE": base, **build_args(name)}
    lines: list[str] = []
    try:
        # The low-level API streams the log; the build's RUN steps use the host's network
        # (our engine has no bridge) to reach the configured apt mirror.
        for chunk in client.api.build(
            path=str(RECIPES / name),
            tag=ref,
            buildargs=args,
            network_mode="host",
            rm=True,
            forcerm=True,
            pull=False,
            labels={LABEL_RECIPE: tag},
            decode=True,
        ):
            if "stream" in chunk:
                lines.append(chunk["stream"])
                if chunk["stream"].startswith("Step "):  # "Step 3/9 : RUN apt-get ..."
                    log(chunk["stream"].strip())
            if "error" in chunk:
                lines.append(chunk["error"])
                raise ImageError(f"docker build of {ref} failed: {chunk['error'].strip()}")
    except docker.errors.APIError as err:
        raise ImageError(f"docker build of {ref} failed: {err}") from None
    finally:
        logfile.write_text("".join(lines))
    if not _exists(client, ref):
        raise ImageError(f"docker build did not create {ref}; see {logfile}")
    return {f"build_{name}_s": time.monotonic() - t}


def image_for_app(app: str, client: Any = None) -> str:
    """The (built or cached) image reference for app ``app``."""
    return ensure_image(APP_IMAGES.get(app, app), client).ref


def smoke(name: str, client: Any = None) -> dict[str, str]:
    """Import the in-VM modules and the app's client library with the image's
    ``/usr/bin/python3``, our package mounted read-only as the container
    stand-in does; returns the versions found (python and the client library).
    """
    name = recipe_name(name)
    client, engine = _client(client)
    libs = CLIENT_MODULES.get(name, ())
    code = "import importlib, json, sys\n" + "".join(
        f"importlib.import_module({m!r})\n" for m in IN_VM_MODULES
    )
    code += "out = {'python': sys.version.split()[0], 'executable': sys.executable}\n"
    for lib in libs:
        code += f"m = importlib.import_module({lib!r})\n"
        code += f"out[{lib!r}] = getattr(m, '__version__', getattr(m, 'sqlite_version', '?'))\n"
    code += "print(json.dumps(out))\n"
    try:
        out = client.containers.run(
            image_ref(name),
            ["/usr/bin/python3", "-c", code],
            remove=True,
            network_mode="none",
            environment={"PYTHONPATH": IN_VM_LIB, "PYTHONDONTWRITEBYTECODE": "1"},
            volumes={h: {"bind": v, "mode": "ro"} for h, v in package_mount().items()},
            labels={LABEL_TAG: "vmsnap-images"},
            stderr=True,
        )
    except Exception as err:
        raise ImageError(f"{name}: in-VM modules do not import: {err}") from None
    finally:
        if engine is not None:
            engine.release()
    import json

    return json.loads(out.decode().strip().splitlines()[-1])


_log = logging.getLogger(__name__)


def _progress(message: str) -> None:
    """A build step, as a progress line (``vmsnap run -v``, ``pytest -v``): a first build
    takes minutes."""
    _log.info("image build: %s", message)


__all__ = [
    "APP_IMAGES",
    "Built",
    "ImageError",
    "apt_sources",
    "base_ref",
    "debian_mirror",
    "ensure_base",
    "ensure_image",
    "image_for_app",
    "image_ref",
    "smoke",
]
