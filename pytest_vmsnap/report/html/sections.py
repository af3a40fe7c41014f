"""The tables of one cycle's card: findings, scripts and their output, the oracle's evidence,
versions and timings."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .format import (
    MAX_FINDINGS,
    as_dict,
    as_float,
    as_int,
    as_list,
    clean,
    clip,
    code_html,
    code_name,
    esc,
    fmt_dur,
    fmt_size,
    yesno,
)
from .measures import DEFINITION, Measure, measures


def findings_html(run: dict[str, Any]) -> str:
    found = [f for f in map(as_dict, as_list(run.get("findings"))) if f]
    if not found:
        return '<h3>Findings</h3><p class="muted">No findings: the framework reported no code.</p>'
    rows = []
    for f in found[:MAX_FINDINGS]:
        n = as_int(f.get("code"))
        internal = ""
        if n is not None:
            _, internal_name = code_name(n)
            if internal_name and internal_name != f.get("name"):
                internal = f'<div class="muted small">{esc(internal_name)}</div>'
        code = f'<span class="code">{n}</span>' if n is not None else '<span class="muted">—</span>'
        rows.append(
            f"<tr><td>{code}</td><td><strong>{esc(f.get('name') or '')}</strong>{internal}</td>"
            f"<td>{esc(clip(str(f.get('message') or ''), 4000))}</td>"
            f'<td class="action">{esc(clip(str(f.get("action") or ""), 4000))}</td></tr>'
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


def scripts_html(run: dict[str, Any], spans: dict[str, Measure] | None = None) -> str:
    """Both scripts: how they ran, their codes and their output (``spans``: the run's
    :func:`~.measures.measures`, for the one number of each script's duration)."""
    scripts = as_dict(run.get("scripts"))
    spans = measures(run) if spans is None else spans
    cols = []
    for which in ("pre", "post"):
        s = as_dict(scripts.get(which))
        title = f"{which}-script"
        if not s.get("ran"):
            cols.append(
                f'<div class="script"><h4>{title} <span class="muted">not run</span></h4></div>'
            )
            continue
        err = as_int(s.get("error_code"))
        state = (
            '<span class="pill bad">timed out</span>'
            if s.get("timed_out")
            else '<span class="pill bad">failed</span>'
            if err
            else '<span class="pill ok">exit 0</span>'
        )
        argv = " ".join(str(a) for a in as_list(s.get("argv"))) or "—"
        attempts = as_int(s.get("attempts"))
        retries = as_int(s.get("retries_logged"))
        rows = [
            ("command", f"<code>{esc(clip(argv, 2000))}</code>"),
            ("duration", _duration(spans.get(which))),
            (
                "exit code",
                esc(s.get("exit_code")) if s.get("exit_code") is not None else "— (no exit seen)",
            ),
            ("error code", code_html(err, describe=False) if err else "0"),
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
        left = [str(p) for p in as_list(s.get("left_running"))]
        if left:
            flags.append(f"left running (pid {', '.join(left)})")
        if flags:
            rows.append(("flags", f'<span class="bad-text">{esc("; ".join(flags))}</span>'))
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
                f"({lines} line{'s' if lines != 1 else ''}, {fmt_size(len(text.encode()))})"
                f'</span></summary><pre class="out">{esc(clip(clean(text)))}</pre></details>'
            )
        total = as_int(s.get("output_bytes"))
        if total:
            outputs.append(f'<div class="muted small">{fmt_size(total)} of output in all</div>')
        cols.append(
            f'<div class="script"><h4>{title} {state}</h4><table class="kv">{kv}</table>'
            + "".join(outputs)
            + "</div>"
        )
    return f'<h3>Scripts</h3><div class="scripts">{"".join(cols)}</div>'


def _duration(m: Measure | None) -> str:
    if m is None:
        return "—"
    note = " (modelled: the plugin host's watchdog, not waited for)" if m.modelled else ""
    return (
        f'<span data-measure="{m.key}" data-seconds="{m.seconds!r}" '
        f'title="{esc(DEFINITION[m.key])}">{esc(fmt_dur(m.seconds))}</span>{esc(note)}'
    )


_ORACLE_ROWS = (
    ("started", "restored app started", True),
    ("start_s", "start took", None),
    ("recovery_needed", "log replay on start (designed path)", None),
    ("repair_needed", "repair needed", False),
    ("integrity_ok", "integrity checks pass", True),
    ("acked_before_pre", "writes acknowledged before the pre-script returned", None),
    ("acked_missing", "… of those missing from the snapshot", 0),
    ("acked_by_role", "… per writer role", None),
    ("writes_after_thaw_present", "writes made after the thaw found in the snapshot", 0),
    ("invariants_ok", "invariants hold", True),
    ("bank_total", "bank total", None),
    ("quiesce_probe", "quiesce probe (write while quiesced)", None),
    ("quiesce_probe_ok", "quiesce probe passes", True),
    ("only_read_only_held", "only read_only held writers (a privileged one went through)", False),
    ("liveness", "liveness probe (write after the post-script)", None),
    ("liveness_ok", "app writes again after the post-script", True),
)


def oracle_html(run: dict[str, Any]) -> str:
    ev = as_dict(run.get("oracle"))
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
            shown = esc(fmt_dur(as_float(value))) if as_float(value) is not None else "—"
        elif key == "acked_missing" and value:
            sample = ", ".join(str(v) for v in as_list(ev.get("acked_missing_sample"))[:10])
            shown = esc(value) + (f' <span class="muted small">(e.g. seq {esc(sample)})</span>')
        elif key == "acked_by_role":
            shown = _by_role(value)
        elif key == "quiesce_probe":
            shown = _per_role(ev.get("quiesce_probes"), value, _probe_text)
        elif key == "liveness":
            shown = _per_role(ev.get("liveness_probes"), value, _liveness_text)
        elif key == "quiesce_probe_ok" and value is None:
            shown = f'<span class="muted">not judged (quiesce = {esc(run.get("quiesce"))})</span>'
        else:
            shown = yesno(value)
        rows.append(f"<tr><td>{mark}</td><th>{esc(label)}</th><td>{shown}</td></tr>")
    known = {k for k, _, _ in _ORACLE_ROWS}
    known |= {"acked_missing_sample", "notes", "quiesce_probes", "liveness_probes"}
    for key in sorted(k for k in ev if k not in known):
        shown = esc(clip(json.dumps(ev[key], default=str), 1000))
        rows.append(
            f'<tr><td><span class="mk na">·</span></td><th>{esc(key)}</th><td>{shown}</td></tr>'
        )
    notes = [n for n in as_list(ev.get("notes")) if n not in (None, "")]
    note_html = ""
    if notes:
        note_html = (
            '<div class="notes"><div class="k">notes</div><ul>'
            + "".join(f"<li>{esc(clip(str(n), 1000))}</li>" for n in notes[:30])
            + "</ul></div>"
        )
    return (
        '<h3>Oracle evidence</h3><table class="kv oracle">' + "".join(rows) + f"</table>{note_html}"
    )


def _per_role(probes: Any, single: Any, text: Callable[[Any], str]) -> str:
    """Each writer role's probe on a line of its own (``single``, the deciding one, for a
    run that recorded no roles)."""
    found = [p for p in map(as_dict, as_list(probes)) if p]
    if not found:
        return text(single)
    return "<br>".join(
        f'<span class="muted small">{esc(p.get("role") or "app")}:</span> {text(p)}' for p in found
    )


def _by_role(value: Any) -> str:
    """``app: 40 (0 missing); privileged: 38 (0 missing)``."""
    parts = []
    for role, counts in sorted(as_dict(value).items()):
        c = as_dict(counts)
        parts.append(f"{role}: {c.get('before_pre', '?')} ({c.get('missing', '?')} missing)")
    return esc("; ".join(parts)) or "—"


def _probe_text(value: Any, quiesce: Any = None) -> str:
    p = as_dict(value)
    if not p:
        return '<span class="muted">not run</span>'
    result = p.get("result", "?")
    lat = as_float(p.get("latency_s"))
    detail = p.get("detail") or p.get("error") or ""
    out = f"<strong>{esc(result)}</strong>"
    if lat is not None:
        out += f" in {esc(fmt_dur(lat))}"
    if detail:
        out += f' <span class="muted small">— {esc(clip(str(detail), 500))}</span>'
    return out


def _liveness_text(value: Any) -> str:
    p = as_dict(value)
    if not p:
        return '<span class="muted">not run</span>'
    ok = p.get("ok")
    after = as_float(p.get("after_s"))
    attempts = as_int(p.get("attempts"))
    last = as_dict(p.get("last"))
    out = "<strong>ok</strong>" if ok else "<strong>not ok</strong>" if ok is False else "?"
    if after is not None:
        out += f" after {esc(fmt_dur(after))}"
    if attempts is not None:
        out += f", {attempts} attempt{'s' if attempts != 1 else ''}"
    if last.get("detail"):
        out += f' <span class="muted small">— last: {esc(last.get("result", ""))}: '
        out += f"{esc(clip(str(last['detail']), 500))}</span>"
    return out


def _kv_table(title: str, data: dict[str, Any], fmt: Any = str) -> str:
    if not data:
        return f'<div><h4>{title}</h4><p class="muted small">none recorded</p></div>'
    rows = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(fmt(v))}</td></tr>" for k, v in sorted(data.items())
    )
    return f'<div><h4>{title}</h4><table class="kv">{rows}</table></div>'


def versions_timings_html(run: dict[str, Any]) -> str:
    versions = as_dict(run.get("versions"))
    timings = as_dict(run.get("timings"))
    freeze = as_dict(run.get("freeze"))

    def secs(v: Any) -> str:
        f = as_float(v)
        return f"{f:.3f} s" if f is not None else str(v)

    mounts = ", ".join(_mounts(freeze.get("mounts")))
    extra = ""
    if mounts:
        extra = f'<p class="small"><b>frozen mounts:</b> {esc(mounts)}</p>'
    return (
        '<h3>Versions and timings</h3><div class="vt">'
        + _kv_table("versions", versions)
        + _kv_table("timings", timings, secs)
        + f"</div>{extra}"
    )


def _mounts(value: Any) -> Iterable[str]:
    for m in as_list(value):
        if isinstance(m, list | tuple):
            yield " ".join(str(x) for x in m)
        else:
            yield str(m)
