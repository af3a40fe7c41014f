"""The frameworks the harness runs, by name, and the engine of each.

Each engine lives in its own package (``azure``, ``gcp``, ``vmware``, ``qemu_ga``,
``aws_dlm``) and is imported only when asked for.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping

from .engine import Engine

NAMES = ("azure", "gcp", "vmware", "qemu-ga", "aws-dlm")
"""As ``--framework`` spells them; Azure first (the default)."""

_MODULES = {name: f"{__package__}.{name.replace('-', '_')}.engine" for name in NAMES}


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return parse


def _seconds(value: str) -> float:
    seconds = float(value)
    if not 0 < seconds <= 3600:
        raise ValueError(f"{value!r} is not a number of seconds from 0 to 3600")
    return seconds


def _bool(value: str) -> bool:
    if value.lower() in ("true", "yes", "1", "on"):
        return True
    if value.lower() in ("false", "no", "0", "off"):
        return False
    raise ValueError(f"{value!r} is not true or false")


OPTIONS: dict[str, dict[str, Callable[[str], object]]] = {
    "azure": {},
    # gcp/engine.py: the disk list pre.sh and post.sh get; how long the harness waits on a
    # script's held output pipes past its timeout (the agent waits for ever).
    "gcp": {"disks": str, "hang_bound_s": _seconds},
    # vmware/engine.py: the harness's cap on vmtoolsd's own abort timer (900 s by default).
    "vmware": {"harness_bound_s": _seconds},
    # qemu_ga/engine.py: which agent generation (Debian 12's 7.2, or 9.1 and later) and which
    # host tool drives it (libvirt takes no snapshot after a failed freeze, Proxmox does).
    "qemu-ga": {
        "agent_version": _choice("7.2", "10.0"),
        "host_tool": _choice("libvirt", "proxmox"),
        "hook_bound_s": _seconds,
    },
    # aws_dlm/engine.py: whether DLM's dry-run call comes before the pre-script.
    "aws-dlm": {"dry_run": _bool},
}
"""The options each engine takes (``vmsnap_framework_options``), with their parsers."""


def get(
    name: str, *, profile: str = "extension", options: Mapping[str, str] | None = None
) -> Engine:
    """The engine of framework ``name`` (``profile`` matters to Azure's alone: ``extension``
    does what the extension's code does, ``documented`` what its docs say), with ``options``
    (:data:`OPTIONS`) set; ValueError names an unknown framework, option or value."""
    if name not in _MODULES:
        raise ValueError(f"unknown framework {name!r}; choose one of {', '.join(NAMES)}")
    module = importlib.import_module(_MODULES[name])
    engine: Engine = module.make(profile=profile)
    changes = {}
    for key, value in (options or {}).items():
        parse = OPTIONS[name].get(key)
        if parse is None:
            known = ", ".join(OPTIONS[name]) or "none"
            raise ValueError(f"{name} has no option {key!r} (its options: {known})")
        try:
            changes[key] = parse(value)
        except ValueError as err:
            raise ValueError(f"{name} option {key}: {err}") from None
    return dataclasses.replace(engine, **changes) if changes else engine  # type: ignore[type-var]
