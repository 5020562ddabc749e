"""The live twin: what the backtest would have done with the market data a session saw.

A paper or live session records the market data its ``md`` published (see
:mod:`tradegraph.engine.recording`) and keeps its resolved configuration beside its outputs.
:func:`run_twin` replays that recording through the simulated venue in one process, with the
same instruments, strategies, risk limits, venues and starting account, and :func:`compare`
sets the two runs side by side order by order.

Orders are matched by their order id (``client_order_id`` in ``orders.parquet``): ids are
derived from each strategy's intent counter, so the same decision carries the same id in both
runs. Per order the drift table gives:

* ``price_drift_bps``: the session's average fill price against the twin's, in basis points
  of the twin's, signed so that a positive value is a cost to the session (paid more on a buy,
  got less on a sell);
* ``time_drift_s``: the session's first fill time minus the twin's;
* ``fill_ratio``: the session's filled quantity over the twin's (null when the twin filled
  nothing);
* ``present``: ``both``, ``session_only`` (the session placed an order the twin never did) or
  ``twin_only``.

``drift_cost`` adds up, over orders filled in both, the price drift times the quantity both
filled, in the quote currency. The twin starts from the configuration's starting cash and flat
positions, as a fresh session does; a session resumed from earlier state, or one whose venue
reported other balances at start, is compared from that same fresh start.

Only bars and trade ticks are replayed (the simulated venue matches on them); recorded quotes
are kept for analysis.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tradegraph.config.models import BarSourceConfig, DataConfig, GraphConfig, TradeSourceConfig
from tradegraph.engine.backtest import BacktestResult, run_backtest
from tradegraph.engine.recording import (
    RECORDED_DIR,
    SESSION_CONFIG,
    recorded_data,
    recorded_trades,
)
from tradegraph.errors import ConfigError, DataError
from tradegraph.report.outputs import fills_table

__all__ = ["TwinComparison", "compare", "load_session_config", "run_twin", "twin_config"]

DRIFT_COLUMNS = (
    "client_order_id",
    "strategy_id",
    "instrument_id",
    "side",
    "present",
    "session_status",
    "twin_status",
    "session_quantity",
    "twin_quantity",
    "session_filled_qty",
    "twin_filled_qty",
    "session_avg_price",
    "twin_avg_price",
    "price_drift_bps",
    "session_first_fill_ns",
    "twin_first_fill_ns",
    "time_drift_s",
    "fill_ratio",
)


def load_session_config(session_dir: Path) -> tuple[GraphConfig, str | None]:
    """The resolved configuration a session ran with, and the path of its config file."""
    path = session_dir / SESSION_CONFIG
    if not path.is_file():
        raise DataError(
            f"{session_dir}: not a session folder with a recording ({SESSION_CONFIG} is "
            "missing; `tradegraph paper` and `tradegraph live` write it)"
        )
    try:
        saved = json.loads(path.read_text())
        return GraphConfig.model_validate(saved["config"]), saved.get("config_path")
    except (ValueError, KeyError) as exc:
        raise DataError(f"{path}: unreadable session configuration ({exc})") from exc


def twin_config(config: GraphConfig, session_dir: Path, work_dir: Path) -> GraphConfig:
    """``config`` with its data replaced by the session's recording (trade parts joined into
    one file per symbol under ``work_dir``)."""
    recording = session_dir / RECORDED_DIR
    if config.session.record_dir:
        recording = Path(config.session.record_dir)
        if not recording.is_absolute():
            recording = session_dir / recording
    found = recorded_data(recording)
    if found.empty:
        raise DataError(f"{recording}: the session recorded no bars or trades")
    bars = tuple(
        BarSourceConfig(
            path=str(folder),
            symbol=symbol,
            venue=found.venues.get(symbol) or None,
            interval_s=interval_s,
        )
        for (symbol, interval_s), folder in sorted(found.bars.items())
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    trades = tuple(
        TradeSourceConfig(
            path=str(recorded_trades(parts, work_dir / f"trades_{symbol}.parquet")),
            symbol=symbol,
            venue=found.venues.get(symbol) or "BINANCE",
        )
        for symbol, parts in sorted(found.trades.items())
    )
    data = DataConfig(bars=bars, trades=trades, trade_start=config.data.trade_start)
    return config.model_copy(update={"data": data, "name": f"{config.name}-twin"})


def run_twin(session_dir: Path, work_dir: Path) -> tuple[GraphConfig, BacktestResult]:
    """Replay a finished session's recording as a backtest; returns its config and result."""
    config, _ = load_session_config(session_dir)
    twin = twin_config(config, session_dir, work_dir)
    return twin, run_backtest(twin)


@dataclass(frozen=True)
class TwinComparison:
    """The drift table (one row per order, :data:`DRIFT_COLUMNS`) and its summary."""

    drift: pa.Table
    summary: dict[str, Any]


def _orders(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {row["client_order_id"]: row for row in table.to_pylist()}


def _first_fills(fills: pa.Table) -> dict[str, int]:
    first: dict[str, int] = {}
    for oid, ts in zip(
        fills.column("client_order_id").to_pylist(),
        fills.column("ts_event_ns").to_pylist(),
        strict=True,
    ):
        if oid not in first or ts < first[oid]:
            first[oid] = ts
    return first


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "median": None, "p95": None, "max_abs": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return {
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "p95": p95,
        "max_abs": max(abs(v) for v in values),
    }


def _drift_row(
    oid: str,
    s: dict[str, Any] | None,
    t: dict[str, Any] | None,
    s_first: dict[str, int],
    t_first: dict[str, int],
) -> dict[str, Any]:
    any_row = s or t
    assert any_row is not None
    s_filled = s["filled_qty"] if s else 0.0
    t_filled = t["filled_qty"] if t else 0.0
    s_px = s["avg_fill_price"] if s and s_filled > 0 else None
    t_px = t["avg_fill_price"] if t and t_filled > 0 else None
    sign = 1.0 if any_row["side"] == "buy" else -1.0
    price_drift = (sign * (s_px - t_px) / t_px * 1e4) if s_px and t_px else None
    s_ts, t_ts = s_first.get(oid), t_first.get(oid)
    return {
        "client_order_id": oid,
        "strategy_id": any_row["strategy_id"],
        "instrument_id": any_row["instrument_id"],
        "side": any_row["side"],
        "present": "both" if s and t else "session_only" if s else "twin_only",
        "session_status": s["status"] if s else None,
        "twin_status": t["status"] if t else None,
        "session_quantity": s["quantity"] if s else None,
        "twin_quantity": t["quantity"] if t else None,
        "session_filled_qty": s_filled if s else None,
        "twin_filled_qty": t_filled if t else None,
        "session_avg_price": s_px,
        "twin_avg_price": t_px,
        "price_drift_bps": price_drift,
        "session_first_fill_ns": s_ts,
        "twin_first_fill_ns": t_ts,
        "time_drift_s": (s_ts - t_ts) / 1e9 if s_ts is not None and t_ts is not None else None,
        "fill_ratio": (s_filled / t_filled) if s and t and t_filled > 0 else None,
    }


_TYPES: dict[str, pa.DataType] = {
    "session_first_fill_ns": pa.int64(),
    "twin_first_fill_ns": pa.int64(),
}


def compare(
    session_orders: pa.Table,
    session_fills: pa.Table,
    twin_orders: pa.Table,
    twin_fills: pa.Table,
) -> TwinComparison:
    """Match the session's orders with the twin's by order id and measure the drift."""
    s_rows, t_rows = _orders(session_orders), _orders(twin_orders)
    s_first, t_first = _first_fills(session_fills), _first_fills(twin_fills)
    ids = sorted(set(s_rows) | set(t_rows), key=lambda o: (o not in s_rows, o))
    rows = [_drift_row(o, s_rows.get(o), t_rows.get(o), s_first, t_first) for o in ids]
    columns = {name: pa.array([r[name] for r in rows], _TYPES.get(name)) for name in DRIFT_COLUMNS}
    if not rows:
        columns = {
            name: pa.array([], _TYPES.get(name, pa.float64() if "_" in name else pa.string()))
            for name in DRIFT_COLUMNS
        }
    drift = pa.table(columns)
    both = [r for r in rows if r["present"] == "both"]
    priced = [r for r in both if r["price_drift_bps"] is not None]
    cost = sum(
        (1.0 if r["side"] == "buy" else -1.0)
        * (r["session_avg_price"] - r["twin_avg_price"])
        * min(r["session_filled_qty"], r["twin_filled_qty"])
        for r in priced
    )
    price = [r["price_drift_bps"] for r in priced]
    timing = [r["time_drift_s"] for r in both if r["time_drift_s"] is not None]
    ratios = [r["fill_ratio"] for r in both if r["fill_ratio"] is not None]
    summary: dict[str, Any] = {
        "session_orders": len(s_rows),
        "twin_orders": len(t_rows),
        "matched": len(both),
        "session_only": sum(r["present"] == "session_only" for r in rows),
        "twin_only": sum(r["present"] == "twin_only" for r in rows),
        "filled_both": len(priced),
        "price_drift_bps": _stats(price),
        "time_drift_s": _stats(timing),
        "fill_ratio_mean": statistics.fmean(ratios) if ratios else None,
        "drift_cost": cost,
        "status_differs": sum(r["session_status"] != r["twin_status"] for r in both),
    }
    summary["zero_drift"] = (
        summary["session_only"] == 0
        and summary["twin_only"] == 0
        and summary["status_differs"] == 0
        and all(v == 0.0 for v in price)
        and all(v == 0.0 for v in timing)
        and all(v == 1.0 for v in ratios)
    )
    return TwinComparison(drift=drift, summary=summary)


def compare_session(session_dir: Path, twin: BacktestResult) -> TwinComparison:
    """:func:`compare` of a session folder's outputs with its twin's result."""
    paths = [session_dir / "orders.parquet", session_dir / "fills.parquet"]
    for path in paths:
        if not path.is_file():
            raise DataError(
                f"{path} is missing: the session wrote no outputs (did it stop cleanly?)"
            )
    result = compare(
        pq.read_table(paths[0]),
        pq.read_table(paths[1]),
        twin.ledger.to_table(),
        fills_table(twin.fills),
    )
    summary_path = session_dir / "summary.json"
    if summary_path.is_file():
        session_summary = json.loads(summary_path.read_text())
        result.summary["session_fills_digest"] = session_summary.get("fills_digest")
        result.summary["session_final_equity"] = session_summary.get("final_equity")
    result.summary["twin_fills_digest"] = twin.fills_digest
    result.summary["twin_final_equity"] = twin.final_equity
    return result


def check_session_folder(session_dir: Path) -> None:
    """Refuse a path that is not a folder, with the reason."""
    if not session_dir.is_dir():
        raise ConfigError(f"{session_dir}: no such session folder")
