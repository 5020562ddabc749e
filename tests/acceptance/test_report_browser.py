"""Every HTML report, opened in a real headless browser (Debian's ``chromium``).

Each report is rendered to a PNG (which must show something) and, in the same browser, a
script measures the laid-out page: every text of every chart must lie inside its chart, no
text may reach past the window, no table may be wider than its box, and the page must have
loaded nothing from outside the file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradegraph.config import load_config
from tradegraph.engine.backtest import run_backtest
from tradegraph.report.outputs import session_description, write_outputs

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WINDOW = (1280, 900)

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("CI must check the reports in a browser: chromium is not installed")
    pytest.skip(
        "chromium is not installed (apt-get install chromium); CI installs it and runs these",
        allow_module_level=True,
    )

FAST = [
    "--set",
    "strategies.sma.params.fast_period=5",
    "--set",
    "strategies.sma.params.slow_period=20",
    "--set",
    "data.bars.0.limit=3000",
]

LAYOUT_CHECK = """
<script>
(function () {
  const problems = [];
  const width = document.documentElement.clientWidth;
  const short = (el) => (el.textContent || "").trim().slice(0, 60);
  for (const text of document.querySelectorAll("svg text")) {
    const r = text.getBoundingClientRect();
    const box = text.ownerSVGElement.getBoundingClientRect();
    if (r.width === 0) continue;
    if (r.left < box.left - 0.5 || r.right > box.right + 0.5 ||
        r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5) {
      problems.push("chart text cut at the chart's edge: " + short(text));
    }
  }
  for (const el of document.body.querySelectorAll("h1, h2, h3, p, li, td, th, div, span")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;
    if (r.left < -0.5 || r.right > width + 0.5) {
      problems.push("text past the window's edge: " + short(el));
    }
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== "visible") {
      problems.push("content wider than its box: " + short(el));
    }
  }
  const out = document.createElement("pre");
  out.id = "layout-check";
  out.textContent = JSON.stringify({
    problems: problems,
    svgs: document.querySelectorAll("svg").length,
    tables: document.querySelectorAll("table").length,
    resources: performance.getEntriesByType("resource").map((e) => e.name),
    title: document.title,
  });
  document.body.appendChild(out);
})();
</script>
"""


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
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
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the rows of an 8-bit RGB or RGBA PNG, unfiltered."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunk = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if chunk == b"IHDR":
            header = body
        elif chunk == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8, f"unexpected PNG bit depth {depth}"
    assert color in (2, 6), f"unexpected PNG color type {color}"
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8)
    stride = width * bpp
    lines = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = int(lines[y, 0]), lines[y, 1:]
        if kind == 0:
            row = line.copy()
        elif kind == 1:  # Sub: a running sum along each channel
            row = (np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint64) % 256).astype(
                np.uint8
            )
            row = row.reshape(stride)
        elif kind == 2:  # Up
            row = line + previous
        else:  # Average and Paeth depend on the pixel just decoded: byte by byte
            decoded = bytearray(stride)
            up_row = previous.tobytes()
            data = line.tobytes()
            for i in range(stride):
                left = decoded[i - bpp] if i >= bpp else 0
                up = up_row[i]
                if kind == 3:
                    decoded[i] = (data[i] + (left + up) // 2) & 0xFF
                    continue
                corner = up_row[i - bpp] if i >= bpp else 0
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                decoded[i] = (data[i] + pred) & 0xFF
            row = np.frombuffer(bytes(decoded), dtype=np.uint8)
        out[y] = row
        previous = row
    rows = [out[y].tobytes() for y in range(height)]
    return width, height, rows


def render(report: Path, tmp: Path) -> tuple[dict[str, Any], Path]:
    """The layout measurements of ``report`` and a PNG of its first screen."""
    probe = tmp / f"{report.parent.name}-probe.html"
    probe.write_text(report.read_text().replace("</body>", LAYOUT_CHECK + "</body>"))
    dom = _chromium("--dump-dom", probe.as_uri(), profile=tmp / "profile-dom")
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"the page did not run its check: {dom.stderr[-2000:]}"
    checks: dict[str, Any] = json.loads(
        found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )
    png = tmp / f"{report.parent.name}.png"
    shot = _chromium(f"--screenshot={png}", report.as_uri(), profile=tmp / "profile-shot")
    assert png.exists(), shot.stderr[-2000:]
    return checks, png


def assert_rendered(png: Path) -> None:
    width, height, rows = png_pixels(png)
    assert (width, height) == WINDOW
    colors = {row[i : i + 3] for row in rows[::7] for i in range(0, len(row), 3 * 11)}
    assert len(colors) > 20, f"{png} looks blank ({len(colors)} colors)"


def _cli(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tradegraph", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reports")
    _cli("backtest", "--stress", "exchange_outage", "--out", str(root / "backtest"), *FAST)
    _cli(
        "backtest",
        "--set",
        "risk.max_order_notional=5",
        "--out",
        str(root / "failed"),
        *FAST,
    )
    _cli(
        "stress",
        "--scenario",
        "flash_crash",
        "exchange_outage",
        "crash_crunch",
        "--in-process",
        "--out",
        str(root / "stress"),
        *FAST,
    )
    _cli(
        "montecarlo",
        "--paths",
        "12",
        "--bars-per-path",
        "400",
        "--in-process",
        "--out",
        str(root / "montecarlo"),
        *FAST,
    )
    config = load_config(None, [a for a in FAST if a != "--set"])
    write_outputs(
        run_backtest(config),
        root / "paper",
        title=f"tradegraph paper session: {config.name}",
        description=session_description(
            {
                "stopped_by": "signal",
                "elapsed_s": 95.0,
                "halted": "order path: broker:BINANCE silent for 5.0 s",
                "restarts": {"broker:BINANCE": True},
                "market_events": 3_000,
            }
        ),
    )
    _cli("compare", str(root / "backtest"), str(root / "failed"), "--out", str(root / "compare"))
    return {
        **{
            name: root / name / "report.html"
            for name in ("backtest", "failed", "stress", "montecarlo", "paper")
        },
        "compare": root / "compare" / "compare.html",
    }


EXPECTED = {
    # name: (title start, least charts, least tables, texts that must be on the page)
    "backtest": (
        "tradegraph backtest",
        4,
        5,
        ("Trades", "Monthly returns", "Rejections by reason"),
    ),
    "failed": ("tradegraph backtest", 3, 3, ("Run failed", "max_order_notional")),
    "stress": ("tradegraph stress test", 0, 1, ("none (baseline)", "exchange_outage")),
    "montecarlo": ("tradegraph Monte Carlo", 3, 2, ("Calibrated model", "real history")),
    "paper": ("tradegraph paper session", 4, 5, ("Ended by", "Actor restarts")),
    "compare": ("tradegraph compare", 1, 2, ("Sharpe difference against", "normalised to 1")),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_report_renders_in_a_browser_without_cut_text(
    name: str, reports: dict[str, Path], tmp_path: Path
) -> None:
    title, least_svgs, least_tables, texts = EXPECTED[name]
    report = reports[name]

    checks, png = render(report, tmp_path)

    assert checks["title"].startswith(title)
    assert checks["svgs"] >= least_svgs
    assert checks["tables"] >= least_tables
    assert checks["resources"] == []  # self-contained: nothing fetched
    assert checks["problems"] == []
    page = report.read_text()
    for text in texts:
        assert text in page, text
    assert_rendered(png)
