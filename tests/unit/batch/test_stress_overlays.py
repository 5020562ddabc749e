from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.graphs import T0, graph_config, ramp_bars
from tradegraph.batch import (
    OUTAGE_REJECT_REASON,
    PRESETS,
    ExchangeOutage,
    FeeShock,
    FlashCrash,
    GapMove,
    LatencySpike,
    LiquidityCrunch,
    PathSpan,
    StressScenario,
    apply_stress,
    load_stress_file,
    resolve_stress,
)
from tradegraph.batch.montecarlo import HISTORY, BatchPlan, run_scenario, scenario_inputs
from tradegraph.config import StrategyConfig, load_config
from tradegraph.config.models import GraphConfig
from tradegraph.data.catalog import BarArrays
from tradegraph.engine.backtest import run_backtest
from tradegraph.engine.clock import SimClock
from tradegraph.engine.streams import prepare_bar_stream, validate_bar_arrays
from tradegraph.errors import ConfigError
from tradegraph.execution.venue_stress import StressedVenue, StressedVenueConfig, VenueWindow
from tradegraph.report.outputs import write_outputs
from tradegraph.testing import RecordingOutbox

MIN = 60_000_000_000


def _flat(n: int = 200, price: float = 100.0, volume: float = 10.0) -> BarArrays:
    return BarArrays(
        symbol="BTCUSDT",
        venue="BINANCE",
        interval_ns=MIN,
        ts_open_ns=np.arange(n, dtype=np.int64) * MIN,
        open=np.full(n, price),
        high=np.full(n, price * 1.001),
        low=np.full(n, price * 0.999),
        close=np.full(n, price),
        volume=np.full(n, volume),
    )


@pytest.fixture(scope="module")
def config() -> GraphConfig:
    return load_config(None)


def _stressed(config: GraphConfig, venue: int = 0) -> StressedVenueConfig:
    stressed = config.venues[venue]
    assert isinstance(stressed, StressedVenueConfig)
    return stressed


def _windows(config: GraphConfig) -> tuple[VenueWindow, ...]:
    return _stressed(config).windows


def _consistent(bars: BarArrays) -> bool:
    keep, _ = validate_bar_arrays(bars)
    return bool(keep.all())


def test_flash_crash_falls_then_recovers_part_of_the_drop() -> None:
    bars = _flat(200)

    bent = FlashCrash(drop_pct=20, at=0.5, duration_min=5, recovery_pct=50, recovery_min=10)
    out = bent.bend_bars(bars)

    assert out.close[99] == 100.0
    np.testing.assert_allclose(out.close[104], 80.0)
    np.testing.assert_allclose(out.close[114:], 90.0)
    assert out.close[100] < 100.0
    assert out.low.min() == pytest.approx(80.0 * 0.999)
    np.testing.assert_array_equal(out.open[1:], out.close[:-1])
    assert _consistent(out)


def test_gap_move_moves_every_price_from_the_gap_on() -> None:
    out = GapMove(move_pct=-10, at=0.25).bend_bars(_flat(100))

    np.testing.assert_allclose(out.close[:25], 100.0)
    np.testing.assert_allclose(out.open[25:], 90.0)
    np.testing.assert_allclose(out.close[25:], 90.0)
    assert _consistent(out)


def test_liquidity_crunch_thins_volume_and_raises_slippage_in_its_window(
    config: GraphConfig,
) -> None:
    crunch = LiquidityCrunch(factor=4, start=0.5, duration_min=20)
    span = PathSpan.of([_flat(100)])

    bars = crunch.bend_bars(_flat(100))
    bent = crunch.bend_config(config, span)

    np.testing.assert_allclose(bars.volume[:50], 10.0)
    np.testing.assert_allclose(bars.volume[50:70], 2.5)
    np.testing.assert_allclose(bars.volume[70:], 10.0)
    [window] = _windows(bent)
    assert (window.start_ns, window.end_ns) == (50 * MIN, 70 * MIN)
    assert window.slippage_factor == 4.0
    assert config.venues[0].slippage.bps == 1.0


def test_liquidity_crunch_gives_a_venue_without_slippage_some(config: GraphConfig) -> None:
    bare = config.model_copy(
        update={
            "venues": (
                config.venues[0].model_copy(
                    update={
                        "slippage": config.venues[0].slippage.model_copy(
                            update={"model": "none", "bps": 0.0}
                        )
                    }
                ),
            )
        }
    )
    span = PathSpan.of([_flat(100)])

    bent = LiquidityCrunch(factor=5, min_slippage_bps=2.0).bend_config(bare, span)

    slippage = (
        StressedVenue(_stressed(bent), config.instrument_map(), SimClock(0), RecordingOutbox())
        .conditions_at(0)
        .slippage
    )
    assert slippage.model == "fixed"
    assert slippage.bps == 10.0


def test_exchange_outage_keeps_market_data_flowing_by_default() -> None:
    bars = _flat(200)

    out = ExchangeOutage(at=0.5, duration_min=30).bend_bars(bars)

    assert np.array_equal(out.ts_open_ns, bars.ts_open_ns)


def test_exchange_outage_with_a_silent_feed_removes_the_window() -> None:
    out = ExchangeOutage(at=0.5, duration_min=30, feed="silent").bend_bars(_flat(200))

    assert len(out) == 170
    gap = np.diff(out.ts_open_ns)
    assert gap.max() == 31 * MIN
    assert int(np.argmax(gap)) == 99


def test_exchange_outage_also_opens_a_rejecting_window_over_the_gap(config: GraphConfig) -> None:
    span = PathSpan.of([_flat(200)])

    [window] = _windows(ExchangeOutage(at=0.5, duration_min=30).bend_config(config, span))

    assert (window.start_ns, window.end_ns) == (100 * MIN, 130 * MIN)
    assert window.reject_reason == OUTAGE_REJECT_REASON


def test_venue_overlays_open_windows_in_time_not_for_the_whole_run(config: GraphConfig) -> None:
    span = PathSpan.of([_flat(200)])

    latency = LatencySpike(extra_latency_ms=1500, start=0.25, end=0.5).bend_config(config, span)
    fees = FeeShock(factor=3, start=0.5).bend_config(config, span)
    whole = FeeShock(factor=2).bend_config(config, span)

    [lw] = _windows(latency)
    assert (lw.start_ns, lw.end_ns, lw.extra_latency_ms) == (50 * MIN, 100 * MIN, 1500.0)
    [fw] = _windows(fees)
    assert (fw.start_ns, fw.end_ns, fw.fee_factor) == (100 * MIN, None, 3.0)
    [ww] = _windows(whole)
    assert (ww.start_ns, ww.end_ns) == (None, None)
    assert latency.venues[0].latency_ms == config.venues[0].latency_ms
    assert fees.instruments == config.instruments


def test_overlays_compose_their_windows_on_every_venue(config: GraphConfig) -> None:
    two_venues = config.model_copy(
        update={"venues": (config.venues[0], config.venues[0].model_copy(update={"name": "OKX"}))}
    )
    scenario = StressScenario(
        name="combo",
        overlays=(
            ExchangeOutage(at=0.1, duration_min=10, feed="silent"),
            LatencySpike(start=0.2, end=0.3),
            FeeShock(start=0.4, duration_min=60),
        ),
    )

    bent, [bars] = scenario.apply(two_venues, [_flat(200)])

    assert [[w.label for w in _stressed(bent, i).windows] for i in (0, 1)] == [
        ["exchange_outage", "latency_spike", "fee_shock"]
    ] * 2
    assert len(bars) == 190


def test_windows_stay_on_the_unbent_clock_when_an_outage_removed_bars() -> None:
    bars = _flat(200)

    _, [bent] = apply_stress(
        [
            StressScenario(
                name="gap", overlays=(ExchangeOutage(at=0.0, duration_min=50, feed="silent"),)
            ),
            StressScenario(name="thin", overlays=(LiquidityCrunch(factor=2, start=0.5),)),
        ],
        load_config(None),
        [bars],
    )

    assert bent.ts_open_ns[0] == 50 * MIN
    halved = bent.ts_open_ns[bent.volume == 5.0]
    assert halved[0] == 100 * MIN
    assert len(halved) == 100


def test_order_inside_an_outage_is_rejected_and_one_after_it_fills(tmp_path: Path) -> None:
    timer_offsets_s = (64 * 60.0, 74 * 60.0)  # from the first bar's close, one minute in
    strategy = StrategyConfig(
        id="s",
        class_path="test_script",
        instruments=("BTCUSDT.BINANCE",),
        params={"timer_offsets_s": timer_offsets_s, "buy_on_timers": True, "quantity": 1.0},
    )
    config = graph_config((strategy,))
    bars = ramp_bars([100.0 + 0.1 * i for i in range(120)])
    outage = StressScenario(name="down", overlays=(ExchangeOutage(at=0.5, duration_min=10),))
    plan = BatchPlan(
        config=config,
        model=HISTORY,
        joint=None,
        history=(bars,),
        stress_sets=((outage,),),
        root_seed=0,
        bars_per_path=0,
    )

    stressed, datasets = scenario_inputs(plan, 0)
    result = run_backtest(stressed, prepare_bar_stream(datasets, stressed.instrument_map()))
    write_outputs(result, tmp_path, html=False)
    row = run_scenario(plan, 0)

    orders = pq.read_table(tmp_path / "orders.parquet").to_pylist()
    assert [o["status"] for o in orders] == ["rejected", "filled"]
    assert orders[0]["reason"].startswith(OUTAGE_REJECT_REASON)
    assert orders[0]["ts_submit_ns"] == T0 + 65 * MIN
    [fill] = result.fills
    assert fill.ts_event_ns == T0 + 76 * MIN
    assert result.venue_rejections == 1
    assert row["venue_rejections"] == 1
    assert row["fills"] == 1


def test_overlays_do_not_mutate_their_input(config: GraphConfig) -> None:
    bars = _flat(100)
    before = bars.close.copy(), bars.volume.copy()

    for preset in PRESETS.values():
        preset.apply(config, [bars])

    np.testing.assert_array_equal(bars.close, before[0])
    np.testing.assert_array_equal(bars.volume, before[1])
    assert config == load_config(None)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    drop=st.floats(min_value=0.1, max_value=95.0),
    at=st.floats(min_value=0.0, max_value=1.0),
    recovery=st.floats(min_value=0.0, max_value=100.0),
    gap=st.floats(min_value=-90.0, max_value=200.0),
)
def test_price_overlays_keep_random_bars_consistent(
    seed: int, drop: float, at: float, recovery: float, gap: float
) -> None:
    rng = np.random.default_rng(seed)
    n = 120
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    bars = BarArrays(
        symbol="X",
        venue="V",
        interval_ns=MIN,
        ts_open_ns=np.arange(n, dtype=np.int64) * MIN,
        open=open_,
        high=np.maximum(open_, close) * (1 + rng.random(n) * 0.01),
        low=np.minimum(open_, close) * (1 - rng.random(n) * 0.01),
        close=close,
        volume=rng.random(n) + 0.1,
    )

    crashed = FlashCrash(drop_pct=drop, at=at, recovery_pct=recovery).bend_bars(bars)
    gapped = GapMove(move_pct=gap, at=at).bend_bars(crashed)

    assert _consistent(crashed)
    assert _consistent(gapped)


def test_yaml_form_round_trips_to_overlays(tmp_path: Path) -> None:
    path = tmp_path / "stress.yaml"
    path.write_text(
        "scenarios:\n"
        "  - name: crash_and_crunch\n"
        "    description: both at once\n"
        "    overlays:\n"
        "      - {kind: flash_crash, drop_pct: 30, duration_min: 10}\n"
        "      - {kind: liquidity_crunch, factor: 10}\n"
    )

    loaded = load_stress_file(path)

    scenario = loaded["crash_and_crunch"]
    assert isinstance(scenario.overlays[0], FlashCrash)
    assert scenario.overlays[0].drop_pct == 30
    assert isinstance(scenario.overlays[1], LiquidityCrunch)
    assert resolve_stress(["crash_and_crunch", "fee_shock"], loaded)[1] is PRESETS["fee_shock"]


def test_yaml_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "scenarios:\n  - name: bad\n    overlays:\n      - {kind: flash_crash, drop_pct: 120}\n"
    )

    with pytest.raises(ConfigError, match=r"scenarios\.0\.overlays\.0\.flash_crash\.drop_pct"):
        load_stress_file(path)


def test_unknown_overlay_key_is_refused() -> None:
    with pytest.raises(ValueError, match="extra"):
        StressScenario.model_validate(
            {"name": "x", "overlays": [{"kind": "fee_shock", "factr": 2}]}
        )


def test_unknown_scenario_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown stress scenario 'meteor'.*flash_crash"):
        resolve_stress(["meteor"])
