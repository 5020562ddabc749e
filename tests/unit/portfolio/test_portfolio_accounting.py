from __future__ import annotations

import math

import pytest

from tests.support.stubs import ethusdt, quote, trade
from tests.unit.portfolio.builders import (
    BTC,
    ETH,
    MINUTE_NS,
    bar,
    fill,
    instruments,
    make_portfolio,
)
from tradegraph.config.models import PortfolioConfig
from tradegraph.contracts import (
    OrderSide,
)
from tradegraph.engine.clock import SimClock
from tradegraph.errors import ConfigError, OrderPathError
from tradegraph.portfolio import Portfolio, apply_fill_to_position
from tradegraph.testing import RecordingOutbox


def test_constructor_rejects_instrument_quoted_in_another_currency() -> None:
    ethbtc = ethusdt(
        symbol="ETHBTC",
        quote="BTC",
        tick_size=1e-6,
        lot_size=1e-3,
        min_quantity=0.0,
        min_notional=0.0,
    )
    config = PortfolioConfig(currency="USDT")

    with pytest.raises(ConfigError, match=r"ETHBTC\.BINANCE quotes in 'BTC'"):
        Portfolio(config, {ethbtc.instrument_id: ethbtc}, SimClock(), RecordingOutbox())


def test_constructor_rejects_key_that_is_not_the_instrument_id() -> None:
    btc = instruments()[BTC]

    with pytest.raises(ConfigError, match="does not match"):
        Portfolio(PortfolioConfig(), {"BTC": btc}, SimClock(), RecordingOutbox())


def test_buy_fill_debits_cash_with_fee_and_opens_position() -> None:
    portfolio, _, _ = make_portfolio()
    portfolio.handle(bar(BTC, 100.0, MINUTE_NS))

    portfolio.handle(fill("f1", OrderSide.BUY, 2.0, 101.0, fee=0.5))

    assert portfolio.cash == pytest.approx(10_000.0 - 202.0 - 0.5)
    assert portfolio.fees == pytest.approx(0.5)
    position = portfolio.positions()[BTC]
    assert position.quantity == 2.0
    assert position.avg_price == pytest.approx(101.0)
    assert position.mark_price == 100.0
    assert portfolio.unrealized_pnl == pytest.approx(-2.0)
    assert portfolio.equity == pytest.approx(10_000.0 - 2.0 - 0.5)


def test_adding_to_a_position_moves_the_average_price() -> None:
    portfolio, _, _ = make_portfolio()

    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 100.0))
    portfolio.handle(fill("f2", OrderSide.BUY, 3.0, 200.0))

    position = portfolio.positions()[BTC]
    assert position.quantity == 4.0
    assert position.avg_price == pytest.approx(175.0)
    assert portfolio.realized_pnl == 0.0


def test_partial_sell_realizes_pnl_on_the_closed_quantity_only() -> None:
    portfolio, _, _ = make_portfolio()
    portfolio.handle(fill("f1", OrderSide.BUY, 2.0, 100.0))

    portfolio.handle(fill("f2", OrderSide.SELL, 0.5, 120.0))

    position = portfolio.positions()[BTC]
    assert position.quantity == pytest.approx(1.5)
    assert position.avg_price == pytest.approx(100.0)
    assert portfolio.realized_pnl == pytest.approx(10.0)


def test_flip_through_zero_realizes_closed_part_and_opens_rest_at_fill_price() -> None:
    portfolio, _, _ = make_portfolio()
    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 100.0))

    portfolio.handle(fill("f2", OrderSide.SELL, 3.0, 90.0))

    position = portfolio.positions()[BTC]
    assert position.quantity == pytest.approx(-2.0)
    assert position.avg_price == pytest.approx(90.0)
    assert portfolio.realized_pnl == pytest.approx(-10.0)


def test_short_position_gains_as_price_falls_and_realizes_on_cover() -> None:
    portfolio, _, _ = make_portfolio()
    portfolio.handle(fill("f1", OrderSide.SELL, 2.0, 100.0))

    portfolio.handle(bar(BTC, 90.0, MINUTE_NS))
    unrealized_at_90 = portfolio.unrealized_pnl
    portfolio.handle(fill("f2", OrderSide.BUY, 2.0, 80.0))

    assert unrealized_at_90 == pytest.approx(20.0)
    assert portfolio.realized_pnl == pytest.approx(40.0)
    assert portfolio.positions()[BTC].quantity == 0.0
    assert portfolio.cash == pytest.approx(10_040.0)


def test_closing_a_position_built_from_fractions_leaves_it_exactly_flat() -> None:
    portfolio, _, _ = make_portfolio()
    portfolio.handle(fill("f1", OrderSide.BUY, 0.1, 100.0))
    portfolio.handle(fill("f2", OrderSide.BUY, 0.2, 100.0))

    portfolio.handle(fill("f3", OrderSide.SELL, 0.3, 110.0))

    position = portfolio.positions()[BTC]
    assert position.quantity == 0.0
    assert position.avg_price == 0.0
    assert portfolio.realized_pnl == pytest.approx(3.0)


def test_bar_mark_moves_equity_by_quantity_times_price_change() -> None:
    portfolio, _, _ = make_portfolio()
    portfolio.handle(bar(BTC, 100.0, MINUTE_NS))
    portfolio.handle(fill("f1", OrderSide.BUY, 3.0, 100.0))

    portfolio.handle(bar(BTC, 104.0, 2 * MINUTE_NS))

    assert portfolio.equity == pytest.approx(10_012.0)
    assert portfolio.mark(BTC) == 104.0


def test_trade_tick_marks_at_price_and_quote_tick_at_mid() -> None:
    portfolio, _, _ = make_portfolio()
    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 100.0))

    portfolio.handle(trade(110.0, size=0.1, instrument_id=BTC, ts_ns=1))
    after_trade = portfolio.equity
    portfolio.handle(quote(119.0, 121.0, instrument_id=BTC, ts_ns=2))

    assert after_trade == pytest.approx(10_010.0)
    assert portfolio.mark(BTC) == 120.0
    assert portfolio.equity == pytest.approx(10_020.0)


def test_fill_before_any_mark_uses_the_fill_price_as_mark() -> None:
    portfolio, _, _ = make_portfolio()

    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 250.0, fee=1.0))

    assert portfolio.mark(BTC) == 250.0
    assert portfolio.equity == pytest.approx(9_999.0)


def test_fill_keeps_the_market_mark_when_one_exists() -> None:
    portfolio, _, _ = make_portfolio()
    portfolio.handle(bar(BTC, 100.0, MINUTE_NS))

    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 101.0))

    assert portfolio.mark(BTC) == 100.0
    assert portfolio.equity == pytest.approx(9_999.0)


def test_maker_rebate_increases_cash() -> None:
    portfolio, _, _ = make_portfolio()

    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 100.0, fee=-0.25))

    assert portfolio.fees == pytest.approx(-0.25)
    assert portfolio.cash == pytest.approx(9_900.25)


def test_replayed_fill_changes_nothing() -> None:
    portfolio, _, outbox = make_portfolio()
    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 100.0, fee=0.1))
    state_before = portfolio.snapshot()
    published_before = len(outbox.messages)

    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 100.0, fee=0.1))

    assert portfolio.snapshot() == state_before
    assert len(outbox.messages) == published_before
    assert len(portfolio.fills) == 1


def test_fill_in_unknown_instrument_raises_order_path_error() -> None:
    portfolio, _, _ = make_portfolio()

    with pytest.raises(OrderPathError, match=r"DOGEUSDT\.BINANCE"):
        portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 0.1, instrument_id="DOGEUSDT.BINANCE"))


def test_fill_with_zero_quantity_raises_order_path_error() -> None:
    portfolio, _, _ = make_portfolio()

    with pytest.raises(OrderPathError, match="last_qty"):
        portfolio.handle(fill("f1", OrderSide.BUY, 0.0, 100.0))


def test_mark_for_unknown_instrument_is_ignored() -> None:
    portfolio, _, _ = make_portfolio()

    portfolio.handle(bar("DOGEUSDT.BINANCE", 0.1, MINUTE_NS))

    assert portfolio.equity == 10_000.0
    assert portfolio.equity_curve()[0].size == 0


def test_fills_are_listed_in_arrival_order() -> None:
    portfolio, _, _ = make_portfolio()

    portfolio.handle(fill("b", OrderSide.BUY, 1.0, 100.0))
    portfolio.handle(fill("a", OrderSide.SELL, 1.0, 100.0))

    assert [f.fill_id for f in portfolio.fills] == ["b", "a"]


def test_attribution_keeps_offsetting_strategies_apart_and_sums_to_account() -> None:
    portfolio, _, _ = make_portfolio()
    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 100.0, fee=1.0, strategy_id="long"))
    portfolio.handle(fill("f2", OrderSide.SELL, 1.0, 110.0, fee=2.0, strategy_id="short"))

    portfolio.handle(bar(BTC, 120.0, MINUTE_NS))
    attribution = portfolio.strategy_attribution()

    assert list(attribution) == ["long", "short"]
    assert attribution["long"].unrealized_pnl == pytest.approx(20.0)
    assert attribution["short"].unrealized_pnl == pytest.approx(-10.0)
    assert attribution["long"].positions[BTC].quantity == 1.0
    assert attribution["short"].positions[BTC].quantity == -1.0
    assert attribution["short"].fees == 2.0
    assert attribution["long"].fill_count == 1
    assert attribution["long"].net_pnl == pytest.approx(19.0)
    account_position = portfolio.positions()[BTC]
    assert account_position.quantity == 0.0
    assert account_position.avg_price == 0.0
    assert portfolio.unrealized_pnl == pytest.approx(10.0)
    assert portfolio.equity == pytest.approx(10_000.0 + 10.0 - 3.0)


def test_attribution_per_strategy_and_instrument() -> None:
    portfolio, _, _ = make_portfolio()
    portfolio.handle(fill("f1", OrderSide.BUY, 1.0, 100.0, strategy_id="a", instrument_id=BTC))
    portfolio.handle(fill("f2", OrderSide.BUY, 2.0, 10.0, strategy_id="a", instrument_id=ETH))
    portfolio.handle(fill("f3", OrderSide.SELL, 1.0, 105.0, strategy_id="a", instrument_id=BTC))

    attribution = portfolio.strategy_attribution()["a"]

    assert set(attribution.positions) == {BTC, ETH}
    assert attribution.positions[BTC].realized_pnl == pytest.approx(5.0)
    assert attribution.positions[BTC].fill_count == 2
    assert attribution.positions[ETH].quantity == 2.0
    assert attribution.fill_count == 3
    assert attribution.realized_pnl == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("quantity", "avg", "signed", "price", "expected"),
    [
        (0.0, 0.0, 2.0, 10.0, (2.0, 10.0, 0.0, 0.0)),
        (2.0, 10.0, 2.0, 20.0, (4.0, 15.0, 0.0, 0.0)),
        (4.0, 15.0, -1.0, 20.0, (3.0, 15.0, 5.0, 1.0)),
        (3.0, 15.0, -3.0, 10.0, (0.0, 0.0, -15.0, 3.0)),
        (-2.0, 50.0, 5.0, 40.0, (3.0, 40.0, 20.0, 2.0)),
        (-2.0, 50.0, -2.0, 60.0, (-4.0, 55.0, 0.0, 0.0)),
    ],
)
def test_apply_fill_to_position_average_cost_cases(
    quantity: float,
    avg: float,
    signed: float,
    price: float,
    expected: tuple[float, float, float, float],
) -> None:
    result = apply_fill_to_position(quantity, avg, signed, price)

    assert all(math.isclose(a, b, abs_tol=1e-12) for a, b in zip(result, expected, strict=True))
