"""One self-contained HTML page for all cycles of a session: verdicts, timelines, evidence.

``write_html(report_dir, runs)`` writes ``report_dir/index.html`` from the per-cycle JSON records
(:meth:`pytest_vmsnap.cycle.run.RunResult.to_dict`). The page has inline CSS and inline SVG only:
no JavaScript, no fonts or images from anywhere, so it can be attached to a CI job and opened
offline. Every field may be missing or of the wrong type (a run that failed before the VM was
built has little more than an ``error``); everything that came from a run is escaped.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ... import __version__
from ...framework import codes

VERDICTS = (
    "application-consistent",
    "crash-consistent",
    "inconsistent",
    "unrecoverable",
    "not-taken",
)
VERDICT_CLASS = {
    "application-consistent": "ok",
    "crash-consistent": "warn",
    "inconsistent": "bad",
    "unrecoverable": "bad",
    "not-taken": "none",
}
VERDICT_MEANING = {
    "application-consistent": "starts with no repair, every write acknowledged before the "
    "pre-script returned is there, invariants hold, the live app writes again afterwards",
    "crash-consistent": "usable, but only after repair, or acknowledged writes are missing, or "
    "the scripts did not really quiesce (probe) or left the app locked",
    "inconsistent": "starts, but integrity checks or invariants fail",
    "unrecoverable": "the restored copy does not start within its deadline",
    "not-taken": "the framework took no snapshot (the code says why)",
}
PHASES = ("precheck", "pre", "freeze", "snapshot", "thaw", "post")
PHASE_LABEL = {
    "precheck": "pre-check",
    "pre": "pre-script",
    "freeze": "freeze",
    "snapshot": "snapshot",
    "thaw": "thaw",
    "post": "post-script",
}
PHASE_COLOR = {
    "precheck": "#8c959f",
    "pre": "#2f6eb5",
    "freeze": "#3a9bd9",
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

# SVG geometry, in viewBox units (the SVG scales to the card's width).
_W = 1120
_LEFT = 128
_RIGHT = 28
_ROW = 22
_ROW_GAP = 5
_LAT_H = 150


# ----------------------------------------------------------------------------------------
# small, forgiving helpers


def _e(value: Any) -> str:
    """Escaped text (quotes too: the result may end up in an attribute)."""
    return html.escape(str(value), quote=True)


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _f(value: Any) -> float | None:
    """A finite number, or None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _i(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(text: str) -> str:
    """Control characters made visible (\\x1b), line endings made ``\\n``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _clip(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """At most ``limit`` characters: the head and the tail, with a marker between them."""
    if len(text) <= limit:
        return text
    head = text[: limit * 2 // 3]
    tail = text[-(limit // 3) :]
    skipped = len(text) - len(head) - len(tail)
    return f"{head}\n[... {skipped} characters not shown in this report ...]\n{tail}"


def _dur(seconds: float | None) -> str:
    """``3.00 s``, ``91 ms``, ``0.8 ms``."""
    if seconds is None:
        return "—"
    a = abs(seconds)
    if a >= 100:
        return f"{seconds:.0f} s"
    if a >= 1:
        return f"{seconds:.2f} s"
    if a >= 0.01:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds * 1000:.1f} ms"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"


def _yesno(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return "—"
    return _e(value)


# The success statuses have no docs name; these say what they mean.
_STATUS_WORDS = {0: "application-consistent", 1: "file-system consistent", 2: "error"}


def _code_name(number: int, *, health: bool = False) -> tuple[str, str]:
    """(name to show, the extension's internal name when it differs)."""
    c = codes.lookup(number)
    if c.docs_name:
        return c.docs_name, c.name
    if health and number == 0:
        return "no error", ""
    if number in _STATUS_WORDS:
        return _STATUS_WORDS[number], c.name
    return c.name, ""


def _code_html(number: Any, *, describe: bool = True, health: bool = False) -> str:
    """``308 Pre-ScriptTimeout`` with the internal name and message in muted text."""
    n = _i(number)
    if n is None:
        if number is None:
            return '<span class="muted">— (the framework did not run)</span>' if describe else "—"
        return _e(number)
    name, internal = _code_name(n, health=health)
    out = f'<span class="code">{n}</span> <strong>{_e(name)}</strong>'
    if internal and describe:
        out += f' <span class="muted small">({_e(internal)})</span>'
    if health and n == 0:
        if describe:
            out += '<div class="muted small">Nothing went wrong along the way.</div>'
    elif describe:
        out += f'<div class="muted small">{_e(codes.lookup(n).message)}</div>'
    return out


def _verdict_of(run: dict[str, Any]) -> str:
    v = run.get("verdict")
    return v if isinstance(v, str) and v else "not-taken"


def _badge(verdict: str, *, big: bool = False) -> str:
    cls = VERDICT_CLASS.get(verdict, "none")
    return f'<span class="badge {cls}{" big" if big else ""}">{_e(verdict)}</span>'


# ----------------------------------------------------------------------------------------
# the page


def write_html(report_dir: Path, runs: dict[str, dict[str, Any]]) -> Path:
    """Write ``report_dir/index.html`` for all ``runs`` (cycle name -> run JSON); its path."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / "index.html"
    path.write_text(render_html(runs), encoding="utf-8", errors="replace")
    return path


def render_html(runs: dict[str, dict[str, Any]], *, generated: datetime | None = None) -> str:
    """The whole page as a string."""
    items = list((runs or {}).items())
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light">',
        f"<title>vmsnap report — {len(items)} cycle{'s' if len(items) != 1 else ''}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        _header(items, when),
    ]
    for idx, (name, run) in enumerate(items):
        parts.append(_card_safe(idx, str(name), run))
    parts.append(
        '<footer class="muted small">Generated by pytest-vmsnap '
        f"{_e(__version__)}. Times are seconds from the start of each run; writes are "
        "plotted at the moment they started.</footer>"
    )
    parts += ["</main>", "</body>", "</html>", ""]
    return "\n".join(parts)


def _header(items: list[tuple[Any, Any]], when: str) -> str:
    counts: dict[str, int] = {}
    for _, run in items:
        v = _verdict_of(_d(run))
        counts[v] = counts.get(v, 0) + 1
    n = len(items)
    ok = counts.get("application-consistent", 0)
    if n == 0:
        headline = "No cycles were run."
    elif ok == n:
        headline = f"All {n} cycle{'s' if n != 1 else ''} application-consistent."
    else:
        headline = f"{ok} of {n} cycle{'s' if n != 1 else ''} application-consistent."
    tiles = [
        f'<div class="tile total"><div class="num">{n}</div><div class="lbl">cycles</div></div>'
    ]
    extra = sorted(v for v in counts if v not in VERDICTS)
    for v in (*VERDICTS, *extra):
        c = counts.get(v, 0)
        cls = VERDICT_CLASS.get(v, "none")
        dim = "" if c else " zero"
        tiles.append(
            f'<div class="tile {cls}{dim}"><div class="num">{c}</div>'
            f'<div class="lbl">{_e(v)}</div></div>'
        )
    rows = []
    for idx, (name, run) in enumerate(items):
        run = _d(run)
        freeze = _d(run.get("freeze"))
        scripts = _d(run.get("scripts"))
        frozen = _f(freeze.get("frozen_s"))
        rows.append(
            "<tr>"
            f'<td><a href="#cycle-{idx}">{_e(name)}</a></td>'
            f"<td>{_badge(_verdict_of(run))}</td>"
            f"<td>{_code_html(run.get('status'), describe=False)}</td>"
            f"<td>{_code_html(run.get('health_code'), describe=False, health=True)}</td>"
            f'<td class="num">{_dur(frozen) if frozen else "—"}</td>'
            f"<td>{_script_brief(_d(scripts.get('pre')))}</td>"
            f"<td>{_script_brief(_d(scripts.get('post')))}</td>"
            "</tr>"
        )
    table = ""
    if rows:
        table = (
            '<table class="grid summary"><thead><tr><th>cycle</th><th>verdict</th>'
            "<th>status</th><th>health code</th><th>frozen</th><th>pre-script</th>"
            "<th>post-script</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        )
    meaning = "".join(f"<li>{_badge(v)} {_e(VERDICT_MEANING[v])}</li>" for v in VERDICTS)
    return (
        '<header class="top">'
        '<h1>pytest-vmsnap <span class="muted">report</span></h1>'
        f'<p class="lead">{_e(headline)} <span class="muted small">Generated {_e(when)}.'
        "</span></p>"
        f'<div class="tiles">{"".join(tiles)}</div>'
        f"{table}"
        '<details class="meaning"><summary>What the verdicts mean</summary>'
        f'<ul class="plain">{meaning}</ul></details>'
        "</header>"
    )


def _script_brief(s: dict[str, Any]) -> str:
    if not s.get("ran"):
        return '<span class="muted">not run</span>'
    dur = _dur(_f(s.get("duration_s")))
    err = _i(s.get("error_code"))
    if s.get("timed_out"):
        return f'{dur} <span class="bad-text">timed out ({err})</span>'
    if err:
        return f'{dur} <span class="bad-text">exit {_e(s.get("exit_code"))} ({err})</span>'
    return f'{dur} <span class="ok-text">exit {_e(s.get("exit_code"))}</span>'


def _card_safe(idx: int, name: str, run: Any) -> str:
    """A cycle's card; a record this module cannot make sense of still gets one."""
    try:
        return _card(idx, name, _d(run))
    except Exception as err:  # the report must never take the session down
        raw = _clip(_clean(json.dumps(run, indent=2, default=str)))
        return (
            f'<section class="card none" id="cycle-{idx}"><h2>{_e(name)}</h2>'
            f'<p class="callout">This cycle\'s record could not be shown: '
            f"{_e(type(err).__name__)}: {_e(err)}</p>"
            f"<details><summary>raw record</summary><pre>{_e(raw)}</pre></details></section>"
        )


def _card(idx: int, name: str, run: dict[str, Any]) -> str:
    verdict = _verdict_of(run)
    cls = VERDICT_CLASS.get(verdict, "none")
    freeze = _d(run.get("freeze"))
    snap = _d(run.get("snapshot"))
    meta = []
    for key in ("app", "vm", "profile", "quiesce"):
        if run.get(key) not in (None, ""):
            meta.append(f"<span><b>{key}</b> {_e(run[key])}</span>")
    if run.get("disks") is not None or run.get("fs"):
        meta.append(
            f"<span><b>disks</b> {_e(run.get('disks', '?'))} × {_e(run.get('fs') or '?')}</span>"
        )
    if snap.get("backend"):
        meta.append(f"<span><b>snapshot</b> {_e(snap['backend'])}</span>")

    out = [
        f'<section class="card {cls}" id="cycle-{idx}">',
        '<div class="card-head">',
        f'<h2><a class="anchor" href="#cycle-{idx}">{_e(name)}</a></h2>',
        _badge(verdict, big=True),
        "</div>",
        f'<div class="meta">{"".join(meta)}</div>' if meta else "",
    ]
    error = run.get("error")
    if error:
        out.append(f'<p class="callout"><b>Harness error:</b> {_e(_clip(str(error), 2000))}</p>')

    # framework outcome
    consistency = run.get("consistency")
    message = run.get("message")
    out.append('<div class="outcome">')
    out.append(
        f'<div class="cell"><div class="k">framework status</div>'
        f'<div class="v">{_code_html(run.get("status"))}</div></div>'
    )
    out.append(
        f'<div class="cell"><div class="k">health code</div>'
        f'<div class="v">{_code_html(run.get("health_code"), health=True)}</div></div>'
    )
    frozen = _f(freeze.get("frozen_s"))
    snap_s = _f(snap.get("duration_s"))
    snap_text = "not taken"
    if snap.get("taken"):
        snap_text = f"taken in {_dur(snap_s)}"
    out.append(
        '<div class="cell"><div class="k">snapshot</div>'
        f'<div class="v"><strong>{_e(consistency or "none")}</strong> consistency'
        f'<div class="muted small">{_e(snap_text)}'
        + (f" · frozen {_dur(frozen)}" if frozen else "")
        + "</div></div></div>"
    )
    out.append("</div>")
    if message and message != error:
        out.append(f'<p class="message"><b>Framework:</b> {_e(_clip(str(message), 2000))}</p>')

    reasons = [r for r in _l(run.get("reasons")) if r not in (None, "")]
    if reasons:
        items = "".join(f"<li>{_e(r)}</li>" for r in reasons[:MAX_REASONS])
        more = len(reasons) - MAX_REASONS
        if more > 0:
            items += f'<li class="muted">… and {more} more</li>'
        out.append(f'<h3>Why this verdict</h3><ul class="reasons {cls}">{items}</ul>')

    out.append(_timeline_section(idx, run))
    out.append(_findings(run))
    out.append(_scripts(run))
    out.append(_oracle(run))
    out.append(_versions_timings(run))
    out.append("</section>")
    return "\n".join(p for p in out if p)


# ----------------------------------------------------------------------------------------
# timeline


def _phases(run: dict[str, Any]) -> list[tuple[str, float, float]]:
    out = []
    for p in _l(run.get("timeline")):
        p = _d(p)
        start, end = _f(p.get("start_s")), _f(p.get("end_s"))
        if isinstance(p.get("phase"), str) and start is not None and end is not None:
            out.append((p["phase"], start, max(start, end)))
    return out


def _points(run: dict[str, Any]) -> list[tuple[float, float, str]]:
    out = []
    for item in _l(run.get("latency")):
        if isinstance(item, dict):
            t, lat, op = item.get("t"), item.get("latency_s"), item.get("op")
        elif isinstance(item, list | tuple) and len(item) >= 3:
            t, lat, op = item[0], item[1], item[2]
        else:
            continue
        tf, lf = _f(t), _f(lat)
        if tf is not None and lf is not None:
            out.append((tf, max(lf, 0.0), str(op)))
    return out


def _probes(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in map(_d, _l(run.get("probes"))) if _f(p.get("at_s")) is not None]


def _frozen_window(
    run: dict[str, Any], phases: list[tuple[str, float, float]]
) -> tuple[float, float] | None:
    """From the start of the freeze to the end of the thaw, when something was frozen."""
    by = {name: (a, b) for name, a, b in phases}
    if "freeze" not in by:
        return None
    freeze = _d(run.get("freeze"))
    if freeze.get("frozen") is False or (
        freeze.get("frozen") is None and not _f(freeze.get("frozen_s"))
    ):
        return None
    start = by["freeze"][0]
    end = max(by.get("thaw", by.get("snapshot", by["freeze"]))[1], by["freeze"][1])
    return start, end


def _nice_step(span: float, target: int = 9) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def _ticks(lo: float, hi: float, target: int = 9) -> tuple[list[float], int]:
    """Round tick values between ``lo`` and ``hi``, and how many decimals they need."""
    step = _nice_step(hi - lo, target)
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    first = math.ceil(lo / step - 1e-9) * step
    count = math.floor((hi - first) / step + 1e-9) + 1
    return [round(first + i * step, 10) for i in range(max(count, 0))], decimals


def _timeline_section(idx: int, run: dict[str, Any]) -> str:
    phases = _phases(run)
    points = _points(run)
    probes = _probes(run)
    if not phases and not points and not probes:
        return (
            '<h3>Timeline</h3><p class="muted">No timeline was recorded for this cycle '
            "(nothing ran).</p>"
        )
    times: list[float] = []
    for _, a, b in phases:
        times += [a, b]
    times += [t for t, _, _ in points]
    for p in probes:
        at = _f(p.get("at_s")) or 0.0
        times += [at, at + (_f(p.get("latency_s")) or 0.0)]
    lo, hi = min(times), max(times)
    span = max(hi - lo, 0.05)
    lo, hi = lo - span * 0.015, hi + span * 0.015
    window = _frozen_window(run, phases)
    svgs = [_timeline_svg(f"tl{idx}", run, phases, points, probes, window, lo, hi, zoom=False)]
    caption = "Whole cycle"
    if window and (window[1] - window[0]) < (hi - lo) * 0.05:
        w = max(window[1] - window[0], 0.001)
        pad = max(w * 1.2, 0.03)
        zlo, zhi = window[0] - pad, window[1] + pad
        svgs.append(
            '<div class="zoom-title">Zoom on the frozen window '
            f"({_e(_dur(zlo))} … {_e(_dur(zhi))} from the start)</div>"
        )
        svgs.append(
            _timeline_svg(f"tz{idx}", run, phases, points, probes, window, zlo, zhi, zoom=True)
        )
    return (
        f'<h3>Timeline</h3><figure class="timeline"><div class="zoom-title">{caption}</div>'
        + "".join(svgs)
        + f"<figcaption>{_legend(run)}</figcaption></figure>"
    )


def _legend(run: dict[str, Any]) -> str:
    def swatch(color: str) -> str:
        return f'<span class="sw" style="background:{color}"></span>'

    items = [f"{swatch(PHASE_COLOR[p])}{_e(PHASE_LABEL[p])}" for p in PHASES]
    items.append('<span class="sw frozen"></span>frozen window')
    items.append(
        '<svg class="ic" viewBox="0 0 12 12" aria-hidden="true"><circle cx="6" cy="6" r="3.2" '
        f'fill="{WRITE_COLOR}"/></svg>append write'
    )
    items.append(
        '<svg class="ic" viewBox="0 0 12 12" aria-hidden="true"><circle cx="6" cy="6" r="3" '
        f'fill="none" stroke="{WRITE_COLOR}" stroke-width="1.4"/></svg>transfer write'
    )
    items.append(
        '<svg class="ic" viewBox="0 0 12 12" aria-hidden="true"><path d="M2.5 2.5L9.5 9.5M9.5 '
        f'2.5L2.5 9.5" stroke="{BAD_COLOR}" stroke-width="2"/></svg>failed write'
    )
    items.append(
        '<svg class="ic" viewBox="0 0 12 12" aria-hidden="true"><path d="M6 1L11 6L6 11L1 6Z" '
        f'fill="{OK_COLOR}"/></svg>probe: blocked/refused or liveness ok'
    )
    items.append(
        '<svg class="ic" viewBox="0 0 12 12" aria-hidden="true"><path d="M6 1L11 6L6 11L1 6Z" '
        f'fill="{BAD_COLOR}"/></svg>probe failed'
    )
    items.append(
        '<svg class="ic" viewBox="0 0 12 12" aria-hidden="true"><path d="M6 1L11 6L6 11L1 6Z" '
        f'fill="{NEUTRAL_COLOR}"/></svg>probe reported, not judged'
    )
    quiesce = run.get("quiesce")
    note = (
        "quiesce = lock: a write must block or be refused while quiesced"
        if quiesce == "lock"
        else f"quiesce = {_e(quiesce or 'none')}: the quiesce probe is reported, not judged"
    )
    return (
        f'<div class="legend">{"".join(f"<span>{i}</span>" for i in items)}</div>'
        f'<div class="muted small">Write latency on a log scale; a write is plotted when it '
        f"started. {note}.</div>"
    )


def _probe_look(run: dict[str, Any], p: dict[str, Any]) -> tuple[str, str, str]:
    """(colour, label, tooltip) of a probe marker."""
    kind = str(p.get("probe", "probe"))
    detail = str(p.get("detail") or p.get("error") or "")
    if kind == "liveness":
        ok = p.get("ok")
        after = _f(p.get("after_s"))
        attempts = _i(p.get("attempts"))
        tries = f", {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
        last = _d(p.get("last"))
        if ok is True:
            return OK_COLOR, f"liveness ok after {_dur(after)}{tries}", detail
        if ok is False:
            why = last.get("result") or p.get("result") or "no write"
            return (
                BAD_COLOR,
                f"liveness FAILED: {why} after {_dur(after)}{tries}",
                str(last.get("detail") or detail),
            )
        return NEUTRAL_COLOR, f"liveness: {p.get('result', 'unknown')}", detail
    result = str(p.get("result", "unknown"))
    lat = _f(p.get("latency_s"))
    label = f"quiesce probe: {result}" + (f" ({_dur(lat)})" if lat is not None else "")
    if result in ("blocked", "refused"):
        return OK_COLOR, label, detail
    if result == "accepted":
        if run.get("quiesce") == "lock":
            return BAD_COLOR, label + " — the lock protected nothing", detail
        return NEUTRAL_COLOR, label + " (not judged)", detail
    return "#9a6700", label, detail


def _timeline_svg(
    sid: str,
    run: dict[str, Any],
    phases: list[tuple[str, float, float]],
    points: list[tuple[float, float, str]],
    probes: list[dict[str, Any]],
    window: tuple[float, float] | None,
    lo: float,
    hi: float,
    *,
    zoom: bool,
) -> str:
    pw = _W - _LEFT - _RIGHT

    def x(t: float) -> float:
        return _LEFT + (t - lo) / (hi - lo) * pw

    top = 30
    rows = [p for p in PHASES if zoom is False or p in ("freeze", "snapshot", "thaw")]
    if zoom:
        rows = ["pre", "freeze", "snapshot", "thaw", "post"]
    extra_phases = [name for name, _, _ in phases if name not in PHASES]
    for name in extra_phases:
        if name not in rows:
            rows.append(name)
    row_y: dict[str, float] = {name: top + i * (_ROW + _ROW_GAP) for i, name in enumerate(rows)}
    probe_top = top + len(rows) * (_ROW + _ROW_GAP) + 6
    probe_kinds = ["quiesce", "liveness"]
    for p in probes:
        k = str(p.get("probe", "probe"))
        if k not in probe_kinds:
            probe_kinds.append(k)
    probe_y: dict[str, float] = {
        k: probe_top + i * (_ROW + _ROW_GAP) for i, k in enumerate(probe_kinds)
    }
    lat_top = probe_top + len(probe_kinds) * (_ROW + _ROW_GAP) + 30
    lat_bottom = lat_top + _LAT_H
    axis_y = lat_bottom + 8
    height = axis_y + 44

    s: list[str] = [
        f'<svg class="tl" viewBox="0 0 {_W} {height:.0f}" role="img" '
        f'aria-label="timeline of the cycle">'
    ]
    s.append(
        f'<defs><clipPath id="{sid}-clip"><rect x="{_LEFT}" y="0" width="{pw}" '
        f'height="{height}"/></clipPath></defs>'
    )
    # row backgrounds and labels
    for name in rows:
        y = row_y[name]
        s.append(
            f'<rect x="{_LEFT}" y="{y}" width="{pw}" height="{_ROW}" class="lane"/>'
            f'<text x="{_LEFT - 10}" y="{y + _ROW / 2 + 4.5}" class="rowlbl">'
            f"{_e(PHASE_LABEL.get(name, name))}</text>"
        )
    for k in probe_kinds:
        y = probe_y[k]
        s.append(
            f'<rect x="{_LEFT}" y="{y}" width="{pw}" height="{_ROW}" class="lane probe"/>'
            f'<text x="{_LEFT - 10}" y="{y + _ROW / 2 + 4.5}" class="rowlbl">'
            f"{_e(k)} probe</text>"
        )
    # x grid + axis
    ticks, decimals = _ticks(lo, hi, 7 if zoom else 10)
    for t in ticks:
        xt = x(t)
        s.append(
            f'<line x1="{xt:.1f}" y1="{top - 4}" x2="{xt:.1f}" y2="{lat_bottom}" class="grid"/>'
            f'<line x1="{xt:.1f}" y1="{lat_bottom}" x2="{xt:.1f}" y2="{axis_y}" class="tick"/>'
            f'<text x="{xt:.1f}" y="{axis_y + 15}" class="xtick">{t:.{decimals}f}</text>'
        )
    s.append(
        f'<line x1="{_LEFT}" y1="{lat_bottom}" x2="{_LEFT + pw}" y2="{lat_bottom}" '
        'class="axis"/>'
        f'<text x="{_LEFT + pw / 2}" y="{axis_y + 35}" class="axlbl">seconds from the start '
        "of the run</text>"
    )
    # frozen window band (under the bars), label above
    if window is not None:
        x0, x1 = x(window[0]), x(window[1])
        if x1 - x0 < 3:
            mid = (x0 + x1) / 2
            x0, x1 = mid - 1.5, mid + 1.5
        frozen_s = _f(_d(run.get("freeze")).get("frozen_s")) or (window[1] - window[0])
        s.append(
            f'<g clip-path="url(#{sid}-clip)"><rect x="{x0:.1f}" y="{top - 8}" '
            f'width="{x1 - x0:.1f}" height="{lat_bottom - top + 8}" class="frozen"/></g>'
        )
        label = f"frozen {frozen_s * 1000:.0f} ms"
        lx = min(max((x0 + x1) / 2, _LEFT + 50), _LEFT + pw - 50)
        s.append(
            f'<rect x="{lx - 52:.1f}" y="2" width="104" height="19" rx="9.5" class="frozen-pill"/>'
            f'<text x="{lx:.1f}" y="15.5" class="frozen-lbl">{_e(label)}</text>'
        )
    # phase bars
    scripts = _d(run.get("scripts"))
    present = {name for name, _, _ in phases}
    s.append(f'<g clip-path="url(#{sid}-clip)">')
    for name, a, b in phases:
        if name not in row_y:
            continue
        y = row_y[name]
        xa, xb = x(a), x(b)
        w = max(xb - xa, 2.0)
        color = PHASE_COLOR.get(name, "#6e7781")
        script = _d(scripts.get(name)) if name in ("pre", "post") else {}
        failed = bool(_i(script.get("error_code")))
        stroke = f' stroke="{BAD_COLOR}" stroke-width="2.5"' if failed else ""
        text = _dur(b - a)
        if failed:
            ec = _i(script.get("error_code"))
            text += f" · {'timed out' if script.get('timed_out') else 'failed'} ({ec})"
        tip = f"{PHASE_LABEL.get(name, name)}: {a:.4f} → {b:.4f} s ({_dur(b - a)})"
        s.append(
            f'<rect x="{xa:.1f}" y="{y + 2}" width="{w:.1f}" height="{_ROW - 4}" rx="3" '
            f'fill="{color}"{stroke}><title>{_e(tip)}</title></rect>'
        )
        inside = w > len(text) * 7.2 + 12
        if inside:
            s.append(
                f'<text x="{xa + 7:.1f}" y="{y + _ROW / 2 + 4.5}" class="barlbl in">'
                f"{_e(text)}</text>"
            )
        elif xa + w + 8 + len(text) * 7.2 < _LEFT + pw:
            s.append(
                f'<text x="{xa + w + 6:.1f}" y="{y + _ROW / 2 + 4.5}" class="barlbl">'
                f"{_e(text)}</text>"
            )
        else:
            s.append(
                f'<text x="{xa - 6:.1f}" y="{y + _ROW / 2 + 4.5}" class="barlbl end">'
                f"{_e(text)}</text>"
            )
    s.append("</g>")
    for name in rows:
        if name not in present:
            s.append(
                f'<text x="{_LEFT + 8}" y="{row_y[name] + _ROW / 2 + 4.5}" class="notrun">'
                "not run</text>"
            )
    # probes
    for p in probes:
        k = str(p.get("probe", "probe"))
        at = _f(p.get("at_s")) or 0.0
        if not lo <= at <= hi:
            continue
        y = probe_y[k] + _ROW / 2
        color, label, tip = _probe_look(run, p)
        xa = x(at)
        lat = _f(p.get("latency_s"))
        xb = xa
        if k == "quiesce" and lat:
            xb = min(x(at + lat), _LEFT + pw)
            s.append(
                f'<line x1="{xa:.1f}" y1="{y}" x2="{xb:.1f}" y2="{y}" stroke="{color}" '
                'stroke-width="3" stroke-linecap="round" opacity="0.55"/>'
            )
        s.append(
            f'<path d="M{xa:.1f} {y - 8} L{xa + 8:.1f} {y} L{xa:.1f} {y + 8} L{xa - 8:.1f} {y} Z" '
            f'fill="{color}" stroke="#fff" stroke-width="1.5"><title>{_e(label)}'
            f"{': ' + _e(tip) if tip else ''}</title></path>"
        )
        tw = len(label) * 7.6
        lx = max(xa + 14, xb + 8)
        if lx + tw < _LEFT + pw:
            s.append(
                f'<text x="{lx:.1f}" y="{y + 4.5}" class="probelbl" fill="{color}">'
                f"{_e(label)}</text>"
            )
        else:
            s.append(
                f'<text x="{xa - 14:.1f}" y="{y + 4.5}" class="probelbl end" fill="{color}">'
                f"{_e(label)}</text>"
            )
    # latency chart
    s.append(_latency(sid, points, lo, hi, x, lat_top, lat_bottom, pw))
    s.append("</svg>")
    return "".join(s)


def _latency(
    sid: str,
    points: list[tuple[float, float, str]],
    lo: float,
    hi: float,
    x: Any,
    top: float,
    bottom: float,
    pw: float,
) -> str:
    s = [
        f'<rect x="{_LEFT}" y="{top}" width="{pw}" height="{bottom - top}" class="latbg"/>',
        f'<text x="{_LEFT}" y="{top - 9}" class="latlbl">write latency of the workload '
        "(log scale)</text>",
    ]
    shown = [p for p in points if lo <= p[0] <= hi]
    if not shown:
        s.append(
            f'<text x="{_LEFT + pw / 2}" y="{(top + bottom) / 2 + 4}" class="empty">'
            "no workload writes recorded in this range</text>"
        )
        return "".join(s)
    lats = [lat for _, lat, _ in shown if lat > 0]
    ymin_v = max(min(lats, default=1e-3), 1e-5)
    ymax_v = max(lats, default=1e-2)
    d_lo = max(math.floor(math.log10(ymin_v)), -4)
    d_hi = min(max(math.ceil(math.log10(ymax_v)), d_lo + 2), 3)
    if d_lo >= d_hi:
        d_lo = d_hi - 2

    def y(lat: float) -> float:
        v = math.log10(lat) if lat > 0 else d_lo
        v = min(max(v, d_lo), d_hi)
        return bottom - (v - d_lo) / (d_hi - d_lo) * (bottom - top - 6) - 3

    for dec in range(d_lo, d_hi + 1):
        yy = y(10.0**dec)
        s.append(
            f'<line x1="{_LEFT}" y1="{yy:.1f}" x2="{_LEFT + pw}" y2="{yy:.1f}" class="ygrid"/>'
            f'<text x="{_LEFT - 8}" y="{yy + 4:.1f}" class="ytick">{_e(_decade(dec))}</text>'
        )
    # Keep the picture, not every point: at most MAX_POINTS, worst per pixel column and op.
    if len(shown) > MAX_POINTS:
        buckets: dict[tuple[int, str], tuple[float, float, str]] = {}
        errors = []
        for pt in shown:
            if pt[2] == "error":
                errors.append(pt)
                continue
            key = (int(x(pt[0]) / 2), pt[2])
            if key not in buckets or buckets[key][1] < pt[1]:
                buckets[key] = pt
        shown = sorted(buckets.values()) + errors[:MAX_POINTS]
    s.append(f'<g clip-path="url(#{sid}-clip)">')
    for t, lat, op in shown:
        px, py = x(t), y(lat)
        tip = f"{op} at {t:.3f} s: {_dur(lat)}"
        if op == "error":
            s.append(
                f'<path d="M{px - 4:.1f} {py - 4:.1f}L{px + 4:.1f} {py + 4:.1f}M{px + 4:.1f} '
                f'{py - 4:.1f}L{px - 4:.1f} {py + 4:.1f}" stroke="{BAD_COLOR}" '
                f'stroke-width="2.2"><title>{_e(tip)}</title></path>'
            )
        elif op == "transfer":
            s.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.6" fill="#fff" '
                f'stroke="{WRITE_COLOR}" stroke-width="1.2" opacity="0.8">'
                f"<title>{_e(tip)}</title></circle>"
            )
        else:
            s.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.6" fill="{WRITE_COLOR}" '
                f'opacity="0.75"><title>{_e(tip)}</title></circle>'
            )
    s.append("</g>")
    ok_writes = [p for p in shown if p[2] != "error"]
    slow = max(ok_writes, key=lambda p: p[1]) if ok_writes else (0.0, 0.0, "")
    if slow[1] >= 0.05:
        px, py = x(slow[0]), y(slow[1])
        anchor = "start" if px < _LEFT + pw - 220 else "end"
        dx = 8 if anchor == "start" else -8
        s.append(
            f'<text x="{px + dx:.1f}" y="{max(py - 6, top + 12):.1f}" class="peak" '
            f'text-anchor="{anchor}">slowest write {_e(_dur(slow[1]))}</text>'
        )
    return "".join(s)


def _decade(dec: int) -> str:
    v = 10.0**dec
    if v >= 1:
        return f"{v:.0f} s"
    if v >= 1e-3:
        return f"{v * 1000:.0f} ms"
    return f"{v * 1000:.1f} ms"


# ----------------------------------------------------------------------------------------
# findings, scripts, oracle, versions


def _findings(run: dict[str, Any]) -> str:
    found = [f for f in map(_d, _l(run.get("findings"))) if f]
    if not found:
        return '<h3>Findings</h3><p class="muted">No findings: the framework reported no code.</p>'
    rows = []
    for f in found[:MAX_FINDINGS]:
        n = _i(f.get("code"))
        internal = ""
        if n is not None:
            _, internal_name = _code_name(n)
            if internal_name and internal_name != f.get("name"):
                internal = f'<div class="muted small">{_e(internal_name)}</div>'
        code = f'<span class="code">{n}</span>' if n is not None else '<span class="muted">—</span>'
        rows.append(
            f"<tr><td>{code}</td><td><strong>{_e(f.get('name') or '')}</strong>{internal}</td>"
            f"<td>{_e(_clip(str(f.get('message') or ''), 4000))}</td>"
            f'<td class="action">{_e(_clip(str(f.get("action") or ""), 4000))}</td></tr>'
        )
    more = ""
    if len(found) > MAX_FINDINGS:
        more = f'<p class="muted">… and {len(found) - MAX_FINDINGS} more findings.</p>'
    return (
        '<h3>Findings</h3><table class="grid findings"><thead><tr><th>code</th><th>name</th>'
        "<th>what happened</th><th>what to do</th></tr></thead><tbody>"
        + "".join(rows)
        + f"</tbody></table>{more}"
    )


def _scripts(run: dict[str, Any]) -> str:
    scripts = _d(run.get("scripts"))
    cols = []
    for which in ("pre", "post"):
        s = _d(scripts.get(which))
        title = f"{which}-script"
        if not s.get("ran"):
            cols.append(
                f'<div class="script"><h4>{title} <span class="muted">not run</span></h4></div>'
            )
            continue
        err = _i(s.get("error_code"))
        state = (
            '<span class="pill bad">timed out</span>'
            if s.get("timed_out")
            else '<span class="pill bad">failed</span>'
            if err
            else '<span class="pill ok">exit 0</span>'
        )
        argv = " ".join(str(a) for a in _l(s.get("argv"))) or "—"
        attempts = _i(s.get("attempts"))
        retries = _i(s.get("retries_logged"))
        rows = [
            ("command", f"<code>{_e(_clip(argv, 2000))}</code>"),
            ("duration", _e(_dur(_f(s.get("duration_s"))))),
            (
                "exit code",
                _e(s.get("exit_code")) if s.get("exit_code") is not None else "— (no exit seen)",
            ),
            ("error code", _code_html(err, describe=False) if err else "0"),
            (
                "attempts",
                f"{attempts if attempts is not None else '—'} executed"
                + (f", {retries} retries logged" if retries is not None else ""),
            ),
        ]
        flags = [
            label
            for key, label in (
                ("timed_out", "timed out"),
                ("watchdog", "plugin-host watchdog fired"),
                ("output_stalled", "blocked on a full output pipe"),
            )
            if s.get(key)
        ]
        left = [str(p) for p in _l(s.get("left_running"))]
        if left:
            flags.append(f"left running (pid {', '.join(left)})")
        if flags:
            rows.append(("flags", f'<span class="bad-text">{_e("; ".join(flags))}</span>'))
        kv = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        outputs = []
        for stream in ("stdout", "stderr"):
            text = s.get(stream)
            text = "" if text is None else str(text)
            if not text:
                outputs.append(f'<div class="muted small out-empty">{stream}: empty</div>')
                continue
            lines = text.count("\n") + (0 if text.endswith("\n") else 1)
            opened = " open" if (stream == "stderr" and err) or len(text) < 400 else ""
            outputs.append(
                f'<details{opened}><summary>{stream} <span class="muted small">'
                f"({lines} line{'s' if lines != 1 else ''}, {_size(len(text.encode()))})"
                f'</span></summary><pre class="out">{_e(_clip(_clean(text)))}</pre></details>'
            )
        total = _i(s.get("output_bytes"))
        if total:
            outputs.append(f'<div class="muted small">{_size(total)} of output in all</div>')
        cols.append(
            f'<div class="script"><h4>{title} {state}</h4><table class="kv">{kv}</table>'
            + "".join(outputs)
            + "</div>"
        )
    return f'<h3>Scripts</h3><div class="scripts">{"".join(cols)}</div>'


_ORACLE_ROWS = (
    ("started", "restored app started", True),
    ("start_s", "start took", None),
    ("recovery_needed", "log replay on start (designed path)", None),
    ("repair_needed", "repair needed", False),
    ("integrity_ok", "integrity checks pass", True),
    ("acked_before_pre", "writes acknowledged before the pre-script returned", None),
    ("acked_missing", "… of those missing from the snapshot", 0),
    ("writes_after_thaw_present", "writes made after the thaw found in the snapshot", 0),
    ("invariants_ok", "invariants hold", True),
    ("bank_total", "bank total", None),
    ("quiesce_probe", "quiesce probe (write while quiesced)", None),
    ("quiesce_probe_ok", "quiesce probe passes", True),
    ("liveness", "liveness probe (write after the post-script)", None),
    ("liveness_ok", "app writes again after the post-script", True),
)


def _oracle(run: dict[str, Any]) -> str:
    ev = _d(run.get("oracle"))
    if not ev:
        return '<h3>Oracle evidence</h3><p class="muted">No evidence was recorded.</p>'
    if ev.get("started") is None and not ev.get("quiesce_probe") and not ev.get("liveness"):
        return (
            '<h3>Oracle evidence</h3><p class="muted">Nothing was restored or probed, so there '
            "is no evidence to show.</p>"
        )
    rows = []
    for key, label, good in _ORACLE_ROWS:
        if key not in ev:
            continue
        value = ev[key]
        mark = '<span class="mk na">·</span>'
        if good is not None and value is not None:
            mark = (
                '<span class="mk ok">✓</span>' if value == good else '<span class="mk bad">✗</span>'
            )
        if key == "start_s":
            shown = _e(_dur(_f(value))) if _f(value) is not None else "—"
        elif key == "acked_missing" and value:
            sample = ", ".join(str(v) for v in _l(ev.get("acked_missing_sample"))[:10])
            shown = _e(value) + (f' <span class="muted small">(e.g. seq {_e(sample)})</span>')
        elif key == "quiesce_probe":
            shown = _probe_text(value, run.get("quiesce"))
        elif key == "liveness":
            shown = _liveness_text(value)
        elif key == "quiesce_probe_ok" and value is None:
            shown = f'<span class="muted">not judged (quiesce = {_e(run.get("quiesce"))})</span>'
        else:
            shown = _yesno(value)
        rows.append(f"<tr><td>{mark}</td><th>{_e(label)}</th><td>{shown}</td></tr>")
    known = {k for k, _, _ in _ORACLE_ROWS} | {"acked_missing_sample", "notes"}
    for key in sorted(k for k in ev if k not in known):
        shown = _e(_clip(json.dumps(ev[key], default=str), 1000))
        rows.append(
            f'<tr><td><span class="mk na">·</span></td><th>{_e(key)}</th><td>{shown}</td></tr>'
        )
    notes = [n for n in _l(ev.get("notes")) if n not in (None, "")]
    note_html = ""
    if notes:
        note_html = (
            '<div class="notes"><div class="k">notes</div><ul>'
            + "".join(f"<li>{_e(_clip(str(n), 1000))}</li>" for n in notes[:30])
            + "</ul></div>"
        )
    return (
        '<h3>Oracle evidence</h3><table class="kv oracle">' + "".join(rows) + f"</table>{note_html}"
    )


def _probe_text(value: Any, quiesce: Any) -> str:
    p = _d(value)
    if not p:
        return '<span class="muted">not run</span>'
    result = p.get("result", "?")
    lat = _f(p.get("latency_s"))
    detail = p.get("detail") or p.get("error") or ""
    out = f"<strong>{_e(result)}</strong>"
    if lat is not None:
        out += f" in {_e(_dur(lat))}"
    if detail:
        out += f' <span class="muted small">— {_e(_clip(str(detail), 500))}</span>'
    return out


def _liveness_text(value: Any) -> str:
    p = _d(value)
    if not p:
        return '<span class="muted">not run</span>'
    ok = p.get("ok")
    after = _f(p.get("after_s"))
    attempts = _i(p.get("attempts"))
    last = _d(p.get("last"))
    out = "<strong>ok</strong>" if ok else "<strong>not ok</strong>" if ok is False else "?"
    if after is not None:
        out += f" after {_e(_dur(after))}"
    if attempts is not None:
        out += f", {attempts} attempt{'s' if attempts != 1 else ''}"
    if last.get("detail"):
        out += f' <span class="muted small">— last: {_e(last.get("result", ""))}: '
        out += f"{_e(_clip(str(last['detail']), 500))}</span>"
    return out


def _kv_table(title: str, data: dict[str, Any], fmt: Any = str) -> str:
    if not data:
        return f'<div><h4>{title}</h4><p class="muted small">none recorded</p></div>'
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(fmt(v))}</td></tr>" for k, v in sorted(data.items())
    )
    return f'<div><h4>{title}</h4><table class="kv">{rows}</table></div>'


def _versions_timings(run: dict[str, Any]) -> str:
    versions = _d(run.get("versions"))
    timings = _d(run.get("timings"))
    freeze = _d(run.get("freeze"))

    def secs(v: Any) -> str:
        f = _f(v)
        return f"{f:.3f} s" if f is not None else str(v)

    mounts = ", ".join(_mounts(freeze.get("mounts")))
    extra = ""
    if mounts:
        extra = f'<p class="small"><b>frozen mounts:</b> {_e(mounts)}</p>'
    return (
        '<h3>Versions and timings</h3><div class="vt">'
        + _kv_table("versions", versions)
        + _kv_table("timings", timings, secs)
        + f"</div>{extra}"
    )


def _mounts(value: Any) -> Iterable[str]:
    for m in _l(value):
        if isinstance(m, list | tuple):
            yield " ".join(str(x) for x in m)
        else:
            yield str(m)


_CSS = """
:root {
  --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f3f5f7; --card: #ffffff;
  --ok: #1a7f37; --ok-bg: #dafbe1; --warn: #8a5a00; --warn-solid: #f2b400; --warn-bg: #fff5cc;
  --bad: #cf222e; --bad-bg: #ffebe9; --none: #6e7781; --none-bg: #eef1f4;
  --mono: "DejaVu Sans Mono", "SFMono-Regular", Menlo, Consolas, monospace;
}
* { box-sizing: border-box; }
html { background: var(--bg); }
body { margin: 0; color: var(--fg);
  font: 15px/1.5 "DejaVu Sans", "Segoe UI", system-ui, -apple-system, sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 28px 28px 48px; }
h1 { font-size: 28px; margin: 0 0 4px; letter-spacing: -0.3px; }
h2 { font-size: 20px; margin: 0; word-break: break-word; }
h3 { font-size: 13px; text-transform: uppercase; letter-spacing: 0.8px; color: var(--muted);
  margin: 26px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h4 { font-size: 15px; margin: 4px 0 8px; }
a { color: #0a56c2; text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, .code { font-family: var(--mono); font-size: 13px; }
.muted { color: var(--muted); }
.small { font-size: 13px; }
.ok-text { color: var(--ok); font-weight: 600; }
.bad-text { color: var(--bad); font-weight: 600; }
header.top { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 22px 26px; }
.lead { font-size: 17px; margin: 4px 0 16px; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; margin-bottom: 18px; }
.tile { min-width: 150px; padding: 10px 14px; border-radius: 8px; border: 1px solid var(--line);
  border-top: 5px solid var(--c, var(--none)); background: #fff; }
.tile .num { font-size: 26px; font-weight: 700; line-height: 1.1; }
.tile .lbl { font-size: 13px; color: var(--muted); }
.tile.total { --c: #24292f; }
.tile.ok { --c: var(--ok); } .tile.warn { --c: var(--warn-solid); }
.tile.bad { --c: var(--bad); } .tile.none { --c: var(--none); }
.tile.zero { opacity: 0.5; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-weight: 700;
  font-size: 13px; white-space: nowrap; border: 1px solid transparent; }
.badge.big { font-size: 15px; padding: 4px 14px; }
.badge.ok { background: var(--ok); color: #fff; }
.badge.warn { background: var(--warn-solid); color: #3b2600; }
.badge.bad { background: var(--bad); color: #fff; }
.badge.none { background: var(--none); color: #fff; }
table { border-collapse: collapse; }
table.grid { width: 100%; font-size: 14px; }
table.grid th { text-align: left; font-size: 12px; text-transform: uppercase; letter-spacing: 0.5px;
  color: var(--muted); border-bottom: 2px solid var(--line); padding: 6px 10px; }
table.grid td { border-bottom: 1px solid var(--line); padding: 7px 10px; vertical-align: top; }
table.grid td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.summary td:first-child { font-family: var(--mono); font-size: 13px;
  overflow-wrap: anywhere; width: 30%; }
table.kv th { text-align: left; font-weight: 600; color: var(--muted); padding: 3px 14px 3px 0;
  vertical-align: top; white-space: nowrap; font-size: 14px; }
table.kv td { padding: 3px 0; vertical-align: top; font-size: 14px; word-break: break-word; }
details.meaning { margin-top: 14px; }
details.meaning summary { cursor: pointer; color: var(--muted); }
ul.plain { list-style: none; padding-left: 0; }
ul.plain li { margin: 6px 0; }
.card { background: var(--card); border: 1px solid var(--line); border-left: 8px solid var(--c);
  border-radius: 10px; padding: 20px 26px 24px; margin: 24px 0; }
.card.ok { --c: var(--ok); } .card.warn { --c: var(--warn-solid); }
.card.bad { --c: var(--bad); } .card.none { --c: var(--none); }
.card-head { display: flex; align-items: center; justify-content: space-between; gap: 16px; }
.card-head a.anchor { color: var(--fg); }
.meta { display: flex; flex-wrap: wrap; gap: 6px 18px; margin-top: 6px; color: var(--muted);
  font-size: 14px; }
.meta b { font-weight: 600; color: var(--fg); }
.callout { background: var(--bad-bg); border: 1px solid #ffcecb; border-radius: 6px;
  padding: 10px 14px; word-break: break-word; }
.message { margin: 10px 0 0; word-break: break-word; }
.outcome { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 12px;
  margin-top: 16px; }
.outcome .cell { background: #f6f8fa; border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 14px; }
.outcome .k, .notes .k { font-size: 12px; text-transform: uppercase; letter-spacing: 0.6px;
  color: var(--muted); }
.outcome .v { font-size: 15px; margin-top: 2px; }
.code { background: #eef1f4; border-radius: 4px; padding: 1px 6px; font-weight: 700; }
ul.reasons { margin: 0; padding-left: 22px; }
ul.reasons li { margin: 3px 0; }
ul.reasons li::marker { color: var(--c); }
ul.reasons.ok { --c: var(--ok); } ul.reasons.warn { --c: #d29922; }
ul.reasons.bad { --c: var(--bad); } ul.reasons.none { --c: var(--none); }
figure.timeline { margin: 0; }
.zoom-title { font-size: 13px; color: var(--muted); margin: 10px 0 2px; font-weight: 600; }
svg.tl { width: 100%; height: auto; display: block; font-family: "DejaVu Sans", sans-serif; }
svg.tl .lane { fill: #f6f8fa; }
svg.tl .lane.probe { fill: #fbfbfc; }
svg.tl .rowlbl { font-size: 13px; fill: #3d444d; text-anchor: end; }
svg.tl .latlbl { font-size: 13px; font-weight: 700; fill: #3d444d; }
svg.tl .grid { stroke: #e3e7eb; stroke-width: 1; }
svg.tl .tick, svg.tl .axis { stroke: #8c959f; stroke-width: 1; }
svg.tl .xtick { font-size: 12.5px; fill: #3d444d; text-anchor: middle;
  font-variant-numeric: tabular-nums; }
svg.tl .ytick { font-size: 12px; fill: #59636e; text-anchor: end; }
svg.tl .ygrid { stroke: #e3e7eb; stroke-dasharray: 3 3; }
svg.tl .axlbl { font-size: 13px; fill: #59636e; text-anchor: middle; }
svg.tl .latbg { fill: #fcfcfd; stroke: #e3e7eb; }
svg.tl .frozen { fill: rgba(58, 155, 217, 0.16); stroke: #3a9bd9; stroke-width: 1.2;
  stroke-dasharray: 4 3; }
svg.tl .frozen-pill { fill: #0b4f7a; }
svg.tl .frozen-lbl { font-size: 12.5px; font-weight: 700; fill: #fff; text-anchor: middle; }
svg.tl .barlbl { font-size: 12.5px; fill: #1f2328; }
svg.tl .barlbl.in { fill: #fff; font-weight: 700; }
svg.tl .barlbl.end, svg.tl .probelbl.end { text-anchor: end; }
svg.tl .notrun { font-size: 12.5px; fill: #8c959f; font-style: italic; }
svg.tl .probelbl { font-size: 13px; font-weight: 700; }
svg.tl .empty { font-size: 13px; fill: #8c959f; text-anchor: middle; font-style: italic; }
svg.tl .peak { font-size: 12.5px; fill: #3d444d; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 13px; margin-top: 10px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.legend .sw { width: 16px; height: 11px; border-radius: 2px; display: inline-block; }
.legend .sw.frozen { background: rgba(58, 155, 217, 0.16); border: 1.2px dashed #3a9bd9; }
.legend svg.ic { width: 13px; height: 13px; }
table.findings td.action { color: #0b4f7a; }
.scripts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 18px; }
.script { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px 14px;
  min-width: 0; }
.pill { display: inline-block; font-size: 12px; font-weight: 700; border-radius: 999px;
  padding: 1px 9px; vertical-align: 2px; margin-left: 6px; }
.pill.ok { background: var(--ok-bg); color: var(--ok); }
.pill.bad { background: var(--bad-bg); color: var(--bad); }
details { margin-top: 8px; }
details summary { cursor: pointer; font-weight: 600; font-size: 14px; }
pre.out { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px;
  padding: 10px 12px; margin: 6px 0 0; max-height: 26em; overflow: auto; white-space: pre-wrap;
  word-break: break-all; line-height: 1.45; }
.out-empty { margin-top: 6px; }
table.oracle { width: 100%; }
table.oracle th { width: 40%; white-space: normal; }
.mk { display: inline-block; width: 22px; font-weight: 700; }
.mk.ok { color: var(--ok); } .mk.bad { color: var(--bad); } .mk.na { color: #afb8c1; }
.notes { margin-top: 10px; }
.notes ul { margin: 4px 0; padding-left: 22px; font-size: 14px; }
.vt { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 18px; }
footer { margin-top: 30px; text-align: center; }
@media (max-width: 860px) {
  .outcome, .scripts, .vt { grid-template-columns: 1fr; }
}
@media print {
  html, body { background: #fff; }
  .card { break-inside: avoid; }
}
"""
