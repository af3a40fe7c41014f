"""What every part of the page shares: colours, limits, escaping and number formats that
forgive fields that are missing or of the wrong type, code names, verdict badges."""

from __future__ import annotations

import html
import math
import re
from typing import Any

from ...framework.azure import codes

VERDICTS = (
    "application-consistent",
    "crash-consistent",
    "inconsistent",
    "unrecoverable",
    "not-taken",
    "error",
)
VERDICT_CLASS = {
    "application-consistent": "ok",
    "crash-consistent": "warn",
    "inconsistent": "bad",
    "unrecoverable": "bad",
    "not-taken": "none",
    "error": "none",
}
VERDICT_MEANING = {
    "application-consistent": "starts with no repair, every write acknowledged before the "
    "pre-script returned is there, invariants hold, the live app writes again afterwards",
    "crash-consistent": "usable, but only after repair, or acknowledged writes are missing, or "
    "the scripts did not really quiesce (probe) or left the app locked",
    "inconsistent": "starts, but integrity checks or invariants fail",
    "unrecoverable": "the restored copy does not start within its deadline",
    "not-taken": "the framework took no snapshot (the code says why)",
    "error": "the harness could not finish the cycle (the message says why): nothing is "
    "known about the scripts",
}
PHASES = (
    "precheck",
    "pre",
    "freeze-wait",
    "window",
    "freeze",
    "frozen-poll",
    "snapshot",
    "thaw",
    "post",
)
PACED_PHASES = ("freeze-wait", "frozen-poll")
"""The extension's own waits around the freeze: in the timeline of faithful pacing only."""
OPTIONAL_PHASES = (*PACED_PHASES, "window")
"""Rows of the timeline only when the cycle had them (``window``: ``window_s`` held)."""
PHASE_LABEL = {
    "precheck": "pre-check",
    "pre": "pre-script",
    "freeze-wait": "3 s before the freeze",
    "window": "capture held (window)",
    "freeze": "freeze",
    "frozen-poll": "frozen, until the 2 s poll notices",
    "snapshot": "snapshot",
    "thaw": "thaw",
    "post": "post-script",
}
ROW_LABEL = {
    **PHASE_LABEL,
    "freeze-wait": "3 s wait",
    "window": "capture held",
    "frozen-poll": "2 s poll",
}
"""The timeline's row names, short enough for its label column (the legend has the long ones)."""
PHASE_COLOR = {
    "precheck": "#8c959f",
    "pre": "#2f6eb5",
    "freeze-wait": "#b6c7d8",
    "window": "#d8c7a0",
    "freeze": "#3a9bd9",
    "frozen-poll": "#9fd3f0",
    "snapshot": "#7c4dbd",
    "thaw": "#7cc3ea",
    "post": "#1f8a8a",
}
OK_COLOR = "#1a7f37"
BAD_COLOR = "#cf222e"
NEUTRAL_COLOR = "#57606a"
WRITE_COLOR = "#24364d"

MAX_OUTPUT_CHARS = 16_000
MAX_POINTS = 2_500
MAX_REASONS = 20
MAX_FINDINGS = 50


# ----------------------------------------------------------------------------------------
# small, forgiving helpers


def esc(value: Any) -> str:
    """Escaped text (quotes too: the result may end up in an attribute)."""
    return html.escape(str(value), quote=True)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def as_float(value: Any) -> float | None:
    """A finite number, or None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(text: str) -> str:
    """Control characters made visible (\\x1b), line endings made ``\\n``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def clip(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """At most ``limit`` characters: the head and the tail, with a marker between them."""
    if len(text) <= limit:
        return text
    head = text[: limit * 2 // 3]
    tail = text[-(limit // 3) :]
    skipped = len(text) - len(head) - len(tail)
    return f"{head}\n[... {skipped} characters not shown in this report ...]\n{tail}"


def fmt_dur(seconds: float | None) -> str:
    """``3.00 s``, ``91 ms``, ``2.1 ms``, ``0.24 ms``: the one format of every duration."""
    if seconds is None:
        return "—"
    a = abs(seconds)
    if a >= 100:
        return f"{seconds:.0f} s"
    if a >= 1:
        return f"{seconds:.2f} s"
    if a >= 0.01:
        return f"{seconds * 1000:.0f} ms"
    if a >= 0.001:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1000:.2f} ms"


def fmt_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"


def yesno(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return "—"
    return esc(value)


# The success statuses have no docs name; these say what they mean.
_STATUS_WORDS = {0: "application-consistent", 1: "file-system consistent", 2: "error"}


def code_name(number: int, *, health: bool = False) -> tuple[str, str]:
    """(name to show, the extension's internal name when it differs)."""
    c = codes.lookup(number)
    if c.docs_name:
        return c.docs_name, c.name
    if health and number == 0:
        return "no error", ""
    if number in _STATUS_WORDS:
        return _STATUS_WORDS[number], c.name
    return c.name, ""


def code_html(number: Any, *, describe: bool = True, health: bool = False) -> str:
    """``308 Pre-ScriptTimeout`` with the internal name and message in muted text."""
    n = as_int(number)
    if n is None:
        if number is None:
            return '<span class="muted">— (the framework did not run)</span>' if describe else "—"
        return esc(number)
    name, internal = code_name(n, health=health)
    out = f'<span class="code">{n}</span> <strong>{esc(name)}</strong>'
    if internal and describe:
        out += f' <span class="muted small">({esc(internal)})</span>'
    if health and n == 0:
        if describe:
            out += '<div class="muted small">Nothing went wrong along the way.</div>'
    elif describe:
        out += f'<div class="muted small">{esc(codes.lookup(n).message)}</div>'
    return out


def verdict_of(run: dict[str, Any]) -> str:
    v = run.get("verdict")
    return v if isinstance(v, str) and v else "not-taken"


def badge(verdict: str, *, big: bool = False, plain: bool = False) -> str:
    """The verdict as a pill in its colour; ``plain``: without one, where the colour says
    whether a check passed instead (a fault's fallback is what its check wants)."""
    cls = "plain" if plain else VERDICT_CLASS.get(verdict, "none")
    return f'<span class="badge {cls}{" big" if big else ""}">{esc(verdict)}</span>'
