"""Walk-forward analysis: in each fold, a sweep on a train window picks parameters, and those
parameters run out of sample on the test window that follows.

Windows (:func:`plan_folds`) are laid over the data's span by bar open time, each half-open
``[start, end)``. Fold ``k`` trains on ``[train_start, train_end)`` and tests on
``[train_end + embargo, train_end + embargo + test)``; ``step`` (default: ``test``) moves the
next fold forward. Rolling windows slide the train start too; anchored ones keep it at the
data's start. Folds stop at the last test window that fits in the data.

Warm-up rule: the out-of-sample run of a fold replays, before its test window, the
``warmup_bars`` its chosen parameters declare (the largest over the strategies, see
``Strategy.warmup_bars``) times the longest bar interval, taken from *before* the test start
(clipped at the data's start) through ``data.trade_start``: the strategies see those bars but
may not trade on them, and nothing of them is counted. It is exactly
``tradegraph backtest --set data.bars.N.start=<test start - warm-up>
--set data.bars.N.end=<test end> --set data.trade_start=<test start>``.

Stitching: every fold starts flat with the config's starting cash; the stitched out-of-sample
curve compounds the folds' returns (fold ``k``'s curve is scaled by the growth of folds
``0..k-1``), so it is the equity of reinvesting each fold's result in the next.

Walk-forward efficiency of a fold: annualised out-of-sample return / annualised in-sample
return of the chosen parameters (``(1 + total_return) ** (year / window) - 1`` over each
window's length); undefined (null) when the in-sample annualised return is not positive. The
summary's ``walk_forward_efficiency`` is the mean over the folds where it is defined.

Parameter stability, per swept key: ``modal_share`` (the share of folds choosing the most
chosen value) and, for numbers, ``cv`` (standard deviation / |mean| of the chosen values).

Overfitting odds: each fold's train sweep gives its probability of backtest overfitting
(``is_pbo``) and the deflated Sharpe ratio of the chosen trial (``is_deflated_sharpe``), each
null with the reason beside it (``is_pbo_reason``, ``is_deflated_sharpe_reason``) when that
sweep had too few days or trials (see :func:`tradegraph.batch.sweep.overfitting_odds`). The
summary's ``pbo`` and ``deflated_sharpe`` are their means over the folds where they are
defined, and ``oos_loss_share`` is the share of folds whose chosen parameters lost money out
of sample (``oos_total_return < 0``), see :func:`overfitting_summary`.

Digest: ``results_digest`` hashes the canonical fold rows sorted by fold, the way a sweep
hashes its trials (:func:`tradegraph.batch.montecarlo.results_digest`), then the stitched
curve, so it is the same for any worker count, chunk order or resumed run.

Recovery: every finished fold is written under ``folds/<k>/`` (its train sweep resumes on its
own chunks); a rerun into the same folder skips finished folds.

Execution: the folds to run share one pool (this process, or Ray through a ``ChunkRunner``).
Their train trials go to it as one batch of chunks (:class:`FoldTrialsPlan`; a chunk holds
trials of one fold, and hands its rows to that fold's sweep), then their out-of-sample
backtests as one task each (:class:`OosPlan`). An optuna search runs its folds' rounds side by
side (:class:`tradegraph.batch.sweep.OptunaRounds`): each study sees exactly the asks and tells
it would alone, so every fold chooses the same parameters.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tradegraph.batch.montecarlo import (
    MAX_CHUNK,
    BatchProgress,
    ChunkRunner,
    chunk_indices,
    results_digest,
)
from tradegraph.batch.sweep import (
    MINIMISED,
    PARAM_PREFIX,
    OptunaRounds,
    Sweep,
    SweepBatch,
    SweepPlan,
    SweepResult,
    run_trial_chunk,
)
from tradegraph.config.loader import load_config
from tradegraph.config.models import GraphConfig
from tradegraph.data.catalog import write_parquet
from tradegraph.engine.backtest import load_bar_stream, load_trade_stream, run_backtest
from tradegraph.engine.streams import BarStream, TradeStream
from tradegraph.errors import ConfigError, DataError, TradegraphError
from tradegraph.report.performance import compute_metrics, infer_periods_per_year
from tradegraph.report.walkforward import write_walkforward_report
from tradegraph.strategies.registry import load_strategy_class

NS_PER_S = 1_000_000_000
NS_PER_YEAR = 365 * 86_400 * NS_PER_S
_UNITS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
FOLD_METRICS = (
    "total_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "cagr",
    "pnl",
    "final_equity",
    "fills",
    "round_trips",
    "win_rate",
)
"""The metrics ``folds.parquet`` carries for each fold, as ``is_<name>`` and ``oos_<name>``."""


def parse_duration(text: str, flag: str) -> int:
    """``30d``, ``12h``, ``90m``, ``45s`` to nanoseconds.

    Raises:
        ConfigError: not a whole positive number followed by d, h, m or s.
    """
    match = re.fullmatch(r"\s*(\d+)\s*([dhms])\s*", text)
    if match is None or int(match.group(1)) == 0:
        raise ConfigError(f"{flag} {text!r}: expected a positive duration such as 30d, 12h, 90m")
    return int(match.group(1)) * _UNITS[match.group(2)] * NS_PER_S


def format_duration_ns(ns: int) -> str:
    """The shortest exact ``Nd``/``Nh``/``Nm``/``Ns`` text of a duration."""
    seconds = ns // NS_PER_S
    for unit, size in _UNITS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def iso(ns: int) -> str:
    """An instant as ISO text in UTC, without a zone suffix (as config times are given)."""
    return datetime.fromtimestamp(ns / NS_PER_S, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class Fold:
    """One fold's windows, by bar open time, each ``[start, end)`` in ns."""

    index: int
    train_start_ns: int
    train_end_ns: int
    test_start_ns: int
    test_end_ns: int


def plan_folds(
    data_start_ns: int,
    data_end_ns: int,
    *,
    train_ns: int,
    test_ns: int,
    step_ns: int | None = None,
    embargo_ns: int = 0,
    anchored: bool = False,
) -> list[Fold]:
    """The folds that fit in ``[data_start_ns, data_end_ns)``.

    Raises:
        ConfigError: the data cannot hold one fold (the message gives both lengths).
    """
    step = test_ns if step_ns is None else step_ns
    if embargo_ns < 0:
        raise ConfigError("--embargo must not be negative")
    folds: list[Fold] = []
    k = 0
    while True:
        train_end = data_start_ns + train_ns + k * step
        test_start = train_end + embargo_ns
        test_end = test_start + test_ns
        if test_end > data_end_ns:
            break
        train_start = data_start_ns if anchored else train_end - train_ns
        folds.append(Fold(k, train_start, train_end, test_start, test_end))
        k += 1
    if not folds:
        need = train_ns + embargo_ns + test_ns
        raise ConfigError(
            f"--train {format_duration_ns(train_ns)} + --embargo {format_duration_ns(embargo_ns)}"
            f" + --test {format_duration_ns(test_ns)} need {format_duration_ns(need)} of data, "
            f"but the data spans only {(data_end_ns - data_start_ns) / (86_400 * NS_PER_S):.2f}d"
            f" ({iso(data_start_ns)} to {iso(data_end_ns)}): not one fold fits"
        )
    return folds


def window_overrides(config: GraphConfig, start_ns: int, end_ns: int) -> list[str]:
    """``--set`` overrides that limit every data source to ``[start_ns, end_ns)``."""
    out: list[str] = []
    for kind, sources in (("bars", config.data.bars), ("trades", config.data.trades)):
        for i in range(len(sources)):
            out.append(f"data.{kind}.{i}.start='{iso(start_ns)}'")
            out.append(f"data.{kind}.{i}.end='{iso(end_ns)}'")
    return out


def warmup_bars(config: GraphConfig) -> int:
    """The most warm-up bars any strategy of ``config`` declares for its parameters."""
    bars = 0
    for strategy in config.strategies:
        cls = load_strategy_class(strategy.class_path)
        bars = max(bars, cls.warmup_bars(cls.Params.model_validate(strategy.params)))
    return bars


def annualised(total_return: float | None, window_ns: int) -> float | None:
    """``(1 + total_return) ** (year / window) - 1``; None when it cannot be computed."""
    if total_return is None or not math.isfinite(total_return) or total_return <= -1.0:
        return None
    try:
        return float((1.0 + total_return) ** (NS_PER_YEAR / window_ns) - 1.0)
    except OverflowError:
        return None


def efficiency(is_return: float | None, oos_return: float | None, fold: Fold) -> float | None:
    """A fold's walk-forward efficiency (see the module docstring)."""
    is_ann = annualised(is_return, fold.train_end_ns - fold.train_start_ns)
    oos_ann = annualised(oos_return, fold.test_end_ns - fold.test_start_ns)
    if is_ann is None or oos_ann is None or is_ann <= 0.0:
        return None
    return oos_ann / is_ann


def parameter_stability(chosen: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per key: the modal value, the share of folds choosing it and, for numbers, the
    coefficient of variation of the chosen values."""
    out: dict[str, dict[str, Any]] = {}
    if not chosen:
        return out
    for key in chosen[0]:
        values = [c[key] for c in chosen]
        counts = Counter(json.dumps(v) for v in values)
        modal_text, modal_count = max(
            counts.items(), key=lambda kv: (kv[1], -values.index(json.loads(kv[0])))
        )
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        cv: float | None = None
        if numeric:
            mean = statistics.fmean(values)
            cv = statistics.pstdev(values) / abs(mean) if mean != 0 else None
        out[key] = {
            "modal_value": json.loads(modal_text),
            "modal_share": modal_count / len(values),
            "cv": cv,
            "values": values,
        }
    return out


def stitch(curves: Sequence[tuple[np.ndarray, np.ndarray]], starting_cash: float) -> pa.Table:
    """Compound the folds' out-of-sample curves: fold ``k``'s equity is scaled by the growth of
    the folds before it. Columns: ``ts_ns``, ``fold``, ``fold_equity``, ``equity``."""
    ts_parts, fold_parts, raw_parts, stitched_parts = [], [], [], []
    growth = 1.0
    for k, (ts, equity) in enumerate(curves):
        ts_parts.append(ts)
        fold_parts.append(np.full(ts.shape[0], k, dtype=np.int64))
        raw_parts.append(equity)
        stitched_parts.append(equity * growth)
        if equity.size:
            growth *= float(equity[-1]) / starting_cash
    empty_i, empty_f = np.empty(0, np.int64), np.empty(0, np.float64)
    return pa.table(
        {
            "ts_ns": np.concatenate(ts_parts) if ts_parts else empty_i,
            "fold": np.concatenate(fold_parts) if fold_parts else empty_i,
            "fold_equity": np.concatenate(raw_parts) if raw_parts else empty_f,
            "equity": np.concatenate(stitched_parts) if stitched_parts else empty_f,
        }
    )


def _mean_of(rows: Sequence[dict[str, Any]], column: str) -> dict[str, Any]:
    """The mean of ``column`` over the folds where it is defined; null with the reason when
    no fold has it."""
    values = [r[column] for r in rows if r.get(column) is not None]
    entry: dict[str, Any] = {
        "mean": statistics.fmean(values) if values else None,
        "folds": len(values),
    }
    if not values:
        first = rows[0] if rows else {}
        why = first.get(f"{column}_reason") or "not recorded"
        entry["reason"] = f"no fold's train sweep gave it (fold {first.get('fold', 0)}: {why})"
    return entry


def overfitting_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How likely the folds' chosen parameters are flukes, from the fold rows: the mean of the
    train sweeps' ``is_pbo`` and ``is_deflated_sharpe`` over the folds where each is defined,
    and ``oos_loss_share``, the share of folds (with an out-of-sample return) whose chosen
    parameters lost money out of sample."""
    returns = [r["oos_total_return"] for r in rows if r.get("oos_total_return") is not None]
    lost = sum(1 for value in returns if value < 0.0)
    loss: dict[str, Any] = {
        "value": lost / len(returns) if returns else None,
        "lost": lost,
        "folds": len(returns),
    }
    if not returns:
        loss["reason"] = "no fold has an out-of-sample return"
    return {
        "pbo": _mean_of(rows, "is_pbo"),
        "deflated_sharpe": _mean_of(rows, "is_deflated_sharpe"),
        "oos_loss_share": loss,
    }


def walkforward_digest(folds: pa.Table, oos_equity: pa.Table) -> str:
    """sha256 over the canonical fold rows sorted by fold (as a sweep hashes its trials), then
    the stitched curve's ``ts_ns`` and ``equity``: independent of worker count and order."""
    digest = hashlib.sha256()
    rows = results_digest(folds, key="fold", names=folds.column_names, excluded=frozenset())
    digest.update(rows.encode())
    for column in ("ts_ns", "equity"):
        digest.update(np.ascontiguousarray(oos_equity.column(column).to_numpy()).tobytes())
    return digest.hexdigest()


Executor = Callable[
    [
        Callable[[Any, Sequence[int]], pa.Table],
        Any,
        Sequence[list[int]],
        Callable[[list[int], pa.Table], None],
        Callable[[list[int], str], None],
    ],
    None,
]
"""Runs a task over chunks on the walk-forward's pool, handing each result on as it ends."""


@dataclass(frozen=True)
class FoldTrialsPlan:
    """Several folds' train sweeps as one batch: ``units[g]`` is the (fold, trial) that batch
    index ``g`` names; every chunk holds trials of one fold."""

    sweeps: dict[int, SweepPlan]
    units: tuple[tuple[int, int], ...]

    def fold_of(self, chunk: Sequence[int]) -> int:
        return self.units[chunk[0]][0]

    def local(self, chunk: Sequence[int]) -> list[int]:
        """The fold's own trial indices of a chunk (as its sweep writes them)."""
        return [self.units[g][1] for g in chunk]


def _fold_chunks(
    parts: dict[int, tuple[SweepPlan, list[list[int]]]],
) -> tuple[FoldTrialsPlan, list[list[int]]]:
    """One plan and one list of chunks over every fold's chunks of trials, in fold order."""
    units: list[tuple[int, int]] = []
    chunks: list[list[int]] = []
    for fold, (_, fold_chunks) in sorted(parts.items()):
        for chunk in fold_chunks:
            chunks.append(list(range(len(units), len(units) + len(chunk))))
            units.extend((fold, trial) for trial in chunk)
    plan = FoldTrialsPlan({k: p for k, (p, _) in parts.items()}, tuple(units))
    return plan, chunks


def _run_fold_chunks(
    execute: Executor,
    parts: dict[int, tuple[SweepPlan, list[list[int]]]],
    targets: Mapping[int, SweepBatch | OptunaRounds],
) -> None:
    """Run several folds' chunks of trials as one batch, handing each finished chunk (with
    the fold's own trial indices) to its fold's sweep."""
    plan, chunks = _fold_chunks(parts)

    def on_done(chunk: list[int], table: pa.Table) -> None:
        targets[plan.fold_of(chunk)].on_chunk(plan.local(chunk), table)

    def on_lost(chunk: list[int], error: str) -> None:
        targets[plan.fold_of(chunk)].on_lost(plan.local(chunk), error)

    execute(run_fold_trials, plan, chunks, on_done, on_lost)


def run_fold_trials(plan: FoldTrialsPlan, indices: Sequence[int]) -> pa.Table:
    """A chunk of one fold's train trials (their rows carry the fold's own trial indices)."""
    return run_trial_chunk(plan.sweeps[plan.fold_of(indices)], plan.local(indices))


@dataclass(frozen=True)
class OosRun:
    """A fold's out-of-sample backtest: its config (window, warm-up and chosen parameters
    set) and the market data the driver read for it."""

    fold: int
    config: GraphConfig
    stream: BarStream
    trades: TradeStream | None


@dataclass(frozen=True)
class OosPlan:
    """The out-of-sample backtests of a walk-forward, one task each."""

    runs: tuple[OosRun, ...]


OOS_SCHEMA = pa.schema(
    [
        ("fold", pa.int64()),
        ("error", pa.string()),
        ("error_type", pa.string()),
        ("metrics", pa.string()),
        ("bars", pa.int64()),
        ("fills_digest", pa.string()),
        ("ts_ns", pa.list_(pa.int64())),
        ("equity", pa.list_(pa.float64())),
    ]
)


def run_oos_chunk(plan: OosPlan, indices: Sequence[int]) -> pa.Table:
    """Run out-of-sample backtests ``indices``: the numbers a fold row takes (as exact JSON)
    and the equity curve; an error tradegraph raises on purpose comes back as text and type."""
    rows = []
    for index in indices:
        run = plan.runs[index]
        try:
            result = run_backtest(run.config, run.stream, run.trades)
        except TradegraphError as exc:
            rows.append({"fold": run.fold, "error": str(exc), "error_type": type(exc).__name__})
            continue
        summary = result.summary()
        metrics = {**result.metrics.model_dump(), **summary}
        numbers = {m: metrics.get(m) for m in FOLD_METRICS}
        numbers.update(status=summary["status"], metrics_total_return=result.metrics.total_return)
        rows.append(
            {
                "fold": run.fold,
                "metrics": json.dumps(numbers),
                "bars": result.bars,
                "fills_digest": result.fills_digest,
                "ts_ns": result.ts_ns.tolist(),
                "equity": result.equity.tolist(),
            }
        )
    return pa.Table.from_pylist(rows, schema=OOS_SCHEMA)


@dataclass
class WalkForwardResult:
    """What a walk-forward produced: ``folds`` (one row per fold), the stitched
    ``oos_equity``, the ``summary`` and the files written."""

    folds: pa.Table
    oos_equity: pa.Table
    summary: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)


class WalkForward:
    """A walk-forward of one graph: the Python driver API (CLI: ``tradegraph walkforward``).

    Takes the search arguments of :class:`tradegraph.batch.sweep.Sweep` (``grid``, ``where``,
    ``search``, ``trials``, ``objective``, ``seed``, ``workers``, ``address``, ``in_process``,
    ``runner``) and the windows: ``train``, ``test``, ``step`` (default ``test``),
    ``embargo`` (default 0) as durations (``30d``, ``12h``, ``90m``) and ``anchored``.

    Raises:
        ConfigError: a bad duration, a search argument the sweep refuses, or data that cannot
            hold one fold.
    """

    def __init__(
        self,
        config_path: str | Path | None,
        grid: Sequence[str],
        *,
        train: str,
        test: str,
        step: str | None = None,
        embargo: str | None = None,
        anchored: bool = False,
        overrides: Sequence[str] = (),
        where: Sequence[str] = (),
        search: str = "grid",
        trials: int | None = None,
        objective: str = "sharpe",
        seed: int | None = None,
        workers: int | None = None,
        address: str | None = None,
        out_dir: Path | None = None,
        in_process: bool = False,
        html: bool = True,
        progress: Callable[[int, int, BatchProgress | None], None] | None = None,
        runner: ChunkRunner | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.config_path = config_path
        self.grid = list(grid)
        self.overrides = list(overrides)
        self.where = list(where)
        self.search = search
        self.trials = trials
        self.objective = objective
        self.seed = seed
        self.workers = workers
        self.address = address
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.in_process = in_process
        self.html = html
        self.progress = progress
        self.runner = runner
        self.chunk_size = chunk_size
        self.duplicates_skipped = 0
        """Optuna trials that repeated an earlier trial of their fold's search (not run)."""
        self.anchored = anchored
        self.train_ns = parse_duration(train, "--train")
        self.test_ns = parse_duration(test, "--test")
        self.step_ns = parse_duration(step, "--step") if step is not None else self.test_ns
        self.embargo_ns = parse_duration(embargo, "--embargo") if embargo else 0
        self.config = load_config(config_path, self.overrides)
        stream = load_bar_stream(self.config)
        if not len(stream):
            raise DataError("walk-forward needs bars: the data section lists none")
        self.interval_ns = int(stream.interval_ns.max())
        opens = stream.ts_ns - stream.interval_ns[stream.instrument_index]
        self.data_start_ns = int(opens.min())
        self.data_end_ns = int(stream.ts_ns.max())
        self.folds = plan_folds(
            self.data_start_ns,
            self.data_end_ns,
            train_ns=self.train_ns,
            test_ns=self.test_ns,
            step_ns=self.step_ns,
            embargo_ns=self.embargo_ns,
            anchored=anchored,
        )
        # Checks the grid, constraints, search and objective once, before any fold runs.
        self._sweep(self.folds[0], None)

    def _sweep(self, fold: Fold, out_dir: Path | None) -> Sweep:
        window = window_overrides(self.config, fold.train_start_ns, fold.train_end_ns)
        return Sweep(
            self.config_path,
            self.grid,
            overrides=[*self.overrides, *window],
            where=self.where,
            search=self.search,
            trials=self.trials,
            objective=self.objective,
            seed=self.seed,
            workers=self.workers,
            address=self.address,
            out_dir=out_dir,
            in_process=self.in_process,
            html=False,
            progress=None,
            runner=self.runner,
        )

    def fingerprint(self) -> dict[str, Any]:
        """What defines the walk-forward's folds: a resumed run must match it."""
        return {
            "config": self.config.model_dump(mode="json"),
            "grid": self.grid,
            "where": self.where,
            "search": self.search,
            "trials": self.trials,
            "objective": self.objective,
            "seed": self.seed,
            "folds": [dataclass_row(f) for f in self.folds],
        }

    def oos_overrides(self, fold: Fold, params: dict[str, Any]) -> tuple[list[str], int]:
        """The ``--set`` overrides of fold ``fold``'s out-of-sample backtest with ``params``,
        and its warm-up in bars: the window from the warm-up's start to the test end, and
        ``data.trade_start`` at the test start."""
        chosen = [f"{k}={json.dumps(v)}" for k, v in params.items()]
        config = load_config(self.config_path, [*self.overrides, *chosen])
        bars = warmup_bars(config)
        start = max(self.data_start_ns, fold.test_start_ns - bars * self.interval_ns)
        window = window_overrides(config, start, fold.test_end_ns)
        return [*chosen, *window, f"data.trade_start='{iso(fold.test_start_ns)}'"], bars

    def _folder(self, fold: Fold) -> Path | None:
        return None if self.out_dir is None else self.out_dir / "folds" / f"{fold.index:03d}"

    def run(self) -> WalkForwardResult:
        """Run every fold not yet done; the result carries the tables and the summary.

        The train sweeps of every fold to run go to the pool as one batch of chunks (each
        fold's chunks still written under its ``folds/<k>/train``), then their out-of-sample
        backtests as tasks of the same pool; an optuna search runs its folds' rounds side by
        side. Results do not depend on the worker count or the order chunks finish."""
        started = time.perf_counter()
        fingerprint = self.fingerprint()
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            marker = self.out_dir / "walkforward.json"
            if marker.exists() and json.loads(marker.read_text()) != json.loads(
                json.dumps(fingerprint, default=str)
            ):
                raise ConfigError(
                    f"{self.out_dir} holds another walk-forward (config, grid, search or "
                    "windows differ); use --fresh or another --out"
                )
            marker.write_text(json.dumps(fingerprint, default=str, indent=2) + "\n")
        done: dict[int, tuple[dict[str, Any], pa.Table]] = {}
        todo: list[Fold] = []
        for fold in self.folds:
            folder = self._folder(fold)
            if folder is not None and (folder / "fold.json").exists():
                row = json.loads((folder / "fold.json").read_text())
                done[fold.index] = (row, pq.read_table(folder / "oos_equity.parquet"))
            else:
                todo.append(fold)
        startup_s = self._run_folds(todo, done) if todo else 0.0
        rows: list[dict[str, Any]] = []
        curves: list[tuple[np.ndarray, np.ndarray]] = []
        for fold in self.folds:
            row, curve = done[fold.index]
            rows.append(row)
            curves.append(
                (
                    curve.column("ts_ns").to_numpy().astype(np.int64),
                    curve.column("equity").to_numpy().astype(np.float64),
                )
            )
        elapsed = time.perf_counter() - started
        return self._finish(rows, curves, elapsed, len(todo), startup_s)

    def _run_folds(
        self, todo: Sequence[Fold], done: dict[int, tuple[dict[str, Any], pa.Table]]
    ) -> float:
        """Run the folds ``todo`` on one pool (this process, or Ray through ``runner``) and
        put each finished fold's row and curve into ``done``; return the pool's start-up."""
        sweeps = {}
        for fold in todo:
            folder = self._folder(fold)
            sweeps[fold.index] = self._sweep(fold, None if folder is None else folder / "train")
        pool: contextlib.AbstractContextManager[int] = contextlib.nullcontext(self.workers or 1)
        if not self.in_process:
            if self.runner is None:
                raise ConfigError(
                    "a walk-forward on Ray needs runner=RayChunkRunner() "
                    "(tradegraph.actors.batch); pass in_process=True to run it in this process"
                )
            pool = self.runner.pool(self.address, self.workers)
        startup_s = 0.0
        pool_started = time.perf_counter()
        with pool as concurrency:
            if not self.in_process:
                assert self.runner is not None
                self.runner.prepare(run_fold_trials, concurrency)
                startup_s = time.perf_counter() - pool_started

            def execute(
                task: Callable[[Any, Sequence[int]], pa.Table],
                plan: Any,
                chunks: Sequence[list[int]],
                on_done: Callable[[list[int], pa.Table], None],
                on_lost: Callable[[list[int], str], None],
            ) -> None:
                if self.in_process:
                    for chunk in chunks:
                        on_done(chunk, task(plan, chunk))
                elif chunks:
                    assert self.runner is not None
                    self.runner.run(
                        task,
                        plan,
                        chunks,
                        concurrency=concurrency,
                        on_done=on_done,
                        on_lost=on_lost,
                    )

            if self.search == "optuna":
                results = self._optuna_sweeps(sweeps, execute, concurrency)
            else:
                results = self._grid_sweeps(sweeps, execute, concurrency)
            self._out_of_sample(todo, results, execute, done)
        return startup_s

    def _grid_sweeps(
        self, sweeps: dict[int, Sweep], execute: Executor, concurrency: int
    ) -> dict[int, SweepResult]:
        """Every fold's grid or random train sweep as one batch of chunks: each fold's pending
        trials cut into chunks of one size (about four per worker over all folds), earlier
        folds first."""
        batches = {k: sweep.begin() for k, sweep in sweeps.items()}
        total = sum(len(b.pending) for b in batches.values())
        size = self.chunk_size or max(1, min(MAX_CHUNK, math.ceil(total / (4 * concurrency))))
        parts = {k: (sweeps[k].plan, chunk_indices(b.pending, 1, size)) for k, b in batches.items()}
        _run_fold_chunks(execute, parts, batches)
        return {k: batch.end() for k, batch in batches.items()}

    def _optuna_sweeps(
        self, sweeps: dict[int, Sweep], execute: Executor, concurrency: int
    ) -> dict[int, SweepResult]:
        """Every fold's optuna train search, round by round side by side: each round asks
        every unfinished fold's study, runs all their trials as one batch, and tells each
        study its own results in trial order, as the fold's search alone would."""
        rounds = {k: sweep.begin_optuna() for k, sweep in sweeps.items()}
        active = dict(rounds)
        while active:
            asked = {k: r.ask() for k, r in active.items()}
            active = {k: r for k, r in active.items() if asked[k] is not None}
            parts = {
                k: (sweeps[k].plan, chunk_indices(pending, concurrency, self.chunk_size))
                for k, pending in asked.items()
                if pending
            }
            if parts:
                _run_fold_chunks(execute, parts, active)
            for r in active.values():
                r.tell()
        return {k: r.end() for k, r in rounds.items()}

    def _out_of_sample(
        self,
        todo: Sequence[Fold],
        results: dict[int, SweepResult],
        execute: Executor,
        done: dict[int, tuple[dict[str, Any], pa.Table]],
    ) -> None:
        """Each fold's best parameters on its test window, one task per fold; a finished fold
        is written under ``folds/<k>/`` at once."""
        runs: list[OosRun] = []
        chosen: dict[int, tuple[dict[str, Any], list[str], int]] = {}
        for fold in todo:
            best = results[fold.index].summary["best"]
            if best is None:
                raise ConfigError(
                    f"fold {fold.index}: no trial of the train window {iso(fold.train_start_ns)} "
                    f"to {iso(fold.train_end_ns)} has a finite {self.objective}"
                )
            sets, bars = self.oos_overrides(fold, best["params"])
            config = load_config(self.config_path, [*self.overrides, *sets])
            stream = load_bar_stream(config)
            runs.append(OosRun(fold.index, config, stream, load_trade_stream(config)))
            chosen[fold.index] = (best, sets, bars)
        folds = {fold.index: fold for fold in todo}
        plan = OosPlan(tuple(runs))

        def on_done(chunk: list[int], table: pa.Table) -> None:
            for entry in table.to_pylist():
                fold = folds[entry["fold"]]
                if entry["error"] is not None:
                    kind = {"ConfigError": ConfigError, "DataError": DataError}.get(
                        entry["error_type"], TradegraphError
                    )
                    raise kind(f"fold {fold.index}, out of sample: {entry['error']}")
                best, sets, bars = chosen[fold.index]
                row, curve = self._fold_row(fold, results[fold.index], best, sets, bars, entry)
                folder = self._folder(fold)
                if folder is not None:
                    write_parquet(curve, folder / "oos_equity.parquet")
                    (folder / "fold.json").write_text(json.dumps(row, default=str) + "\n")
                done[fold.index] = (row, curve)
                if self.progress is not None:
                    self.progress(len(done), len(self.folds), None)

        def on_lost(chunk: list[int], error: str) -> None:
            fold = plan.runs[chunk[0]].fold
            raise TradegraphError(f"fold {fold}: its out-of-sample run was lost: {error}")

        execute(run_oos_chunk, plan, [[i] for i in range(len(runs))], on_done, on_lost)

    def _fold_row(
        self,
        fold: Fold,
        result: SweepResult,
        best: dict[str, Any],
        sets: list[str],
        bars: int,
        oos: dict[str, Any],
    ) -> tuple[dict[str, Any], pa.Table]:
        params: dict[str, Any] = best["params"]
        odds = result.summary["overfitting"]
        oos_metrics = json.loads(oos["metrics"])
        row: dict[str, Any] = {
            "fold": fold.index,
            "train_start": iso(fold.train_start_ns),
            "train_end": iso(fold.train_end_ns),
            "test_start": iso(fold.test_start_ns),
            "test_end": iso(fold.test_end_ns),
            "warmup_bars": bars,
            "is_trial": best["trial"],
            **{PARAM_PREFIX + k: v for k, v in params.items()},
            **{f"is_{m}": best["metrics"].get(m) for m in FOLD_METRICS},
            **{f"oos_{m}": oos_metrics.get(m) for m in FOLD_METRICS},
            "oos_bars": oos["bars"],
            "oos_status": oos_metrics["status"],
            "oos_fills_digest": oos["fills_digest"],
            "oos_set": sets,
            "wfe": efficiency(
                best["metrics"]["total_return"], oos_metrics["metrics_total_return"], fold
            ),
            "is_pbo": odds["pbo"]["value"],
            "is_pbo_reason": odds["pbo"].get("reason"),
            "is_deflated_sharpe": odds["deflated_sharpe"]["value"],
            "is_deflated_sharpe_reason": odds["deflated_sharpe"].get("reason"),
        }
        curve = pa.table(
            {
                "ts_ns": np.asarray(oos["ts_ns"], dtype=np.int64),
                "equity": np.asarray(oos["equity"], dtype=np.float64),
            }
        )
        self.duplicates_skipped += int(result.summary.get("duplicates_skipped", 0))
        return row, curve

    def _finish(
        self,
        rows: list[dict[str, Any]],
        curves: list[tuple[np.ndarray, np.ndarray]],
        elapsed_s: float,
        ran: int,
        startup_s: float = 0.0,
    ) -> WalkForwardResult:
        cash = self.config.portfolio.starting_cash
        folds = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "oos_set"} for r in rows])
        oos_equity = stitch(curves, cash)
        ts = oos_equity.column("ts_ns").to_numpy()
        equity = oos_equity.column("equity").to_numpy()
        periods = self.config.report.periods_per_year or infer_periods_per_year(self.interval_ns)
        metrics = compute_metrics(ts, equity, [], cash, periods).model_dump()
        keys = [k.removeprefix(PARAM_PREFIX) for k in rows[0] if k.startswith(PARAM_PREFIX)]
        chosen = [{k: r[PARAM_PREFIX + k] for k in keys} for r in rows]
        wfes = [r["wfe"] for r in rows if r["wfe"] is not None]
        odds = overfitting_summary(rows)
        summary: dict[str, Any] = {
            "name": self.config.name,
            "search": self.search,
            "objective": self.objective,
            "objective_direction": "min" if self.objective in MINIMISED else "max",
            "windows": {
                "train": format_duration_ns(self.train_ns),
                "test": format_duration_ns(self.test_ns),
                "step": format_duration_ns(self.step_ns),
                "embargo": format_duration_ns(self.embargo_ns) if self.embargo_ns else "0s",
                "anchored": self.anchored,
                "data_start": iso(self.data_start_ns),
                "data_end": iso(self.data_end_ns),
            },
            "folds": len(rows),
            "folds_run": ran,
            "fold_rows": [{k: v for k, v in r.items() if k != "oos_set"} for r in rows],
            "walk_forward_efficiency": statistics.fmean(wfes) if wfes else None,
            "walk_forward_efficiency_folds": len(wfes),
            "parameter_stability": parameter_stability(chosen),
            "oos": {
                "starting_cash": cash,
                "final_equity": float(equity[-1]) if equity.size else cash,
                **{
                    m: metrics[m]
                    for m in (
                        "total_return",
                        "cagr",
                        "sharpe",
                        "sortino",
                        "volatility",
                        "max_drawdown",
                        "calmar",
                    )
                },
            },
            "pbo": odds["pbo"]["mean"],
            "deflated_sharpe": odds["deflated_sharpe"]["mean"],
            "oos_loss_share": odds["oos_loss_share"]["value"],
            "overfitting": odds,
            "results_digest": walkforward_digest(folds, oos_equity),
            "elapsed_s": elapsed_s,
            "startup_s": startup_s,
        }
        if self.search == "optuna":
            summary["duplicates_skipped"] = self.duplicates_skipped
        result = WalkForwardResult(folds, oos_equity, summary)
        if self.out_dir is not None:
            out = self.out_dir
            result.paths["folds"] = write_parquet(folds, out / "folds.parquet")
            result.paths["oos_equity"] = write_parquet(oos_equity, out / "oos_equity.parquet")
            summary_path = out / "summary.json"
            summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
            result.paths["summary"] = summary_path
            if self.html:
                result.paths["report"] = write_walkforward_report(
                    out / "report.html",
                    title=f"tradegraph walkforward: {self.config.name}",
                    summary=summary,
                    oos_equity=oos_equity,
                    keys=keys,
                )
        return result


def dataclass_row(fold: Fold) -> dict[str, int]:
    return {
        "index": fold.index,
        "train_start_ns": fold.train_start_ns,
        "train_end_ns": fold.train_end_ns,
        "test_start_ns": fold.test_start_ns,
        "test_end_ns": fold.test_end_ns,
    }
