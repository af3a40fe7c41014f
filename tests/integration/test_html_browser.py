"""The HTML report in a real headless browser, and the numbers of a real cycle's page.

Chromium renders the page at 1400 and 800 px wide: a screenshot of each (a page, not a blank)
and the layout measured in the page itself by a script added to a copy of it (the report
has no JavaScript of its own): nothing wider than the viewport, every table inside its card,
no label of a timeline cut off by its edge. One real cycle (the SQLite sample pair, prompt
pacing) gives a page whose durations agree: the table, the card and the bars.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from unit.test_html_report import assert_numbers_agree, page_numbers

from pytest_vmsnap import data
from pytest_vmsnap.report.html import render_html, write_html
from pytest_vmsnap.report.html.checks import CheckResult, Expected

DATA = Path(__file__).parent.parent / "unit" / "data"
WIDTHS = (1400, 800)
HEIGHT = 2200

LAYOUT_JS = """
(function () {
  var W = document.documentElement.clientWidth;
  var out = {width: W, scrollWidth: document.documentElement.scrollWidth, wide: [],
             tables: [], columns: [], labels: [], svgs: 0};
  function name(el) {
    var cls = typeof el.className === 'string' ? el.className : el.getAttribute('class');
    return el.tagName.toLowerCase() + (cls ? '.' + cls.split(' ').join('.') : '') +
      ' "' + (el.textContent || '').trim().slice(0, 40) + '"';
  }
  function scroller(el) {  // inside a box that scrolls or clips: that box is judged instead
    for (var p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== 'visible') return p;
    }
    return null;
  }
  document.querySelectorAll('body *').forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (!r.width && !r.height) return;
    if ((r.right > W + 0.5 || r.left < -0.5) && !scroller(el))
      out.wide.push(name(el) + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  });
  document.querySelectorAll('table').forEach(function (t) {
    var box = t.parentElement, r = t.getBoundingClientRect(), b = box.getBoundingClientRect();
    if (!r.width) return;
    out.tables.push({table: name(t).slice(0, 60), right: r.right, box: b.right,
                     fits: box.scrollWidth <= box.clientWidth + 1 && r.right <= b.right + 0.5
                           && r.right <= W + 0.5});
  });
  document.querySelectorAll('table.summary th').forEach(function (th) {
    var r = th.getBoundingClientRect();
    out.columns.push({text: th.textContent, left: r.left, right: r.right});
  });
  document.querySelectorAll('svg.tl').forEach(function (svg) {
    out.svgs += 1;
    var b = svg.getBoundingClientRect(), k = b.width / svg.viewBox.baseVal.width;
    var plot = [b.left + svg.dataset.x0 * k, b.left + svg.dataset.x1 * k];
    svg.querySelectorAll('text').forEach(function (t) {
      var r = t.getBoundingClientRect();
      if (!r.width) return;
      var cls = t.getAttribute('class') || '';
      var inPlot = /barlbl|probelbl/.test(cls);
      var lo = inPlot ? plot[0] : b.left, hi = inPlot ? plot[1] : b.right;
      if (r.left < lo - 0.5 || r.right > hi + 0.5)
        out.labels.push(cls + ' "' + t.textContent + '" ' + Math.round(r.left - lo) + '..' +
                        Math.round(r.right - lo) + ' of ' + Math.round(hi - lo));
    });
  });
  var pre = document.createElement('pre');
  pre.id = 'vmsnap-layout';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (scripts/install-deps.sh installs it)")


def _browse(browser: str, profile: Path, width: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{HEIGHT}",
            *args,
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )


def _png_rows(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the raw (still filtered) scanlines of a non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 4
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8
            bpp = {2: 3, 6: 4, 0: 1, 4: 2}[color]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + width * bpp
    assert len(raw) == stride * height
    return width, height, [raw[i : i + stride] for i in range(0, len(raw), stride)]


def check_in_browser(index: Path, tmp_path: Path, label: str) -> dict[int, dict[str, Any]]:
    """Screenshot ``index`` at each width and measure its layout; fails on a blank shot, on
    anything wider than the viewport, a table wider than its card, a cut-off label."""
    browser = _chromium()
    measured = index.with_name("measured.html")
    page = index.read_text(encoding="utf-8")
    assert "<script" not in page  # the report itself: no JavaScript
    measured.write_text(page.replace("</body>", f"<script>{LAYOUT_JS}</script></body>"))
    layouts = {}
    for width in WIDTHS:
        shot = tmp_path / f"{label}-{width}.png"
        done = _browse(browser, tmp_path / "profile", width, f"--screenshot={shot}", index.as_uri())
        assert shot.exists(), done.stderr.decode(errors="replace")[-2000:]
        keep = os.environ.get("VMSNAP_HTML_SCREENSHOT")  # a directory to keep them in
        if keep:
            shutil.copyfile(shot, Path(keep) / shot.name)
        assert shot.stat().st_size > 20_000, f"{shot.name}: the screenshot is (nearly) blank"
        w, h, rows = _png_rows(shot)
        assert (w, h) == (width, HEIGHT)
        # A single-colour page has identical scanlines; a rendered report has hundreds.
        assert len(set(rows)) > 300, shot.name

        done = _browse(browser, tmp_path / "profile", width, "--dump-dom", measured.as_uri())
        found = re.search(r'<pre id="vmsnap-layout">(.*?)</pre>', done.stdout.decode())
        assert found, done.stderr.decode(errors="replace")[-2000:]
        layout = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
        assert layout["width"] == width, layout
        assert layout["scrollWidth"] <= width, (width, layout["wide"][:10])
        assert layout["wide"] == [], (width, layout["wide"][:10])
        assert layout["tables"] and all(t["fits"] for t in layout["tables"]), (
            width,
            [t for t in layout["tables"] if not t["fits"]],
        )
        assert layout["labels"] == [], (width, layout["labels"][:10])
        assert layout["svgs"] >= 1
        last = layout["columns"][-1]
        assert last["text"] == "post-script" and last["right"] <= width, (width, last)
        layouts[width] = layout
    return layouts


def _sample_runs() -> dict[str, dict[str, Any]]:
    return {
        f"test_quiesce[{p.stem}]": json.loads(p.read_text()) for p in sorted(DATA.glob("*.json"))
    }


def test_report_renders_in_headless_chromium_at_1400_and_800_px(tmp_path: Path) -> None:
    """The page of cycles without checks (the verdicts lead)."""
    runs = _sample_runs()
    assert len(runs) >= 3
    index = write_html(tmp_path / "report", runs)
    check_in_browser(index, tmp_path, "cycles")


def test_battery_page_renders_in_headless_chromium_at_1400_and_800_px(tmp_path: Path) -> None:
    """A session's page: headline, checks, the expected-and-got column, every card."""
    names = ("main", "window", "baseline", "fault-pre-hangs")  # the samples, sorted by file
    runs = dict(zip(names, _sample_runs().values(), strict=True))
    expected = {
        "main": Expected.verdict_is("application-consistent"),
        "window": Expected.verdict_is("application-consistent"),
        "fault-pre-hangs": Expected.outcome(1, 308),
        "baseline": Expected.restored(),
    }
    checks = [
        CheckResult("vmsnap::lint", "passed", title="the extension's pre-check accepts them"),
        CheckResult("vmsnap::main", "passed", ("main",), title="cycle under load"),
        CheckResult("vmsnap::worst-window", "failed", ("window",), "a write was accepted"),
        CheckResult("vmsnap::fault-pre-hangs", "passed", ("fault-pre-hangs",)),
        CheckResult("vmsnap::baseline", "failed", ("baseline",), "could not be taken"),
    ]
    index = write_html(tmp_path / "report", runs, checks=checks, expected=expected)
    check_in_browser(index, tmp_path, "battery")


def test_a_real_cycles_numbers_agree_on_its_page(tmp_path: Path, root_required: None) -> None:
    """One real cycle (the SQLite sample pair, prompt pacing): the frozen span and the
    snapshot's take() are recorded where they happened, inside their framework steps; the
    page shows each duration as one number, the same in the table, the card and the bars
    (whose lengths are those numbers); and it reads at 1400 and 800 px."""
    from pytest_vmsnap.cycle.run import run
    from pytest_vmsnap.settings import Settings

    files = {}
    for name in ("pre.sh", "post.sh"):
        files[name] = tmp_path / name
        shutil.copy(data.sample_scripts("sqlite") / name, files[name])
        files[name].chmod(0o700)
    config = tmp_path / data.CONFIG_NAME
    shutil.copy(data.example("sqlite") / data.CONFIG_NAME, config)
    config.chmod(0o600)
    settings = Settings(
        config=config,
        pre=files["pre.sh"],
        post=files["post.sh"],
        app="sqlite",
        quiesce="lock",
        pacing="prompt",
        workload_seconds=0.6,
    )
    d = run(settings).to_dict()
    assert d["verdict"] == "application-consistent", (d["reasons"], d["error"])

    # Where the spans were, on the timeline's clock (rounded to 0.1 ms, as the timeline).
    steps = {p["phase"]: (p["start_s"], p["end_s"]) for p in d["timeline"]}
    frozen, take = d["freeze"]["window_s"], d["snapshot"]["take_s"]
    tol = 2e-4
    assert frozen[1] - frozen[0] == pytest.approx(d["freeze"]["frozen_s"], abs=tol)
    assert take[1] - take[0] == pytest.approx(d["snapshot"]["duration_s"], abs=tol)
    assert steps["freeze"][0] - tol <= frozen[0] <= steps["freeze"][1] + tol, (frozen, steps)
    assert steps["thaw"][0] - tol <= frozen[1] <= steps["thaw"][1] + tol, (frozen, steps)
    assert steps["snapshot"][0] - tol <= take[0] and take[1] <= steps["snapshot"][1] + tol
    assert frozen[0] - tol <= take[0] and take[1] <= frozen[1] + tol, (frozen, take)

    page = render_html(
        {"main": d},
        checks=[CheckResult("vmsnap::main", "passed", ("main",))],
        expected={"main": Expected.verdict_is("application-consistent")},
    )
    found = assert_numbers_agree(page)
    assert found == {
        (0, "pre"): d["scripts"]["pre"]["duration_s"],
        (0, "post"): d["scripts"]["post"]["duration_s"],
        (0, "frozen"): d["freeze"]["frozen_s"],
        (0, "snapshot"): d["snapshot"]["duration_s"],
    }
    numbers = page_numbers(page)
    # each number has its bar on both timelines (the whole cycle and the zoom)
    for key in ("pre", "frozen", "snapshot"):
        assert len(numbers.bars[(0, key)]) == 2, key
    assert "This record does not say where it was" not in page  # measured, not estimated
    assert "main: expected application-consistent, got application-consistent — pass" in page

    index = tmp_path / "report" / "index.html"
    index.parent.mkdir()
    index.write_text(page, encoding="utf-8")
    check_in_browser(index, tmp_path, "real")
