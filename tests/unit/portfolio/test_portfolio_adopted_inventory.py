"""A live account's balances, reported once reconciled, become the portfolio's starting state."""

from __future__ import annotations

import pytest

from tests.unit.portfolio.builders import BTC, ETH, bar, fill, make_portfolio
from tradegraph.contracts import AccountBalances, OrderSide, PortfolioSnapshot
from tradegraph.portfolio.portfolio import ACCOUNT_LEDGER, Portfolio


def balances(usdt: float, btc: float, venue: str = "BINANCE") -> AccountBalances:
    return AccountBalances(
        venue=venue, balances={"USDT": usdt, "BTC": btc, "ETH": 0.0}, ts_event_ns=0, ts_init_ns=0
    )


def test_balances_replace_starting_cash_and_inventory_is_priced_at_its_first_mark() -> None:
    portfolio, _, outbox = make_portfolio(starting_cash=100_000.0)

    portfolio.handle(balances(usdt=500.0, btc=1.0))
    unpriced = portfolio.positions()[BTC]
    portfolio.handle(bar(BTC, 60_000.0, 60_000_000_000))
    priced = portfolio.positions()[BTC]
    portfolio.handle(bar(BTC, 61_000.0, 120_000_000_000))

    assert unpriced.quantity == 1.0
    assert portfolio.cash == 500.0
    assert priced.avg_price == 60_000.0
    assert portfolio.equity == 500.0 + 61_000.0
    assert portfolio.unrealized_pnl == 1_000.0
    assert portfolio.peak_equity == 500.0 + 61_000.0
    # Adoption and the first mark value the account; they are no gain of the day.
    last = [m for m in outbox.messages if isinstance(m, PortfolioSnapshot)][-1]
    assert last.day_start_equity == 500.0 + 60_000.0
    assert last.daily_pnl == 1_000.0
    assert portfolio.strategy_attribution() == {}


def test_inventory_is_priced_at_the_mark_known_when_it_is_adopted() -> None:
    portfolio, _, _ = make_portfolio(starting_cash=100_000.0)
    portfolio.handle(bar(BTC, 60_000.0, 0))

    portfolio.handle(balances(usdt=500.0, btc=1.0))

    assert portfolio.positions()[BTC].avg_price == 60_000.0
    assert portfolio.equity == 60_500.0
    assert portfolio.peak_equity == 60_500.0
    assert portfolio.drawdown == 0.0
    assert portfolio.day_start_equity == 60_500.0


def test_strategies_keep_what_they_traded_and_the_account_keeps_the_rest() -> None:
    portfolio, _, _ = make_portfolio(starting_cash=100_000.0)
    portfolio.handle(balances(usdt=500.0, btc=1.0))
    portfolio.handle(bar(BTC, 60_000.0, 0))

    portfolio.handle(fill("f1", OrderSide.SELL, 0.25, 62_000.0, strategy_id="s1"))
    portfolio.handle(bar(BTC, 62_000.0, 1))

    assert portfolio.positions()[BTC].quantity == pytest.approx(0.75)
    assert portfolio.cash == pytest.approx(500.0 + 0.25 * 62_000.0)
    assert portfolio.equity == pytest.approx(500.0 + 62_000.0)
    strategy = portfolio.strategy_attribution()["s1"].positions[BTC]
    assert strategy.quantity == -0.25
    assert ACCOUNT_LEDGER not in portfolio.strategy_attribution()


def test_fills_booked_before_the_balances_are_not_counted_twice() -> None:
    portfolio, _, _ = make_portfolio(starting_cash=100_000.0)
    portfolio.handle(bar(BTC, 60_000.0, 0))
    portfolio.handle(fill("f1", OrderSide.BUY, 0.1, 60_000.0, fee=6.0))

    # The venue's balances (after that fill) already include it.
    portfolio.handle(balances(usdt=500.0, btc=1.1))

    assert portfolio.cash == 500.0
    assert portfolio.positions()[BTC].quantity == pytest.approx(1.1)
    assert portfolio.strategy_attribution()["s1"].positions[BTC].quantity == 0.1


def test_later_balances_and_restored_state_are_not_adopted_again() -> None:
    portfolio, _, _ = make_portfolio(starting_cash=100_000.0)
    portfolio.handle(balances(usdt=500.0, btc=1.0))
    portfolio.handle(bar(BTC, 60_000.0, 0))
    portfolio.handle(fill("f1", OrderSide.BUY, 0.1, 60_000.0))
    restored, _, _ = make_portfolio(starting_cash=100_000.0)
    restored.restore(portfolio.snapshot())

    for each in (portfolio, restored):
        # A broker that reconnects reports the balances again, fills included.
        each.handle(balances(usdt=500.0 - 6_000.0, btc=1.1))

    for each in (portfolio, restored):
        assert each.positions()[BTC].quantity == pytest.approx(1.1)
        assert each.cash == pytest.approx(500.0 - 6_000.0)
        assert each.equity == pytest.approx(500.0 - 6_000.0 + 1.1 * 60_000.0)


def test_a_state_from_before_adoption_existed_is_authoritative() -> None:
    portfolio, _, _ = make_portfolio(starting_cash=100_000.0)
    stored = portfolio.snapshot().model_dump(mode="json")
    del stored["adopted_venues"]
    portfolio.restore(Portfolio.State.model_validate(stored))

    portfolio.handle(balances(usdt=500.0, btc=1.0))

    assert portfolio.cash == 100_000.0
    assert portfolio.positions() == {}


def test_an_account_without_inventory_adopts_only_its_cash() -> None:
    portfolio, _, _ = make_portfolio(starting_cash=100_000.0)

    portfolio.handle(balances(usdt=2_500.0, btc=0.0))

    assert portfolio.cash == 2_500.0
    assert portfolio.equity == 2_500.0
    assert portfolio.positions() == {}
    assert ETH not in portfolio.positions()
