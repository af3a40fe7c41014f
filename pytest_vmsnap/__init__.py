"""pytest-vmsnap: prove VM-backup quiesce scripts correct before a restore depends on them."""

from __future__ import annotations

DIST_NAME = "pytest-vmsnap"


def version() -> str:
    """The installed distribution's version (``pyproject.toml`` is its one source), or
    ``0+unknown`` where no distribution metadata is found (the package bound into a
    container stand-in, a checkout that was never installed)."""
    from importlib import metadata

    try:
        return metadata.version(DIST_NAME)
    except metadata.PackageNotFoundError:
        return "0+unknown"


class VmsnapLintWarning(UserWarning):
    """A ``vmsnap lint`` warning about the user's config or scripts, raised by the battery's
    lint item under ``pytest --vmsnap``: the pre-check lets it through, but it breaks or
    weakens backups. ``-W error::pytest_vmsnap.VmsnapLintWarning`` (or ``vmsnap_lint_strict
    = true``) makes the item fail on it. Defined here, with no pytest import, so the filter
    resolves it cheaply."""


def __getattr__(name: str) -> str:
    # Lazy: every helper process imports this package, and few of them need the version.
    if name == "__version__":
        return version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
