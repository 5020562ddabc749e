"""Whole backtests on the bundled real data, checked against an independent plain loop.

The reference below knows nothing of messages, actors or kernels: it walks the bars once and
applies the workload's rules directly. The graph must reproduce it fill for fill.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tests.support.graphs import graph_config
from tradegraph.config import StrategyConfig
from tradegraph.config.models import FillAt
from tradegraph.data import read_bars
from tradegraph.engine.backtest import BacktestResult, run_backtest

QTY = 0.01
FEE = 0.001
START_CASH = 1_000_000.0


@dataclass(frozen=True)
class RefFill:
    bar_index: int
    side: str
    price: float


def reference_sma_cross(
    opens: list[float], closes: list[float], fast: int, slow: int, fill_at: FillAt
) -> tuple[list[RefFill], float]:
    """Fills and final equity of the SMA crossover workload, as a plain loop."""
    fills: list[RefFill] = []
    cash, position = START_CASH, 0.0
    pending: str | None = None  # a market order waiting for the next open
    previous: int | None = None
    for i, close in enumerate(closes):
        filled_now = False
        if pending is not None:
            px = opens[i]
            sign = 1.0 if pending == "buy" else -1.0
            cash -= sign * QTY * px + QTY * px * FEE
            fills.append(RefFill(i, pending, px))
            filled_now = True
        if i + 1 >= slow:
            fast_avg = sum(closes[i + 1 - fast : i + 1]) / fast
            slow_avg = sum(closes[i + 1 - slow : i + 1]) / slow
            gap = fast_avg - slow_avg
            relation = 1 if gap > 0 else (-1 if gap < 0 else 0)
            signal = None
            if previous is not None and relation != previous:
                signal = "buy" if relation == 1 else ("sell" if relation == -1 else None)
            previous = relation
            busy = pending is not None  # the order is still open while this bar is seen
            if signal == "buy" and position == 0.0 and not busy:
                if fill_at is FillAt.CLOSE:
                    cash -= QTY * close + QTY * close * FEE
                    position += QTY
                    fills.append(RefFill(i, "buy", close))
                else:
                    pending = "buy"
                    continue
            elif signal == "sell" and position > 0.0 and not busy:
                if fill_at is FillAt.CLOSE:
                    cash += QTY * close - QTY * close * FEE
                    position -= QTY
                    fills.append(RefFill(i, "sell", close))
                else:
                    pending = "sell"
                    continue
        if filled_now:
            assert pending is not None
            position += QTY if pending == "buy" else -QTY
            pending = None
    return fills, cash + position * closes[-1]


def _run(fill_at: FillAt) -> BacktestResult:
    config = graph_config(
        (
            StrategyConfig(
                id="sma",
                class_path="sma_cross",
                instruments=("BTCUSDT.BINANCE",),
                params={"fast_period": 10, "slow_period": 30, "quantity": QTY},
            ),
        ),
        fill_at=fill_at,
        starting_cash=START_CASH,
    )
    return run_backtest(config)


@pytest.fixture(scope="module")
def btc() -> tuple[list[float], list[float]]:
    (bars,) = read_bars("sample:BTCUSDT_1m")
    return bars.open.tolist(), bars.close.tolist()


@pytest.mark.parametrize("fill_at", [FillAt.NEXT_OPEN, FillAt.CLOSE])
def test_graph_matches_plain_loop_fill_for_fill(
    btc: tuple[list[float], list[float]], fill_at: FillAt
) -> None:
    opens, closes = btc
    ref_fills, ref_equity = reference_sma_cross(opens, closes, 10, 30, fill_at)

    result = _run(fill_at)

    assert result.bars == len(closes) == 44_640
    assert len(result.fills) == len(ref_fills)
    assert [f.side.value for f in result.fills] == [r.side for r in ref_fills]
    assert [f.last_px for f in result.fills] == [r.price for r in ref_fills]
    assert all(f.last_qty == QTY for f in result.fills)
    assert result.fees == pytest.approx(sum(r.price * QTY * FEE for r in ref_fills), rel=1e-12)
    assert result.final_equity == pytest.approx(ref_equity, rel=1e-12)
    # The equity curve ends at the final equity, and value is conserved.
    assert result.equity[-1] == pytest.approx(result.final_equity, rel=1e-12)


def test_next_open_golden_numbers_and_rerun_identity() -> None:
    first = _run(FillAt.NEXT_OPEN)
    second = _run(FillAt.NEXT_OPEN)

    assert (first.bars, first.orders, len(first.fills)) == (44_640, 1_670, 1_670)
    assert first.final_equity == pytest.approx(GOLDEN_NEXT_OPEN_EQUITY, rel=1e-12)
    assert first.fills_digest == second.fills_digest == GOLDEN_NEXT_OPEN_DIGEST
    assert np.array_equal(first.equity, second.equity)


GOLDEN_NEXT_OPEN_EQUITY = 998_059.3944721975
GOLDEN_NEXT_OPEN_DIGEST = "95d44415edd9cbea08d480c53b7d7230089821bd5523cefaa1d4a65bfeb08faf"
