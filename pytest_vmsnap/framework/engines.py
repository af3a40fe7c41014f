"""The frameworks the harness runs, by name, and the engine of each.

Each engine lives in its own package (``azure``, ``gcp``, ``vmware``, ``qemu_ga``,
``aws_dlm``) and is imported only when asked for.
"""

from __future__ import annotations

import importlib

from .engine import Engine

NAMES = ("azure", "gcp", "vmware", "qemu-ga", "aws-dlm")
"""As ``--framework`` spells them; Azure first (the default)."""

_MODULES = {name: f"{__package__}.{name.replace('-', '_')}.engine" for name in NAMES}


def get(name: str, *, profile: str = "extension") -> Engine:
    """The engine of framework ``name`` (``profile`` matters to Azure's alone: ``extension``
    does what the extension's code does, ``documented`` what its docs say)."""
    if name not in _MODULES:
        raise ValueError(f"unknown framework {name!r}; choose one of {', '.join(NAMES)}")
    module = importlib.import_module(_MODULES[name])
    engine: Engine = module.make(profile=profile)
    return engine
