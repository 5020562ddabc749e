"""The one mark-price rule, and Risk, Portfolio and Strategy valuing an instrument by it alike."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.stubs import bar, btcusdt, fill, quote, trade
from tradegraph.config.models import PortfolioConfig, RiskConfig, StrategyConfig
from tradegraph.contracts import (
    Message,
    OrderBookSnapshot,
    OrderSide,
)
from tradegraph.contracts.marks import mark_price
from tradegraph.engine.clock import SimClock
from tradegraph.portfolio import Portfolio
from tradegraph.risk import RiskEngine
from tradegraph.strategies import Strategy
from tradegraph.testing import RecordingOutbox

BTC = btcusdt(min_quantity=0.0, min_notional=0.0)
BTC_ID = BTC.instrument_id
T = 1_000_000_000


def _book(bids: tuple[tuple[float, float], ...], asks: tuple[tuple[float, float], ...]) -> Any:
    return OrderBookSnapshot(
        ts_event_ns=2 * T, ts_init_ns=2 * T, instrument_id=BTC_ID, bids=bids, asks=asks
    )


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (bar(100.0, ts_ns=T), 100.0),
        (trade(101.0, ts_ns=T), 101.0),
        (quote(100.0, 102.0, ts_ns=T), 101.0),
        (_book(((99.0, 1.0), (98.0, 2.0)), ((103.0, 1.0),)), 101.0),
        (_book(((99.0, 1.0),), ()), None),
    ],
)
def test_mark_price_follows_the_rule_for_each_kind_of_market_data(
    msg: Message, expected: float | None
) -> None:
    assert mark_price(msg) == expected


class _Quiet(Strategy):
    pass


def test_risk_portfolio_and_strategy_take_a_book_mid_as_the_same_mark() -> None:
    clock = SimClock(T)
    risk = RiskEngine(RiskConfig(price_band_pct=None), {BTC_ID: BTC}, clock, RecordingOutbox())
    portfolio = Portfolio(
        PortfolioConfig(starting_cash=10_000.0), {BTC_ID: BTC}, clock, RecordingOutbox()
    )
    strategy = _Quiet(
        StrategyConfig(id="s1", class_path="x:Quiet", instruments=(BTC_ID,)),
        {BTC_ID: BTC},
        clock,
        RecordingOutbox(),
    )
    for component in (risk, portfolio, strategy):
        component.handle(bar(100.0, ts_ns=T))
    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 100.0, ts_ns=T))
    clock.set_time(2 * T)

    book = _book(((109.0, 1.0),), ((111.0, 1.0),))
    for component in (risk, portfolio, strategy):
        component.handle(book)

    assert risk.last_prices[BTC_ID] == 110.0
    assert strategy.last_price(BTC_ID) == 110.0
    assert portfolio.mark(BTC_ID) == 110.0
    assert portfolio.equity == pytest.approx(10_000.0 + 10.0)
