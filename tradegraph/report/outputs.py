"""Files of a run: orders, fills and equity as Parquet, ``summary.json`` and the HTML report."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tradegraph.contracts import OrderFilled
from tradegraph.data.catalog import write_parquet
from tradegraph.report.html import write_html_report
from tradegraph.report.performance import format_duration

if TYPE_CHECKING:
    from tradegraph.engine.backtest import BacktestResult


def fills_table(fills: Sequence[OrderFilled]) -> pa.Table:
    return pa.table(
        {
            "ts_event_ns": pa.array([f.ts_event_ns for f in fills], pa.int64()),
            "ts_init_ns": pa.array([f.ts_init_ns for f in fills], pa.int64()),
            "fill_id": pa.array([f.fill_id for f in fills], pa.string()),
            "client_order_id": pa.array([f.client_order_id for f in fills], pa.string()),
            "venue_order_id": pa.array([f.venue_order_id for f in fills], pa.string()),
            "strategy_id": pa.array([f.strategy_id for f in fills], pa.string()),
            "instrument_id": pa.array([f.instrument_id for f in fills], pa.string()),
            "side": pa.array([f.side.value for f in fills], pa.string()),
            "quantity": pa.array([f.last_qty for f in fills], pa.float64()),
            "price": pa.array([f.last_px for f in fills], pa.float64()),
            "fee": pa.array([f.fee for f in fills], pa.float64()),
            "liquidity": pa.array([f.liquidity.value for f in fills], pa.string()),
            "leaves_qty": pa.array([f.leaves_qty for f in fills], pa.float64()),
        }
    )


def session_description(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """How a paper or live session ran and ended, as label and text pairs for its report.

    ``summary`` is the session's summary (``stopped_by``, ``elapsed_s``, ``halted``,
    ``restarts``, ``market_events``).
    """
    restarts = summary.get("restarts") or {}
    return [
        ("Ended by", str(summary.get("stopped_by") or "unknown")),
        ("Wall duration", format_duration(float(summary.get("elapsed_s") or 0.0))),
        ("Trading halted", str(summary.get("halted") or "no")),
        (
            "Actor restarts",
            ", ".join(
                name if count is True else f"{name} ({count})" for name, count in restarts.items()
            )
            or "none",
        ),
        ("Market events", f"{int(summary.get('market_events') or 0):,}"),
    ]


def write_outputs(
    result: BacktestResult,
    out_dir: Path,
    *,
    html: bool = True,
    title: str | None = None,
    description: Sequence[tuple[str, str]] = (),
    failure_reasons: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Write orders, fills and the equity curve as Parquet, a summary JSON and the HTML report.

    ``title`` and ``description`` (label, text pairs shown under it) let a paper or live session
    describe itself in the report; by default the report is titled as a backtest.
    ``failure_reasons`` replaces the result's own (``status`` follows) when the caller knows
    more, as a session does from its actors' status.
    """
    summary = result.summary()
    if failure_reasons is not None:
        summary["status"] = "failed" if failure_reasons else "ok"
        summary["failure_reasons"] = list(failure_reasons)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "orders": write_parquet(result.ledger.to_table(), out_dir / "orders.parquet"),
        "fills": write_parquet(fills_table(result.fills), out_dir / "fills.parquet"),
        "equity": write_parquet(
            pa.table({"ts_ns": result.ts_ns, "equity": result.equity}), out_dir / "equity.parquet"
        ),
    }
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    paths["summary"] = summary_path
    if html:
        paths["report"] = write_html_report(
            out_dir / "report.html",
            title=title or f"tradegraph backtest: {result.config.name}",
            description=description,
            prices=result.prices,
            fills=result.fills,
            outcome=summary,
            currency=result.config.portfolio.currency,
            metrics=result.metrics,
            ts_ns=result.ts_ns,
            equity=result.equity,
            per_strategy=result.per_strategy,
            config_summary={
                "strategies": ", ".join(
                    f"{s.id} ({s.class_path})" for s in result.config.strategies
                ),
                "instruments": ", ".join(result.config.instrument_map()),
                "bars": result.bars,
                "fills": len(result.fills),
                "fills_digest": result.fills_digest,
            },
            allocation=result.allocation_series(),
            execution_reports=result.execution_rows(),
        )
    return paths
