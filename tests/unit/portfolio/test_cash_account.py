"""The cash account: free and reserved balances through an order's life, exact to 1e-9."""

from __future__ import annotations

import pytest

from tests.support.stubs import btcusdt
from tradegraph.contracts import AccountKind, OrderSide
from tradegraph.portfolio import CashAccount

BTC = btcusdt(lot_size=0.001, min_quantity=0.0, min_notional=0.0, maker_fee=0.0002)
IID = BTC.instrument_id


def account(usdt: float = 1_000.0, btc: float = 0.0) -> CashAccount:
    return CashAccount("BINANCE", {"USDT": usdt, "BTC": btc}, {IID: BTC})


def test_a_cash_account_is_of_kind_cash() -> None:
    assert account().kind is AccountKind.CASH


def test_limit_buy_reserves_notional_plus_the_highest_fee_in_quote() -> None:
    acct = account()
    asset, unit = acct.unit_cost(IID, OrderSide.BUY, 100.0, market=False)
    acct.reserve("o1", asset, unit, 2.0)

    assert asset == "USDT"
    assert acct.reserved("USDT") == pytest.approx(200.0 * 1.001, abs=1e-9)
    assert acct.free("USDT") == pytest.approx(1_000.0 - 200.2, abs=1e-9)
    assert acct.total("USDT") == 1_000.0


def test_market_buy_is_valued_with_the_buffer() -> None:
    acct = CashAccount("BINANCE", {"USDT": 1_000.0}, {IID: BTC}, market_buy_buffer_pct=5.0)
    asset, unit = acct.unit_cost(IID, OrderSide.BUY, 100.0, market=True)
    assert asset == "USDT"
    assert unit == pytest.approx(100.0 * 1.05 * 1.001, abs=1e-12)


def test_sell_reserves_base_quantity() -> None:
    acct = account(btc=1.5)
    asset, unit = acct.unit_cost(IID, OrderSide.SELL, 100.0, market=True)
    acct.reserve("s1", asset, unit, 1.0)
    assert acct.free("BTC") == pytest.approx(0.5, abs=1e-12)
    assert acct.shortfall("BTC", 0.6) is not None
    assert acct.shortfall("BTC", 0.5) is None


def test_partial_fill_moves_balances_and_shrinks_the_reservation() -> None:
    acct = account()
    asset, unit = acct.unit_cost(IID, OrderSide.BUY, 100.0, market=False)
    acct.reserve("o1", asset, unit, 4.0)

    acct.apply_fill("o1", IID, OrderSide.BUY, 1.0, 99.0, 0.0198, leaves_qty=3.0)

    assert acct.total("USDT") == pytest.approx(1_000.0 - 99.0 - 0.0198, abs=1e-9)
    assert acct.total("BTC") == pytest.approx(1.0, abs=1e-12)
    assert acct.reserved("USDT") == pytest.approx(3.0 * 100.1, abs=1e-9)
    assert acct.free("USDT") == pytest.approx(1_000.0 - 99.0198 - 300.3, abs=1e-9)


def test_last_fill_releases_the_reservation() -> None:
    acct = account(btc=2.0)
    acct.reserve("s1", "BTC", 1.0, 2.0)
    acct.apply_fill("s1", IID, OrderSide.SELL, 2.0, 100.0, 0.2, leaves_qty=0.0)
    assert acct.reservations == {}
    assert acct.total("BTC") == 0.0
    assert acct.total("USDT") == pytest.approx(1_000.0 + 200.0 - 0.2, abs=1e-9)


def test_cancel_releases_what_the_order_held() -> None:
    acct = account()
    acct.reserve("o1", "USDT", 100.1, 5.0)
    assert acct.free("USDT") == pytest.approx(499.5, abs=1e-9)
    acct.release("o1")
    assert acct.free("USDT") == 1_000.0


def test_shortfall_names_asset_needed_and_free() -> None:
    acct = account()
    shortfall = acct.shortfall("USDT", 1_500.0)
    assert shortfall is not None
    text = shortfall.describe("BINANCE")
    assert "1500 USDT" in text
    assert "1000 USDT" in text
    assert "BINANCE" in text


def test_spending_the_whole_balance_leaves_exactly_zero() -> None:
    acct = account(usdt=0.3)
    unit = 0.1 * (1.0 + 0.001)
    quantity = 0.3 / unit
    assert acct.shortfall("USDT", unit * quantity) is None
    acct.apply_fill("o", IID, OrderSide.BUY, quantity, 0.1, quantity * 0.1 * 0.001, 0.0)
    assert acct.total("USDT") == 0.0


def test_reported_balances_replace_the_named_assets() -> None:
    acct = account(usdt=1_000.0, btc=1.0)
    acct.set_balances({"USDT": 250.0})
    assert acct.balances == {"USDT": 250.0, "BTC": 1.0}


def test_snapshot_and_restore_round_trip() -> None:
    acct = account(btc=1.0)
    acct.reserve("o1", "USDT", 100.1, 2.0)
    acct.reserve("s1", "BTC", 1.0, 0.5)
    fresh = account(usdt=0.0)
    fresh.restore(acct.snapshot())
    assert fresh.snapshot() == acct.snapshot()
    assert fresh.free("USDT") == pytest.approx(acct.free("USDT"), abs=1e-12)
