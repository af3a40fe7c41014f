"""Whether qemu-ga runs a hook at all, and which: its config file, as the agent reads it.

qemu-ga calls a hook only when ``-F``/``--fsfreeze-hook[=PATH]`` is on its command line or
the ``fsfreeze-hook`` key is in its config file (qemu/qemu ``qga/main.c``: ``config_load``
reads ``[general] fsfreeze-hook`` with ``g_key_file_get_string``; ``config_parse`` maps a
bare ``-F`` to ``QGA_FSFREEZE_HOOK_DEFAULT``, ``/etc/qemu/fsfreeze-hook``). Without either,
``ga_fsfreeze_hook()`` is NULL and ``execute_fsfreeze_hook`` returns at once: the freeze
happens, no hook runs.

The harness reads the config file only. Debian's ``qemu-guest-agent.service`` starts
``ExecStart=-/usr/sbin/qemu-ga`` with no argument and no ``EnvironmentFile`` (package
1:7.2+dfsg-7+deb12u18, ``lib/systemd/system/qemu-guest-agent.service``), so ``-F`` can only
come from a unit override; ``DAEMON_ARGS`` in ``/etc/default/qemu-guest-agent`` is read by
the SysV script ``/etc/init.d/qemu-guest-agent`` alone, never under systemd. A ``-F`` there
is reported as having no effect.

The file is a GLib key file. A file that does not exist is fine; one that does not parse
makes qemu-ga log ``error loading configuration from path: <conf>, <reason>`` and exit
(``config_load``: ``g_critical`` then ``exit(EXIT_FAILURE)``): the agent never starts, and
the host's freeze command finds no agent.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

CONF = "/etc/qemu/qemu-ga.conf"
"""``QGA_CONF_DEFAULT`` (``CONFIG_QEMU_CONFDIR "/qemu-ga.conf"``; the Debian binary holds
``/etc/qemu/qemu-ga.conf``). The ``QGA_CONF`` variable can move it; the service sets none."""
DEFAULT_HOOK = "/etc/qemu/fsfreeze-hook"
"""``QGA_FSFREEZE_HOOK_DEFAULT``: where a bare ``-F`` points, and where Debian installs the
stock wrapper."""
DEFAULTS_FILE = "/etc/default/qemu-guest-agent"
"""Read by the SysV init script only (``DAEMON_ARGS``)."""
GROUP = "general"
KEY = "fsfreeze-hook"

MINIMAL_CONF = f"[{GROUP}]\n{KEY}={DEFAULT_HOOK}\n"
"""The smallest config that enables the hook (the stock wrapper at its default path)."""


class KeyFileError(ValueError):
    """The file does not parse as a GLib key file (qemu-ga then refuses to start)."""


@dataclass(frozen=True)
class AgentConfig:
    """What the agent makes of its config: the hook it runs, or why none, or why it stops."""

    hook: str | None
    """The hook path qemu-ga runs (None: no hook is enabled)."""
    error: str = ""
    """Not empty: qemu-ga refuses to start with this message (a broken config)."""
    daemon_args_hook: str | None = None
    """The hook ``DAEMON_ARGS`` would enable under the SysV script (ignored under systemd)."""
    daemon_args_space: bool = False
    """``DAEMON_ARGS`` has ``-F <path>`` with a space: even the SysV script would then run
    the default hook, not ``<path>`` (``-F`` takes its argument only attached)."""
    notes: list[str] = field(default_factory=list)

    @property
    def starts(self) -> bool:
        return not self.error


def parse_keyfile(text: str) -> dict[str, dict[str, str]]:
    """Groups and keys as GLib's key-file parser reads them (glib ``gkeyfile.c``).

    Blank lines and lines starting with ``#`` are skipped; ``[group]`` opens a group; a
    ``key=value`` line before any group is an error, as is any other line; whitespace
    around the key and before the value is dropped, a later duplicate key replaces the
    earlier one, a repeated group continues the first. A CR before the newline is dropped.
    Values are returned raw (see :func:`unescape`).
    """
    groups: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            end = stripped.find("]")
            name = stripped[1:end] if end > 0 else ""
            if end < 0 or not name or stripped[end + 1 :].strip():
                raise KeyFileError(f"Invalid group name: {stripped}")
            current = groups.setdefault(name, {})
            continue
        if "=" not in stripped:
            raise KeyFileError(
                f"Key file contains line “{line}” which is not a key-value pair, group, or comment"
            )
        if current is None:
            raise KeyFileError("Key file does not start with a group")
        key, _, value = stripped.partition("=")
        key = key.rstrip()
        if not key:
            raise KeyFileError(f"Empty key name in line “{line}”")
        current[key] = value.lstrip(" \t")
    return groups


_ESCAPES = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def unescape(value: str) -> str:
    """``g_key_file_get_string``'s escapes (``\\s``, ``\\n``, ``\\t``, ``\\r``, ``\\\\``);
    any other escape is an error there too."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value) or value[i + 1] not in _ESCAPES:
                raise KeyFileError(f"Key file contains invalid escape sequence in “{value}”")
            out.append(_ESCAPES[value[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def read_config(root: Path | str) -> AgentConfig:
    """The agent's view of ``root``'s config file (and, as a note, ``DAEMON_ARGS``)."""
    root = Path(root)
    conf = root / CONF.lstrip("/")
    sysv_hook, space = _daemon_args(root)
    notes: list[str] = []
    if not conf.exists():
        return AgentConfig(None, daemon_args_hook=sysv_hook, daemon_args_space=space)
    try:
        data = conf.read_bytes()
    except OSError as err:
        return AgentConfig(
            None,
            error=f"error loading configuration from path: {CONF}, {err.strerror}",
            daemon_args_hook=sysv_hook,
            daemon_args_space=space,
        )
    try:
        text = data.decode("utf-8")
        general = parse_keyfile(text).get(GROUP, {})
        hook = unescape(general[KEY]) if KEY in general else None
    except UnicodeDecodeError:
        return AgentConfig(
            None,
            error=f"error loading configuration from path: {CONF}, Key file contains line "
            "which is not UTF-8 encoded",
            daemon_args_hook=sysv_hook,
            daemon_args_space=space,
        )
    except KeyFileError as err:
        return AgentConfig(
            None,
            error=f"error loading configuration from path: {CONF}, {err}",
            daemon_args_hook=sysv_hook,
            daemon_args_space=space,
        )
    if hook is not None and hook != hook.strip():
        notes.append(
            f"{KEY} has whitespace at its end ({hook!r}): qemu-ga keeps it as part of the path"
        )
    return AgentConfig(hook, daemon_args_hook=sysv_hook, daemon_args_space=space, notes=notes)


_DAEMON_ARGS = re.compile(r"^\s*(?:export\s+)?DAEMON_ARGS=(.*)$", re.MULTILINE)


def _daemon_args(root: Path) -> tuple[str | None, bool]:
    """The hook ``-F`` would enable in ``DAEMON_ARGS`` (SysV only), and whether it is the
    ``-F <path>`` form that getopt reads as a bare ``-F`` (``F::`` in ``config_parse``)."""
    path = root / DEFAULTS_FILE.lstrip("/")
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None, False
    found = _DAEMON_ARGS.findall(text)
    if not found:
        return None, False
    try:
        words = shlex.split(found[-1], comments=True)
        words = shlex.split(" ".join(words))  # the value's quotes, then the words in it
    except ValueError:
        return None, False
    hook: str | None = None
    space = False
    for i, word in enumerate(words):
        if word in ("-F", "--fsfreeze-hook"):
            hook = DEFAULT_HOOK
            nxt = words[i + 1] if i + 1 < len(words) else ""
            space = nxt.startswith("/")
        elif word.startswith("--fsfreeze-hook="):
            hook, space = word.split("=", 1)[1], False
        elif word.startswith("-F"):
            hook, space = word[2:], False
    return hook, space
