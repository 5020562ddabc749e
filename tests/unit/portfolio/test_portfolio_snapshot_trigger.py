"""Mark-driven snapshots: an hourly heartbeat, plus at once when equity moves enough."""

from __future__ import annotations

from tests.unit.portfolio.builders import BTC, MINUTE_NS, bar, fill, instruments
from tradegraph.config.models import PortfolioConfig
from tradegraph.contracts import OrderSide, PortfolioSnapshot
from tradegraph.engine.clock import SimClock
from tradegraph.portfolio import Portfolio
from tradegraph.testing import RecordingOutbox


def _portfolio(move_pct: float) -> tuple[Portfolio, SimClock, RecordingOutbox]:
    clock = SimClock()
    outbox = RecordingOutbox()
    config = PortfolioConfig(
        starting_cash=10_000.0, snapshot_interval_s=3600.0, snapshot_equity_move_pct=move_pct
    )
    return Portfolio(config, instruments(), clock, outbox), clock, outbox


def test_equity_move_beyond_threshold_sends_a_snapshot_before_the_heartbeat() -> None:
    portfolio, _, outbox = _portfolio(move_pct=1.0)
    portfolio.handle(bar(BTC, 100.0, MINUTE_NS))
    portfolio.handle(fill("f1", OrderSide.BUY, 10.0, 100.0))  # 1,000 at risk; snapshot sent
    outbox.clear()

    portfolio.handle(bar(BTC, 105.0, 2 * MINUTE_NS))  # equity +50: 0.5 %, below the 1 % band
    assert outbox.of_type(PortfolioSnapshot) == []

    portfolio.handle(bar(BTC, 89.0, 3 * MINUTE_NS))  # equity -110 from the last snapshot: 1.1 %
    (snap,) = outbox.of_type(PortfolioSnapshot)
    assert snap.equity == 9_890.0
    assert snap.drawdown == 160.0  # the peak was 10,050 at 105


def test_zero_threshold_disables_the_move_trigger() -> None:
    portfolio, _, outbox = _portfolio(move_pct=0.0)
    portfolio.handle(bar(BTC, 100.0, MINUTE_NS))
    portfolio.handle(fill("f1", OrderSide.BUY, 10.0, 100.0))
    outbox.clear()
    portfolio.handle(bar(BTC, 50.0, 2 * MINUTE_NS))
    assert outbox.of_type(PortfolioSnapshot) == []
    portfolio.handle(bar(BTC, 50.0, 2 * MINUTE_NS + 3600 * 1_000_000_000))
    assert len(outbox.of_type(PortfolioSnapshot)) == 1
