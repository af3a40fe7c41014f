"""The timeline of one cycle as inline SVG: phases, the frozen window, probes, and every
write's latency."""

from __future__ import annotations

import math
from typing import Any

from .format import (
    BAD_COLOR,
    MAX_POINTS,
    NEUTRAL_COLOR,
    OK_COLOR,
    OPTIONAL_PHASES,
    PHASE_COLOR,
    PHASE_LABEL,
    PHASES,
    ROW_LABEL,
    WRITE_COLOR,
    as_dict,
    as_float,
    as_int,
    as_list,
    esc,
    fmt_dur,
)
from .measures import DEFINITION, REST, Measure, measures, phases_of

# SVG geometry, in viewBox units (the SVG scales to the card's width).
_W = 1120
_LEFT = 128
_RIGHT = 28
_ROW = 22
_ROW_GAP = 5
_LAT_H = 150
MIN_BAR = 2.0
"""A bar narrower than this (in viewBox units) is drawn this wide, to stay visible."""
ZOOM_BELOW = 0.05
"""Zoom on the freeze when it spans less than this share of the whole cycle."""


def _points(run: dict[str, Any]) -> list[tuple[float, float, str]]:
    out = []
    for item in as_list(run.get("latency")):
        if isinstance(item, dict):
            t, lat, op = item.get("t"), item.get("latency_s"), item.get("op")
        elif isinstance(item, list | tuple) and len(item) >= 3:
            t, lat, op = item[0], item[1], item[2]
        else:
            continue
        tf, lf = as_float(t), as_float(lat)
        if tf is not None and lf is not None:
            out.append((tf, max(lf, 0.0), str(op)))
    return out


def _probes(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        p for p in map(as_dict, as_list(run.get("probes"))) if as_float(p.get("at_s")) is not None
    ]


def _focus(
    phases: list[tuple[str, float, float]], spans: dict[str, Measure]
) -> list[tuple[str, float, float]]:
    """What a zoom could show, best first, with its range: the freeze, snapshot and thaw
    steps with the frozen span; else (the frozen span is long in faithful pacing, which
    waits for its poll) the snapshot and the thaw."""
    by = {name: (a, b) for name, a, b in phases}
    frozen = spans.get("frozen")
    out = []
    parts = [by[n] for n in ("freeze", "snapshot", "thaw") if n in by]
    if frozen is not None and frozen.start is not None:
        parts.append((frozen.start, frozen.start + frozen.seconds))
    if parts and (frozen is not None or "freeze" in by):
        out.append(
            ("Zoom on the frozen window", min(a for a, _ in parts), max(b for _, b in parts))
        )
    tail = [by[n] for n in ("snapshot", "thaw") if n in by]
    if tail:
        out.append(("Zoom on the snapshot", min(a for a, _ in tail), max(b for _, b in tail)))
    return out


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


def timeline_section(idx: int, run: dict[str, Any]) -> str:
    phases = phases_of(run)
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
        at = as_float(p.get("at_s")) or 0.0
        times += [at, at + (as_float(p.get("latency_s")) or 0.0)]
    lo, hi = min(times), max(times)
    span = max(hi - lo, 0.05)
    lo, hi = lo - span * 0.015, hi + span * 0.015
    spans = measures(run)
    svgs = [_timeline_svg(f"tl{idx}", run, phases, points, probes, spans, lo, hi, zoom=False)]
    caption = "Whole cycle"
    focus = next((f for f in _focus(phases, spans) if f[2] - f[1] < (hi - lo) * ZOOM_BELOW), None)
    if focus is not None:
        title, a, b = focus
        w = max(b - a, 0.001)
        pad = max(w * 1.2, 0.03)
        zlo, zhi = a - pad, b + pad
        svgs.append(
            f'<div class="zoom-title">{esc(title)} '
            f"({esc(fmt_dur(zlo))} … {esc(fmt_dur(zhi))} from the start)</div>"
        )
        svgs.append(
            _timeline_svg(f"tz{idx}", run, phases, points, probes, spans, zlo, zhi, zoom=True)
        )
    return (
        f'<h3>Timeline</h3><figure class="timeline"><div class="zoom-title">{caption}</div>'
        + "".join(svgs)
        + f"<figcaption>{_legend(run)}</figcaption></figure>"
    )


def _legend(run: dict[str, Any]) -> str:
    def swatch(color: str) -> str:
        return f'<span class="sw" style="background:{color}"></span>'

    shown = {p.get("phase") for p in run.get("timeline") or []}
    items = [
        f"{swatch(PHASE_COLOR[p])}{esc(PHASE_LABEL[p])}"
        for p in PHASES
        if p not in OPTIONAL_PHASES or p in shown
    ]
    items.append('<span class="sw frozen"></span>frozen (first FIFREEZE to last FITHAW)')
    items.append(
        f'<span class="sw" style="background:{PHASE_COLOR["pre"]}"></span>'
        f'<span class="sw rest" style="background:{PHASE_COLOR["pre"]}"></span>'
        "a number, and the rest of the framework's step"
    )
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
        else f"quiesce = {esc(quiesce or 'none')}: the quiesce probe is reported, not judged"
    )
    return (
        f'<div class="legend">{"".join(f"<span>{i}</span>" for i in items)}</div>'
        '<div class="muted small">Solid bars are the numbers of the tables above: the '
        "scripts' run time, the snapshot's take(), the frozen time (hover a bar for its "
        "definition); a pale bar is the rest of the framework's step. Write latency on a log "
        f"scale; a write is plotted when it started. {note}.</div>"
    )


def _lane(p: dict[str, Any]) -> str:
    """A probe's lane: its kind, and its writer role unless that is the application user."""
    kind, role = str(p.get("probe", "probe")), p.get("role")
    return kind if role in (None, "app") else f"{kind} ({role})"


def _lane_label(lane: str) -> str:
    """``quiesce probe``; a role's lane, right under its kind's: ``↳ privileged`` (the
    labels' column fits about 15 characters)."""
    kind, sep, role = lane.partition(" (")
    return f"↳ {role.rstrip(')')}" if sep else f"{kind} probe"


def _probe_look(run: dict[str, Any], p: dict[str, Any]) -> tuple[str, str, str]:
    """(colour, label, tooltip) of a probe marker."""
    kind = str(p.get("probe", "probe"))
    detail = str(p.get("detail") or p.get("error") or "")
    if kind == "liveness":
        ok = p.get("ok")
        after = as_float(p.get("after_s"))
        attempts = as_int(p.get("attempts"))
        tries = f", {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
        last = as_dict(p.get("last"))
        if ok is True:
            return OK_COLOR, f"liveness ok after {fmt_dur(after)}{tries}", detail
        if ok is False:
            why = last.get("result") or p.get("result") or "no write"
            return (
                BAD_COLOR,
                f"liveness FAILED: {why} after {fmt_dur(after)}{tries}",
                str(last.get("detail") or detail),
            )
        return NEUTRAL_COLOR, f"liveness: {p.get('result', 'unknown')}", detail
    result = str(p.get("result", "unknown"))
    lat = as_float(p.get("latency_s"))
    label = f"quiesce probe: {result}" + (f" ({fmt_dur(lat)})" if lat is not None else "")
    if p.get("role") not in (None, "app"):  # its lane says whose; the tooltip too
        detail = f"{p['role']} writer: {detail}"
    if result in ("blocked", "refused"):
        return OK_COLOR, label, detail
    if result == "accepted":
        judged = run.get("quiesce") == "lock"
        if p.get("role") == "privileged" and as_dict(run.get("oracle")).get("only_read_only_held"):
            color = BAD_COLOR if judged else NEUTRAL_COLOR
            return color, label + " — only read_only held", detail
        if judged:
            return BAD_COLOR, label + " — the lock protected nothing", detail
        return NEUTRAL_COLOR, label + " (not judged)", detail
    return "#9a6700", label, detail


_ESTIMATED = (
    " (This record does not say where it was: the bar is placed from the framework's steps.)"
)


def _row_label(name: str) -> str:
    """A row's name; a short one carries the long one as its tooltip."""
    short, long = ROW_LABEL.get(name, name), PHASE_LABEL.get(name, name)
    return esc(short) if short == long else f"{esc(short)}<title>{esc(long)}</title>"


def _bar(x: Any, start: float, seconds: float) -> tuple[float, float]:
    """``(x, width)`` of a bar that lasts ``seconds`` from ``start``: exactly that long on the
    axis, or :data:`MIN_BAR` wide when shorter, centred on where it was."""
    x0, x1 = x(start), x(start + seconds)
    if x1 - x0 >= MIN_BAR:
        return x0, x1 - x0
    return (x0 + x1) / 2 - MIN_BAR / 2, MIN_BAR


def _timeline_svg(
    sid: str,
    run: dict[str, Any],
    phases: list[tuple[str, float, float]],
    points: list[tuple[float, float, str]],
    probes: list[dict[str, Any]],
    spans: dict[str, Measure],
    lo: float,
    hi: float,
    *,
    zoom: bool,
) -> str:
    pw = _W - _LEFT - _RIGHT

    def x(t: float) -> float:
        return _LEFT + (t - lo) / (hi - lo) * pw

    top = 30
    present = {name for name, _, _ in phases}
    # The extension's waits around the freeze exist only in faithful pacing: rows only then.
    rows = [p for p in PHASES if p not in OPTIONAL_PHASES or p in present]
    if zoom:  # the window around the freeze, in timeline order
        rows = [p for p in rows if p not in ("precheck",)]
    extra_phases = [name for name, _, _ in phases if name not in PHASES]
    for name in extra_phases:
        if name not in rows:
            rows.append(name)
    row_y: dict[str, float] = {name: top + i * (_ROW + _ROW_GAP) for i, name in enumerate(rows)}
    probe_top = top + len(rows) * (_ROW + _ROW_GAP) + 6
    probe_kinds = ["quiesce", "liveness"]
    for p in probes:
        k = _lane(p)
        if k not in probe_kinds:  # a role's lane goes right after its kind's
            kind = str(p.get("probe", "probe"))
            same = [i for i, lane in enumerate(probe_kinds) if lane.partition(" (")[0] == kind]
            probe_kinds.insert(same[-1] + 1 if same else len(probe_kinds), k)
    probe_y: dict[str, float] = {
        k: probe_top + i * (_ROW + _ROW_GAP) for i, k in enumerate(probe_kinds)
    }
    lat_top = probe_top + len(probe_kinds) * (_ROW + _ROW_GAP) + 30
    lat_bottom = lat_top + _LAT_H
    axis_y = lat_bottom + 8
    height = axis_y + 44

    s: list[str] = [
        f'<svg class="tl" viewBox="0 0 {_W} {height:.0f}" role="img" '
        f'aria-label="timeline of the cycle" data-t0="{lo!r}" data-t1="{hi!r}" '
        f'data-x0="{_LEFT}" data-x1="{_LEFT + pw}">'
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
            f"{_row_label(name)}</text>"
        )
    for k in probe_kinds:
        y = probe_y[k]
        s.append(
            f'<rect x="{_LEFT}" y="{y}" width="{pw}" height="{_ROW}" class="lane probe"/>'
            f'<text x="{_LEFT - 10}" y="{y + _ROW / 2 + 4.5}" class="rowlbl">'
            f"{esc(_lane_label(k))}</text>"
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
    # the frozen span (under the bars), its number above
    frozen = spans.get("frozen")
    if frozen is not None and frozen.start is not None:
        x0, w = _bar(x, frozen.start, frozen.seconds)
        tip = DEFINITION["frozen"] + ("" if frozen.exact else _ESTIMATED)
        s.append(
            f'<g clip-path="url(#{sid}-clip)"><rect x="{x0:.2f}" y="{top - 8}" '
            f'width="{w:.2f}" height="{lat_bottom - top + 8}" class="frozen" '
            f'data-measure="frozen" data-seconds="{frozen.seconds!r}">'
            f"<title>{esc(tip)}</title></rect></g>"
        )
        label = f"frozen {fmt_dur(frozen.seconds)}"
        vis0, vis1 = max(x0, _LEFT), min(x0 + w, _LEFT + pw)  # its part in view
        lx = min(max((vis0 + vis1) / 2, _LEFT + 50), _LEFT + pw - 50)
        if vis1 >= vis0:
            s.append(
                f'<rect x="{lx - 52:.1f}" y="2" width="104" height="19" rx="9.5" '
                f'class="frozen-pill"/><text x="{lx:.1f}" y="15.5" class="frozen-lbl" '
                f'data-measure="frozen">{esc(label)}</text>'
            )
    # the framework's steps; a step with a number of its own shows it solid, the rest pale
    scripts = as_dict(run.get("scripts"))
    snap = as_dict(run.get("snapshot"))
    s.append(f'<g clip-path="url(#{sid}-clip)">')
    for name, a, b in phases:
        if name not in row_y:
            continue
        y = row_y[name]
        color = PHASE_COLOR.get(name, "#6e7781")
        label = PHASE_LABEL.get(name, name)
        script = as_dict(scripts.get(name)) if name in ("pre", "post") else {}
        failed = bool(as_int(script.get("error_code")))
        stroke = f' stroke="{BAD_COLOR}" stroke-width="2.5"' if failed else ""
        m = spans.get(name) if name in ("pre", "post", "snapshot") else None
        if m is not None and m.start is None:
            m = None
        xa, w = _bar(x, a, b - a)
        tip = f"{label}: the framework's step, {a:.4f} → {b:.4f} s ({fmt_dur(b - a)})"
        text = fmt_dur(b - a)
        measure = ""
        if m is None:
            if name == "snapshot" and not snap.get("taken"):
                text += " · not taken"
            s.append(
                f'<rect x="{xa:.2f}" y="{y + 2}" width="{w:.2f}" height="{_ROW - 4}" rx="3" '
                f'fill="{color}"{stroke} data-phase="{esc(name)}" '
                f'data-seconds="{b - a!r}"><title>{esc(tip)}</title></rect>'
            )
            inner_x, inner_w = xa, w
        else:
            assert m.start is not None
            # The number's own bar inside its step; a modelled watchdog wait ends with it.
            inner_x, inner_w = _bar(x, m.start, m.seconds)
            if m.modelled:
                inner_w = max(min(inner_w, xa + w - inner_x), MIN_BAR)
            text = fmt_dur(m.seconds) + (" (modelled, not waited)" if m.modelled else "")
            rest = f"; the pale rest is {REST[name]}" if b - a > m.seconds else ""
            tip = (
                f"{label}: {fmt_dur(m.seconds)}. {DEFINITION[name]} The framework's whole "
                f"step: {a:.4f} → {b:.4f} s ({fmt_dur(b - a)}){rest}."
                + ("" if m.exact else _ESTIMATED)
            )
            measure = f' data-measure="{name}"'
            s.append(
                f'<rect x="{xa:.2f}" y="{y + 2}" width="{w:.2f}" height="{_ROW - 4}" rx="3" '
                f'fill="{color}" class="rest" data-phase="{esc(name)}" '
                f'data-seconds="{b - a!r}"><title>{esc(tip)}</title></rect>'
                f'<rect x="{inner_x:.2f}" y="{y + 2}" width="{inner_w:.2f}" '
                f'height="{_ROW - 4}" rx="3" fill="{color}"{stroke}{measure} '
                f'data-seconds="{m.seconds!r}"><title>{esc(tip)}</title></rect>'
            )
            end_x = max(xa + w, inner_x + inner_w)
            xa = min(xa, inner_x)
            w = end_x - xa
        if failed:
            ec = as_int(script.get("error_code"))
            text += f" · {'timed out' if script.get('timed_out') else 'failed'} ({ec})"
        y_text = y + _ROW / 2 + 4.5
        # Where the label fits in the view: in the visible part of its bar, after the bar,
        # or before it; a bar wholly outside the view (a zoom) has none.
        tw = len(text) * 7.2
        vis0, vis1 = max(inner_x, _LEFT), min(inner_x + inner_w, _LEFT + pw)
        if vis1 - vis0 > tw + 12:
            s.append(
                f'<text x="{vis0 + 7:.1f}" y="{y_text}" class="barlbl in"{measure}>'
                f"{esc(text)}</text>"
            )
        elif xa + w + 6 >= _LEFT and xa + w + 8 + tw < _LEFT + pw:
            s.append(
                f'<text x="{xa + w + 6:.1f}" y="{y_text}" class="barlbl"{measure}>'
                f"{esc(text)}</text>"
            )
        elif xa - 6 - tw >= _LEFT and xa - 6 <= _LEFT + pw:
            s.append(
                f'<text x="{xa - 6:.1f}" y="{y_text}" class="barlbl end"{measure}>'
                f"{esc(text)}</text>"
            )
    s.append("</g>")
    for name in rows:
        if name not in present:
            s.append(
                f'<text x="{_LEFT + 8}" y="{row_y[name] + _ROW / 2 + 4.5}" class="notrun">'
                "not run</text>"
            )
    # probes; a label that would cover another label or marker of its lane is left to the
    # marker's tooltip
    shown = [(p, x(as_float(p.get("at_s")) or 0.0)) for p in probes]
    shown = [(p, xa) for p, xa in shown if _LEFT - 8 <= xa <= _LEFT + pw + 8]
    taken: dict[str, list[tuple[float, float]]] = {}
    for p, xa in shown:
        taken.setdefault(_lane(p), []).append((xa - 9, xa + 9))
    for p, xa in shown:
        k = _lane(p)
        at = as_float(p.get("at_s")) or 0.0
        y = probe_y[k] + _ROW / 2
        color, label, tip = _probe_look(run, p)
        lat = as_float(p.get("latency_s"))
        xb = xa
        if p.get("probe") == "quiesce" and lat:
            xb = min(x(at + lat), _LEFT + pw)
            s.append(
                f'<line x1="{xa:.1f}" y1="{y}" x2="{xb:.1f}" y2="{y}" stroke="{color}" '
                'stroke-width="3" stroke-linecap="round" opacity="0.55"/>'
            )
        s.append(
            f'<path d="M{xa:.1f} {y - 8} L{xa + 8:.1f} {y} L{xa:.1f} {y + 8} L{xa - 8:.1f} {y} Z" '
            f'fill="{color}" stroke="#fff" stroke-width="1.5"><title>{esc(label)}'
            f"{': ' + esc(tip) if tip else ''}</title></path>"
        )
        tw = len(label) * 7.6
        lx = max(xa + 14, xb + 8)
        # Right of the marker if it fits there, else left (a long label left of an early
        # marker would run over the lane's name).
        others = [(a, b) for a, b in taken[k] if not a < xa < b]
        for extent, cls, tx in (
            ((lx, lx + tw), "probelbl", lx),
            ((xa - 14 - tw, xa - 14), "probelbl end", xa - 14),
        ):
            inside = extent[0] >= _LEFT and extent[1] <= _LEFT + pw
            if inside and not any(extent[0] < b and a < extent[1] for a, b in others):
                taken[k].append(extent)
                s.append(
                    f'<text x="{tx:.1f}" y="{y + 4.5}" class="{cls}" fill="{color}">'
                    f"{esc(label)}</text>"
                )
                break
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
            f'<text x="{_LEFT - 8}" y="{yy + 4:.1f}" class="ytick">{esc(_decade(dec))}</text>'
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
        tip = f"{op} at {t:.3f} s: {fmt_dur(lat)}"
        if op == "error":
            s.append(
                f'<path d="M{px - 4:.1f} {py - 4:.1f}L{px + 4:.1f} {py + 4:.1f}M{px + 4:.1f} '
                f'{py - 4:.1f}L{px - 4:.1f} {py + 4:.1f}" stroke="{BAD_COLOR}" '
                f'stroke-width="2.2"><title>{esc(tip)}</title></path>'
            )
        elif op == "transfer":
            s.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.6" fill="#fff" '
                f'stroke="{WRITE_COLOR}" stroke-width="1.2" opacity="0.8">'
                f"<title>{esc(tip)}</title></circle>"
            )
        else:
            s.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.6" fill="{WRITE_COLOR}" '
                f'opacity="0.75"><title>{esc(tip)}</title></circle>'
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
            f'text-anchor="{anchor}">slowest write {esc(fmt_dur(slow[1]))}</text>'
        )
    return "".join(s)


def _decade(dec: int) -> str:
    v = 10.0**dec
    if v >= 1:
        return f"{v:.0f} s"
    if v >= 1e-3:
        return f"{v * 1000:.0f} ms"
    return f"{v * 1000:.1f} ms"
