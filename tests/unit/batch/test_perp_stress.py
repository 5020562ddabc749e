"""Stress of margin and perpetual runs: the mark-price wick and funding shock overlays, and
liquidations counted per scenario and as ``prob_liquidation`` in a Monte Carlo batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradegraph.batch import PRESETS, FundingShock, MarkWick, PathSpan, StressScenario
from tradegraph.batch.montecarlo import MonteCarlo, scenario_inputs
from tradegraph.config import load_config
from tradegraph.config.models import GraphConfig
from tradegraph.data.catalog import BarArrays
from tradegraph.engine.backtest import run_backtest
from tradegraph.engine.streams import prepare_bar_stream
from tradegraph.execution.funding import FundingSeries
from tradegraph.execution.venue_stress import VenueWindow, shock_funding

MIN = 60_000_000_000
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "perp_long_short.yaml"


def _bars(n: int = 100) -> BarArrays:
    return BarArrays(
        symbol="BTCUSDT-PERP",
        venue="BINANCE",
        interval_ns=MIN,
        ts_open_ns=np.arange(n, dtype=np.int64) * MIN,
        open=np.full(n, 100.0),
        high=np.full(n, 101.0),
        low=np.full(n, 99.0),
        close=np.full(n, 100.0),
        volume=np.full(n, 5.0),
    )


def test_a_down_wick_lowers_only_the_lows_of_its_minutes() -> None:
    bars = _bars()
    bent = MarkWick(move_pct=-20.0, at=0.5, duration_min=3.0).bend_bars(bars)

    changed = np.flatnonzero(bent.low != bars.low)
    assert changed.tolist() == [50, 51, 52]
    assert bent.low[50] == pytest.approx(99.0 * 0.8)
    for column in ("open", "high", "close", "volume", "ts_open_ns"):
        assert np.array_equal(getattr(bent, column), getattr(bars, column)), column
    assert np.all(bent.low <= np.minimum(bent.open, bent.close))


def test_an_up_wick_raises_only_the_highs() -> None:
    bars = _bars()
    bent = MarkWick(move_pct=15.0, at=0.1).bend_bars(bars)

    assert np.flatnonzero(bent.high != bars.high).tolist() == [10]
    assert bent.high[10] == pytest.approx(101.0 * 1.15)
    assert np.array_equal(bent.low, bars.low)


def test_a_wick_keeps_its_place_on_the_unbent_grid() -> None:
    bars = _bars()
    span = PathSpan.of([bars])
    later = bars.rows(np.arange(len(bars)) >= 20)  # an earlier overlay removed bars 0..19
    bent = MarkWick(move_pct=-10.0, at=0.5).bend_bars(later, span)
    assert bent.ts_open_ns[np.flatnonzero(bent.low != later.low)].tolist() == [50 * MIN]


def test_a_zero_wick_is_refused() -> None:
    with pytest.raises(ValueError, match="move_pct"):
        MarkWick(move_pct=0.0)


def test_a_funding_shock_multiplies_the_rates_of_events_in_its_window() -> None:
    span = PathSpan(start_ns=0, interval_ns=MIN, n_bars=100)
    (window,) = FundingShock(factor=4.0, start=0.5, duration_min=20.0).venue_windows(span)
    assert (window.start_ns, window.end_ns, window.funding_factor) == (50 * MIN, 70 * MIN, 4.0)
    series = FundingSeries(
        ts_ns=(10 * MIN, 50 * MIN, 69 * MIN, 70 * MIN),
        rate=(0.001, 0.001, -0.002, 0.001),
        mark_price=(float("nan"),) * 4,
    )

    shocked = shock_funding({"X.V": series}, (window,))["X.V"]

    assert shocked.rate == pytest.approx((0.001, 0.004, -0.008, 0.001))
    assert shocked.ts_ns == series.ts_ns


def test_funding_shocks_compose_and_other_windows_leave_funding_alone() -> None:
    series = FundingSeries(ts_ns=(5,), rate=(0.001,), mark_price=(100.0,))
    windows = (
        VenueWindow(label="a", funding_factor=2.0),
        VenueWindow(label="b", start_ns=0, end_ns=10, funding_factor=-3.0),
        VenueWindow(label="c", fee_factor=5.0),
    )
    assert shock_funding({"X.V": series}, windows)["X.V"].rate == pytest.approx((-0.006,))
    assert shock_funding({"X.V": series}, windows[2:])["X.V"] is series


def test_the_presets_include_the_funding_shock_and_the_wick() -> None:
    assert isinstance(PRESETS["funding_shock"].overlays[0], FundingShock)
    assert isinstance(PRESETS["mark_wick"].overlays[0], MarkWick)


def test_a_funding_shock_scales_the_funding_a_run_pays() -> None:
    config = load_config(EXAMPLE, ["portfolio.starting_cash=20000", "data.bars.0.limit=3000"])
    scenario = StressScenario(name="x", overlays=(FundingShock(factor=3.0),))
    batch = MonteCarlo(
        config,
        paths=2,
        model="history",
        stress_sets=[[], ["x"]],
        stress_catalog={"x": scenario},
        in_process=True,
    )
    runs = []
    for index in (0, 1):
        cfg, data = scenario_inputs(batch.plan(), index)
        runs.append(run_backtest(cfg, prepare_bar_stream(data, cfg.instrument_map())))
    assert runs[0].funding != 0.0
    assert runs[1].funding == pytest.approx(3.0 * runs[0].funding)


WICKS = StressScenario(
    name="wicks",
    description="lows 30 % down and highs 30 % up for two minutes at 60 % of the path",
    overlays=(
        MarkWick(move_pct=-30.0, at=0.6, duration_min=2.0),
        MarkWick(move_pct=30.0, at=0.6, duration_min=2.0),
    ),
)
PERP_FAST = [
    "portfolio.starting_cash=20000",
    "data.bars.0.limit=3000",
    "strategies.0.params.fast_period=5",
    "strategies.0.params.slow_period=20",
]


@pytest.fixture(scope="module")
def perp() -> GraphConfig:
    return load_config(EXAMPLE, PERP_FAST)


def _perp_batch(config: GraphConfig, stress: list[str], **kwargs: Any) -> MonteCarlo:
    return MonteCarlo(
        config,
        paths=6,
        model="gbm",
        bars_per_path=300,
        root_seed=11,
        stress=stress,
        stress_catalog={"wicks": WICKS},
        in_process=True,
        html=False,
        **kwargs,
    )


def test_a_wick_raises_the_probability_of_liquidation(perp: GraphConfig, tmp_path: Path) -> None:
    baseline = _perp_batch(perp, []).run_batch()
    wicked = _perp_batch(perp, ["wicks"], out_dir=tmp_path).run_batch()

    assert baseline.summary["prob_liquidation"] == 0.0
    assert baseline.table.column("liquidations").to_pylist() == [0] * 6
    liquidations = wicked.table.column("liquidations").to_pylist()
    assert wicked.summary["prob_liquidation"] == pytest.approx(
        sum(1 for n in liquidations if n > 0) / 6
    )
    assert wicked.summary["prob_liquidation"] > baseline.summary["prob_liquidation"]
    assert wicked.summary["liquidations"] == sum(liquidations) > 0
    # The same batch chunked otherwise gives the same rows.
    again = _perp_batch(perp, ["wicks"], chunk_size=1).run_batch()
    assert again.results_digest == wicked.results_digest
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["prob_liquidation"] == wicked.summary["prob_liquidation"]
