"""Liquidations and funding in the graph metrics."""

from __future__ import annotations

from prometheus_client import generate_latest

from tradegraph.contracts import FundingPaid, PositionLiquidated
from tradegraph.observability.metrics import (
    FUNDING_PAID,
    LIQUIDATIONS,
    GraphMetrics,
    InMemorySink,
)
from tradegraph.observability.prometheus import PrometheusSink

PERP = "BTCUSDT-PERP.BINANCE"


def _liquidated(strategy: str) -> PositionLiquidated:
    return PositionLiquidated(
        strategy_id=strategy,
        instrument_id=PERP,
        venue="BINANCE",
        quantity=2.0,
        price=90.0,
        fee=1.0,
        reason="equity below maintenance",
        ts_event_ns=1,
        ts_init_ns=1,
    )


def _funding(amount: float) -> FundingPaid:
    return FundingPaid(
        strategy_id="a",
        instrument_id=PERP,
        venue="BINANCE",
        amount=amount,
        rate=0.0001,
        mark_price=100.0,
        position=1.0,
        ts_event_ns=1,
        ts_init_ns=1,
    )


def test_liquidations_are_counted_per_strategy_instrument_and_venue() -> None:
    sink = InMemorySink()
    metrics = GraphMetrics(sink)
    for msg in (_liquidated("a"), _liquidated("a"), _liquidated("b")):
        metrics.observe(msg)
    metrics.flush()
    assert sink.value(LIQUIDATIONS, strategy="a", instrument=PERP, venue="BINANCE") == 2.0
    assert sink.total(LIQUIDATIONS) == 3.0


def test_funding_paid_is_a_running_total_that_may_fall() -> None:
    sink = InMemorySink()
    metrics = GraphMetrics(sink)
    metrics.observe(_funding(0.5))
    metrics.observe(_funding(-0.2))
    metrics.flush()
    assert sink.value(FUNDING_PAID, strategy="a", instrument=PERP) == 0.5 - 0.2


def test_the_liquidation_counter_is_exposed_to_prometheus() -> None:
    sink = PrometheusSink()
    metrics = GraphMetrics(sink)
    metrics.observe(_liquidated("a"))
    metrics.flush()
    text = generate_latest(sink.registry).decode()
    assert (
        'tradegraph_liquidations_total{instrument="BTCUSDT-PERP.BINANCE",strategy="a",'
        'venue="BINANCE"} 1.0' in text
    )
