"""Reports of cycles: JSON per cycle, one-line terminal summaries, readable failure texts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..framework.azure import codes


def summary_line(name: str, run: dict[str, Any]) -> str:
    """One line per cycle: verdict, status, health code, frozen window, scripts, probes."""
    pre = run.get("scripts", {}).get("pre", {})
    post = run.get("scripts", {}).get("post", {})
    freeze = run.get("freeze", {})

    def script(label: str, s: dict[str, Any]) -> str:
        if not s.get("ran"):
            return f"{label} -"
        code = s.get("error_code") or 0
        return f"{label} {s.get('duration_s', 0):.2f}s x{s.get('attempts', 0)}" + (
            f" ({code})" if code else ""
        )

    frozen = freeze.get("frozen_s") or 0.0
    # Prompt pacing skips the extension's waits: a verdict under it always says so.
    paced = " | prompt pacing" if run.get("pacing") == "prompt" else ""
    # The files were given modes they do not have here: a pass holds for the declared ones.
    modes = f" | modes as deployed {run['modes_declared']}" if run.get("modes_declared") else ""
    # Azure's codes are numbers; the others' outcome is their own word.
    framework = run.get("framework") or "azure"
    status = (
        f"status {run.get('status')} health {run.get('health_code')}"
        if framework == "azure"
        else f"{framework} {run.get('outcome') or run.get('status')}"
    )
    return (
        f"{name}: {run.get('verdict', '?')} | {status} | frozen {frozen * 1000:.0f} ms | "
        f"{script('pre', pre)} | {script('post', post)}{probes_text(run)}{paced}{modes}"
    )


def probes_text(run: dict[str, Any]) -> str:
    """`` | quiesce app refused, privileged accepted | live app ok, privileged ok``: each
    probe's outcome per writer role (a probe without a role is the application user's)."""
    probes = [p for p in run.get("probes") or [] if isinstance(p, dict)]
    out = ""
    for kind, label in (("quiesce", "quiesce"), ("liveness", "live")):
        by_role: dict[str, list[dict[str, Any]]] = {}
        for p in probes:
            if p.get("probe") == kind:
                by_role.setdefault(str(p.get("role") or ""), []).append(p)
        parts = [_role_outcomes(role, ps) for role, ps in by_role.items()]
        if parts:
            out += f" | {label} {', '.join(parts)}"
    return out


def _role_outcomes(role: str, probes: list[dict[str, Any]]) -> str:
    """One role's probes across the window: ``app blocked, accepted at +8.2 s`` (each change
    of outcome with when it was first seen, in seconds after the pre-script's end)."""
    changes: list[tuple[str, Any]] = []
    for p in probes:
        outcome = _probe_outcome(p)
        if not changes or changes[-1][0] != outcome:
            changes.append((outcome, p.get("after_pre_s")))
    text = changes[0][0] + "".join(
        f", {o} at +{t:.1f} s" if isinstance(t, (int, float)) else f", then {o}"
        for o, t in changes[1:]
    )
    return f"{role} {text}" if role else text


def _probe_outcome(p: dict[str, Any]) -> str:
    if p.get("probe") == "liveness" and "ok" in p:
        return "ok" if p["ok"] else "FAILED"
    return str(p.get("result", "?"))


def explain(run: dict[str, Any], expected: str) -> str:
    """A few lines saying what happened, with codes, evidence and the recommended action."""
    lines = [
        f"expected {expected}, got {run.get('verdict')} (framework status "
        f"{run.get('status')}, health code {run.get('health_code')})"
    ]
    if run.get("oracle_disagrees"):
        lines.append(f"  framework vs oracle: {run['oracle_disagrees']}")
    for reason in run.get("reasons", [])[:4]:
        lines.append(f"  why: {reason}")
    seen = set()
    for f in run.get("findings", [])[:4]:
        key = (f.get("code"), f.get("name"))
        if key in seen:
            continue
        seen.add(key)
        code = f"{f['code']} " if f.get("code") is not None else ""
        lines.append(f"  {code}{f.get('name')}: {f.get('message')}")
        if f.get("action"):
            lines.append(f"    -> {f['action']}")
    for which in ("pre", "post"):
        s = run.get("scripts", {}).get(which, {})
        tail = (s.get("stderr") or "").strip().splitlines()[-2:]
        if s.get("ran") and s.get("error_code") and tail:
            lines.append(f"  {which}-script stderr: " + " / ".join(tail))
    if run.get("error") and not any(run["error"] in r for r in run.get("reasons", [])[:4]):
        lines.append(f"  harness: {run['error']}")
    return "\n".join(lines)


def code_name(number: int | None) -> str:
    """``308 Pre-ScriptTimeout`` style label for a code."""
    if number is None:
        return "-"
    c = codes.lookup(number)
    return f"{number} {c.docs_name or c.name}"


def slug(name: str) -> str:
    """A file-name-safe version of a check or cycle name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:80] or "cycle"


def write_json(report_dir: Path, name: str, run: dict[str, Any]) -> Path:
    """Write one cycle's JSON (the ``vmsnap run`` contract) into ``report_dir``."""
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / f"{slug(name)}.json"
    path.write_text(json.dumps(run, indent=2, default=str))
    return path


def compare_table(rows: list[dict[str, Any]]) -> str:
    """``vmsnap compare``'s table: one line per framework (how it called the scripts, its
    own outcome, the verdict), then why each verdict is what it is."""
    # The long column last, where a narrow terminal's wrapping does the least harm.
    head = ("framework", "framework said", "verdict", "how it called them")
    lines = [(r["framework"], r["outcome"], r["verdict"], r["calls"] or "-") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=False)]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [fmt(head), fmt(tuple("-" * w for w in widths)), *(fmt(line) for line in lines), ""]
    out += [f"{r['framework']}: {r['why']}" for r in rows if r["why"]]
    return "\n".join(out)
