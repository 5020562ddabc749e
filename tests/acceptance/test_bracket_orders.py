"""Brackets on the bundled real data, checked against an independent plain loop.

The reference knows nothing of messages, Risk or emulation: it walks the bars once and applies
the documented rules directly. Entry: the bar after a close above the highest high of the
previous 60 bars, at its open. The take-profit and stop arm once the entry fill is known (after
the entry's bar) and each later bar is walked open -> low -> high -> close; the first point at
or below the stop or at or above the target triggers that exit (the stop first when one bar
reaches both), which fills at the next bar's open. The graph must reproduce it fill for fill.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tradegraph.config import load_config
from tradegraph.config.models import GraphConfig
from tradegraph.data import read_bars
from tradegraph.engine.backtest import BacktestResult, run_backtest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bracket_breakout.yaml"
LOOKBACK = 60
QTY = 0.05
TP_PCT = 0.5
SL_PCT = 0.3
FEE = 0.001
START_CASH = 100_000.0

GOLDEN_DIGEST = "c504a268416e50be7c7c49e5516d594ea66347d86862c3d31790af8af9c927b6"
GOLDEN_EQUITY = 97_750.1082105001


@dataclass(frozen=True)
class RefFill:
    bar_index: int
    side: str
    price: float
    exit: str = ""


def reference_brackets(
    o: list[float], h: list[float], lo: list[float], c: list[float]
) -> tuple[list[RefFill], float]:
    fills: list[RefFill] = []
    highs: deque[float] = deque(maxlen=LOOKBACK)
    cash, position = START_CASH, 0.0
    busy_until = -1  # last bar on which the strategy still sees an order or a position
    exits: tuple[float, float] | None = None
    armed_from = 0
    n = len(c)
    for i in range(n):
        if exits is not None and i >= armed_from:
            tp, sl = exits
            for point in (o[i], lo[i], h[i], c[i]):
                hit = "stop" if point <= sl else "target" if point >= tp else ""
                if hit:
                    exits = None
                    if i + 1 < n:
                        fills.append(RefFill(i + 1, "sell", o[i + 1], hit))
                        cash += QTY * o[i + 1] * (1 - FEE)
                        position = 0.0
                    busy_until = i + 1
                    break
        breakout = len(highs) == LOOKBACK and c[i] > max(highs)
        highs.append(h[i])
        if breakout and i > busy_until and exits is None and i + 1 < n:
            fills.append(RefFill(i + 1, "buy", o[i + 1]))
            cash -= QTY * o[i + 1] * (1 + FEE)
            position = QTY
            exits = (c[i] * (1 + TP_PCT / 100), c[i] * (1 - SL_PCT / 100))
            armed_from = i + 2
            busy_until = n  # until the exit fills
    return fills, cash + position * c[-1]


def _config(**params: Any) -> GraphConfig:
    config = load_config(EXAMPLE)
    strategy = config.strategies[0]
    strategy = strategy.model_copy(update={"params": {**strategy.params, **params}})
    return config.model_copy(update={"strategies": (strategy,)})


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    return run_backtest(_config())


def test_brackets_fill_exactly_as_the_plain_reference_loop(result: BacktestResult) -> None:
    (bars,) = read_bars("sample:BTCUSDT_1m")
    o, h, lo, c = (bars.open.tolist(), bars.high.tolist(), bars.low.tolist(), bars.close.tolist())
    expected, equity = reference_brackets(o, h, lo, c)
    close_ns = (bars.ts_open_ns + bars.interval_ns).tolist()

    got = [(f.ts_event_ns, f.side.value, f.last_px, f.last_qty) for f in result.fills]
    want = [(close_ns[f.bar_index], f.side, f.price, QTY) for f in expected]
    assert got == want
    stops = sum(f.exit == "stop" for f in expected)
    targets = sum(f.exit == "target" for f in expected)
    assert stops > 50
    assert targets > 50
    assert result.final_equity == pytest.approx(equity, rel=1e-9)


def test_bracket_run_is_pinned_and_each_exit_cancels_its_sibling(result: BacktestResult) -> None:
    assert result.strategy_errors == []
    assert (result.bars, result.orders, len(result.fills)) == (44_640, 422, 422)
    assert result.fills_digest == GOLDEN_DIGEST
    assert result.final_equity == pytest.approx(GOLDEN_EQUITY, rel=1e-12)
    rows = result.ledger.rows.values()
    assert sum(r.status == "cancelled" and r.reason.startswith("oco: ") for r in rows) == 211
    assert sum(r.status == "filled" for r in rows) == 422
    assert run_backtest(_config()).fills_digest == GOLDEN_DIGEST


def test_gtd_limit_entries_expire_and_take_their_exits_with_them() -> None:
    run = run_backtest(_config(entry_expire_s=180.0))

    rows = list(run.ledger.rows.values())
    expired = [r for r in rows if r.reason == "expired: good till date"]
    orphans = [r for r in rows if r.reason.startswith("parent order ")]
    assert len(expired) > 100
    assert len(orphans) == 2 * len(expired)
    assert all(r.order_type == "limit" and r.filled_qty == 0.0 for r in expired)
    entries = [r for r in rows if r.order_type == "limit" and r.status == "filled"]
    assert len(run.fills) == 2 * len(entries)
    assert run.strategy_errors == []


def test_the_example_runs_from_the_command_line_with_the_pinned_fills(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tradegraph",
            "backtest",
            str(EXAMPLE),
            "--no-html",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fills_digest"] == GOLDEN_DIGEST
    orders = pq.read_table(out / "orders.parquet").to_pylist()
    by_type = Counter((row["order_type"], row["status"]) for row in orders)
    assert by_type[("market", "filled")] == 211
    assert by_type[("stop_market", "filled")] + by_type[("take_profit", "filled")] == 211
    assert by_type[("stop_market", "cancelled")] + by_type[("take_profit", "cancelled")] == 211
