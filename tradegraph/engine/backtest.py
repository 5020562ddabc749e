"""Run a backtest: load and validate data, run the graph in a ``LocalKernel``, collect results."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tradegraph.config.models import GraphConfig
from tradegraph.contracts import (
    FLATTEN_TAG,
    PORTFOLIO,
    CapitalAllocated,
    ExecutionReport,
    KillSwitchChanged,
    KillSwitchMode,
    Message,
    OrderFilled,
    StrategyError,
)
from tradegraph.data.catalog import (
    BarArrays,
    parse_time_ns,
    read_bars,
    read_trades,
)
from tradegraph.engine.kernel import LocalKernel
from tradegraph.engine.ledger import OrderLedger
from tradegraph.engine.streams import (
    BarStream,
    TradeStream,
    prepare_bar_stream,
    prepare_trade_stream,
)
from tradegraph.errors import DataError
from tradegraph.observability.audit import AuditFolder
from tradegraph.observability.metrics import GraphMetrics
from tradegraph.portfolio import Portfolio
from tradegraph.report.performance import (
    PerformanceMetrics,
    compute_metrics,
    infer_periods_per_year,
)


def load_datasets(config: GraphConfig) -> list[BarArrays]:
    """Read every bar source named in the config."""
    out: list[BarArrays] = []
    for i, src in enumerate(config.data.bars):
        where = f"data.bars.{i}"
        found = read_bars(
            src.path,
            symbol=src.symbol,
            venue=src.venue,
            interval_ns=src.interval_s * 1_000_000_000,
            start_ns=parse_time_ns(src.start, f"{where}.start") if src.start else None,
            end_ns=parse_time_ns(src.end, f"{where}.end") if src.end else None,
            limit=src.limit,
        )
        for option, value in (("as_symbol", src.as_symbol), ("as_venue", src.as_venue)):
            if value is None:
                continue
            if len(found) != 1:
                raise DataError(
                    f"{where}.{option}: the source holds {len(found)} symbols "
                    f"({[b.symbol for b in found]}); give symbol to pick one"
                )
            only = found[0]
            found = [
                dataclasses.replace(only, symbol=value)
                if option == "as_symbol"
                else dataclasses.replace(only, venue=value)
            ]
        out.extend(found)
    return out


def load_bar_stream(config: GraphConfig) -> BarStream:
    if not config.data.bars:
        return BarStream.empty()
    return prepare_bar_stream(load_datasets(config), config.instrument_map())


def load_trade_stream(config: GraphConfig) -> TradeStream | None:
    if not config.data.trades:
        return None
    datasets = []
    for i, src in enumerate(config.data.trades):
        where = f"data.trades.{i}"
        datasets.append(
            read_trades(
                src.path,
                symbol=src.symbol,
                venue=src.venue,
                start_ns=parse_time_ns(src.start, f"{where}.start") if src.start else None,
                end_ns=parse_time_ns(src.end, f"{where}.end") if src.end else None,
                limit=src.limit,
            )
        )
    return prepare_trade_stream(datasets, config.instrument_map())


def split_warmup(
    stream: BarStream, trades: TradeStream | None, trade_start_ns: int
) -> tuple[BarStream, BarStream, TradeStream | None]:
    """Cut a replay at ``trade_start_ns``: the bars that open before it (the warm-up), the
    bars that open at or after it, and the trade ticks at or after it.

    Raises:
        DataError: no bar or trade tick is left from ``trade_start_ns`` on.
    """
    opens = stream.ts_ns - stream.interval_ns[stream.instrument_index]
    warm_mask = opens < trade_start_ns
    warm = stream.rows(np.flatnonzero(warm_mask))
    rest = dataclasses.replace(stream.rows(np.flatnonzero(~warm_mask)), dropped=stream.dropped)
    if trades is not None:
        trades = trades.rows(np.flatnonzero(trades.ts_ns >= trade_start_ns))
    if not len(rest) and (trades is None or not len(trades)):
        raise DataError(f"data.trade_start {trade_start_ns}: no data at or after it")
    return warm, rest, trades


def fill_record(fill: OrderFilled) -> str:
    """The canonical text of one fill; ``repr`` keeps every float bit."""
    return (
        f"{fill.fill_id}|{fill.client_order_id}|{fill.strategy_id}|{fill.instrument_id}|"
        f"{fill.side.value}|{fill.last_qty!r}|{fill.last_px!r}|{fill.fee!r}|"
        f"{fill.liquidity.value}|{fill.ts_event_ns}"
    )


def fills_digest(fills: Sequence[OrderFilled]) -> str:
    """sha256 over the canonical fill records: equal digests mean identical fills."""
    h = hashlib.sha256()
    for fill in fills:
        h.update(fill_record(fill).encode())
        h.update(b"\n")
    return h.hexdigest()


SESSION_STOP_REASON = "session stopping"
"""The reason of the kill-switch trip with which a paper or live session stops cleanly: it
cancels open orders and is no halt."""

TOP_REJECTION_REASONS = 5
"""How many rejection reasons the terminal table shows (``summary.json`` keeps them all)."""


def rejection_reasons(ledger: OrderLedger) -> list[dict[str, Any]]:
    """Why orders were refused, most frequent first: one entry per reason with its count.

    Risk refusals are grouped by their reason code (``max_order_notional``), venue refusals by
    the venue's reason text (``venue unavailable: exchange outage (exchange_outage)``).
    """
    counts: Counter[tuple[str, str]] = Counter()
    for row in ledger.rows.values():
        if row.status == "risk_rejected":
            counts["risk", row.reason.split(":", 1)[0]] += 1
        elif row.status == "rejected":
            counts["venue", row.reason] += 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"source": src, "reason": reason, "count": n} for (src, reason), n in ranked]


@dataclass
class BacktestResult:
    """Everything a backtest produced. ``summary()`` is the JSON the CLI prints."""

    config: GraphConfig
    bars: int
    trades: int
    intents: int
    orders: int
    risk_rejections: int
    fills: list[OrderFilled]
    starting_cash: float
    final_equity: float
    fees: float
    metrics: PerformanceMetrics
    ts_ns: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    elapsed_s: float
    dropped: dict[str, dict[str, int]]
    ledger: OrderLedger
    strategy_errors: list[StrategyError]
    per_strategy: dict[str, dict[str, float]] = field(default_factory=dict)
    execution_reports: list[ExecutionReport] = field(default_factory=list)
    allocations: list[CapitalAllocated] = field(default_factory=list)
    kill_switch_events: list[KillSwitchChanged] = field(default_factory=list)
    prices: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(
        default_factory=dict
    )
    """Bar closes per instrument, ``(ts_ns, close)``, as the run saw them (for the report)."""
    funding: float = 0.0
    """Net funding received on perpetual positions (negative: paid)."""
    liquidations: int = 0
    """Positions the simulated venues liquidated."""

    @property
    def halts(self) -> list[KillSwitchChanged]:
        """Kill-switch trips that halted trading (not the one that stops a session)."""
        return [e for e in self.kill_switch_events if e.tripped and e.reason != SESSION_STOP_REASON]

    def failure_reasons(self) -> list[str]:
        """Why this run is not a result to trust; empty when it ran as configured.

        A run fails when a strategy raised and was stopped, when the kill switch halted trading,
        or when the strategies asked for orders and every one of them was refused.
        """
        reasons = [
            f"strategy {e.strategy_id} stopped: {e.error_type}: {e.error}"
            for e in self.strategy_errors
        ]
        reasons.extend(
            f"trading halted: kill switch tripped ({e.reason})"
            if e.mode is KillSwitchMode.HALT
            else f"trading halted: kill switch tripped in {e.mode.value} mode ({e.reason})"
            for e in self.halts
        )
        refused = self.risk_rejections + self.venue_rejections
        if self.intents > 0 and not self.fills and refused >= self.intents:
            reasons.append(f"every order refused: {refused} of {self.intents} intents, no fill")
        return reasons

    def kill_switch_halts(self) -> list[dict[str, Any]]:
        """Each halting trip (or move to a further mode): its mode, reason and time."""
        return [
            {"mode": e.mode.value, "reason": e.reason, "ts_ns": e.ts_event_ns} for e in self.halts
        ]

    def kill_switch_closed(self) -> list[dict[str, Any]]:
        """What ``flatten`` kill-switch trips closed: one row per strategy, instrument and side
        with the quantity, average price and fees of the closing fills."""
        rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        for fill in self.fills:
            if fill.tag != FLATTEN_TAG:
                continue
            key = (fill.strategy_id, fill.instrument_id, fill.side.value)
            row = rows.setdefault(
                key,
                {
                    "strategy_id": key[0],
                    "instrument_id": key[1],
                    "side": key[2],
                    "quantity": 0.0,
                    "notional": 0.0,
                    "fees": 0.0,
                    "fills": 0,
                },
            )
            row["quantity"] += fill.last_qty
            row["notional"] += fill.notional
            row["fees"] += fill.fee
            row["fills"] += 1
        closed = []
        for row in rows.values():
            notional = row.pop("notional")
            row["avg_price"] = notional / row["quantity"] if row["quantity"] else 0.0
            closed.append(row)
        return closed

    def allocation_series(self) -> dict[str, tuple[list[int], list[float]]]:
        """Allocated capital over time per strategy: ``(ts_ns, capital)`` of each allocation."""
        series: dict[str, tuple[list[int], list[float]]] = {}
        for event in self.allocations:
            ts, capital = series.setdefault(event.strategy_id, ([], []))
            ts.append(event.ts_event_ns)
            capital.append(event.capital)
        return series

    def execution_rows(self) -> list[dict[str, Any]]:
        """One plain row per execution report (for JSON and the HTML report)."""
        return [
            {
                "parent_id": r.parent_id,
                "strategy_id": r.strategy_id,
                "algo": r.algo,
                "side": r.side.value,
                "status": r.status,
                "quantity": r.quantity,
                "filled_quantity": r.filled_quantity,
                "avg_price": r.avg_price,
                "arrival_price": r.arrival_price,
                "shortfall_bps": r.implementation_shortfall_bps,
                "interval_vwap": r.interval_vwap,
                "vs_vwap_bps": r.slippage_vs_vwap_bps,
                "child_orders": r.child_orders,
                "rejections": r.rejections,
            }
            for r in self.execution_reports
        ]

    @property
    def venue_rejections(self) -> int:
        """Orders the venue rejected (invalid, post-only that would take, or in an outage)."""
        return self.ledger.counts["OrderRejected"]

    @property
    def pnl(self) -> float:
        return self.final_equity - self.starting_cash

    @property
    def fills_digest(self) -> str:
        return fills_digest(self.fills)

    @property
    def bars_per_s(self) -> float:
        return self.bars / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        m = self.metrics
        failures = self.failure_reasons()
        return {
            "name": self.config.name,
            "status": "failed" if failures else "ok",
            "failure_reasons": failures,
            "bars": self.bars,
            "trade_ticks": self.trades,
            "intents": self.intents,
            "orders": self.orders,
            "risk_rejections": self.risk_rejections,
            "venue_rejections": self.venue_rejections,
            "rejection_reasons": rejection_reasons(self.ledger),
            "kill_switch_trips": len(self.halts),
            "kill_switch_halts": self.kill_switch_halts(),
            "kill_switch_closed": self.kill_switch_closed(),
            "fills": len(self.fills),
            "starting_cash": self.starting_cash,
            "final_equity": self.final_equity,
            "pnl": self.pnl,
            "fees": self.fees,
            "funding": self.funding,
            "liquidations": self.liquidations,
            "total_return": m.total_return,
            "sharpe": m.sharpe,
            "sortino": m.sortino,
            "max_drawdown": m.max_drawdown,
            "calmar": m.calmar,
            "round_trips": m.round_trips,
            "win_rate": m.win_rate,
            "profit_factor": m.profit_factor,
            "dropped_rows": sum(sum(c.values()) for c in self.dropped.values()),
            "dropped": self.dropped,
            "strategy_errors": [e.strategy_id for e in self.strategy_errors],
            "elapsed_s": self.elapsed_s,
            "bars_per_s": self.bars_per_s,
            "fills_digest": self.fills_digest,
            "per_strategy": self.per_strategy,
            "execution_reports": self.execution_rows(),
            "allocation_changes": len(self.allocations),
        }


def run_backtest(
    config: GraphConfig,
    stream: BarStream | None = None,
    trades: TradeStream | None = None,
    *,
    metrics: GraphMetrics | None = None,
    audit_dir: Path | None = None,
) -> BacktestResult:
    """Run ``config`` over its data (or over ``stream`` and ``trades``) in one process.

    With ``metrics``, the run's messages are observed as they are published (see
    ``LocalKernel``); serve its sink's registry to watch the run. With ``audit_dir``, the run
    writes an audit trail there, one chain per component, as a session does.
    """
    result, _ = run_backtest_with_kernel(
        config, stream, trades, metrics=metrics, audit_dir=audit_dir
    )
    return result


def run_backtest_with_kernel(
    config: GraphConfig,
    stream: BarStream | None = None,
    trades: TradeStream | None = None,
    *,
    metrics: GraphMetrics | None = None,
    audit_dir: Path | None = None,
) -> tuple[BacktestResult, LocalKernel]:
    """Like :func:`run_backtest`, and also hand back the finished kernel (its control messages,
    such as kill-switch changes, and its components)."""
    if stream is None and trades is None:
        stream = load_bar_stream(config)
        trades = load_trade_stream(config)
    stream = stream or BarStream.empty()
    warmup: BarStream | None = None
    if config.data.trade_start is not None:
        trade_start_ns = parse_time_ns(config.data.trade_start, "data.trade_start")
        warmup, stream, trades = split_warmup(stream, trades, trade_start_ns)
    audit = AuditFolder(audit_dir, config, config.name) if audit_dir is not None else None
    kernel = LocalKernel(config, stream, trades=trades, metrics=metrics, audit=audit)
    started = time.perf_counter()
    kernel.run(warmup)
    elapsed = time.perf_counter() - started
    result = collect_result(config, kernel, kernel.stream, elapsed)
    if audit is not None:
        audit.close(fills=len(result.fills), fills_digest=result.fills_digest)
    return result, kernel


@dataclass(frozen=True)
class PortfolioOutcome:
    """What a finished run's portfolio holds, as plain data (it crosses process boundaries)."""

    ts_ns: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    fills: list[OrderFilled]
    final_equity: float
    fees: float
    per_strategy: dict[str, dict[str, float]]
    funding: float = 0.0
    liquidations: int = 0


def portfolio_outcome(portfolio: Portfolio) -> PortfolioOutcome:
    """Read the results of a run out of its portfolio component."""
    ts_ns, equity = portfolio.equity_curve()
    return PortfolioOutcome(
        ts_ns=ts_ns,
        equity=equity,
        fills=list(portfolio.fills),
        final_equity=portfolio.equity,
        fees=portfolio.fees,
        per_strategy={
            sid: {
                "realized_pnl": a.realized_pnl,
                "unrealized_pnl": a.unrealized_pnl,
                "fees": a.fees,
                "fills": float(a.fill_count),
                "net_pnl": a.net_pnl,
                # Only where it happened, so spot results read exactly as before.
                **({"funding": a.funding} if a.funding else {}),
                **({"liquidations": float(a.liquidations)} if a.liquidations else {}),
            }
            for sid, a in portfolio.strategy_attribution().items()
        },
        funding=portfolio.funding,
        liquidations=portfolio.liquidations,
    )


def per_strategy_rows(
    config: GraphConfig,
    outcome: PortfolioOutcome,
    ledger: OrderLedger,
    allocations: Sequence[CapitalAllocated],
) -> dict[str, dict[str, float]]:
    """PnL attribution, order counts and the latest allocated capital, per strategy."""
    latest_capital = {e.strategy_id: e.capital for e in allocations}
    orders_by_strategy: dict[str, int] = {}
    for order in ledger.rows.values():
        orders_by_strategy[order.strategy_id] = orders_by_strategy.get(order.strategy_id, 0) + 1
    rows: dict[str, dict[str, float]] = {}
    for strategy_cfg in config.strategies:
        sid = strategy_cfg.id
        attributed = outcome.per_strategy.get(sid)
        if attributed is None and sid not in latest_capital:
            continue
        row = {
            "realized_pnl": 0.0,
            "unrealized_pnl": 0.0,
            "fees": 0.0,
            "fills": 0.0,
            "net_pnl": 0.0,
            **(attributed or {}),
            "intents": float(orders_by_strategy.get(sid, 0)),
        }
        if sid in latest_capital:
            row["allocated_capital"] = latest_capital[sid]
        rows[sid] = row
    return rows


def assemble_result(
    config: GraphConfig,
    outcome: PortfolioOutcome,
    *,
    stream: BarStream,
    trades: TradeStream | None,
    bars: int,
    trade_ticks: int,
    ledger: OrderLedger,
    control: Sequence[Message],
    elapsed_s: float,
) -> BacktestResult:
    """A ``BacktestResult`` from what any engine (in-process or actors) gathered during a run."""
    allocations = [m for m in control if isinstance(m, CapitalAllocated)]
    interval = int(stream.interval_ns.min()) if len(stream) else 60_000_000_000
    periods = config.report.periods_per_year or infer_periods_per_year(interval)
    metrics = compute_metrics(
        outcome.ts_ns, outcome.equity, outcome.fills, config.portfolio.starting_cash, periods
    )
    return BacktestResult(
        config=config,
        bars=bars,
        trades=trade_ticks,
        intents=ledger.intents,
        orders=ledger.orders,
        risk_rejections=ledger.risk_rejections,
        fills=outcome.fills,
        starting_cash=config.portfolio.starting_cash,
        final_equity=outcome.final_equity,
        fees=outcome.fees,
        funding=outcome.funding,
        liquidations=outcome.liquidations,
        metrics=metrics,
        ts_ns=outcome.ts_ns,
        equity=outcome.equity,
        elapsed_s=elapsed_s,
        dropped={**stream.dropped, **(trades.dropped if trades else {})},
        ledger=ledger,
        strategy_errors=[m for m in control if isinstance(m, StrategyError)],
        per_strategy=per_strategy_rows(config, outcome, ledger, allocations),
        execution_reports=[m for m in control if isinstance(m, ExecutionReport)],
        allocations=allocations,
        kill_switch_events=[m for m in control if isinstance(m, KillSwitchChanged)],
        prices=close_series(stream),
    )


def close_series(
    stream: BarStream,
) -> dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """Each instrument's bar closes in ``stream`` as ``(ts_ns, close)``."""
    out = {}
    for i, instrument_id in enumerate(stream.instrument_ids):
        mine = stream.instrument_index == i
        out[instrument_id] = (stream.ts_ns[mine], stream.close[mine])
    return out


def collect_result(
    config: GraphConfig, kernel: LocalKernel, stream: BarStream, elapsed_s: float
) -> BacktestResult:
    portfolio: Portfolio = kernel.component(PORTFOLIO)
    return assemble_result(
        config,
        portfolio_outcome(portfolio),
        stream=stream,
        trades=kernel.trades,
        bars=kernel.bars_processed,
        trade_ticks=kernel.trades_processed,
        ledger=kernel.ledger,
        control=kernel.control,
        elapsed_s=elapsed_s,
    )
