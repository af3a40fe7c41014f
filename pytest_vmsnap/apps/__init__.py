"""Real applications under test: SQLite, PostgreSQL (15 on Debian 12), MariaDB 10.11, Redis 7."""

from __future__ import annotations

import importlib

from .base import App, AppOptions

_MODULES = {"sqlite": "sqlite", "postgres": "postgres", "mariadb": "mariadb", "redis": "redis"}


def get_app(name: str, options: AppOptions | None = None) -> App:
    """The :class:`App` for ``name`` (imported on demand: each pulls its own client library),
    set up as ``options`` say (its installation found in the VM by default)."""
    try:
        module = importlib.import_module(f"{__name__}.{_MODULES[name]}")
    except KeyError:
        raise ValueError(f"unknown app {name!r}; choose from {', '.join(_MODULES)}") from None
    app: App = module.APP
    return app if options is None else app.configured(options)
