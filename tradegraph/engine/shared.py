"""One pass over market data feeding several independent graphs (the trials of a sweep).

Each graph is a whole ``LocalKernel`` (its own strategies, risk, venue and portfolio, its own
event heap, clock and ledger); only the market data is shared. A bar is built once and handed
to every graph in turn: each first runs its own queued events due by the bar's time, then
delivers the bar to its destinations in router order, exactly as ``LocalKernel.replay`` does.
Since the graphs share nothing but immutable messages, each one's result is bit for bit the
result of running it alone; a graph that raises is dropped from the pass (its error kept) and
the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tradegraph.config.models import GraphConfig
from tradegraph.contracts import Bar, Message
from tradegraph.contracts.base import set_extra, set_fields_set, set_instance_dict, set_private
from tradegraph.data.catalog import parse_time_ns
from tradegraph.engine.backtest import BacktestResult, collect_result, split_warmup
from tradegraph.engine.kernel import (
    REPLAY_CHUNK,
    LocalKernel,
    _young_gc_relaxed,
    bar_at,
    market_event_order,
)
from tradegraph.engine.streams import BarStream, TradeStream

_new = object.__new__
_BAR_FIELDS = Bar._field_set

Handlers = tuple[Callable[[Message], None], ...]


@dataclass
class _Graph:
    """One graph of the pass while it runs: its kernel and its market destinations."""

    index: int
    kernel: LocalKernel
    bar_destinations: list[Handlers]
    trade_destinations: list[Handlers]


class SharedReplay:
    """Runs several ``GraphConfig`` over one ``BarStream`` (and trade ticks) in one pass.

    Attributes:
        kernels: graph ``i``'s kernel, or None when it could not be built.
        errors: graph ``i`` -> the exception that stopped it (building, starting, warming up,
            replaying or stopping); its kernel is then not to be read.
    """

    def __init__(
        self,
        configs: Sequence[GraphConfig],
        stream: BarStream,
        *,
        trades: TradeStream | None = None,
    ) -> None:
        self.stream = stream
        self.trades = trades if trades is not None and len(trades) else None
        self.kernels: list[LocalKernel | None] = []
        self.errors: dict[int, Exception] = {}
        for i, config in enumerate(configs):
            try:
                self.kernels.append(LocalKernel(config, stream, trades=self.trades))
            except Exception as exc:  # one graph's failure must never sink the others
                self.kernels.append(None)
                self.errors[i] = exc
        self._order = market_event_order(stream, self.trades) if self.trades is not None else None

    @property
    def market_event_count(self) -> int:
        return len(self.stream) + (len(self.trades) if self.trades is not None else 0)

    def _live(self) -> list[_Graph]:
        graphs = []
        for i, kernel in enumerate(self.kernels):
            if kernel is None or i in self.errors:
                continue
            handlers = kernel._handlers
            graphs.append(
                _Graph(
                    i,
                    kernel,
                    [
                        tuple(handlers[d] for d in kernel.router.market_destinations(iid))
                        for iid in self.stream.instrument_ids
                    ],
                    [
                        tuple(handlers[d] for d in kernel.router.market_destinations(iid))
                        for iid in self.trades.instrument_ids
                    ]
                    if self.trades is not None
                    else [],
                )
            )
        return graphs

    def _each(self, step: Callable[[LocalKernel], None]) -> None:
        for graph in self._live():
            try:
                step(graph.kernel)
            except Exception as exc:
                self.errors[graph.index] = exc

    def run(self, warmup: BarStream | None = None) -> None:
        """Start every graph, warm its strategies up, replay once for all, drain, stop
        (``LocalKernel.run`` for each graph)."""
        self._each(LocalKernel.start)
        if warmup is not None and len(warmup):
            self._each(lambda kernel: kernel.warm_up(warmup))
        with _young_gc_relaxed():
            graphs = self._live()
            for lo in range(0, self.market_event_count, REPLAY_CHUNK):
                hi = min(self.market_event_count, lo + REPLAY_CHUNK)
                if self._order is None:
                    graphs = self._replay_chunk(graphs, lo, hi)
                else:
                    graphs = self._replay_mixed(graphs, self._order[lo:hi])
        self._each(lambda kernel: kernel._drain(kernel.now_ns))
        self._each(LocalKernel.stop)

    def _drop(self, graphs: list[_Graph], failed: list[tuple[_Graph, Exception]]) -> list[_Graph]:
        for graph, exc in failed:
            self.errors[graph.index] = exc
        gone = {id(graph) for graph, _ in failed}
        return [g for g in graphs if id(g) not in gone]

    def _replay_chunk(self, graphs: list[_Graph], begin: int, end: int) -> list[_Graph]:
        stream = self.stream
        ids = stream.instrument_ids
        intervals = stream.interval_ns.tolist()
        fields = _BAR_FIELDS
        subs = [(g, g.kernel, g.kernel._heap, g.kernel._drain, g.bar_destinations) for g in graphs]
        failed: list[tuple[_Graph, Exception]] = []
        for k, o, h, lo, c, v, ts in zip(
            stream.instrument_index[begin:end].tolist(),
            stream.open[begin:end].tolist(),
            stream.high[begin:end].tolist(),
            stream.low[begin:end].tolist(),
            stream.close[begin:end].tolist(),
            stream.volume[begin:end].tolist(),
            stream.ts_ns[begin:end].tolist(),
            strict=True,
        ):
            # Built once for every graph, as LocalKernel builds it (messages are immutable).
            bar = _new(Bar)
            set_instance_dict(
                bar,
                {
                    "instrument_id": ids[k],
                    "open": o,
                    "high": h,
                    "low": lo,
                    "close": c,
                    "volume": v,
                    "interval_ns": intervals[k],
                    "ts_event_ns": ts,
                    "ts_init_ns": ts,
                },
            )
            set_fields_set(bar, fields)
            set_extra(bar, None)
            set_private(bar, None)
            for sub in subs:
                graph, kernel, heap, drain, destinations = sub
                try:
                    if heap and heap[0][0] <= ts:
                        drain(ts)
                    kernel.now_ns = ts
                    for handle in destinations[k]:
                        handle(bar)
                except Exception as exc:
                    failed.append((graph, exc))
            if failed:
                gone = {id(graph) for graph, _ in failed}
                subs = [s for s in subs if id(s[0]) not in gone]
                graphs = self._drop(graphs, failed)
                failed = []
        for graph in graphs:
            graph.kernel.bars_processed += end - begin
        return graphs

    def _replay_mixed(self, graphs: list[_Graph], refs: Any) -> list[_Graph]:
        stream = self.stream
        trades = self.trades
        assert trades is not None
        failed: list[tuple[_Graph, Exception]] = []
        bars = 0
        for ref in refs.tolist():
            if ref >= 0:
                k = int(stream.instrument_index[ref])
                msg: Message = bar_at(stream, ref)
                is_bar = True
                bars += 1
            else:
                i = -1 - ref
                msg = trades.trade(i)
                k = int(trades.instrument_index[i])
                is_bar = False
            ts = msg.ts_event_ns
            for graph in graphs:
                kernel = graph.kernel
                try:
                    if kernel._heap and kernel._heap[0][0] <= ts:
                        kernel._drain(ts)
                    kernel.now_ns = ts
                    destinations = (
                        graph.bar_destinations[k] if is_bar else graph.trade_destinations[k]
                    )
                    for handle in destinations:
                        handle(msg)
                except Exception as exc:
                    failed.append((graph, exc))
            if failed:
                graphs = self._drop(graphs, failed)
                failed = []
        for graph in graphs:
            graph.kernel.bars_processed += bars
            graph.kernel.trades_processed += len(refs) - bars
        return graphs


def shares_market_data(a: GraphConfig, b: GraphConfig) -> bool:
    """Whether ``a`` and ``b`` replay the same market data (data section and instruments)."""
    return a.data == b.data and a.instruments == b.instruments


def run_shared_backtests(
    configs: Sequence[GraphConfig],
    stream: BarStream,
    trades: TradeStream | None = None,
) -> list[BacktestResult | Exception]:
    """Run every config over ``stream`` and ``trades`` in one shared pass: for each config,
    what ``run_backtest(config, stream, trades)`` returns, or the exception that stopped it.

    Every result's ``elapsed_s`` is the pass's time divided among the graphs.

    Raises:
        ValueError: the configs do not all share their market data (see
            :func:`shares_market_data`).
        DataError: nothing is left to replay from ``data.trade_start`` on.
    """
    if not configs:
        return []
    first = configs[0]
    if not all(shares_market_data(first, c) for c in configs[1:]):
        raise ValueError("a shared pass needs configs with the same data and instruments")
    warmup: BarStream | None = None
    if first.data.trade_start is not None:
        trade_start_ns = parse_time_ns(first.data.trade_start, "data.trade_start")
        warmup, stream, trades = split_warmup(stream, trades, trade_start_ns)
    shared = SharedReplay(configs, stream, trades=trades)
    started = time.perf_counter()
    shared.run(warmup)
    elapsed = (time.perf_counter() - started) / len(configs)
    out: list[BacktestResult | Exception] = []
    for i, (config, kernel) in enumerate(zip(configs, shared.kernels, strict=True)):
        error = shared.errors.get(i)
        if error is not None or kernel is None:
            out.append(error if error is not None else RuntimeError("graph not built"))
            continue
        try:
            out.append(collect_result(config, kernel, kernel.stream, elapsed))
        except Exception as exc:
            out.append(exc)
    return out
