"""The fake exchange's USDⓈ-M futures side, spoken to by the real synchronous ccxt
``binanceusdm`` client over HTTP: what the broker and the funding download rely on."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import ccxt
import pytest

from tests.support.fake_exchange import FakeExchange

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange(futures_wallet="1000") as exchange:
        exchange.set_futures_price("BTCUSDT", "60000")
        yield exchange


@pytest.fixture
def usdm(fake: FakeExchange) -> ccxt.binanceusdm:
    exchange = ccxt.binanceusdm(fake.ccxt_config(futures=True))
    exchange.load_markets()
    return exchange


def test_the_perpetuals_load_as_linear_swaps_with_binance_rules(usdm: ccxt.binanceusdm) -> None:
    market = usdm.market(SYMBOL)

    assert (market["swap"], market["linear"], market["settle"]) == (True, True, "USDT")
    assert (market["contractSize"], market["precision"]["price"]) == (1.0, 0.1)
    assert market["limits"]["cost"]["min"] == 100.0
    assert sorted(usdm.markets) == ["BTC/USDT:USDT", "ETH/USDT:USDT"]


def test_a_round_trip_books_fees_and_realized_profit_in_the_wallet(
    fake: FakeExchange, usdm: ccxt.binanceusdm
) -> None:
    usdm.create_order(SYMBOL, "market", "buy", 0.01)  # at the best ask, 60000.1
    fake.set_futures_price("BTCUSDT", "61000")
    usdm.create_order(SYMBOL, "market", "sell", 0.01)  # at the best bid, 60999.9

    trades = usdm.fetch_my_trades(SYMBOL)
    profit = Decimal("60999.9") - Decimal("60000.1")
    fees = (Decimal("600.001") + Decimal("609.999")) * Decimal("0.0005")
    assert [t["info"]["realizedPnl"] for t in trades] == ["0.00000000", f"{profit / 100:.8f}"]
    assert sum(Decimal(str(t["fee"]["cost"])) for t in trades) == fees
    assert fake.futures_wallet() == Decimal("1000") + profit / 100 - fees
    assert fake.futures_positions() == {}
    assert usdm.fetch_positions([SYMBOL]) == []  # ccxt leaves out closed positions


def test_a_short_is_a_negative_position_and_reduce_only_cannot_grow_it(
    fake: FakeExchange, usdm: ccxt.binanceusdm
) -> None:
    usdm.create_order(SYMBOL, "market", "sell", 0.02)

    with pytest.raises(ccxt.ExchangeError, match="-2022"):
        usdm.create_order(SYMBOL, "market", "sell", 0.01, None, {"reduceOnly": True})
    usdm.create_order(SYMBOL, "market", "buy", 0.01, None, {"reduceOnly": True})

    [position] = usdm.fetch_positions([SYMBOL])
    assert (position["side"], position["contracts"]) == ("short", 0.01)
    assert fake.futures_positions() == {"BTCUSDT": Decimal("-0.01000000")}


def test_margin_type_set_twice_answers_binances_no_need_to_change(
    fake: FakeExchange, usdm: ccxt.binanceusdm
) -> None:
    usdm.set_margin_mode("isolated", SYMBOL)

    with pytest.raises(ccxt.MarginModeAlreadySet):
        usdm.set_margin_mode("isolated", SYMBOL)
    usdm.create_order(SYMBOL, "market", "buy", 0.01)
    with pytest.raises(ccxt.ExchangeError, match="-4048"):  # not while a position is open
        usdm.set_margin_mode("cross", SYMBOL)
    assert fake.futures_settings("BTCUSDT") == (20, "ISOLATED")


def test_funding_is_paid_by_longs_at_the_mark_and_listed_as_income(
    fake: FakeExchange, usdm: ccxt.binanceusdm
) -> None:
    usdm.create_order(SYMBOL, "market", "buy", 0.01)
    before = fake.futures_wallet()

    paid = fake.pay_funding("BTCUSDT", "0.0002")

    assert paid == Decimal("-0.12")  # 0.01 * 60000 (mark) * 2 bp
    assert fake.futures_wallet() == before + paid
    [income] = usdm.fetch_funding_history(SYMBOL)
    assert income["amount"] == -0.12
    latest = usdm.fetch_funding_rate_history(SYMBOL)[-1]
    assert (latest["fundingRate"], latest["info"]["markPrice"]) == (0.0002, "60000.00000000")
    assert usdm.fetch_funding_rate(SYMBOL)["markPrice"] == 60000.0


def test_faults_apply_to_futures_paths_as_to_spot(
    fake: FakeExchange, usdm: ccxt.binanceusdm
) -> None:
    fake.fail_next(1, status=503, retry_after_s=None, path="/fapi/v3/positionRisk")

    with pytest.raises(ccxt.ExchangeNotAvailable):
        usdm.fetch_positions([SYMBOL])
    fake.ban(30.0, escalate=False)
    with pytest.raises(ccxt.DDoSProtection):
        usdm.fetch_funding_rate_history(SYMBOL)
    assert [r.status for r in fake.requests()][-2:] == [503, 418]
