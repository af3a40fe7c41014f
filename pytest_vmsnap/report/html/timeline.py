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
    WRITE_COLOR,
    as_dict,
    as_float,
    as_int,
    as_list,
    esc,
    fmt_dur,
)

# SVG geometry, in viewBox units (the SVG scales to the card's width).
_W = 1120
_LEFT = 128
_RIGHT = 28
_ROW = 22
_ROW_GAP = 5
_LAT_H = 150


def _phases(run: dict[str, Any]) -> list[tuple[str, float, float]]:
    out = []
    for p in as_list(run.get("timeline")):
        p = as_dict(p)
        start, end = as_float(p.get("start_s")), as_float(p.get("end_s"))
        if isinstance(p.get("phase"), str) and start is not None and end is not None:
            out.append((p["phase"], start, max(start, end)))
    return out


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


def _frozen_window(
    run: dict[str, Any], phases: list[tuple[str, float, float]]
) -> tuple[float, float] | None:
    """From the start of the freeze to the end of the thaw, when something was frozen."""
    by = {name: (a, b) for name, a, b in phases}
    if "freeze" not in by:
        return None
    freeze = as_dict(run.get("freeze"))
    if freeze.get("frozen") is False or (
        freeze.get("frozen") is None and not as_float(freeze.get("frozen_s"))
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


def timeline_section(idx: int, run: dict[str, Any]) -> str:
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
        at = as_float(p.get("at_s")) or 0.0
        times += [at, at + (as_float(p.get("latency_s")) or 0.0)]
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
            f"({esc(fmt_dur(zlo))} … {esc(fmt_dur(zhi))} from the start)</div>"
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

    shown = {p.get("phase") for p in run.get("timeline") or []}
    items = [
        f"{swatch(PHASE_COLOR[p])}{esc(PHASE_LABEL[p])}"
        for p in PHASES
        if p not in OPTIONAL_PHASES or p in shown
    ]
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
        else f"quiesce = {esc(quiesce or 'none')}: the quiesce probe is reported, not judged"
    )
    return (
        f'<div class="legend">{"".join(f"<span>{i}</span>" for i in items)}</div>'
        f'<div class="muted small">Write latency on a log scale; a write is plotted when it '
        f"started. {note}.</div>"
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
            f"{esc(PHASE_LABEL.get(name, name))}</text>"
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
    # frozen window band (under the bars), label above
    if window is not None:
        x0, x1 = x(window[0]), x(window[1])
        if x1 - x0 < 3:
            mid = (x0 + x1) / 2
            x0, x1 = mid - 1.5, mid + 1.5
        frozen_s = as_float(as_dict(run.get("freeze")).get("frozen_s")) or (window[1] - window[0])
        s.append(
            f'<g clip-path="url(#{sid}-clip)"><rect x="{x0:.1f}" y="{top - 8}" '
            f'width="{x1 - x0:.1f}" height="{lat_bottom - top + 8}" class="frozen"/></g>'
        )
        label = f"frozen {frozen_s * 1000:.0f} ms"
        lx = min(max((x0 + x1) / 2, _LEFT + 50), _LEFT + pw - 50)
        s.append(
            f'<rect x="{lx - 52:.1f}" y="2" width="104" height="19" rx="9.5" class="frozen-pill"/>'
            f'<text x="{lx:.1f}" y="15.5" class="frozen-lbl">{esc(label)}</text>'
        )
    # phase bars
    scripts = as_dict(run.get("scripts"))
    present = {name for name, _, _ in phases}
    s.append(f'<g clip-path="url(#{sid}-clip)">')
    for name, a, b in phases:
        if name not in row_y:
            continue
        y = row_y[name]
        xa, xb = x(a), x(b)
        w = max(xb - xa, 2.0)
        color = PHASE_COLOR.get(name, "#6e7781")
        script = as_dict(scripts.get(name)) if name in ("pre", "post") else {}
        failed = bool(as_int(script.get("error_code")))
        stroke = f' stroke="{BAD_COLOR}" stroke-width="2.5"' if failed else ""
        text = fmt_dur(b - a)
        if failed:
            ec = as_int(script.get("error_code"))
            text += f" · {'timed out' if script.get('timed_out') else 'failed'} ({ec})"
        tip = f"{PHASE_LABEL.get(name, name)}: {a:.4f} → {b:.4f} s ({fmt_dur(b - a)})"
        s.append(
            f'<rect x="{xa:.1f}" y="{y + 2}" width="{w:.1f}" height="{_ROW - 4}" rx="3" '
            f'fill="{color}"{stroke}><title>{esc(tip)}</title></rect>'
        )
        inside = w > len(text) * 7.2 + 12
        if inside:
            s.append(
                f'<text x="{xa + 7:.1f}" y="{y + _ROW / 2 + 4.5}" class="barlbl in">'
                f"{esc(text)}</text>"
            )
        elif xa + w + 8 + len(text) * 7.2 < _LEFT + pw:
            s.append(
                f'<text x="{xa + w + 6:.1f}" y="{y + _ROW / 2 + 4.5}" class="barlbl">'
                f"{esc(text)}</text>"
            )
        else:
            s.append(
                f'<text x="{xa - 6:.1f}" y="{y + _ROW / 2 + 4.5}" class="barlbl end">'
                f"{esc(text)}</text>"
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
        k = _lane(p)
        at = as_float(p.get("at_s")) or 0.0
        if not lo <= at <= hi:
            continue
        y = probe_y[k] + _ROW / 2
        color, label, tip = _probe_look(run, p)
        xa = x(at)
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
        # Right of the marker if it fits there, else on the side with more room (a long
        # label left of an early marker would run over the lane's name).
        right, left = _LEFT + pw - lx, xa - 14 - _LEFT
        if tw < right or right >= left:
            s.append(
                f'<text x="{lx:.1f}" y="{y + 4.5}" class="probelbl" fill="{color}">'
                f"{esc(label)}</text>"
            )
        else:
            s.append(
                f'<text x="{xa - 14:.1f}" y="{y + 4.5}" class="probelbl end" fill="{color}">'
                f"{esc(label)}</text>"
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
