"""The twin comparison: a session's orders against its twin's, order by order."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from tradegraph.research.twin import compare

SECOND = 1_000_000_000


def _orders(*rows: tuple[str, str, float, float, float | None, str]) -> pa.Table:
    return pa.table(
        {
            "client_order_id": [r[0] for r in rows],
            "strategy_id": ["s"] * len(rows),
            "instrument_id": ["BTCUSDT.BINANCE"] * len(rows),
            "side": [r[1] for r in rows],
            "quantity": [r[2] for r in rows],
            "filled_qty": [r[3] for r in rows],
            "avg_fill_price": pa.array([r[4] for r in rows], pa.float64()),
            "status": [r[5] for r in rows],
        }
    )


def _fills(*rows: tuple[str, int]) -> pa.Table:
    return pa.table(
        {
            "client_order_id": pa.array([r[0] for r in rows], pa.string()),
            "ts_event_ns": pa.array([r[1] for r in rows], pa.int64()),
        }
    )


def _row(result: Any, oid: str) -> dict[str, Any]:
    [row] = [r for r in result.drift.to_pylist() if r["client_order_id"] == oid]
    return dict(row)


def test_identical_runs_show_zero_drift() -> None:
    orders = _orders(
        ("a-1", "buy", 1.0, 1.0, 100.0, "filled"), ("a-2", "sell", 1.0, 1.0, 110.0, "filled")
    )
    fills = _fills(("a-1", 5 * SECOND), ("a-2", 9 * SECOND))

    result = compare(orders, fills, orders, fills)

    assert result.summary["zero_drift"] is True
    assert result.summary["matched"] == 2
    assert result.summary["drift_cost"] == 0.0
    assert _row(result, "a-1")["price_drift_bps"] == 0.0


def test_a_worse_fill_is_a_positive_cost_on_either_side() -> None:
    twin = _orders(
        ("a-1", "buy", 1.0, 1.0, 100.0, "filled"), ("a-2", "sell", 2.0, 2.0, 110.0, "filled")
    )
    session = _orders(
        ("a-1", "buy", 1.0, 1.0, 100.1, "filled"), ("a-2", "sell", 2.0, 2.0, 109.0, "filled")
    )
    twin_fills = _fills(("a-1", 5 * SECOND), ("a-2", 9 * SECOND))
    session_fills = _fills(("a-1", 6 * SECOND), ("a-2", 9 * SECOND + SECOND // 2))

    result = compare(session, session_fills, twin, twin_fills)

    assert _row(result, "a-1")["price_drift_bps"] == pytest.approx(10.0)
    assert _row(result, "a-2")["price_drift_bps"] == pytest.approx(1.0 / 110.0 * 1e4)
    assert _row(result, "a-1")["time_drift_s"] == pytest.approx(1.0)
    assert result.summary["drift_cost"] == pytest.approx(0.1 + 2.0)
    assert result.summary["time_drift_s"]["mean"] == pytest.approx(0.75)
    assert result.summary["zero_drift"] is False


def test_orders_only_one_side_placed_and_partial_fills_are_named() -> None:
    twin = _orders(
        ("a-1", "buy", 1.0, 1.0, 100.0, "filled"), ("a-3", "buy", 1.0, 1.0, 99.0, "filled")
    )
    session = _orders(
        ("a-1", "buy", 1.0, 0.5, 100.0, "partially_filled"),
        ("a-2", "buy", 1.0, 0.0, None, "accepted"),
    )

    result = compare(
        session, _fills(("a-1", SECOND)), twin, _fills(("a-1", SECOND), ("a-3", SECOND))
    )

    assert _row(result, "a-1")["fill_ratio"] == pytest.approx(0.5)
    assert _row(result, "a-2")["present"] == "session_only"
    assert _row(result, "a-3")["present"] == "twin_only"
    assert result.summary["session_only"] == result.summary["twin_only"] == 1
    assert result.summary["status_differs"] == 1
    assert result.summary["zero_drift"] is False


def test_no_orders_on_either_side_is_an_empty_table() -> None:
    empty = _orders()

    result = compare(empty, _fills(), empty, _fills())

    assert result.drift.num_rows == 0
    assert result.summary["zero_drift"] is True
