from __future__ import annotations

import json

import pytest

from tests.unit.portfolio.builders import (
    BTC,
    ETH,
    MINUTE_NS,
    bar,
    fill,
    make_portfolio,
)
from tradegraph.contracts import (
    Message,
    OrderAccepted,
    OrderSide,
    PortfolioSnapshot,
    TimerFired,
)
from tradegraph.engine.clock import SimClock
from tradegraph.errors import ConfigError
from tradegraph.portfolio import Portfolio

SECOND_NS = 1_000_000_000
DAY_NS = 86_400 * SECOND_NS


def deliver(portfolio: Portfolio, clock: SimClock, msg: Message) -> None:
    """Move the clock to the message's event time, as the kernel does, then deliver it."""
    clock.set_time(max(clock.now_ns(), msg.ts_event_ns))
    portfolio.handle(msg)


def test_every_fill_publishes_a_snapshot_with_the_account_state() -> None:
    portfolio, clock, outbox = make_portfolio(snapshot_interval_s=3_600.0)
    deliver(portfolio, clock, bar(BTC, 100.0, MINUTE_NS))
    outbox.clear()

    portfolio.handle(fill("f1", OrderSide.BUY, 2.0, 100.0, fee=1.0))
    portfolio.handle(fill("f2", OrderSide.SELL, 1.0, 100.0, fee=1.0))

    snapshots = outbox.of_type(PortfolioSnapshot)
    assert len(snapshots) == 2
    last = snapshots[-1]
    assert last.cash == pytest.approx(10_000.0 - 100.0 - 2.0)
    assert last.equity == pytest.approx(9_998.0)
    assert last.gross_exposure == pytest.approx(100.0)
    assert last.net_exposure == pytest.approx(100.0)
    assert last.fees == pytest.approx(2.0)
    assert last.peak_equity == 10_000.0
    assert last.drawdown == pytest.approx(2.0)
    assert last.day_start_equity == 10_000.0
    assert last.ts_event_ns == clock.now_ns()
    assert [p.instrument_id for p in last.positions] == [BTC]
    assert last.positions[0].quantity == pytest.approx(1.0)


def test_marks_publish_snapshots_at_most_once_per_interval() -> None:
    portfolio, clock, outbox = make_portfolio(snapshot_interval_s=60.0)

    for seconds in (0, 30, 59, 60, 90, 120, 121):
        deliver(portfolio, clock, bar(BTC, 100.0 + seconds, seconds * SECOND_NS))

    published_at = [s.ts_event_ns // SECOND_NS for s in outbox.of_type(PortfolioSnapshot)]
    assert published_at == [0, 60, 120]


def test_zero_interval_publishes_a_snapshot_on_every_mark() -> None:
    portfolio, clock, outbox = make_portfolio(snapshot_interval_s=0.0)

    for i in range(5):
        deliver(portfolio, clock, bar(BTC, 100.0, i * MINUTE_NS))

    assert len(outbox.of_type(PortfolioSnapshot)) == 5


def test_fill_restarts_the_mark_snapshot_interval() -> None:
    portfolio, clock, outbox = make_portfolio(snapshot_interval_s=60.0)
    deliver(portfolio, clock, bar(BTC, 100.0, 0))
    clock.set_time(50 * SECOND_NS)
    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 100.0))
    outbox.clear()

    deliver(portfolio, clock, bar(BTC, 101.0, 60 * SECOND_NS))
    deliver(portfolio, clock, bar(BTC, 102.0, 110 * SECOND_NS))

    assert [s.ts_event_ns for s in outbox.of_type(PortfolioSnapshot)] == [110 * SECOND_NS]


def test_peak_equity_and_drawdown_follow_equity() -> None:
    portfolio, clock, _ = make_portfolio()
    portfolio.handle(fill("f1", OrderSide.BUY, 10.0, 100.0))

    for i, price in enumerate((110.0, 120.0, 90.0, 100.0), start=1):
        deliver(portfolio, clock, bar(BTC, price, i * MINUTE_NS))

    assert portfolio.peak_equity == pytest.approx(10_200.0)
    assert portfolio.equity == pytest.approx(10_000.0)
    assert portfolio.drawdown == pytest.approx(200.0)
    assert portfolio.drawdown_fraction == pytest.approx(200.0 / 10_200.0)


def test_day_start_equity_is_starting_cash_then_equity_at_first_event_of_each_utc_day() -> None:
    portfolio, clock, outbox = make_portfolio()
    portfolio.handle(fill("f1", OrderSide.BUY, 10.0, 100.0))
    deliver(portfolio, clock, bar(BTC, 110.0, DAY_NS - MINUTE_NS))
    first_day = portfolio.day_start_equity

    deliver(portfolio, clock, bar(BTC, 120.0, DAY_NS))
    second_day = portfolio.day_start_equity
    deliver(portfolio, clock, bar(BTC, 90.0, DAY_NS + MINUTE_NS))
    still_second_day = portfolio.day_start_equity
    deliver(portfolio, clock, bar(BTC, 95.0, 3 * DAY_NS + 5 * MINUTE_NS))

    assert first_day == 10_000.0
    assert second_day == pytest.approx(10_200.0)
    assert still_second_day == pytest.approx(10_200.0)
    assert portfolio.day_start_equity == pytest.approx(9_950.0)
    last = outbox.of_type(PortfolioSnapshot)[-1]
    assert last.daily_pnl == pytest.approx(0.0)


def test_fill_as_first_event_of_a_day_counts_in_the_new_day() -> None:
    portfolio, clock, _ = make_portfolio()
    deliver(portfolio, clock, bar(BTC, 100.0, MINUTE_NS))
    clock.set_time(DAY_NS + MINUTE_NS)

    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 100.0, fee=5.0))

    assert portfolio.day_start_equity == 10_000.0
    assert portfolio.build_snapshot().daily_pnl == pytest.approx(-5.0)


def test_equity_curve_keeps_one_point_per_timestamp() -> None:
    portfolio, clock, _ = make_portfolio()
    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 100.0, instrument_id=BTC))
    portfolio.handle(fill("f2", OrderSide.BUY, 1.0, 10.0, instrument_id=ETH))

    deliver(portfolio, clock, bar(BTC, 110.0, MINUTE_NS))
    deliver(portfolio, clock, bar(ETH, 11.0, MINUTE_NS))
    deliver(portfolio, clock, bar(BTC, 120.0, 2 * MINUTE_NS))
    ts, equity = portfolio.equity_curve()

    assert ts.dtype.name == "int64"
    assert equity.dtype.name == "float64"
    assert ts.tolist() == [0, MINUTE_NS, 2 * MINUTE_NS]
    assert equity.tolist() == pytest.approx([10_000.0, 10_011.0, 10_021.0])


def test_fill_after_a_bar_at_the_same_time_updates_that_curve_point() -> None:
    portfolio, clock, _ = make_portfolio()
    deliver(portfolio, clock, bar(BTC, 100.0, MINUTE_NS))

    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 100.0, fee=2.5))
    ts, equity = portfolio.equity_curve()

    assert ts.tolist() == [MINUTE_NS]
    assert equity.tolist() == [pytest.approx(9_997.5)]


def test_equity_curve_returns_copies() -> None:
    portfolio, clock, _ = make_portfolio()
    deliver(portfolio, clock, bar(BTC, 100.0, MINUTE_NS))

    _, equity = portfolio.equity_curve()
    equity[0] = -1.0

    assert portfolio.equity_curve()[1][0] == 10_000.0


def test_messages_the_portfolio_does_not_use_are_ignored() -> None:
    portfolio, _, outbox = make_portfolio()
    state = portfolio.snapshot()

    portfolio.handle(TimerFired(name="x", ts_event_ns=0, ts_init_ns=0))
    portfolio.handle(
        OrderAccepted(
            ts_event_ns=0,
            ts_init_ns=0,
            client_order_id="c",
            venue_order_id="v",
            strategy_id="s1",
            instrument_id=BTC,
            venue="BINANCE",
        )
    )

    assert portfolio.snapshot() == state
    assert outbox.messages == []


def _first_half() -> list[Message]:
    return [
        bar(BTC, 100.0, MINUTE_NS),
        bar(ETH, 10.0, MINUTE_NS),
        fill("f1", OrderSide.BUY, 1.5, 100.0, fee=0.15, strategy_id="a"),
        fill("f2", OrderSide.SELL, 4.0, 10.0, fee=0.04, strategy_id="b", instrument_id=ETH),
        bar(BTC, 103.0, 2 * MINUTE_NS),
        bar(ETH, 9.5, 2 * MINUTE_NS),
        fill("f3", OrderSide.SELL, 0.5, 103.0, fee=0.05, strategy_id="a"),
    ]


def _second_half() -> list[Message]:
    return [
        fill("f3", OrderSide.SELL, 0.5, 103.0, fee=0.05, strategy_id="a"),
        bar(BTC, 99.0, DAY_NS),
        fill("f4", OrderSide.BUY, 4.0, 9.0, fee=0.04, strategy_id="b", instrument_id=ETH),
        bar(ETH, 9.2, DAY_NS + 90 * SECOND_NS),
        fill("f5", OrderSide.SELL, 3.0, 99.5, fee=0.3, strategy_id="a"),
        bar(BTC, 98.0, DAY_NS + 120 * SECOND_NS),
    ]


def test_restore_of_a_json_round_tripped_snapshot_behaves_identically() -> None:
    original, original_clock, original_outbox = make_portfolio(snapshot_interval_s=60.0)
    for msg in _first_half():
        deliver(original, original_clock, msg)
    stored = json.dumps(original.snapshot().model_dump(mode="json"))
    state = Portfolio.State.model_validate_json(stored)
    restored, restored_clock, restored_outbox = make_portfolio(snapshot_interval_s=60.0)
    restored_clock.set_time(original_clock.now_ns())
    restored.restore(state)
    original_outbox.clear()

    for msg in _second_half():
        deliver(original, original_clock, msg)
        deliver(restored, restored_clock, msg)

    assert restored.snapshot() == original.snapshot()
    assert restored_outbox.messages == original_outbox.messages
    assert restored.strategy_attribution() == original.strategy_attribution()
    assert [f.fill_id for f in restored.fills] == ["f1", "f2", "f3", "f4", "f5"]
    restored_ts, restored_equity = restored.equity_curve()
    original_ts, original_equity = original.equity_curve()
    assert restored_ts.tolist() == original_ts.tolist()
    assert restored_equity.tolist() == original_equity.tolist()


def test_restore_rejects_state_with_an_unconfigured_instrument() -> None:
    portfolio, _, _ = make_portfolio()
    state = portfolio.snapshot()
    state = state.model_copy(update={"marks": {**state.marks, "DOGEUSDT.BINANCE": 0.1}})

    with pytest.raises(ConfigError, match=r"DOGEUSDT\.BINANCE"):
        portfolio.restore(state)
