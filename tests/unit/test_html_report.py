"""The session's HTML report: produced, well-formed, complete, escaped and offline."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap.framework import codes
from pytest_vmsnap.report.html import render_html, write_html
from pytest_vmsnap.report.html.format import BAD_COLOR, OK_COLOR

DATA = Path(__file__).parent / "data"
SAMPLES = {
    "sqlite[pre.sh+post.sh]": "app_consistent_sqlite.json",
    "sqlite[pre-lock-released.sh]": "crash_quiesce_accepted.json",
    "sqlite[pre-hangs.sh]": "pre_timeout_308.json",
    "postgres[missing-config]": "not_taken_error.json",
}
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "source", "col", "area", "base"}
MAIN_TAGS = ("html", "head", "body", "main", "header", "section", "table", "details", "svg")


@pytest.fixture
def runs() -> dict[str, dict[str, Any]]:
    return {name: json.loads((DATA / f).read_text()) for name, f in SAMPLES.items()}


class StrictChecker(HTMLParser):
    """Every non-void element closed, in order; counts of start and end tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.starts: dict[str, int] = {}
        self.ends: dict[str, int] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts[tag] = self.starts.get(tag, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts[tag] = self.starts.get(tag, 0) + 1
        self.ends[tag] = self.ends.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        self.ends[tag] = self.ends.get(tag, 0) + 1
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check(page: str) -> StrictChecker:
    parser = StrictChecker()
    parser.feed(page)
    parser.close()
    assert parser.errors == [], parser.errors[:5]
    assert parser.stack == [], f"unclosed: {parser.stack}"
    for tag in MAIN_TAGS:
        assert parser.starts.get(tag, 0) == parser.ends.get(tag, 0), tag
    return parser


def test_writes_one_index_html(tmp_path: Path, runs: dict[str, dict[str, Any]]) -> None:
    path = write_html(tmp_path / "report", runs)
    assert path == tmp_path / "report" / "index.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in path.parent.iterdir()) == ["index.html"]


def test_well_formed_with_one_card_per_cycle(runs: dict[str, dict[str, Any]]) -> None:
    parser = check(render_html(runs))
    for tag in ("html", "head", "body", "main"):
        assert parser.starts[tag] == 1
    assert parser.starts["section"] == len(runs)
    # a timeline (and a zoom on the frozen window) for the three cycles that ran
    assert parser.starts["svg"] >= 6


def test_header_totals_and_every_verdict(runs: dict[str, dict[str, Any]]) -> None:
    page = render_html(runs)
    assert "1 of 4 cycles application-consistent." in page
    for run in runs.values():
        assert run["verdict"] in page
    assert 'class="badge ok big">application-consistent<' in page
    assert 'class="badge warn big">crash-consistent<' in page
    assert 'class="badge none big">not-taken<' in page
    for name in runs:
        assert html_escape(name) in page


def test_red_badge_for_inconsistent_and_unrecoverable() -> None:
    page = render_html(
        {
            "a": {"verdict": "inconsistent", "reasons": ["integrity checks failed"]},
            "b": {
                "verdict": "unrecoverable",
                "reasons": ["the restored application did not start"],
            },
        }
    )
    check(page)
    assert 'class="badge bad big">inconsistent<' in page
    assert 'class="badge bad big">unrecoverable<' in page
    assert "integrity checks failed" in page


def test_codes_with_docs_names(runs: dict[str, dict[str, Any]]) -> None:
    page = render_html(runs)
    c = codes.lookup(308)
    assert '<span class="code">308</span> <strong>Pre-ScriptTimeout</strong>' in page
    assert c.name in page  # the extension's internal name, muted
    assert html_escape(c.action) in page
    assert "file-system consistent" in page  # status 1
    assert "timed out (308)" in page
    assert "HarnessError" in page


def test_timeline_frozen_window_probes_and_latency(runs: dict[str, dict[str, Any]]) -> None:
    ok = render_html({"ok": runs["sqlite[pre.sh+post.sh]"]})
    assert "frozen 91 ms" in ok
    assert "Zoom on the frozen window" in ok
    assert "quiesce probe: blocked" in ok
    assert f'fill="{OK_COLOR}">quiesce probe: blocked' in ok
    assert "liveness ok after" in ok
    for phase in ("pre-script", "freeze", "snapshot", "thaw", "post-script"):
        assert f'class="rowlbl">{phase}</text>' in ok
    assert ok.count("<circle") >= 250  # the latency points
    assert "slowest write" in ok

    crash = render_html({"c": runs["sqlite[pre-lock-released.sh]"]})
    assert f'fill="{BAD_COLOR}">quiesce probe: accepted' in crash
    assert "the lock protected nothing" in crash
    assert f'stroke="{BAD_COLOR}"' in crash  # the failed write's cross

    hang = render_html({"h": runs["sqlite[pre-hangs.sh]"]})
    assert "(not judged)" in hang
    assert "left running (pid 4187)" in hang


def test_not_taken_cycle_without_snapshot_or_thaw_bars() -> None:
    run = {
        "verdict": "not-taken",
        "reasons": ["no snapshot: Plugin Host Precheck Failed"],
        "status": 306,
        "health_code": 306,
        "scripts": {"pre": {"ran": False}, "post": {"ran": False}},
        "freeze": {"enabled": True, "frozen": False, "frozen_s": 0.0, "mounts": []},
        "timeline": [{"phase": "precheck", "start_s": 1.2, "end_s": 1.21}],
        "latency": [{"t": 1.0 + i / 100, "latency_s": 0.002, "op": "append"} for i in range(50)],
    }
    page = render_html({"perm": run})
    check(page)
    assert "InsufficientPermissionforPre-Script" in page
    assert page.count(">not run</text>") == 5  # every phase after the pre-check
    assert "frozen " not in re.sub(r"<style>.*?</style>", "", page, flags=re.S).replace(
        "frozen window", ""
    )


def test_escapes_everything_from_the_run(runs: dict[str, dict[str, Any]]) -> None:
    evil = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>&amp;"
    run = copy.deepcopy(runs["sqlite[pre-hangs.sh]"])
    run["scripts"]["post"]["stderr"] = evil
    run["scripts"]["pre"]["stdout"] = evil
    run["scripts"]["pre"]["argv"] = ["sh", evil]
    run["reasons"] = [evil]
    run["message"] = evil
    run["findings"][0]["message"] = evil
    run["oracle"]["notes"] = [evil]
    run["versions"] = {evil: evil}
    run["probes"][0]["detail"] = evil
    run["app"] = evil
    page = render_html({evil: run})
    check(page)
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&amp;amp;" in page


def test_no_network_references_and_no_javascript(runs: dict[str, dict[str, Any]]) -> None:
    page = render_html(runs)
    assert re.search(r"https?://", page) is None
    assert "<script" not in page.lower()
    assert "@import" not in page and "@font-face" not in page
    assert re.findall(r"url\((?!#)", page) == []  # only the SVG clip paths
    assert " src=" not in page and "<link" not in page


def test_script_output_is_truncated_and_control_characters_shown() -> None:
    big = "\x1b[31mred\x00\r\n" + "x" * 1_000_000
    run = {
        "verdict": "crash-consistent",
        "scripts": {
            "pre": {"ran": True, "exit_code": 1, "error_code": 300, "stdout": big, "stderr": big},
            "post": {"ran": False},
        },
    }
    page = render_html({"big": run})
    check(page)
    assert len(page) < 200_000
    assert "characters not shown in this report" in page
    assert "\\x1b[31mred\\x00" in page
    assert "\x00" not in page and "\x1b" not in page


def test_minimal_empty_and_malformed_runs(tmp_path: Path) -> None:
    runs: dict[str, Any] = {
        "empty": {},
        "only-error": {"error": "Settings: config <x> does not exist"},
        "wrong-types": {
            "verdict": 3,
            "reasons": "not a list",
            "status": "x",
            "timeline": [None, {"phase": "pre", "start_s": "a"}, {"phase": "pre", "start_s": 1}],
            "latency": [None, [1, "a", "append"], {"t": "x"}, [2.0, float("nan"), "append"]],
            "probes": [1, {"probe": "quiesce"}, {"probe": "quiesce", "at_s": None}],
            "scripts": {"pre": "x", "post": {"ran": True, "argv": "sh"}},
            "findings": ["x", None, {"code": "308"}],
            "oracle": [],
            "freeze": None,
            "versions": [],
            "timings": {"a": "b"},
        },
        "not-a-dict": "hello",
        "lone-surrogate": {"error": "bad \udcff byte", "verdict": "not-taken"},
        "one-instant": {
            "timeline": [{"phase": "pre", "start_s": 1, "end_s": 1}],
            "latency": [{"t": 1, "latency_s": 0.0, "op": "append"}],
            "probes": [{"probe": "liveness", "at_s": 1, "ok": False}],
        },
    }
    path = write_html(tmp_path, runs)
    page = path.read_text(encoding="utf-8")
    check(page)
    assert page.count("<section") == len(runs)
    assert "config &lt;x&gt; does not exist" in page
    assert "No timeline was recorded" in page
    assert "could not be shown" not in page
    check(render_html({}))
    assert "No cycles were run." in render_html({})


def test_a_record_that_breaks_the_renderer_still_gets_a_card(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_vmsnap.report.html import page

    def broken(*args: Any) -> str:
        raise ValueError("<boom>")

    monkeypatch.setattr(page, "_card", broken)
    page = render_html({"x": {"verdict": "crash-consistent", "error": "<e>"}})
    check(page)
    assert "could not be shown: ValueError: &lt;boom&gt;" in page
    assert "&lt;e&gt;" in page  # the raw record, escaped


def test_many_latency_points_are_thinned() -> None:
    points = [
        {"t": i / 10_000, "latency_s": 0.001 + (i % 97) / 10_000, "op": "append"}
        for i in range(60_000)
    ]
    points.append({"t": 3.0, "latency_s": 30.0, "op": "error"})
    page = render_html({"busy": {"verdict": "application-consistent", "latency": points}})
    check(page)
    assert page.count("<circle") <= 2_600
    assert page.count(f'stroke="{BAD_COLOR}" stroke-width="2.2"') == 1
    assert len(page) < 1_500_000


def test_same_input_same_page(runs: dict[str, dict[str, Any]]) -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert render_html(runs, generated=when) == render_html(runs, generated=when)
    assert "2024-05-01 12:00:00 UTC" in render_html(runs, generated=when)


def test_samples_follow_the_run_contract(runs: dict[str, dict[str, Any]]) -> None:
    keys = {
        "verdict",
        "reasons",
        "status",
        "health_code",
        "consistency",
        "message",
        "scripts",
        "freeze",
        "snapshot",
        "oracle",
        "findings",
        "timeline",
        "probes",
        "latency",
        "versions",
        "timings",
        "error",
    }
    for run in runs.values():
        assert keys <= set(run)
    assert 250 <= len(runs["sqlite[pre.sh+post.sh]"]["latency"]) <= 400


def html_escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_prompt_pacing_is_labelled_in_the_summary_line_and_the_page(
    runs: dict[str, dict[str, Any]],
) -> None:
    """Prompt pacing skips the extension's waits: every report of such a run says so; a
    faithful run's timeline shows the extension's waits around the freeze."""
    from pytest_vmsnap.report.text import summary_line

    name, run = next(iter(runs.items()))
    prompt = {**copy.deepcopy(run), "pacing": "prompt"}
    faithful = {**copy.deepcopy(run), "pacing": "faithful"}
    assert summary_line(name, prompt).endswith(" | prompt pacing")
    assert "pacing" not in summary_line(name, faithful)
    assert "<b>pacing</b> prompt" in render_html({name: prompt})
    faithful["timeline"] = [
        {"phase": "pre", "start_s": 0.0, "end_s": 1.0},
        {"phase": "freeze-wait", "start_s": 1.0, "end_s": 4.0},
        {"phase": "freeze", "start_s": 4.0, "end_s": 4.01},
        {"phase": "frozen-poll", "start_s": 4.01, "end_s": 5.0},
        {"phase": "snapshot", "start_s": 5.0, "end_s": 5.1},
    ]
    page = render_html({name: faithful})
    assert "3 s before the freeze" in page and "until the 2 s poll notices" in page
    assert "3 s before the freeze" not in render_html({name: prompt})


def test_both_writer_roles_in_the_summary_line_and_the_page(
    runs: dict[str, dict[str, Any]],
) -> None:
    """A run with an application writer and a privileged one: the summary line and the page
    show each role's quiesce and liveness probe, and a quiesce that read_only alone made."""
    from pytest_vmsnap.report.text import summary_line

    run = copy.deepcopy(runs["sqlite[pre-lock-released.sh]"])
    app = {"role": "app", "result": "refused", "read_only": True, "detail": "1290 read-only"}
    root = {"role": "privileged", "result": "accepted", "detail": "the write committed"}
    lives = [{"role": r, "ok": True, "after_s": 0.05, "attempts": 1} for r in ("app", "privileged")]
    run["quiesce"] = "lock"
    run["probes"] = [
        *({"probe": "quiesce", "at_s": 1.0, "latency_s": 0.05, **p} for p in (app, root)),
        *({"probe": "liveness", "at_s": 2.0, **p} for p in lives),
    ]
    run["oracle"].update(
        quiesce_probe=root,
        quiesce_probes=[app, root],
        only_read_only_held=True,
        liveness_probes=lives,
        acked_by_role={"app": {"before_pre": 7, "missing": 0}, "privileged": {"before_pre": 9}},
    )
    line = summary_line("c", run)
    assert line.endswith(" | quiesce app refused, privileged accepted | live app ok, privileged ok")
    page = render_html({"c": run})
    check(page)
    lanes = re.findall(r'class="rowlbl">([^<]*)</text>', page)
    probe_lanes = [lane for lane in lanes if "probe" in lane or "privileged" in lane]
    assert probe_lanes[:4] == ["quiesce probe", "↳ privileged", "liveness probe", "↳ privileged"]
    assert f'fill="{BAD_COLOR}">quiesce probe: accepted (50 ms) — only read_only held<' in page
    assert "only read_only held writers" in page
    assert "app:</span> <strong>refused</strong>" in page
    assert "privileged:</span> <strong>accepted</strong>" in page
    assert "app: 7 (0 missing); privileged: 9 (? missing)" in page
    assert "quiesce_probes" not in page  # shown in its row, not dumped as JSON
