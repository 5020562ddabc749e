from __future__ import annotations

import tracemalloc

from tests.support.stubs import btcusdt
from tradegraph.config.models import PortfolioConfig
from tradegraph.contracts import Bar
from tradegraph.engine.clock import SimClock
from tradegraph.portfolio import Portfolio
from tradegraph.testing import RecordingOutbox

MINUTE_NS = 60 * 1_000_000_000
BAR_COUNT = 100_000


def test_equity_curve_retains_under_forty_bytes_per_bar() -> None:
    btc = btcusdt(min_quantity=0.0, min_notional=0.0)
    portfolio = Portfolio(
        PortfolioConfig(snapshot_interval_s=86_400.0),
        {btc.instrument_id: btc},
        SimClock(),
        RecordingOutbox(),
    )
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(1, BAR_COUNT + 1):
            close = 100.0 + (i % 50) * 0.5
            portfolio.handle(
                Bar.trusted(
                    ts_event_ns=i * MINUTE_NS,
                    ts_init_ns=i * MINUTE_NS,
                    instrument_id=btc.instrument_id,
                    open=close,
                    high=close,
                    low=close,
                    close=close,
                    volume=1.0,
                    interval_ns=MINUTE_NS,
                )
            )
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    ts, equity = portfolio.equity_curve()
    assert ts.size == equity.size == BAR_COUNT
    assert (after - before) / BAR_COUNT < 40.0
