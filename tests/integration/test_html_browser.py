"""Render the HTML report in a real headless browser and check the screenshot is a page."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from pytest_vmsnap.report.html import write_html

DATA = Path(__file__).parent.parent / "unit" / "data"
WIDTH, HEIGHT = 1400, 2200


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (scripts/install-deps.sh installs it)")


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


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    runs = {
        f"test_quiesce[{p.stem}]": json.loads(p.read_text()) for p in sorted(DATA.glob("*.json"))
    }
    assert len(runs) >= 3
    index = write_html(tmp_path / "report", runs)
    shot = tmp_path / "vmsnap-report.png"
    done = subprocess.run(
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
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={shot}",
            index.as_uri(),
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert shot.exists(), done.stderr.decode(errors="replace")[-2000:]
    if os.environ.get("VMSNAP_HTML_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["VMSNAP_HTML_SCREENSHOT"])
    assert shot.stat().st_size > 20_000, "the screenshot is (nearly) blank"
    width, height, rows = _png_rows(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    # A single-colour page has identical scanlines; a rendered report has thousands.
    assert len(set(rows)) > 300
