"""How findings quote values and line numbers in their one-line messages."""

from __future__ import annotations

import json
from typing import Any

MAX_SHOWN = 5
"""The most line numbers or values one message lists before saying "and N more"."""


def show(value: Any, limit: int = 80) -> str:
    """A value as the user wrote it in JSON, shortened for a one-line message."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_arg(value: Any) -> str:
    """What the extension's ``str(param)`` turns a JSON value into."""
    try:
        return show(str(value))
    except (ValueError, RecursionError):
        return "<not printable>"


def line_numbers(numbers: list[int]) -> str:
    """``line 3`` or ``lines 1, 4, ...`` (at most :data:`MAX_SHOWN`, then how many more)."""
    shown = ", ".join(map(str, numbers[:MAX_SHOWN]))
    more = f" and {len(numbers) - MAX_SHOWN} more" if len(numbers) > MAX_SHOWN else ""
    return f"line {shown}{more}" if len(numbers) == 1 else f"lines {shown}{more}"


def plural(n: int, word: str) -> str:
    """``1 error``, ``2 errors``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
