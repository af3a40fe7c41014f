"""Every setting of a vmsnap cycle, once: its type, default, choices and help text, and the name
it has in each face.

The faces: ``vmsnap run --<flag>``, the plugin's ``--vmsnap-<key>`` options and
``vmsnap_<key>`` ini keys, and the arguments of the fixtures and the ``vmsnap`` marker (the
field names, plus the aliases in :data:`ALIASES`). The CLI and the plugin generate their
options from :data:`FIELDS`; :func:`read_values` and :meth:`Settings.from_mapping` turn what a
face read (strings from the command line or an ini file, objects from Python) into settings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .framework.engine import Given


class Choice(StrEnum):
    """A setting with a closed set of values (members compare equal to their strings)."""

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)


class Framework(Choice):
    """The quiesce frameworks (:data:`pytest_vmsnap.framework.engines.NAMES`)."""

    AZURE = "azure"
    GCP = "gcp"
    VMWARE = "vmware"
    QEMU_GA = "qemu-ga"
    AWS_DLM = "aws-dlm"


class App(Choice):
    SQLITE = "sqlite"
    POSTGRES = "postgres"
    MARIADB = "mariadb"
    REDIS = "redis"


class VmKind(Choice):
    HOST = "host"
    CONTAINER = "container"
    DIR = "dir"
    """No root: the framework cycle in a directory, no freeze and no database."""


class Fs(Choice):
    EXT4 = "ext4"
    XFS = "xfs"
    BTRFS = "btrfs"


class Backend(Choice):
    REFLINK = "reflink"
    COPY = "copy"
    BTRFS = "btrfs"
    DEVMAPPER = "devmapper"


class Profile(Choice):
    EXTENSION = "extension"
    DOCUMENTED = "documented"


class Quiesce(Choice):
    LOCK = "lock"
    FLUSH = "flush"
    NONE = "none"


class Pacing(Choice):
    FAITHFUL = "faithful"
    PROMPT = "prompt"


class Writers(Choice):
    APP = "app"
    """The application user only (whom ``read_only`` stops)."""
    PRIVILEGED = "privileged"
    """A privileged user only (root/SUPER, the superuser, admin jobs: ``read_only`` does not
    stop them)."""
    BOTH = "both"


class SnapshotOrder(Choice):
    LAYOUT = "layout"
    REVERSE = "reverse"


APPS = App.values()
MAX_WINDOW_S = 60.0
"""The longest window: safefreeze's own timeout (vmbackup.conf ``timeout``, 60 s by default),
after which the real helper thaws by itself."""
VM_KINDS = VmKind.values()
SNAPSHOT_BACKENDS = Backend.values()
QUIESCE_KINDS = Quiesce.values()


@dataclass(frozen=True)
class Settings:
    """Inputs of one vmsnap cycle."""

    config: Path | None = None
    pre: Path | None = None
    post: Path | None = None
    hook: Path | None = None
    """One script the framework calls with a verb (``freeze``/``thaw``): VMware's
    ``backupScripts.d``, qemu-ga's ``fsfreeze-hook.d``."""
    document: Path | None = None
    """AWS DLM: the SSM command document that runs the scripts."""
    framework: str = Framework.AZURE
    framework_options: tuple[tuple[str, str], ...] = ()
    """The engine's options (``host_tool=proxmox``): the choices a framework leaves to the
    machine (:data:`pytest_vmsnap.framework.engines.OPTIONS`)."""
    app: str = App.SQLITE
    vm: str = VmKind.HOST
    disks: int = 1
    fs: str = Fs.EXT4
    snapshot: str = Backend.REFLINK
    profile: str = Profile.EXTENSION
    quiesce: str = Quiesce.NONE
    """``lock``: the scripts claim to hold a lock, so writes must block while quiesced."""
    workload_seconds: float = 1.0
    owner: str | None = None
    pacing: str = Pacing.FAITHFUL
    writers: str = Writers.BOTH
    """Who writes during the cycle and is probed: the application user, a privileged user,
    or both (a quiesce that only ``read_only`` makes is caught by the privileged one)."""
    skew_s: float = 0.0
    """Seconds between the snapshots of consecutive disks (one freeze no longer covers all)."""
    snapshot_order: str = SnapshotOrder.LAYOUT
    """``layout``: disks are snapshotted in the app's layout order; ``reverse``: last first
    (for PostgreSQL: the WAL disk before the data disk, the harmful order)."""
    baseline: bool = False
    """Crash-consistent baseline: the same snapshot with no scripts and no freeze."""
    window_s: float = 0.0
    """Seconds the capture of the application's disks is held after the extension's own
    delays (before the freeze, or before the snapshot when nothing freezes them), with
    quiesce probes at its start, middle and end: a slow freeze or host snapshot."""
    worst_window_s: float = 10.0
    """The battery's worst-case window item: ``window_s`` for its cycle (0: no such item)."""
    lint_strict: bool = False
    """The battery's lint item fails on lint warnings too, not only on the pre-check's
    errors (without it the warnings are reported and the item passes)."""
    torn_copy: bool = False
    """``copy`` snapshots only: copy the application's files one by one, forcing its checkpoint
    between them (:mod:`pytest_vmsnap.cycle.torn_copy`): the torn copy, constructed."""
    report_dir: Path | None = None
    pre_at: str | None = None
    """Where, inside the VM, ``pre`` goes when the config names no location that can be read
    (a malformed config still runs its cycle); None: it is not installed."""
    post_at: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    """Variables added on purpose to the scripts' environment, which is otherwise the
    extension's (:mod:`pytest_vmsnap.framework.azure.environment`), never the caller's."""
    pg_version: str | None = None
    """PostgreSQL's major version (``15``); None: the newest installed in the VM."""
    pg_bin: str | None = None
    """PostgreSQL's bin directory inside the VM; None: ``/usr/lib/postgresql/<version>/bin``."""
    image: str | None = None
    """The container stand-in's image: the user's own (their production image), with our
    in-VM pieces added in a thin layer built locally (:mod:`pytest_vmsnap.vm.docker.layer`);
    None: our image for the application."""
    modes: tuple[tuple[str, int], ...] = ()
    """The modes the config and the scripts have when deployed (``("config", 0o600), ("pre",
    0o700), ("post", 0o700)``), given to the files installed in the VM; empty: the modes the
    files have here (git keeps only 644 and 755)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, object],
        *,
        base_dir: Path,
        where: str = "vmsnap",
        base: Settings | None = None,
    ) -> Settings:
        """``base`` (default: the defaults) changed by ``values``, read as :func:`read_values`
        does; :class:`SettingsError` for an unknown name or a value of the wrong type."""
        return replace(base or cls(), **read_values(values, base_dir=base_dir, where=where))

    def problems(self, naming: Callable[[Field], str] | None = None) -> list[str]:
        """Usage errors, one sentence each (empty when the settings are usable); a setting
        is called ``naming(field)`` (default: its key; the plugin says its ini key)."""
        label = naming or (lambda f: f.key)
        out = []
        if self.config is None and self.framework == Framework.AZURE:
            out.append("no config given (vmsnap_config / --vmsnap-config)")
        elif self.config is not None and not self.config.is_file():
            out.append(f"config {self.config} does not exist")
        for name, path in (
            ("pre-script", self.pre),
            ("post-script", self.post),
            ("hook", self.hook),
            ("document", self.document),
        ):
            if path is not None and not path.is_file():
                out.append(f"{name} {path} does not exist")
        for f in FIELDS:
            value = getattr(self, f.name)
            if f.choices is not None and value not in f.choices.values():
                out.append(f"{label(f)} {value!r} is not one of {', '.join(f.choices.values())}")
        if not out:
            out += self._hosting_problems()
        if not 1 <= self.disks <= 4:
            out.append(f"{label(BY_NAME['disks'])} must be 1..4, not {self.disks}")
        if self.skew_s < 0:
            out.append(f"{label(BY_NAME['skew_s'])} must be >= 0 seconds, not {self.skew_s}")
        for name, value in (("window_s", self.window_s), ("worst_window_s", self.worst_window_s)):
            if not 0 <= value <= MAX_WINDOW_S:
                out.append(
                    f"{label(BY_NAME[name])} must be 0..{MAX_WINDOW_S:g} seconds (the freeze "
                    f"helper's own timeout), not {value}"
                )
        if self.image and self.vm != VmKind.CONTAINER:
            out.append(
                f"image {self.image} is for the container stand-in: set vm = container "
                "(vmsnap_vm, --vm)"
            )
        if self.torn_copy and self.snapshot != Backend.COPY:
            out.append(f"torn_copy needs the copy snapshot backend, not {self.snapshot}")
        if self.app in APPS and self.vm in VM_KINDS and os.geteuid() == 0:
            # Without root no database runs (the directory stand-in): nothing to install.
            out += self._install_problems(label)
        return out

    def files(self) -> dict[str, Path]:
        """The user's files by role (``config``, ``pre``, ``post``, ``hook``, ``document``),
        those given."""
        roles = {
            "config": self.config,
            "pre": self.pre,
            "post": self.post,
            "hook": self.hook,
            "document": self.document,
        }
        return {role: path for role, path in roles.items() if path is not None}

    def given(self) -> Given:
        """The user's files as the framework's engine is told of them."""
        from .framework.engine import Given

        return Given.of(self.files())

    def _hosting_problems(self) -> list[str]:
        """The framework cannot run the files as given (a pair where it calls one hook)."""
        from .framework import engines

        scripts = (self.pre, self.post, self.hook, self.document)
        if self.framework != Framework.AZURE and all(p is None for p in scripts):
            return [
                f"no scripts given for {self.framework}: give pre and post (vmsnap_pre, "
                "vmsnap_post / --pre, --post), or a hook (vmsnap_hook / --hook)"
                + (", or an SSM document (--document)" if self.framework == "aws-dlm" else "")
            ]
        try:
            engines.get(self.framework, options=dict(self.framework_options))
        except ValueError as err:
            return [f"framework_options: {err}"]
        if self.document is not None and self.framework != Framework.AWS_DLM:
            return ["document is the SSM command document of aws-dlm (--framework aws-dlm)"]
        if self.framework == Framework.AZURE and self.config is not None:
            if self.hook is not None:
                return [
                    "azure runs the scripts its config names: give the hook as pre and post "
                    '(with preScriptParams ["freeze"] and postScriptParams ["thaw"])'
                ]
            return []  # its own staging reads the config (a missing location is its pre-check's)
        hosting = engines.get(self.framework).host(self.given())
        return [f"{self.framework}: {hosting.refused}"] if hosting.refused else []

    def _install_problems(self, label: Callable[[Field], str]) -> list[str]:
        """What this machine lacks for the app on the chosen stand-in, each with its fix: a
        client library (``pip install 'pytest-vmsnap[apps]'``), or, for the host stand-in
        (whose root is a view of this machine's), the server."""
        from .apps.discover import host_problems, is_pg_version
        from .needs import missing_libraries

        out = missing_libraries(self.app, self.vm)
        bad = []
        if self.pg_version is not None and not is_pg_version(self.pg_version):
            bad.append(
                f"{label(BY_NAME['pg_version'])} {self.pg_version!r} is not a major version "
                "such as 15 or 16"
            )
        if self.pg_bin is not None and not self.pg_bin.startswith("/"):
            bad.append(f"{label(BY_NAME['pg_bin'])} {self.pg_bin!r} must be an absolute path")
        out += bad
        if not bad and self.vm == VmKind.HOST:
            out += host_problems(self.app, self.pg_version, self.pg_bin)
        return out


class SettingsError(ValueError):
    """A setting that cannot be read: an unknown name or a value of the wrong type."""


@dataclass(frozen=True)
class Field:
    """One setting: the :class:`Settings` field it fills and how each face names it."""

    name: str
    help: str
    parse: Callable[[str], Any] = str
    """How a string from a command line or an ini file becomes the value."""
    choices: type[Choice] | None = None
    key: str = ""
    """``--vmsnap-<key>``, ``vmsnap_<key>`` and ``vmsnap run --<key>`` (default: the name)."""
    plugin: bool = True
    """The plugin has a ``--vmsnap-<key>`` option and a ``vmsnap_<key>`` ini key for it."""
    cli: bool = True
    """``vmsnap run`` has a ``--<key>`` flag for it."""
    cli_choices: tuple[str, ...] | None = None
    """The values ``vmsnap run`` accepts, when fewer than :attr:`choices`."""
    required: bool = False
    """``vmsnap run`` needs it."""
    metavar: str | None = None

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.name)

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def default(self) -> Any:
        return getattr(Settings(), self.name)

    @property
    def ini_type(self) -> str:
        """The type pytest reads the ``vmsnap_<key>`` ini key with (``Parser.addini``):
        ``int``, ``float`` and ``bool`` take typed values in pytest's native ``[tool.pytest]``
        TOML table and strings elsewhere; ``linelist`` a list or lines; paths are ``string``
        (one path, resolved against the ini file), so the value is never a list."""
        if self.parse is int:
            return "int"
        if self.parse is float:
            return "float"
        if self.parse is _bool:
            return "bool"
        if self.parse is _env:
            return "linelist"
        return "string"


def _bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(value)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env(value: object) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` entries (one per line, or separated by ``;``), a mapping, or pairs."""
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    elif isinstance(value, tuple | list) and all(not isinstance(e, str) for e in value):
        pairs = [(str(k), str(v)) for k, v in value]  # already pairs (a copy of settings)
    else:
        # A list of entries: an ini key read as a ``linelist`` (lines, or a TOML list).
        text = "\n".join(value) if isinstance(value, list | tuple) else str(value)
        entries = [e.strip() for e in re.split(r"[;\n]", text) if e.strip()]
        if any("=" not in e for e in entries):
            raise ValueError(value)
        pairs = [(k.strip(), v) for k, _, v in (e.partition("=") for e in entries)]
    if any(not _ENV_NAME.fullmatch(k) for k, _ in pairs):
        raise ValueError(value)
    return tuple(pairs)


MODE_ROLES = ("config", "pre", "post", "hook")
"""The user's files whose deployed mode ``modes`` can declare (``scripts`` means pre, post and
hook)."""


def _modes(value: object) -> tuple[tuple[str, int], ...]:
    """``config:600 scripts:700`` (entries separated by blanks, ``,`` or ``;``; ``scripts``
    is ``pre`` and ``post``), a mapping of the same, or pairs; modes are octal."""
    if isinstance(value, Mapping):
        entries = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, tuple | list):  # already pairs (the default, a copy of settings)
        entries = [(str(k), v) for k, v in value]
    else:
        words = [w for w in re.split(r"[\s,;]+", str(value)) if w]
        if any(":" not in w for w in words):
            raise ValueError(value)
        entries = [(k, v) for k, _, v in (w.partition(":") for w in words)]
    out: dict[str, int] = {}
    for role, raw in entries:
        mode = raw if isinstance(raw, int) else int(str(raw), 8)  # ValueError: not octal
        if not 0 <= mode <= 0o7777 or role not in (*MODE_ROLES, "scripts"):
            raise ValueError(value)
        for one in ("pre", "post", "hook") if role == "scripts" else (role,):
            out[one] = mode
    return tuple((role, out[role]) for role in MODE_ROLES if role in out)


def format_modes(modes: tuple[tuple[str, int], ...]) -> str:
    """``config:600 scripts:700``: ``modes`` as the ini key takes it."""
    found = dict(modes)
    if "pre" in found and found.get("post") == found["pre"] == found.get("hook"):
        parts = [f"config:{found['config']:o}"] if "config" in found else []
        return " ".join([*parts, f"scripts:{found['pre']:o}"])
    return " ".join(f"{role}:{mode:o}" for role, mode in modes)


FIELDS: tuple[Field, ...] = (
    Field(
        "framework",
        "the quiesce framework that runs the scripts: azure (the default), gcp (guest-flush), "
        "vmware (VMware Tools), qemu-ga (fsfreeze-hook), aws-dlm (DLM through SSM)",
        choices=Framework,
    ),
    Field(
        "framework_options",
        "the framework's own choices (KEY=VALUE; ...): qemu-ga host_tool=libvirt|proxmox, "
        "agent_version=7.2|10.0, hook_bound_s; gcp disks, hang_bound_s; vmware "
        "harness_bound_s; aws-dlm dry_run=true|false",
        _env,
        metavar="KEY=VALUE;...",
    ),
    Field(
        "config",
        "the framework's config to prove: Azure's VMSnapshotScriptPluginConfig.json (needed), "
        "GCP's instance_configs.cfg, VMware's tools.conf, qemu-ga's qemu-ga.conf, the DLM "
        "policy's script settings (JSON); without one the others get the smallest that runs "
        "the scripts",
        Path,
        metavar="PATH",
    ),
    Field(
        "pre",
        "local pre-script, installed at the config's preScriptLocation (vmsnap run without "
        "it: the config's location on this machine)",
        Path,
        metavar="PATH",
    ),
    Field(
        "post",
        "local post-script, installed at the config's postScriptLocation (vmsnap run without "
        "it: the config's location on this machine)",
        Path,
        metavar="PATH",
    ),
    Field(
        "hook",
        "local script the framework calls with a verb (freeze, thaw): VMware's "
        "backupScripts.d, qemu-ga's fsfreeze-hook.d, AWS through the document",
        Path,
        metavar="PATH",
    ),
    Field(
        "document",
        "aws-dlm: the SSM command document (JSON) that runs the scripts (default: the "
        "smallest one that runs --pre/--post or --hook)",
        Path,
        metavar="PATH",
    ),
    Field("app", "application under test", choices=App, required=True),
    Field(
        "vm",
        "stand-in VM kind: host (namespaces) or container",
        choices=VmKind,
        cli_choices=(VmKind.HOST, VmKind.CONTAINER),
    ),
    Field("disks", "number of disks of the stand-in VM (1..4)", int, metavar="N"),
    Field("fs", "file system of the disks", choices=Fs),
    Field("snapshot", "snapshot backend", choices=Backend),
    Field(
        "profile",
        "framework fidelity: extension (what the code does) or documented (what the docs say)",
        choices=Profile,
    ),
    Field(
        "quiesce",
        "what the scripts claim: lock (writes must block while quiesced), flush, none",
        choices=Quiesce,
    ),
    Field(
        "pacing",
        "faithful (the extension's poll waits) or prompt (exits noticed at once)",
        choices=Pacing,
    ),
    Field(
        "writers",
        "who writes and is probed: app (the application user, whom read_only stops), "
        "privileged (root/SUPER, superuser, admin jobs, whom it does not), both",
        choices=Writers,
    ),
    Field(
        "skew_s",
        "seconds between the snapshots of consecutive disks",
        float,
        key="skew",
        plugin=False,
        metavar="S",
    ),
    Field("owner", "owner of the installed files (default root)", metavar="USER"),
    Field(
        "baseline",
        "crash-consistent baseline: the same snapshot with no scripts and no freeze",
        _bool,
        plugin=False,
    ),
    Field(
        "window_s",
        "hold the capture of the disks this many seconds after the extension's own delays, "
        "probing the quiesce at its start, middle and end (a slow freeze or snapshot)",
        float,
        key="window",
        metavar="S",
    ),
    Field(
        "worst_window_s",
        "the battery's worst-case window: seconds its cycle holds the capture (0: no such item)",
        float,
        key="worst_window",
        cli=False,
        metavar="S",
    ),
    Field(
        "lint_strict",
        "the lint item fails on lint warnings too, not only on the pre-check's errors",
        _bool,
        cli=False,
    ),
    Field(
        "torn_copy",
        "copy backend: copy the application's files one by one, its checkpoint forced between",
        _bool,
        plugin=False,
    ),
    Field(
        "workload_seconds",
        "seconds of recorded load before the cycle starts",
        float,
        plugin=False,
        metavar="S",
    ),
    Field(
        "snapshot_order",
        "layout: disks snapshotted in the application's layout order; reverse: last first",
        choices=SnapshotOrder,
        plugin=False,
        cli=False,
    ),
    Field(
        "pre_at",
        "where to install --pre when the config names no readable preScriptLocation",
        metavar="PATH",
    ),
    Field(
        "post_at",
        "where to install --post when the config names no readable postScriptLocation",
        metavar="PATH",
    ),
    Field(
        "env",
        "variables added to the scripts' environment (KEY=VALUE; KEY2=VALUE2), which is "
        "otherwise the extension's, never yours",
        _env,
        metavar="KEY=VALUE;...",
    ),
    Field(
        "image",
        "the container stand-in's image: your own (your production image, built or loaded "
        "on this machine), with vmsnap's in-VM pieces added in a thin layer built here "
        "(default: vmsnap's image for the application)",
        metavar="NAME",
    ),
    Field(
        "modes",
        "the modes the config and scripts have when deployed, given to them in the VM "
        "(config:600 scripts:700), for repositories where git keeps only 644/755 (default: "
        "the files' own modes)",
        _modes,
        metavar="config:MODE scripts:MODE",
    ),
    Field(
        "pg_version",
        "PostgreSQL major version to run, /usr/lib/postgresql/VERSION/bin in the VM (default: "
        "the newest installed there)",
        metavar="VERSION",
    ),
    Field(
        "pg_bin",
        "PostgreSQL bin directory in the VM, for a build outside /usr/lib/postgresql (default: "
        "/usr/lib/postgresql/VERSION/bin)",
        metavar="DIR",
    ),
    Field(
        "report_dir",
        "directory for per-cycle JSON and the HTML report",
        Path,
        key="report",
        metavar="DIR",
    ),
)
BY_NAME = {f.name: f for f in FIELDS}

ALIASES = {"kind": "vm", "report": "report_dir"}
"""Argument names of the fixtures and the marker that differ from the field names."""


def read_values(values: Mapping[str, object], *, base_dir: Path, where: str) -> dict[str, Any]:
    """``values`` as :class:`Settings` fields: names through :data:`ALIASES`, strings
    converted by each field's type, relative paths resolved against ``base_dir``; None is
    left as None. :class:`SettingsError` names ``where`` and the offending setting."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = ALIASES.get(key, key)
        f = BY_NAME.get(name)
        if f is None:
            known = sorted({x.name for x in FIELDS} - set(ALIASES.values()) | set(ALIASES))
            raise SettingsError(
                f"{where}: unknown vmsnap setting {key!r} (known: {', '.join(known)})"
            )
        out[name] = None if value is None else _convert(f, value, base_dir, where)
    return out


_ENTRY_LISTS: dict[object, tuple[Callable[[object], Any], str]] = {
    _env: (_env, "KEY=VALUE entries (one per line or separated by ;)"),
    _modes: (
        _modes,
        "ROLE:MODE entries, ROLE one of config, scripts, pre, post and MODE octal "
        "(config:600 scripts:700)",
    ),
}
"""The settings written as lists of entries, and what their entries look like."""


def _convert(f: Field, value: object, base_dir: Path, where: str) -> Any:
    """``value`` as field ``f`` holds it; :class:`SettingsError` for a value of the wrong type
    (a marker's ``disks=[2]`` is named here, never a TypeError later)."""
    if f.parse is Path:
        if not isinstance(value, str | os.PathLike):
            raise SettingsError(f"{where}: {f.key} must be a path, not {value!r}")
        return (base_dir / Path(value)).resolve()
    if f.parse in (int, float):
        return _number(f, value, where)
    if f.parse in _ENTRY_LISTS:
        parse, entries = _ENTRY_LISTS[f.parse]
        try:
            return parse(value)
        except (ValueError, TypeError):
            raise SettingsError(f"{where}: {f.key} takes {entries}, not {value!r}") from None
    if f.parse is _bool:
        try:
            if not isinstance(value, str | bool):
                raise ValueError(value)
            return _bool(value)
        except ValueError:
            raise SettingsError(f"{where}: {f.key} must be true or false, not {value!r}") from None
    if f.choices is not None:
        if not isinstance(value, str):
            raise SettingsError(
                f"{where}: {f.key} must be one of {', '.join(f.choices.values())}, not {value!r}"
            )
        return value
    if f.parse is str:
        # Text; a number is taken as its text (``pg_version=16``), anything else is a mistake.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise SettingsError(f"{where}: {f.key} must be text, not {value!r}")
        return value
    try:
        return f.parse(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise SettingsError(f"{where}: {f.key} cannot be {value!r}") from None


def _number(f: Field, value: object, where: str) -> int | float:
    """An int or float field's value from a number or its text (never a bool, never a whole
    number from 2.5)."""
    kind = "a whole number" if f.parse is int else "a number"
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(value)
        number: int | float = int(value) if f.parse is int else float(value)
        if isinstance(value, float) and value != number:
            raise ValueError(value)
        return number
    except (ValueError, OverflowError):
        raise SettingsError(f"{where}: {f.key} must be {kind}, not {value!r}") from None
