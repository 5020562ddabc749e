"""Builders shared by the portfolio tests: instruments, a portfolio, bars and fills (the
messages come from the shared kit, tests/support/stubs.py)."""

from __future__ import annotations

from tests.support import stubs
from tests.support.stubs import btcusdt, ethusdt
from tests.support.stubs import fill as fill  # the portfolio tests import it from here
from tradegraph.config.models import PortfolioConfig
from tradegraph.contracts import Bar, Instrument
from tradegraph.engine.clock import SimClock
from tradegraph.portfolio import Portfolio
from tradegraph.testing import RecordingOutbox

BTC = "BTCUSDT.BINANCE"
ETH = "ETHUSDT.BINANCE"
MINUTE_NS = 60 * 1_000_000_000


def instruments() -> dict[str, Instrument]:
    btc = btcusdt(min_quantity=0.0, min_notional=0.0)
    eth = ethusdt(min_quantity=0.0, min_notional=0.0)
    return {btc.instrument_id: btc, eth.instrument_id: eth}


def make_portfolio(
    *, starting_cash: float = 10_000.0, snapshot_interval_s: float = 0.0
) -> tuple[Portfolio, SimClock, RecordingOutbox]:
    clock = SimClock()
    outbox = RecordingOutbox()
    config = PortfolioConfig(starting_cash=starting_cash, snapshot_interval_s=snapshot_interval_s)
    return Portfolio(config, instruments(), clock, outbox), clock, outbox


def bar(instrument_id: str, close: float, ts_ns: int) -> Bar:
    return stubs.bar(close, ts_ns=ts_ns, instrument_id=instrument_id)
