from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.stubs import bar, fill, intent, quote, submit, trade
from tradegraph.contracts import (
    KillSwitchChanged,
    Message,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderSide,
    PortfolioSnapshot,
    PositionSnapshot,
    RiskReason,
    RiskRejected,
    StrategyError,
    TimerFired,
)
from tradegraph.observability.metrics import (
    DRAWDOWN,
    EQUITY,
    FILLED_NOTIONAL,
    FILLS,
    KILL_SWITCH_TRIPPED,
    KILL_SWITCH_TRIPS,
    MARKET_DATA_DROPPED,
    MARKET_EVENTS,
    MARKET_KINDS,
    METRICS,
    ORDER_INTENTS,
    ORDERS_SUBMITTED,
    POSITION,
    QUEUE_DEPTH,
    REJECTIONS,
    SCENARIOS_DONE,
    SCENARIOS_FAILED,
    SCENARIOS_PLANNED,
    STRATEGY_ERRORS,
    TICK_TO_ORDER,
    BatchMetrics,
    GraphMetrics,
    InMemorySink,
    reason_label,
)

BTC = "BTCUSDT.BINANCE"
ETH = "ETHUSDT.BINANCE"


def _snapshot(equity: float, positions: dict[str, float]) -> PortfolioSnapshot:
    return PortfolioSnapshot(
        cash=equity,
        equity=equity,
        gross_exposure=0.0,
        net_exposure=0.0,
        realized_pnl=0.0,
        unrealized_pnl=0.0,
        fees=0.0,
        peak_equity=equity * 1.25,
        # As the portfolio sends it: in the quote currency, peak minus equity.
        drawdown=equity * 0.25,
        day_start_equity=equity,
        positions=tuple(
            PositionSnapshot(
                instrument_id=iid,
                quantity=qty,
                avg_price=100.0,
                mark_price=100.0,
                realized_pnl=0.0,
                unrealized_pnl=0.0,
                ts_event_ns=1,
                ts_init_ns=1,
            )
            for iid, qty in positions.items()
        ),
        ts_event_ns=1,
        ts_init_ns=1,
    )


def _metrics(flush_every: int = 1024) -> tuple[GraphMetrics, InMemorySink]:
    sink = InMemorySink()
    return GraphMetrics(sink, flush_every=flush_every), sink


def test_market_events_are_counted_by_instrument_and_kind_once_flushed() -> None:
    metrics, sink = _metrics()
    for msg in (bar(100.0), bar(100.0), bar(100.0, instrument_id=ETH), trade(100.0, size=0.5)):
        metrics.observe(msg)

    assert sink.total(MARKET_EVENTS) == 0.0  # kept until flushed
    metrics.flush()

    assert sink.value(MARKET_EVENTS, instrument=BTC, kind="bar") == 2.0
    assert sink.value(MARKET_EVENTS, instrument=ETH, kind="bar") == 1.0
    assert sink.value(MARKET_EVENTS, instrument=BTC, kind="trade") == 1.0


def test_flush_writes_only_what_changed_since_the_last_flush() -> None:
    metrics, sink = _metrics()
    metrics.observe(bar(100.0))
    metrics.flush()
    metrics.flush()

    assert sink.value(MARKET_EVENTS, instrument=BTC, kind="bar") == 1.0


def test_metrics_flush_by_themselves_every_flush_every_messages() -> None:
    metrics, sink = _metrics(flush_every=3)
    for _ in range(7):
        metrics.observe(bar(100.0))

    assert sink.value(MARKET_EVENTS, instrument=BTC, kind="bar") == 6.0


def test_bulk_market_counts_add_up_with_observed_ones() -> None:
    metrics, sink = _metrics()
    metrics.observe(bar(100.0))
    metrics.count_market_events("bar", BTC, 65_536)
    metrics.count_market_events("quote", ETH, 0)
    metrics.flush()

    assert sink.value(MARKET_EVENTS, instrument=BTC, kind="bar") == 65_537.0
    assert sink.tag_sets(MARKET_EVENTS) == [{"instrument": BTC, "kind": "bar"}]


def test_bulk_count_of_an_unknown_kind_is_refused() -> None:
    metrics, _ = _metrics()
    with pytest.raises(ValueError, match="market event kind"):
        metrics.count_market_events("candle", BTC, 1)


def test_order_path_counts_intents_orders_fills_and_notional() -> None:
    metrics, sink = _metrics()
    for msg in (
        intent(quantity=0.5, intent_id="s-000001", strategy_id="s"),
        submit(quantity=0.5, client_order_id="s-000001", strategy_id="s"),
        fill("f-1", OrderSide.BUY, 0.2, 100.0, fee=0.1, strategy_id="s"),
        fill("f-1", OrderSide.SELL, 0.3, 110.0, fee=0.1, strategy_id="s"),
    ):
        metrics.observe(msg)
    metrics.flush()

    assert sink.value(ORDER_INTENTS, strategy="s", instrument=BTC) == 1.0
    assert sink.value(ORDERS_SUBMITTED, strategy="s", instrument=BTC) == 1.0
    assert sink.value(FILLS, strategy="s", instrument=BTC, side="buy") == 1.0
    assert sink.value(FILLS, strategy="s", instrument=BTC, side="sell") == 1.0
    assert sink.value(FILLED_NOTIONAL, instrument=BTC) == pytest.approx(0.2 * 100.0 + 0.3 * 110.0)


def test_rejections_are_counted_by_source_and_reason() -> None:
    metrics, sink = _metrics()
    risk = RiskRejected(
        intent_id="s-000001",
        strategy_id="s",
        instrument_id=BTC,
        reason=RiskReason.MAX_ORDER_NOTIONAL,
        detail="notional 60,000 above 50,000",
        ts_event_ns=1,
        ts_init_ns=1,
    )
    venue = OrderRejected(
        client_order_id="s-000002",
        strategy_id="s",
        instrument_id=BTC,
        venue="BINANCE",
        reason="duplicate client_order_id 's-000002'",
        ts_event_ns=1,
        ts_init_ns=1,
    )
    for msg in (risk, risk, venue):
        metrics.observe(msg)
    metrics.flush()

    assert sink.value(REJECTIONS, source="risk", reason="max_order_notional", strategy="s") == 2.0
    assert (
        sink.value(REJECTIONS, source="venue", reason="duplicate_client_order_id", strategy="s")
        == 1.0
    )


def test_portfolio_snapshot_sets_equity_drawdown_and_positions_and_zeroes_closed_ones() -> None:
    metrics, sink = _metrics()
    metrics.observe(_snapshot(1_000.0, {BTC: 0.5, ETH: -2.0}))
    metrics.observe(_snapshot(1_100.0, {BTC: 0.25}))
    metrics.flush()

    assert sink.value(EQUITY) == 1_100.0
    # 275 below a peak of 1,375: the gauge is the fraction, not the currency amount.
    assert sink.value(DRAWDOWN) == pytest.approx(0.2)
    assert sink.value(POSITION, instrument=BTC) == 0.25
    assert sink.value(POSITION, instrument=ETH) == 0.0


def test_kill_switch_state_and_trips() -> None:
    metrics, sink = _metrics()
    tripped = KillSwitchChanged(tripped=True, reason="operator", ts_event_ns=1, ts_init_ns=1)
    reset = KillSwitchChanged(tripped=False, reason="", ts_event_ns=2, ts_init_ns=2)

    metrics.observe(tripped)
    metrics.flush()
    state_while_tripped = sink.value(KILL_SWITCH_TRIPPED)
    metrics.observe(reset)
    metrics.flush()

    assert state_while_tripped == 1.0
    assert sink.value(KILL_SWITCH_TRIPPED) == 0.0
    assert sink.value(KILL_SWITCH_TRIPS) == 1.0


def test_strategy_errors_are_counted_per_strategy() -> None:
    metrics, sink = _metrics()
    metrics.observe(
        StrategyError(
            strategy_id="s", error_type="KeyError", error="x", ts_event_ns=1, ts_init_ns=1
        )
    )
    metrics.flush()

    assert sink.value(STRATEGY_ERRORS, strategy="s") == 1.0


def test_messages_that_are_not_measured_are_ignored() -> None:
    metrics, sink = _metrics(flush_every=1)
    accepted = OrderAccepted(
        client_order_id="c",
        venue_order_id="v",
        strategy_id="s",
        instrument_id=BTC,
        venue="BINANCE",
        ts_event_ns=1,
        ts_init_ns=1,
    )
    for msg in (accepted, TimerFired(name="t", ts_event_ns=1, ts_init_ns=1)):
        metrics.observe(msg)
    metrics.flush()

    assert sink.values == {}


def test_transport_measurements_queue_depth_tick_to_order_and_drops() -> None:
    metrics, sink = _metrics()
    metrics.set_queue_depth("risk", 3)
    metrics.set_queue_depth("risk", 7)
    metrics.observe_tick_to_order(0.004)
    metrics.observe_dropped("not_finite", BTC, 2)
    metrics.observe_dropped("not_finite", BTC)

    assert sink.observations[(TICK_TO_ORDER, ())] == [0.004]  # histograms are written at once
    metrics.flush()
    assert sink.value(QUEUE_DEPTH, component="risk") == 7.0
    assert sink.value(MARKET_DATA_DROPPED, reason="not_finite", instrument=BTC) == 3.0


def test_batch_metrics_count_scenarios_done_and_failed() -> None:
    sink = InMemorySink()
    batch = BatchMetrics(sink)

    batch.set_planned(10)
    batch.scenarios_finished(ok=4, failed=1)
    batch.scenarios_finished(ok=0, failed=0)

    assert sink.value(SCENARIOS_PLANNED) == 10.0
    assert sink.value(SCENARIOS_DONE) == 5.0
    assert sink.value(SCENARIOS_FAILED) == 1.0


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("post-only order would take liquidity", "post-only_order_would_take_liquidity"),
        ("unknown instrument 'X.Y' on venue 'Z'", "unknown_instrument"),
        ("quantity must be a finite number > 0, was -1.0", "quantity_must_be_a_finite_number"),
        ("  ", "other"),
        ("12345", "other"),
    ],
)
def test_reason_label_keeps_the_leading_words(reason: str, label: str) -> None:
    assert reason_label(reason) == label


def test_every_metric_name_is_prefixed_and_unique() -> None:
    names = [spec.name for spec in METRICS]

    assert all(name.startswith("tradegraph_") for name in names)
    assert len(set(names)) == len(names)


def test_in_memory_sink_refuses_writes_that_prometheus_or_ray_would_refuse() -> None:
    sink = InMemorySink()

    with pytest.raises(ValueError, match="unknown metric"):
        sink.inc("tradegraph_nope", 1, {})
    with pytest.raises(ValueError, match="takes tags"):
        sink.inc(FILLS, 1, {"strategy": "s"})
    with pytest.raises(ValueError, match="is a gauge"):
        sink.inc(EQUITY, 1, {})
    with pytest.raises(ValueError, match="cannot go down"):
        sink.inc(KILL_SWITCH_TRIPS, -1, {})


_MARKET = st.sampled_from(
    [
        bar(100.0),
        bar(100.0, instrument_id=ETH),
        trade(100.0, size=0.5),
        trade(100.0, size=0.5, instrument_id=ETH),
    ]
)
_QUOTE = quote(99.0, 101.0, ts_ns=1)


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(
        st.one_of(
            _MARKET,
            st.just(_QUOTE),
            st.just(fill("f-1", OrderSide.BUY, 0.1, 100.0, fee=0.1, strategy_id="s")),
        ),
        max_size=60,
    ),
    flush_every=st.integers(1, 10),
)
def test_after_a_final_flush_every_observed_message_is_counted_once(
    messages: list[Message], flush_every: int
) -> None:
    metrics, sink = _metrics(flush_every)
    for msg in messages:
        metrics.observe(msg)
    metrics.flush()

    market = sum(1 for m in messages if not isinstance(m, OrderFilled))
    fills = len(messages) - market
    assert sink.total(MARKET_EVENTS) == market
    assert sink.total(FILLS) == fills
    for kind_type, kind in MARKET_KINDS.items():
        expected = sum(1 for m in messages if type(m) is kind_type)
        assert sink.total(MARKET_EVENTS, kind=kind) == expected


def test_feed_staleness_and_venue_reachability_are_gauges_per_instrument_and_venue() -> None:
    from tradegraph.contracts import FeedStatus, VenueStatus
    from tradegraph.observability.metrics import FEED_STALE, VENUE_AVAILABLE

    metrics, sink = _metrics()
    metrics.observe(FeedStatus(instrument_id="BTC.X", stale=True, ts_event_ns=1, ts_init_ns=1))
    metrics.observe(VenueStatus(venue="X", available=False, ts_event_ns=1, ts_init_ns=1))
    metrics.flush()
    stale, down = sink.value(FEED_STALE, instrument="BTC.X"), sink.value(VENUE_AVAILABLE, venue="X")
    metrics.observe(FeedStatus(instrument_id="BTC.X", stale=False, ts_event_ns=2, ts_init_ns=2))
    metrics.observe(VenueStatus(venue="X", available=True, ts_event_ns=2, ts_init_ns=2))
    metrics.flush()

    assert (stale, down) == (1.0, 0.0)
    assert sink.value(FEED_STALE, instrument="BTC.X") == 0.0
    assert sink.value(VENUE_AVAILABLE, venue="X") == 1.0
