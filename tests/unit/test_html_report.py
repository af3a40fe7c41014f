"""The session's HTML report: produced, well-formed, complete, escaped and offline."""

from __future__ import annotations

import copy
import json
import os
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap.framework.azure import codes
from pytest_vmsnap.report.html import render_html, write_html
from pytest_vmsnap.report.html.checks import CheckResult, Expected
from pytest_vmsnap.report.html.format import BAD_COLOR, OK_COLOR

pytest_plugins = ["pytester"]

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
    assert 'data-measure="frozen"' not in page  # no frozen band, no frozen number
    assert 'class="frozen-lbl"' not in page


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


# --- pass or fail first: the session's checks and each cycle's expectation -----------------

EXPECTED = {
    "main": Expected.verdict_is("application-consistent"),
    "fault-pre-hangs": Expected.outcome(1, codes.PRE_TIMEOUT),
    "baseline": Expected.restored(),
}


@pytest.fixture
def battery_runs(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A battery's cycles: the main one, a fault that fell back as it should, a baseline."""
    baseline = copy.deepcopy(runs["sqlite[pre-lock-released.sh]"])
    baseline["status"], baseline["health_code"] = 1, 0
    return {
        "main": runs["sqlite[pre.sh+post.sh]"],
        "fault-pre-hangs": runs["sqlite[pre-hangs.sh]"],
        "baseline": baseline,
    }


def _checks(failed: str = "") -> list[CheckResult]:
    names = {
        "vmsnap::lint": (),
        "vmsnap::main": ("main",),
        "vmsnap::quiesce": ("main",),
        "vmsnap::fault-pre-hangs": ("fault-pre-hangs",),
        "vmsnap::baseline": ("baseline",),
    }
    return [
        CheckResult(
            n,
            "failed" if n == failed else "passed",
            cycles,
            detail="expected status 1 and health code 308, got status 0" if n == failed else "",
        )
        for n, cycles in names.items()
    ]


def _text(page: str) -> str:
    """The page's visible text, one space between words."""
    body = re.sub(r"<(head|svg)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html_unescape(re.sub(r"<[^>]+>", " ", body)).split())


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_a_passing_battery_says_pass_and_colours_nothing_by_verdict(
    battery_runs: dict[str, dict[str, Any]],
) -> None:
    page = render_html(battery_runs, checks=_checks(), expected=EXPECTED)
    check(page)
    text = _text(page)
    assert "PASS All 5 checks passed." in text
    assert "<title>vmsnap report — PASS, 5 of 5 checks passed</title>" in page
    for line in (
        "main: expected application-consistent, got application-consistent — pass",
        "fault-pre-hangs: expected fallback 308, got 308 — as expected",
        "baseline: expected a snapshot taken and restored, got crash-consistent — as expected",
    ):
        assert f'<p class="expect pass">{html_escape(line)}</p>' in page, line
    # Two cycles fell back to crash-consistent, as their checks wanted: green, not yellow.
    assert page.count('<section class="card ok"') == 3
    assert "badge warn" not in page and "tile warn" not in page
    assert 'class="badge plain big">crash-consistent<' in page
    assert re.search(r'tile ok"><div class="num">5</div><div class="lbl">passed', page)
    assert re.search(r'tile bad zero"><div class="num">0</div><div class="lbl">failed', page)


def test_a_failing_battery_says_fail_and_which_check(
    battery_runs: dict[str, dict[str, Any]],
) -> None:
    runs = copy.deepcopy(battery_runs)
    runs["fault-pre-hangs"].update(status=0, health_code=0)  # the fault went unnoticed
    checks = _checks(failed="vmsnap::fault-pre-hangs")
    page = render_html(runs, checks=checks, expected=EXPECTED)
    check(page)
    text = _text(page)
    assert "FAIL 1 of 5 checks failed." in text
    assert "expected status 1 and health code 308, got status 0" in text
    line = "fault-pre-hangs: expected fallback 308, got status 0, health code 0 — FAIL"
    assert f'<p class="expect fail">{html_escape(line)}</p>' in page
    assert page.count('<section class="card bad"') == 1
    assert '<span class="pill bad">FAIL</span>' in page


def test_a_check_that_failed_fails_its_cycle_even_when_the_verdict_matched(
    battery_runs: dict[str, dict[str, Any]],
) -> None:
    """The checks decide: the quiesce check failed on the main cycle, so the main cycle's line
    fails too, whatever its verdict."""
    checks = _checks(failed="vmsnap::quiesce")
    page = render_html(battery_runs, checks=checks, expected=EXPECTED)
    line = "main: expected application-consistent, got application-consistent — FAIL"
    assert f'<p class="expect fail">{html_escape(line)}</p>' in page


def test_skipped_checks_are_counted_not_failed(battery_runs: dict[str, dict[str, Any]]) -> None:
    checks = [
        CheckResult("vmsnap::lint", "passed"),
        *(CheckResult(f"vmsnap::{k}", "skipped", detail="needs root") for k in ("main", "x")),
    ]
    text = _text(render_html({}, checks=checks))
    assert "PASS 1 of 3 checks passed, 2 skipped." in text
    assert "needs root" in text
    assert "NO CHECKS No check ran." in _text(render_html({}, checks=[]))


def test_one_cycle_without_checks_leads_with_its_verdict(runs: dict[str, dict[str, Any]]) -> None:
    """``vmsnap run``: its one cycle's verdict is the headline."""
    ok = _text(render_html({"cycle": runs["sqlite[pre.sh+post.sh]"]}))
    assert ok.startswith("pytest-vmsnap report PASS application-consistent starts with no repair")
    crash = _text(render_html({"cycle": runs["sqlite[pre-lock-released.sh]"]}))
    assert crash.startswith("pytest-vmsnap report FAIL crash-consistent quiesce probe")
    assert "exit code 1" in crash


def test_expectations_travel_as_plain_data() -> None:
    for e in EXPECTED.values():
        assert Expected.from_dict(json.loads(json.dumps(e.to_dict()))) == e
    with pytest.raises(ValueError, match="unknown expectation kind"):
        Expected.from_dict({"kind": "vibes"})


# --- one number per duration: the table, the card and the bars agree ------------------------


class Numbers(HTMLParser):
    """Every duration the page shows, where: ``cells[(cycle, key)]`` the table's and the card's
    numbers ``(seconds, text)``; ``bars[(cycle, key)]`` the timeline's bars ``(svg, x, width,
    seconds)``; ``labels[(cycle, key)]`` the bars' texts; ``steps[(cycle, svg, phase)]`` the
    framework's step of a bar ``(x, width)``; ``svgs[(cycle, svg)]`` each timeline's scale."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cycle = -1
        self.row_cycle: int | None = None
        self.svg = -1
        self.open: tuple[int, str, str] | None = None  # (cycle, key, where) of a text
        self.buffer: list[str] = []
        self.cells: dict[tuple[int, str], list[tuple[str, str]]] = {}
        self.bars: dict[tuple[int, str], list[tuple[int, float, float, str]]] = {}
        self.labels: dict[tuple[int, str], list[str]] = {}
        self.steps: dict[tuple[int, int, str], tuple[float, float]] = {}
        self.svgs: dict[tuple[int, int], dict[str, float]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section" and a.get("id", "").startswith("cycle-"):
            self.cycle = int(a["id"].removeprefix("cycle-"))
        if tag == "tr":
            self.row_cycle = None
        if tag == "a" and a.get("href", "").startswith("#cycle-") and self.cycle < 0:
            self.row_cycle = int(a["href"].removeprefix("#cycle-"))
        where = self.cycle if self.cycle >= 0 else self.row_cycle
        if tag == "svg" and "tl" in a.get("class", "").split():
            self.svg += 1
            self.svgs[(where or 0, self.svg)] = {
                k: float(a[f"data-{k}"]) for k in ("t0", "t1", "x0", "x1")
            }
        key = a.get("data-measure")
        if tag == "rect" and a.get("data-phase"):
            self.steps[(self.cycle, self.svg, a["data-phase"])] = (
                float(a["x"]),
                float(a["width"]),
            )
        if key is None or where is None:
            return
        if tag == "rect":
            self.bars.setdefault((where, key), []).append(
                (self.svg, float(a["x"]), float(a["width"]), a["data-seconds"])
            )
        elif tag == "text":
            self.open, self.buffer = (where, key, "label"), []
        elif "data-seconds" in a:
            self.open, self.buffer = (where, key, a["data-seconds"]), []

    def handle_data(self, data: str) -> None:
        if self.open is not None:
            self.buffer.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self.open is not None and tag in ("span", "text"):
            where, key, what = self.open
            text = "".join(self.buffer)
            if what == "label":
                self.labels.setdefault((where, key), []).append(text)
            else:
                self.cells.setdefault((where, key), []).append((what, text))
            self.open = None


def page_numbers(page: str) -> Numbers:
    parser = Numbers()
    parser.feed(page)
    parser.close()
    return parser


def assert_numbers_agree(page: str, min_bar: float = 2.0) -> dict[tuple[int, str], float]:
    """Each cycle's durations: one number (the same seconds, the same text) in the table,
    its card and its bars; each bar as long as its number on its axis (or ``min_bar`` wide
    when shorter); each script's and snapshot's bar inside its framework step, the snapshot
    inside the frozen span. Returns the numbers."""
    n = page_numbers(page)
    found: dict[tuple[int, str], float] = {}
    for (cycle, key), cells in n.cells.items():
        seconds = {s for s, _ in cells}
        texts = {t for _, t in cells}
        assert len(seconds) == 1 and len(texts) == 1, (cycle, key, cells)
        found[(cycle, key)] = float(seconds.pop())
        text = texts.pop()
        for s, _x, w, sec in n.bars.get((cycle, key), []):
            assert float(sec) == found[(cycle, key)], (cycle, key, sec)
            scale = n.svgs[(cycle, s)]
            units = found[(cycle, key)] / (scale["t1"] - scale["t0"]) * (scale["x1"] - scale["x0"])
            assert w == pytest.approx(max(units, min_bar), abs=0.02), (cycle, key, s, w, units)
        for label in n.labels.get((cycle, key), []):
            shown = label.removeprefix("frozen ").split(" · ")[0].split(" (")[0]
            assert shown == text, (cycle, key, label, text)
    for (cycle, key), bars in n.bars.items():
        assert (cycle, key) in found, f"a bar without a number: {cycle} {key}"
        for s, x, w, _ in bars:
            step = n.steps.get((cycle, s, key))
            scale = n.svgs[(cycle, s)]
            # a script's duration_s is rounded to the millisecond, the steps to 0.1 ms
            slack = max(1.5, 6e-4 / (scale["t1"] - scale["t0"]) * (scale["x1"] - scale["x0"]))
            if step is not None and w > min_bar:
                assert step[0] - 0.02 <= x and x + w <= step[0] + step[1] + slack, (cycle, key, s)
    for (cycle, key), bars in n.bars.items():
        if key != "snapshot" or (cycle, "frozen") not in n.bars:
            continue
        frozen = {s: (x, w) for s, x, w, _ in n.bars[(cycle, "frozen")]}
        for s, x, w, _ in bars:
            fx, fw = frozen[s]
            tol = 1.5 if w > min_bar else min_bar  # 0.1 ms of rounding on a zoomed axis
            assert fx - tol <= x and x + w <= fx + fw + tol, (cycle, s, (x, w), (fx, fw))
    return found


def test_durations_agree_between_table_cards_and_bars(runs: dict[str, dict[str, Any]]) -> None:
    """Records from before the spans were recorded (their bars placed from the steps) and a
    record that has them: every number agrees with itself everywhere."""
    run = copy.deepcopy(runs["sqlite[pre.sh+post.sh]"])
    run["freeze"]["window_s"] = [5.425, 5.425 + run["freeze"]["frozen_s"]]
    run["snapshot"]["take_s"] = [5.4354, 5.4354 + run["snapshot"]["duration_s"]]
    page = render_html({**runs, "spans": run}, checks=_checks(), expected=EXPECTED)
    found = assert_numbers_agree(page)
    # the summary table's row, the card and the bars of each cycle that ran
    assert {k for c, k in found if c == 4} == {"pre", "post", "frozen", "snapshot"}
    n = page_numbers(page)
    assert len(n.bars[(4, "frozen")]) == 2  # whole cycle and zoom
    # pre: the summary table and the scripts section; frozen: the table and the card's
    # snapshot cell; snapshot: that cell
    counts = {k: len(n.cells[(4, k)]) for k in ("pre", "frozen", "snapshot")}
    assert counts == {"pre": 2, "frozen": 2, "snapshot": 1}
    assert "This record does not say where it was" in page  # the older records' bars


def test_a_script_shorter_than_its_step_shows_the_rest_pale() -> None:
    """Faithful pacing: a 1.00 s script in a 2.00 s step (the plugin host's next poll) is a
    1.00 s bar with the rest of its step pale, and 1.00 s everywhere."""
    run = {
        "verdict": "application-consistent",
        "scripts": {
            "pre": {"ran": True, "exit_code": 0, "error_code": 0, "duration_s": 1.0},
            "post": {"ran": True, "exit_code": 0, "error_code": 0, "duration_s": 1.0},
        },
        "freeze": {"frozen": True, "frozen_s": 0.002, "window_s": [8.01, 8.012]},
        "snapshot": {"taken": True, "duration_s": 0.0002, "take_s": [8.0105, 8.0107]},
        "timeline": [
            {"phase": "precheck", "start_s": 0.0, "end_s": 0.01},
            {"phase": "pre", "start_s": 0.01, "end_s": 2.01},
            {"phase": "freeze-wait", "start_s": 2.01, "end_s": 5.01},
            {"phase": "freeze", "start_s": 5.01, "end_s": 5.08},
            {"phase": "frozen-poll", "start_s": 5.08, "end_s": 8.01},
            {"phase": "snapshot", "start_s": 8.0101, "end_s": 8.011},
            {"phase": "thaw", "start_s": 8.011, "end_s": 8.02},
            {"phase": "post", "start_s": 8.02, "end_s": 10.02},
        ],
    }
    page = render_html({"faithful": run})
    check(page)
    found = assert_numbers_agree(page)
    assert found[(0, "pre")] == 1.0 and found[(0, "frozen")] == 0.002
    assert found[(0, "snapshot")] == 0.0002
    n = page_numbers(page)
    # The frozen span is 2 ms of a 5 s poll: the zoom is on the snapshot, where it is drawn.
    assert "Zoom on the snapshot" in page
    assert {t for t in n.labels[(0, "frozen")]} == {"frozen 2.0 ms"}
    assert {t for t in n.labels[(0, "snapshot")]} == {"0.20 ms"}
    assert {t for t in n.labels[(0, "pre")]} == {"1.00 s"}
    assert 'class="rest" data-phase="pre"' in page


def test_a_modelled_watchdog_wait_is_labelled_and_stays_in_its_step() -> None:
    run = {
        "verdict": "not-taken",
        "scripts": {
            "pre": {"ran": False},
            "post": {"ran": True, "error_code": 311, "duration_s": 1806.0, "watchdog": True},
        },
        "timeline": [{"phase": "post", "start_s": 1.0, "end_s": 1.5}],
    }
    page = render_html({"w": run})
    check(page)
    assert "1806 s (modelled, not waited)" in page
    n = page_numbers(page)
    ((_, x, w, _),) = n.bars[(0, "post")]
    sx, sw = n.steps[(0, 0, "post")]
    assert x == pytest.approx(sx) and w == pytest.approx(sw, abs=0.05)


# --- the plugin hands the page what each check expected -------------------------------------

CANNED_BATTERY = '''
import os
from pathlib import Path

from pytest_vmsnap.plugin import battery
from pytest_vmsnap.cycle import run as harness
from pytest_vmsnap.cycle.protocol import CycleRecord
from pytest_vmsnap.cycle.result import RunResult
from pytest_vmsnap.evidence import oracle
from pytest_vmsnap.framework.azure import codes


def outcome(settings, hooks):
    """The outcome table's row each of the battery's cycles gets from a correct framework."""
    if settings.baseline:
        return 1, 0, oracle.CRASH
    if hooks and "snapshot" in hooks:
        return codes.ERROR, codes.ERROR, oracle.NOT_TAKEN
    pre = Path(settings.pre).read_text() if settings.pre else ""
    post = Path(settings.post).read_text() if settings.post else ""
    if "sleep 30" in pre:
        row = (1, codes.PRE_TIMEOUT)
    elif "simulated failure" in pre:
        row = (1, codes.PRE_FAILED)
    elif settings.post is None:
        row = (1, codes.POST_NOT_FOUND)
    elif "exit 3" in post:
        row = (1, codes.POST_FAILED)
    else:
        return 0, 0, oracle.APPLICATION
    if os.environ.get("CANNED_BREAK") == str(row[1]):
        return 0, 0, oracle.APPLICATION  # a framework that missed this fault
    return row[0], row[1], oracle.CRASH


def canned(settings, hooks=None):
    status, health, verdict = outcome(settings, hooks)
    script = {"ran": True, "exit_code": 0, "error_code": 0, "duration_s": 1.0, "attempts": 1}
    ev = oracle.Evidence(
        started=True, integrity_ok=True, invariants_ok=True, liveness_ok=True,
        quiesce_probe={"result": "blocked", "detail": "canned"}, quiesce_probe_ok=True,
        liveness={"ok": True},
    )
    return RunResult(
        settings,
        verdict=verdict,
        reasons=["canned: " + verdict],
        cycle=CycleRecord.from_dict({
            "status": status,
            "health_code": health,
            "consistency": "application" if status == 0 else "filesystem",
            "message": "canned",
            "scripts": {"pre": dict(script), "post": dict(script)},
            "freeze": {"enabled": True, "frozen": True, "frozen_s": 0.012, "mounts": []},
            "snapshot": {"backend": "reflink", "taken": status in (0, 1), "duration_s": 0.01},
        }),
        evidence=ev,
        tag="vmsnap-c0ffee",
    )


_SAVED = {}


def pytest_configure(config):
    _SAVED["battery"], _SAVED["harness"] = battery.run, harness.run
    battery.run = harness.run = canned


def pytest_unconfigure(config):
    if _SAVED:
        battery.run, harness.run = _SAVED.pop("battery"), _SAVED.pop("harness")
'''


@pytest.fixture
def battery_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A user repository with the SQLite example, whose cycles are canned (no VM)."""
    from pytest_vmsnap import data

    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # an outer xdist run's
    backup = pytester.path / "backup"
    backup.mkdir()
    for name, src, mode in (
        ("VMSnapshotScriptPluginConfig.json", data.example("sqlite") / data.CONFIG_NAME, 0o600),
        ("pre.sh", data.sample_scripts("sqlite") / "pre.sh", 0o700),
        ("post.sh", data.sample_scripts("sqlite") / "post.sh", 0o700),
    ):
        (backup / name).write_bytes(src.read_bytes())
        (backup / name).chmod(mode)
    pytester.makeini(
        """
        [pytest]
        vmsnap_config = backup/VMSnapshotScriptPluginConfig.json
        vmsnap_pre = backup/pre.sh
        vmsnap_post = backup/post.sh
        vmsnap_app = sqlite
        vmsnap_quiesce = lock
        vmsnap_report = r
        """
    )
    pytester.makeconftest(CANNED_BATTERY)
    return pytester


def _battery_page(p: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, str]:
    result = p.runpytest_inprocess("-p", "pytest_vmsnap.plugin.hooks", "--vmsnap", *args)
    return result, (p.path / "r" / "index.html").read_text(encoding="utf-8")


@pytest.mark.skipif(os.geteuid() != 0, reason="the battery's cycle items skip without root")
def test_the_plugin_hands_each_cycles_expectation_to_the_page(
    battery_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pytest --vmsnap``: the battery tells the page what each cycle had to give, through
    the reporter; a passing battery's page says PASS with its fault cycles green, a failing
    one FAIL, naming the check."""
    result, page = _battery_page(battery_project)
    passed = result.parseoutcomes()["passed"]
    assert result.ret == 0 and passed >= 10
    check(page)
    text = _text(page)
    assert f"PASS All {passed} checks passed." in text
    for line in (
        "main: expected application-consistent, got application-consistent — pass",
        "fault-pre-hangs: expected fallback 308, got 308 — as expected",
        "fault-pre-fails: expected fallback 300, got 300 — as expected",
        "fault-post-fails: expected fallback 301, got 301 — as expected",
        "fault-post-missing: expected fallback 303, got 303 — as expected",
        "fault-snapshot-fails: expected status 2, health code 2, got status 2, health code 2 — "
        "as expected",
        "baseline: expected a snapshot taken and restored, got crash-consistent — as expected",
    ):
        assert line in text, line
    assert "badge warn" not in page and 'card bad"' not in page

    monkeypatch.setenv("CANNED_BREAK", str(codes.PRE_TIMEOUT))  # the fault goes unnoticed
    result, page = _battery_page(battery_project)
    assert result.ret == 1
    text = _text(page)
    assert f"FAIL 1 of {passed} checks failed." in text
    assert "fault-pre-hangs: expected fallback 308, got status 0, health code 0 — FAIL" in text
    assert "vmsnap::fault-pre-hangs" in text


@pytest.mark.skipif(os.geteuid() != 0, reason="the battery's cycle items skip without root")
def test_under_xdist_each_check_finds_its_cycle(battery_project: pytest.Pytester) -> None:
    """Under pytest-xdist a shared cycle is named after the worker that ran it; the checks of
    the other workers that used it are still counted against it."""
    pytest.importorskip("xdist")
    result = battery_project.runpytest_subprocess(
        "-p", "pytest_vmsnap.plugin.hooks", "-p", "xdist.plugin", "-n", "2", "--vmsnap"
    )
    assert result.ret == 0
    page = (battery_project.path / "r" / "index.html").read_text(encoding="utf-8")
    text = _text(page)
    assert "PASS All" in text
    found = re.search(r"(main \[gw\d\]): expected application-consistent, got ", text)
    assert found, text[:2000]
    # the main, quiesce and liveness checks all point at the one main cycle
    for check_id in ("vmsnap::main", "vmsnap::quiesce", "vmsnap::liveness"):
        used = rf"{check_id} [^·]* passed · cycle {re.escape(found.group(1))}"
        assert re.search(used, text), check_id
