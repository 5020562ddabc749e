"""The funding-carry sample on its own: which funding rates open and close the carry, and
which instrument pairs it refuses."""

from __future__ import annotations

import pytest

from tests.support.stubs import btcusdt, ethusdt, instruments
from tradegraph.config.models import StrategyConfig
from tradegraph.contracts import FundingRate, OrderIntent, OrderSide
from tradegraph.engine.clock import SimClock
from tradegraph.errors import ConfigError
from tradegraph.strategies.funding_carry import FundingCarry
from tradegraph.testing import RecordingOutbox

SPOT = btcusdt()
PERP = btcusdt(symbol="BTCUSDT-PERP", venue="FUT", kind="perpetual", lot_size=0.001)
ALL = instruments(SPOT, PERP, ethusdt())


OUTBOXES: dict[int, RecordingOutbox] = {}


def _carry(ids: tuple[str, ...] = (SPOT.instrument_id, PERP.instrument_id)) -> FundingCarry:
    config = StrategyConfig(
        id="c",
        class_path="funding_carry",
        instruments=ids,
        params={"quantity": 0.25, "entry_rate": 0.0002, "exit_rate": 0.0},
    )
    outbox = RecordingOutbox()
    carry = FundingCarry(config, ALL, SimClock(), outbox)
    OUTBOXES[id(carry)] = outbox
    return carry


def _rate(rate: float, ts: int) -> FundingRate:
    return FundingRate(ts_event_ns=ts, ts_init_ns=ts, instrument_id=PERP.instrument_id, rate=rate)


def _intents(strategy: FundingCarry) -> list[tuple[str, OrderSide, float]]:
    outbox = OUTBOXES[id(strategy)]
    return [(i.instrument_id, i.side, i.quantity) for i in outbox.of_type(OrderIntent)]


def test_a_rate_above_the_threshold_buys_spot_and_shorts_the_perpetual() -> None:
    carry = _carry()
    carry.handle(_rate(0.0001, 1))  # positive but not above the threshold
    assert _intents(carry) == []
    carry.handle(_rate(0.0003, 2))
    assert _intents(carry) == [
        (SPOT.instrument_id, OrderSide.BUY, 0.25),
        (PERP.instrument_id, OrderSide.SELL, 0.25),
    ]
    assert carry.holding
    assert carry.entries == 1


def test_funding_of_another_instrument_is_ignored() -> None:
    carry = _carry()
    other = FundingRate(ts_event_ns=1, ts_init_ns=1, instrument_id="ETHUSDT.BINANCE", rate=0.01)
    carry.handle(other)
    assert _intents(carry) == []
    assert not carry.holding


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ((SPOT.instrument_id, ethusdt().instrument_id), "one spot instrument and one perpetual"),
        ((PERP.instrument_id,), "one spot instrument and one perpetual"),
    ],
)
def test_the_pair_must_be_one_spot_and_one_perpetual(ids: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _carry(ids)


def test_the_legs_must_share_a_base_asset() -> None:
    eth_perp = ethusdt(symbol="ETHUSDT-PERP", venue="FUT", kind="perpetual")
    config = StrategyConfig(
        id="c", class_path="funding_carry", instruments=(SPOT.instrument_id, "ETHUSDT-PERP.FUT")
    )
    with pytest.raises(ConfigError, match="same base asset"):
        FundingCarry(config, instruments(SPOT, eth_perp), SimClock(), RecordingOutbox())


def test_an_exit_above_the_entry_is_refused() -> None:
    config = StrategyConfig(
        id="c",
        class_path="funding_carry",
        instruments=(SPOT.instrument_id, PERP.instrument_id),
        params={"entry_rate": 0.0001, "exit_rate": 0.0002},
    )
    with pytest.raises(ConfigError, match="exit_rate"):
        FundingCarry(config, ALL, SimClock(), RecordingOutbox())
