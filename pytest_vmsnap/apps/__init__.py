"""Real applications under test: SQLite, PostgreSQL 15, MariaDB 10.11, Redis 7."""

from __future__ import annotations

import importlib

from .base import App

_MODULES = {"sqlite": "sqlite", "postgres": "postgres", "mariadb": "mariadb", "redis": "redis"}


def get_app(name: str) -> App:
    """The :class:`App` for ``name`` (imported on demand: each pulls its own client library)."""
    try:
        module = importlib.import_module(f"{__name__}.{_MODULES[name]}")
    except KeyError:
        raise ValueError(f"unknown app {name!r}; choose from {', '.join(_MODULES)}") from None
    return module.APP
