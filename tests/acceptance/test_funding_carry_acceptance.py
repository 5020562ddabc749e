"""The funding-carry sample (``examples/funding_carry.yaml``) as a user runs it: long spot on a
cash venue, short the perpetual on a margin venue, entering and leaving on funding rates.

Pins the fills and the funding received, checks the legs stay equal in base units and the
funding against a hand computation from the bars and the funding series, and runs a short
slice through the Ray actor engine for the same fills.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tradegraph.data.catalog import read_bars, read_funding, resolve_path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "funding_carry.yaml"
GOLDEN_DIGEST = "8e813b3b52bdcd81e735a35c546a0511a7ee9c64470394dc30eecc2889d69d24"
GOLDEN_FUNDING = 504.6055605459501
SPOT = "BTCUSDT.BINANCE"
PERP = "BTCUSDT-PERP.BINANCE_FUT"
MINUTE_NS = 60_000_000_000


def run_cli(out: Path, *extra: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "tradegraph", "backtest", str(EXAMPLE), *extra, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary: dict[str, object] = json.loads((out / "summary.json").read_text())
    return summary


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("carry")
    return out, run_cli(out, "--no-html")


def test_funding_carry_fills_and_funding_are_pinned(
    local_run: tuple[Path, dict[str, object]],
) -> None:
    _, summary = local_run
    assert summary["fills_digest"] == GOLDEN_DIGEST
    assert summary["funding"] == pytest.approx(GOLDEN_FUNDING, rel=1e-12)
    assert summary["liquidations"] == 0
    assert summary["risk_rejections"] == summary["venue_rejections"] == 0
    per_strategy = summary["per_strategy"]
    assert isinstance(per_strategy, dict)
    assert per_strategy["carry_btc"]["funding"] == pytest.approx(GOLDEN_FUNDING)


def test_the_legs_are_equal_and_opposite_in_base_units(
    local_run: tuple[Path, dict[str, object]],
) -> None:
    out, _ = local_run
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert {f["instrument_id"] for f in fills} == {SPOT, PERP}
    held = {SPOT: 0.0, PERP: 0.0}
    by_time: dict[int, list[dict[str, object]]] = {}
    for f in fills:
        by_time.setdefault(int(f["ts_event_ns"]), []).append(f)
    entries = 0
    for ts in sorted(by_time):
        for f in by_time[ts]:
            sign = 1.0 if f["side"] == "buy" else -1.0
            held[str(f["instrument_id"])] += sign * float(f["quantity"])  # type: ignore[arg-type]
        # Both legs fill on the same bar: after each, the carry is flat or fully hedged.
        assert held[SPOT] == pytest.approx(-held[PERP], abs=1e-12), ts
        assert held[SPOT] in (pytest.approx(0.0, abs=1e-12), pytest.approx(0.5))
        entries += held[SPOT] > 0.0
    assert entries >= 2


def test_funding_received_matches_a_hand_computation(
    local_run: tuple[Path, dict[str, object]],
) -> None:
    out, summary = local_run
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    perp_fills = [f for f in fills if f["instrument_id"] == PERP]
    (bars,) = read_bars(resolve_path("sample:BTCUSDT_1m"), interval_ns=MINUTE_NS)
    close_at = dict(zip((bars.ts_open_ns + MINUTE_NS).tolist(), bars.close.tolist(), strict=True))
    funding = read_funding(resolve_path("sample:BTCUSDT-PERP_funding"))
    last_close = int(bars.ts_open_ns[-1]) + MINUTE_NS
    received = 0.0
    for ts, rate in zip(funding.ts_ns.tolist(), funding.rate.tolist(), strict=True):
        if ts > last_close:
            continue
        # The position held when the event falls due (fills at or before it), marked at the
        # close of the bar that ends at the event (no mark in the series).
        position = sum(
            (1.0 if f["side"] == "buy" else -1.0) * float(f["quantity"])
            for f in perp_fills
            if int(f["ts_event_ns"]) <= ts
        )
        received -= position * close_at[ts] * rate
    assert received > 0.0
    assert summary["funding"] == pytest.approx(received, rel=1e-9)


# The first 3,000 minutes hold the entry (both legs) and a day of funding on the short leg.
SLICE = ("--set", "data.bars.0.limit=3000", "--set", "data.bars.1.limit=3000", "--no-html")
SLICE_DIGEST = "d7bb5b93efe14d7cad7a3c7f3fcf1dcd1bab36c6591687655a0539924ab31ef4"


@pytest.mark.ray
@pytest.mark.timeout(900)
def test_ray_engine_gives_the_same_carry(tmp_path: Path) -> None:
    local = run_cli(tmp_path / "local", *SLICE)
    actors = run_cli(tmp_path / "ray", *SLICE, "--engine", "ray")
    assert local["fills"] == 2  # the entry: a spot buy and a perpetual sell
    assert local["funding"] != 0.0
    assert actors["fills_digest"] == local["fills_digest"] == SLICE_DIGEST
    for key in ("funding", "final_equity", "fees", "fills", "per_strategy"):
        assert actors[key] == local[key], key
