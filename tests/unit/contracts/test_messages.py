from __future__ import annotations

import math
import pickle

import pytest
from pydantic import ValidationError

from tradegraph.contracts import (
    Bar,
    Instrument,
    OrderBookSnapshot,
    OrderIntent,
    OrderSide,
    OrderType,
    QuoteTick,
    TradeTick,
)


def _bar(**kw: float) -> Bar:
    fields: dict[str, object] = {
        "instrument_id": "BTCUSDT.BINANCE",
        "open": 100.0,
        "high": 110.0,
        "low": 90.0,
        "close": 105.0,
        "volume": 3.0,
        "interval_ns": 60_000_000_000,
        "ts_event_ns": 60_000_000_000,
        "ts_init_ns": 60_000_000_000,
    }
    fields.update(kw)
    return Bar.model_validate(fields)


@pytest.mark.parametrize(
    "bad",
    [
        {"open": math.nan},
        {"close": math.inf},
        {"low": -1.0},
        {"open": 0.0},
        {"volume": -0.5},
        {"high": 80.0},
        {"high": 101.0, "close": 105.0},
        {"low": 101.0},
    ],
)
def test_bar_rejects_malformed_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        _bar(**bad)


def test_bar_is_frozen_and_known_at_close() -> None:
    bar = _bar()
    with pytest.raises(ValidationError):
        bar.close = 1.0  # type: ignore[misc]
    assert bar.ts_open_ns == 0
    assert bar.msg_id == "bar:BTCUSDT.BINANCE@60000000000"


def test_message_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        _bar(colour=1.0)


def test_trusted_bar_equals_validated_bar_and_pickles() -> None:
    validated = _bar()
    trusted = Bar.trusted(**validated.model_dump())
    assert trusted == validated
    assert pickle.loads(pickle.dumps(trusted)) == validated


def test_crossed_quote_and_book_are_rejected() -> None:
    with pytest.raises(ValidationError, match="crossed"):
        QuoteTick(
            instrument_id="X.V",
            bid_price=101.0,
            bid_size=1.0,
            ask_price=100.0,
            ask_size=1.0,
            ts_event_ns=1,
            ts_init_ns=1,
        )
    with pytest.raises(ValidationError, match="crossed"):
        OrderBookSnapshot(
            instrument_id="X.V",
            bids=((101.0, 1.0),),
            asks=((100.0, 1.0),),
            ts_event_ns=1,
            ts_init_ns=1,
        )
    with pytest.raises(ValidationError, match="sorted"):
        OrderBookSnapshot(
            instrument_id="X.V",
            bids=((99.0, 1.0), (100.0, 1.0)),
            asks=((101.0, 1.0),),
            ts_event_ns=1,
            ts_init_ns=1,
        )


def test_trade_tick_rejects_non_positive_price() -> None:
    with pytest.raises(ValidationError, match="price"):
        TradeTick(
            instrument_id="X.V",
            price=0.0,
            size=1.0,
            aggressor_side="buy",
            trade_id="1",
            ts_event_ns=1,
            ts_init_ns=1,
        )


def test_order_intent_consistency_rules() -> None:
    base = {
        "intent_id": "s-000001",
        "strategy_id": "s",
        "instrument_id": "X.V",
        "side": OrderSide.BUY,
        "quantity": 1.0,
        "ts_event_ns": 1,
        "ts_init_ns": 1,
    }
    with pytest.raises(ValidationError, match="limit_price"):
        OrderIntent.model_validate({**base, "order_type": OrderType.LIMIT})
    with pytest.raises(ValidationError, match="market order"):
        OrderIntent.model_validate({**base, "limit_price": 5.0})
    with pytest.raises(ValidationError, match="post_only"):
        OrderIntent.model_validate({**base, "post_only": True})
    with pytest.raises(ValidationError, match="quantity"):
        OrderIntent.model_validate({**base, "quantity": math.nan})


def test_instrument_rounding_never_exceeds_request() -> None:
    inst = Instrument(
        symbol="BTCUSDT", venue="BINANCE", base="BTC", quote="USDT", tick_size=0.01, lot_size=1e-5
    )
    assert inst.instrument_id == "BTCUSDT.BINANCE"
    assert inst.round_quantity(0.0123456) == 0.01234
    assert inst.round_quantity(0.03) == 0.03
    assert inst.round_price(61837.634) == 61837.63
    assert inst.round_price_passive(100.019, is_buy=True) == 100.01
    assert inst.round_price_passive(100.011, is_buy=False) == 100.02
    assert inst.ccxt_symbol == "BTC/USDT"
