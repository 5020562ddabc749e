"""Monte Carlo and stress batches: many scenarios, each the full graph in a ``LocalKernel``.

A scenario is ``(root seed, index, price model, stress overlays)``. Its random generator comes
from ``SeedSequence([root_seed, index])``, so its result never depends on which worker ran it,
in which chunk, or in what order. Scenarios are grouped into chunks; a chunk runs in this
process or as one Ray task (the Ray side lives in :mod:`tradegraph.actors.batch`).

Recovery contract:

- A scenario that raises is run once more; if it fails again it becomes a ``failed`` row with
  the error, and the batch goes on. A Ray task whose worker dies is retried once by Ray; if it
  is lost again its scenarios become ``failed`` rows.
- With an output folder, every finished chunk is written at once as its own Parquet file under
  ``chunks/``. A rerun with the same folder (and the same batch definition, checked against
  ``batch.json``) skips scenarios that finished and runs the rest, failed ones included. Ctrl-C
  therefore loses at most the chunks under way.
- ``results_digest`` is sha256 over the canonical per-scenario rows sorted by index (timings
  and error texts left out): equal digests mean identical results.

A scenario's row has two verdicts: ``status`` says whether the scenario could be run at all
(``failed``: it raised twice, or its worker was lost), ``run_status`` whether the run it gave
is a result to trust (``failed`` when a strategy raised and was stopped, the kill switch halted
trading or every order was refused; ``failure_reasons`` says which), as ``tradegraph backtest``
says of one run.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tradegraph.batch import (
    MODEL_NAMES,
    PriceModel,
    StressScenario,
    apply_stress,
    generate_bars,
    resolve_stress,
    scenario_rng,
    scenario_seed,
)
from tradegraph.batch.price_models import JointModel, calibrate_joint, clean_bars
from tradegraph.config.models import GraphConfig
from tradegraph.contracts import KillSwitchChanged
from tradegraph.data.catalog import BarArrays, read_bars, write_parquet
from tradegraph.engine.backtest import (
    BacktestResult,
    load_datasets,
    run_backtest,
    run_backtest_with_kernel,
)
from tradegraph.engine.streams import BarStream, prepare_bar_stream
from tradegraph.errors import ConfigError, DataError
from tradegraph.observability.metrics import BatchMetrics
from tradegraph.report.montecarlo import (
    equity_quantiles,
    sample_curve,
    sample_steps,
    strategy_summary,
    summarize,
    worst_day_return,
    write_montecarlo_report,
)

HISTORY = "history"
DEFAULT_SAMPLE_POINTS = 50
MAX_CHUNK = 50

STRATEGY_TYPE = pa.struct(
    [
        ("strategy_id", pa.string()),
        ("net_pnl", pa.float64()),
        ("realized_pnl", pa.float64()),
        ("unrealized_pnl", pa.float64()),
        ("fees", pa.float64()),
        ("fills", pa.int64()),
        ("orders", pa.int64()),
        ("final_capital", pa.float64()),
        ("allocation_samples", pa.list_(pa.float64())),
    ]
)
"""One strategy's share of a scenario's result; ``final_capital`` and ``allocation_samples``
(capital at evenly spaced times of the run) only with capital allocation."""

ROW_SCHEMA = pa.schema(
    [
        ("index", pa.int64()),
        ("seed", pa.int64()),
        ("model", pa.string()),
        ("overlays", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("attempts", pa.int32()),
        ("bars", pa.int64()),
        ("starting_cash", pa.float64()),
        ("final_equity", pa.float64()),
        ("return", pa.float64()),
        ("max_drawdown", pa.float64()),
        ("sharpe", pa.float64()),
        ("fills", pa.int64()),
        ("orders", pa.int64()),
        ("risk_rejections", pa.int64()),
        ("venue_rejections", pa.int64()),
        ("fees", pa.float64()),
        ("kill_switch_trips", pa.int64()),
        ("liquidations", pa.int64()),
        ("strategies_stopped", pa.int64()),
        ("run_status", pa.string()),
        ("failure_reasons", pa.list_(pa.string())),
        ("worst_day_return", pa.float64()),
        ("fills_digest", pa.string()),
        ("strategies", pa.list_(STRATEGY_TYPE)),
        ("equity_samples", pa.list_(pa.float64())),
        ("elapsed_s", pa.float64()),
    ]
)
# Not part of a scenario's result: how long it took, how often it was tried, how it failed
# (``run_status`` and ``strategies_stopped`` say that it failed; the texts stay out).
DIGEST_EXCLUDED = frozenset({"error", "attempts", "elapsed_s", "failure_reasons"})


@dataclass(frozen=True)
class BatchPlan:
    """Everything a worker needs to run any scenario of a batch (sent once per batch).

    Attributes:
        config: The graph every scenario runs.
        model: A name from ``MODEL_NAMES``, or ``"history"`` to replay the real bars.
        joint: The calibrated models of every dataset and their correlation (``None`` for
            ``history``).
        history: The real datasets: replayed for ``history``, else the starting point of paths.
        stress_sets: Scenario ``i`` applies ``stress_sets[i % len(stress_sets)]`` in order.
        root_seed: Seeds derive from ``(root_seed, index)``.
        bars_per_path: Bars per generated path and instrument.
        sample_points: Points of the equity curve kept per scenario.
    """

    config: GraphConfig
    model: str
    joint: JointModel | None
    history: tuple[BarArrays, ...]
    stress_sets: tuple[tuple[StressScenario, ...], ...]
    root_seed: int
    bars_per_path: int
    sample_points: int = DEFAULT_SAMPLE_POINTS

    @property
    def models(self) -> tuple[PriceModel, ...]:
        """One calibrated model per dataset (empty for ``history``)."""
        return () if self.joint is None else self.joint.models

    def stress_for(self, index: int) -> tuple[StressScenario, ...]:
        return self.stress_sets[index % len(self.stress_sets)]

    def overlay_label(self, index: int) -> str:
        return "+".join(s.name for s in self.stress_for(index)) or "none"


def scenario_inputs(plan: BatchPlan, index: int) -> tuple[GraphConfig, list[BarArrays]]:
    """The config and bars of scenario ``index``: a drawn (or real) path, bent by its stress."""
    if plan.joint is None:
        datasets = list(plan.history)
    else:
        rng = scenario_rng(plan.root_seed, index)
        draws = plan.joint.draw(rng, plan.bars_per_path)
        datasets = []
        for model, draw, real in zip(plan.joint.models, draws, plan.history, strict=True):
            datasets.append(
                generate_bars(
                    model,
                    rng,
                    plan.bars_per_path,
                    start_price=float(real.close[-1]),
                    start_ts_ns=int(real.ts_open_ns[-1]) + real.interval_ns,
                    interval_ns=real.interval_ns,
                    symbol=real.symbol,
                    venue=real.venue,
                    draw=draw,
                )
            )
    return apply_stress(plan.stress_for(index), plan.config, datasets)


def run_scenario(plan: BatchPlan, index: int) -> dict[str, Any]:
    """Run scenario ``index`` through the whole graph and return its result row."""
    started = time.perf_counter()
    config, datasets = scenario_inputs(plan, index)
    stream = prepare_bar_stream(datasets, config.instrument_map())
    result, kernel = run_backtest_with_kernel(config, stream)
    trips = sum(1 for m in kernel.control if isinstance(m, KillSwitchChanged) and m.tripped)
    return result_row(
        plan, index, result, kill_switch_trips=trips, elapsed_s=time.perf_counter() - started
    )


def result_row(
    plan: BatchPlan,
    index: int,
    result: BacktestResult,
    *,
    kill_switch_trips: int,
    elapsed_s: float,
) -> dict[str, Any]:
    """The result row (see ``ROW_SCHEMA``) of scenario ``index`` from its finished run."""
    cash = result.starting_cash
    failures = result.failure_reasons()
    return {
        **_identity(plan, index),
        "status": "ok",
        "error": None,
        "attempts": 1,
        "bars": result.bars,
        "starting_cash": cash,
        "final_equity": result.final_equity,
        "return": result.final_equity / cash - 1.0,
        "max_drawdown": result.metrics.max_drawdown,
        "sharpe": result.metrics.sharpe,
        "fills": len(result.fills),
        "orders": result.orders,
        "risk_rejections": result.risk_rejections,
        "venue_rejections": result.venue_rejections,
        "fees": result.fees,
        "kill_switch_trips": kill_switch_trips,
        "liquidations": result.liquidations,
        "strategies_stopped": len({e.strategy_id for e in result.strategy_errors}),
        "run_status": "failed" if failures else "ok",
        "failure_reasons": failures,
        "worst_day_return": worst_day_return(result.ts_ns, result.equity, cash),
        "fills_digest": result.fills_digest,
        "strategies": strategy_results(result, plan.sample_points),
        "equity_samples": sample_curve(result.equity, plan.sample_points, cash),
        "elapsed_s": elapsed_s,
    }


def strategy_results(result: BacktestResult, sample_points: int) -> list[dict[str, Any]]:
    """One entry per configured strategy (see ``STRATEGY_TYPE``), in configuration order."""
    series = result.allocation_series()
    start = int(result.ts_ns[0]) if result.ts_ns.size else 0
    end = int(result.ts_ns[-1]) if result.ts_ns.size else 0
    out = []
    for strategy in result.config.strategies:
        sid = strategy.id
        row = result.per_strategy.get(sid, {})
        allocation = series.get(sid)
        out.append(
            {
                "strategy_id": sid,
                "net_pnl": row.get("net_pnl", 0.0),
                "realized_pnl": row.get("realized_pnl", 0.0),
                "unrealized_pnl": row.get("unrealized_pnl", 0.0),
                "fees": row.get("fees", 0.0),
                "fills": int(row.get("fills", 0.0)),
                "orders": int(row.get("intents", 0.0)),
                "final_capital": None if allocation is None else allocation[1][-1],
                "allocation_samples": None
                if allocation is None
                else sample_steps(allocation[0], allocation[1], start, end, sample_points),
            }
        )
    return out


def _identity(plan: BatchPlan, index: int) -> dict[str, Any]:
    return {
        "index": index,
        "seed": scenario_seed(plan.root_seed, index),
        "model": plan.model,
        "overlays": plan.overlay_label(index),
    }


def failed_row(plan: BatchPlan, index: int, error: str, attempts: int) -> dict[str, Any]:
    """The row of a scenario that could not be run."""
    row: dict[str, Any] = dict.fromkeys(ROW_SCHEMA.names)
    row.update(_identity(plan, index))
    row.update({"status": "failed", "error": error, "attempts": attempts})
    return row


def describe_error(exc: BaseException) -> str:
    """``Type: message (at file:line)`` of an exception, for a failed row."""
    error = f"{type(exc).__name__}: {exc}"
    last_frame = traceback.extract_tb(exc.__traceback__)[-1:]
    if last_frame:
        error += f" (at {last_frame[0].filename}:{last_frame[0].lineno})"
    return error


def run_each(
    indices: Sequence[int],
    run_one: Callable[[int], dict[str, Any]],
    failed: Callable[[int, str, int], dict[str, Any]],
    *,
    final: tuple[type[Exception], ...] = (),
) -> list[dict[str, Any]]:
    """The rows of ``run_one(i)`` for every index: one that raises is tried once more, then
    becomes ``failed(i, error, attempts)``; an exception of a ``final`` type (one that a
    second try would raise again, such as an invalid configuration) is not retried."""
    rows = []
    for index in indices:
        error = ""
        attempts = 0
        row: dict[str, Any] | None = None
        while row is None and attempts < 2:
            attempts += 1
            try:
                row = run_one(index)
            except final as exc:
                error = f"{type(exc).__name__}: {exc}"  # the message says where already
                break
            except Exception as exc:  # one run's failure must never sink its chunk
                error = describe_error(exc)
        if row is None:
            rows.append(failed(index, error, attempts))
        else:
            row["attempts"] = attempts
            rows.append(row)
    return rows


def run_chunk(plan: BatchPlan, indices: Sequence[int]) -> pa.Table:
    """Run scenarios ``indices``; each one that raises is tried once more, then reported."""
    return rows_to_table(
        run_each(
            indices,
            lambda index: run_scenario(plan, index),
            lambda index, error, attempts: failed_row(plan, index, error, attempts),
        )
    )


def rows_to_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([dict(r) for r in rows], schema=ROW_SCHEMA)


def _canonical(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    return repr(value)


def results_digest(
    table: pa.Table,
    *,
    key: str = "index",
    names: Sequence[str] = ROW_SCHEMA.names,
    excluded: frozenset[str] = DIGEST_EXCLUDED,
) -> str:
    """sha256 over the canonical rows (columns ``names`` but ``excluded``), sorted by ``key``:
    by default a scenario table's, timings left out."""
    names = [n for n in names if n not in excluded]
    h = hashlib.sha256()
    for row in table.select(names).sort_by(key).to_pylist():
        h.update("|".join(_canonical(row[n]) for n in names).encode())
        h.update(b"\n")
    return h.hexdigest()


def merge_results(
    tables: Sequence[pa.Table],
    paths: int,
    *,
    schema: pa.Schema = ROW_SCHEMA,
    key: str = "index",
) -> pa.Table:
    """One row per index (column ``key``) below ``paths``, sorted: a successful row wins over a
    failed one, and among equals the later table wins."""
    if not tables:
        return schema.empty_table()
    combined = pa.concat_tables([t.select(schema.names).cast(schema) for t in tables])
    chosen: dict[int, tuple[int, bool]] = {}
    for position, (index, status) in enumerate(
        zip(
            combined.column(key).to_pylist(),
            combined.column("status").to_pylist(),
            strict=True,
        )
    ):
        if index >= paths:
            continue
        ok = status == "ok"
        previous = chosen.get(index)
        if previous is None or ok or not previous[1]:
            chosen[index] = (position, ok)
    order = [chosen[i][0] for i in sorted(chosen)]
    return combined.take(pa.array(order, pa.int64()))


@dataclass(frozen=True)
class EngineCheck:
    """Scenarios run again in this process and through another engine, compared.

    Attributes:
        engine: The other engine (``ray``: every component in its own Ray actor).
        scenarios: Per scenario: ``index``, ``overlays``, ``bars``, ``fills``,
            ``local_fills_digest``, ``engine_fills_digest``, ``batch_fills_digest`` and
            ``differences`` (what did not match; empty when the runs are identical).
    """

    engine: str
    scenarios: tuple[dict[str, Any], ...]

    @property
    def identical(self) -> bool:
        return all(not s["differences"] for s in self.scenarios)

    @property
    def mismatched(self) -> list[int]:
        return [s["index"] for s in self.scenarios if s["differences"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "scenarios_checked": len(self.scenarios),
            "identical": self.identical,
            "mismatched": self.mismatched,
            "scenarios": [dict(s) for s in self.scenarios],
        }


def run_differences(local: BacktestResult, other: BacktestResult) -> list[str]:
    """What differs between two runs of one scenario: ``bars``, ``fills``, ``equity``,
    ``orders`` (the order ledger) or ``messages`` (counts of every message type published,
    kill-switch changes included). Empty when the runs are identical."""
    differences = []
    if local.bars != other.bars:
        differences.append("bars")
    if local.fills_digest != other.fills_digest or local.fills != other.fills:
        differences.append("fills")
    if (
        local.final_equity != other.final_equity
        or not np.array_equal(local.equity, other.equity)
        or not np.array_equal(local.ts_ns, other.ts_ns)
    ):
        differences.append("equity")
    if not local.ledger.to_table().equals(other.ledger.to_table()):
        differences.append("orders")
    if local.ledger.counts != other.ledger.counts:
        differences.append("messages")
    return differences


def check_engine(
    plan: BatchPlan,
    indices: Sequence[int],
    run_other: Callable[[GraphConfig, BarStream], BacktestResult],
    *,
    engine: str,
    batch_digests: Mapping[int, str] | None = None,
) -> EngineCheck:
    """Run scenarios ``indices`` (stress included) in a ``LocalKernel`` and with ``run_other``
    and compare the two runs; ``batch_digests`` are the fills digests the batch recorded."""
    scenarios = []
    for index in indices:
        config, datasets = scenario_inputs(plan, index)
        stream = prepare_bar_stream(datasets, config.instrument_map())
        local = run_backtest(config, stream)
        other = run_other(config, stream)
        differences = run_differences(local, other)
        recorded = (batch_digests or {}).get(index)
        if recorded is not None and recorded != local.fills_digest:
            differences.append("batch row")
        scenarios.append(
            {
                "index": index,
                "overlays": plan.overlay_label(index),
                "bars": local.bars,
                "fills": len(local.fills),
                "local_fills_digest": local.fills_digest,
                "engine_fills_digest": other.fills_digest,
                "batch_fills_digest": recorded,
                "differences": differences,
            }
        )
    return EngineCheck(engine, tuple(scenarios))


def chunk_indices(indices: Sequence[int], workers: int, chunk_size: int | None) -> list[list[int]]:
    """Split ``indices`` into chunks: about four per worker, at most ``MAX_CHUNK`` each, so that
    task overhead is amortised and the last chunks still balance across workers."""
    if not indices:
        return []
    size = chunk_size or max(1, min(MAX_CHUNK, math.ceil(len(indices) / (4 * workers))))
    return [list(indices[i : i + size]) for i in range(0, len(indices), size)]


Plan = TypeVar("Plan")


class ChunkRunner(Protocol):
    """Runs a batch's chunks off this process (on a Ray cluster). Injected by the caller, so
    batches never import the actor layer (``tradegraph.actors.batch.RayChunkRunner``). Any
    batch (Monte Carlo, sweeps) hands it its own plan and its own module-level chunk task."""

    def pool(self, address: str | None, workers: int | None) -> AbstractContextManager[int]:
        """Join or start the cluster for the block; yield how many chunks may run at once."""
        ...

    def prepare(self, task: Callable[[Plan, Sequence[int]], pa.Table], concurrency: int) -> None:
        """Have ``concurrency`` workers started and ``task``'s module imported in each, so
        the batch's first chunks do not wait for them (this time counts as start-up)."""
        ...

    def run(
        self,
        task: Callable[[Plan, Sequence[int]], pa.Table],
        plan: Plan,
        chunks: Sequence[list[int]],
        *,
        concurrency: int,
        on_done: Callable[[list[int], pa.Table], None],
        on_lost: Callable[[list[int], str], None],
    ) -> None:
        """Run ``task(plan, chunk)`` for every chunk; hand each result or loss on as it ends."""
        ...


def run_chunks(
    task: Callable[[Plan, Sequence[int]], pa.Table],
    plan: Plan,
    pending: Sequence[int],
    *,
    in_process: bool,
    runner: ChunkRunner | None,
    address: str | None,
    workers: int | None,
    chunk_size: int | None,
    on_done: Callable[[list[int], pa.Table], None],
    on_lost: Callable[[list[int], str], None],
    on_ray: Callable[[], None] | None = None,
) -> float:
    """Run ``task(plan, chunk)`` over the chunks of ``pending``, in this process or through
    ``runner``, handing each chunk's table to ``on_done`` as it ends (``on_lost`` when its Ray
    task was lost). ``on_ray`` is called inside the runner's pool after the chunks (for work
    that needs the cluster, such as an engine check), which then starts even with nothing
    pending.

    Returns:
        The start-up time in seconds: starting or joining Ray and readying its workers
        (0.0 in this process).

    Raises:
        ConfigError: Ray is needed and no runner was given.
    """
    startup_s = 0.0
    if pending and in_process:
        for chunk in chunk_indices(pending, 1, chunk_size):
            on_done(chunk, task(plan, chunk))
    if (pending and not in_process) or on_ray is not None:
        if runner is None:
            raise ConfigError(
                "a batch on Ray needs runner=RayChunkRunner() (tradegraph.actors.batch); "
                "pass in_process=True to run it in this process"
            )
        started = time.perf_counter()
        with runner.pool(address, workers) as concurrency:
            if pending and not in_process:
                runner.prepare(task, min(concurrency, len(pending)))
            startup_s = time.perf_counter() - started
            if pending and not in_process:
                runner.run(
                    task,
                    plan,
                    chunk_indices(pending, concurrency, chunk_size),
                    concurrency=concurrency,
                    on_done=on_done,
                    on_lost=on_lost,
                )
            if on_ray is not None:
                on_ray()
    return startup_s


def load_chunks(out_dir: Path, fingerprint: Mapping[str, Any], what: str) -> list[pa.Table]:
    """The chunks a batch wrote into ``out_dir`` earlier, after checking that ``batch.json``
    records the same batch (``fingerprint``); a new folder gets its ``batch.json`` now.

    Raises:
        ConfigError: the folder holds another batch (``what`` says what may differ), or its
            record is unreadable.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    marker = out_dir / "batch.json"
    recorded_now = json.loads(json.dumps(fingerprint, default=str))
    if marker.exists():
        try:
            recorded = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{marker}: unreadable batch record ({exc})") from None
        if recorded != recorded_now:
            raise ConfigError(
                f"{out_dir} holds results of a different batch ({what} differ); "
                "use another --out folder"
            )
    else:
        marker.write_text(json.dumps(recorded_now, indent=1, sort_keys=True) + "\n")
    return [pq.read_table(p) for p in sorted((out_dir / "chunks").glob("chunk-*.parquet"))]


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands; ``done`` counts this run's scenarios plus those resumed."""

    done: int
    total: int
    resumed: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        ran = self.done - self.resumed
        return ran / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


@dataclass
class MonteCarloResult:
    """What a batch produced.

    Attributes:
        table: One row per scenario (see ``ROW_SCHEMA``), sorted by index.
        summary: Risk summary (VaR, CVaR, probabilities, drawdown distribution) and batch facts.
        quantiles: Equity quantiles across successful scenarios at each sample point.
        results_digest: sha256 over the canonical rows; identical for any worker count.
        paths: Files written, by name (empty without an output folder).
        strategies: One row per successful scenario and strategy (pnl, fees, fills, orders,
            allocated capital).
        allocation_quantiles: Per allocated strategy, quantiles across scenarios of its
            capital at each sample point of the run.
    """

    table: pa.Table
    summary: dict[str, Any]
    quantiles: pa.Table
    results_digest: str
    paths: dict[str, Path] = field(default_factory=dict)
    strategies: pa.Table = field(default_factory=lambda: strategies_table(ROW_SCHEMA.empty_table()))
    allocation_quantiles: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.table.filter(
            pc.equal(self.table.column("status"), "failed")
        ).to_pylist()
        return rows


class MonteCarlo:
    """A batch of scenarios of one graph: the Python driver API.

    Example::

        table = MonteCarlo(load_config("my.yaml"), paths=1_000, model="garch",
                           stress=["flash_crash"], workers=8).run()

    Args:
        config: The graph every scenario runs.
        paths: Number of scenarios.
        model: ``gbm``, ``jump``, ``garch``, ``bootstrap``, or ``history`` (the real bars).
        stress: Names of stress scenarios (presets or from ``stress_catalog``) applied, in
            order, to every scenario.
        root_seed: Seeds derive from it and the scenario index; defaults to ``config.seed``.
        bars_per_path: Bars per generated path; defaults to one week at the data's interval.
        workers: Most scenarios chunks run at once (default: every CPU Ray sees).
        address: A Ray cluster to join (``auto``, ``ray://host:10001``); without it a local Ray
            instance starts with ``workers`` CPUs.
        out_dir: Where chunks, results, summary and report go; rerunning into it resumes.
        calibrate_from: A Parquet bar file to calibrate from instead of the config's data.
        stress_catalog: Custom stress scenarios by name (see ``load_stress_file``).
        stress_sets: Instead of ``stress``, scenario ``i`` applies the ``i % len``-th list of
            names (an empty list is the unstressed baseline); used by stress tests.
        ruin_drawdown: A maximum drawdown at or beyond this fraction counts as ruin.
        sample_points: Equity-curve points kept per scenario for the fan chart.
        chunk_size: Scenarios per task (default: about four chunks per worker, at most 50).
        in_process: Run every chunk in this process, without Ray.
        html: Write ``report.html`` into ``out_dir``.
        progress: Called after every finished chunk.
        metrics: Counts scenarios done and failed as chunks finish (driver side).
        check_ray_engine: After the batch, run its first this many successful scenarios
            again, in this process and through the Ray actor graph (every component its own
            actor, stepped through simulated time), and check that both give the same fills,
            equity, orders and messages; the outcome is ``summary["engine_check"]``.
        ray_engine: Runs one scenario (config and bar stream) through the Ray actor graph,
            for ``check_ray_engine``; given by the caller, so batches never import the actors.
        runner: Runs chunks on Ray (``tradegraph.actors.batch.RayChunkRunner()``); needed
            unless ``in_process``.

    Raises:
        ConfigError: an argument is out of range, a model or stress name is unknown, or the
            output folder holds a different batch.
    """

    def __init__(
        self,
        config: GraphConfig,
        paths: int,
        model: str = "gbm",
        stress: Sequence[str] = (),
        root_seed: int | None = None,
        bars_per_path: int | None = None,
        workers: int | None = None,
        address: str | None = None,
        out_dir: Path | None = None,
        *,
        calibrate_from: str | Path | None = None,
        stress_catalog: Mapping[str, StressScenario] | None = None,
        stress_sets: Sequence[Sequence[str]] | None = None,
        ruin_drawdown: float = 0.5,
        sample_points: int = DEFAULT_SAMPLE_POINTS,
        chunk_size: int | None = None,
        in_process: bool = False,
        html: bool = True,
        progress: Callable[[BatchProgress], None] | None = None,
        metrics: BatchMetrics | None = None,
        check_ray_engine: int = 0,
        ray_engine: Callable[[GraphConfig, BarStream], BacktestResult] | None = None,
        runner: ChunkRunner | None = None,
    ) -> None:
        if paths < 1:
            raise ConfigError(f"paths must be >= 1, was {paths}")
        if model not in (*MODEL_NAMES, HISTORY):
            raise ConfigError(f"unknown model {model!r}; choose one of {[*MODEL_NAMES, HISTORY]}")
        if workers is not None and workers < 1:
            raise ConfigError(f"workers must be >= 1, was {workers}")
        if bars_per_path is not None and bars_per_path < 2:
            raise ConfigError(f"bars_per_path must be >= 2, was {bars_per_path}")
        if not 0.0 < ruin_drawdown <= 1.0:
            raise ConfigError(f"ruin_drawdown must be in (0, 1], was {ruin_drawdown}")
        if sample_points < 2:
            raise ConfigError(f"sample_points must be >= 2, was {sample_points}")
        if chunk_size is not None and chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, was {chunk_size}")
        if check_ray_engine < 0:
            raise ConfigError(f"check_ray_engine must be >= 0, was {check_ray_engine}")
        if check_ray_engine and ray_engine is None:
            raise ConfigError("check_ray_engine needs ray_engine, the runner of the actor graph")
        self.config = config
        self.paths = paths
        self.model = model
        self.root_seed = config.seed if root_seed is None else root_seed
        if self.root_seed < 0:
            raise ConfigError(f"root seed must be >= 0, was {self.root_seed}")
        self.bars_per_path = bars_per_path
        self.workers = workers
        self.address = address
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.calibrate_from = calibrate_from
        sets = [list(s) for s in stress_sets] if stress_sets is not None else [list(stress)]
        if not sets:
            raise ConfigError("stress_sets must hold at least one list of names")
        self.stress_sets = tuple(resolve_stress(names, stress_catalog) for names in sets)
        self.ruin_drawdown = ruin_drawdown
        self.sample_points = sample_points
        self.chunk_size = chunk_size
        self.in_process = in_process
        self.html = html
        self.progress = progress
        self.metrics = metrics
        self.check_ray_engine = check_ray_engine
        self.ray_engine = ray_engine
        self.runner = runner
        self._plan: BatchPlan | None = None

    # -- planning ---------------------------------------------------------------------------

    def _history(self) -> tuple[BarArrays, ...]:
        if self.calibrate_from is None:
            datasets = load_datasets(self.config)
        else:
            first = self.config.data.bars[0]
            datasets = read_bars(
                self.calibrate_from,
                symbol=self.config.instruments[0].symbol,
                venue=self.config.instruments[0].venue,
                interval_ns=first.interval_s * 1_000_000_000,
            )
            known = self.config.instrument_map()
            if len(known) == 1 and len(datasets) == 1:
                only = self.config.instruments[0]
                datasets = [replace(datasets[0], symbol=only.symbol, venue=only.venue)]
            missing = [d.instrument_id for d in datasets if d.instrument_id not in known]
            if missing:
                raise DataError(
                    f"{self.calibrate_from}: bars for {missing} have no instrument in the config"
                )
        cleaned = tuple(clean_bars(d) for d in datasets)
        for d in cleaned:
            if len(d) == 0:
                raise DataError(f"{d.instrument_id}: no valid bars to start paths from")
        return cleaned

    def plan(self) -> BatchPlan:
        """Load and calibrate once; the plan is what every worker receives."""
        if self._plan is None:
            history = self._history()
            joint = None if self.model == HISTORY else calibrate_joint(history, self.model)
            interval = history[0].interval_ns
            bars = self.bars_per_path or max(2, 7 * 86_400 * 1_000_000_000 // interval)
            self._plan = BatchPlan(
                config=self.config,
                model=self.model,
                joint=joint,
                history=history,
                stress_sets=self.stress_sets,
                root_seed=self.root_seed,
                bars_per_path=bars if self.model != HISTORY else 0,
                sample_points=self.sample_points,
            )
        return self._plan

    def fingerprint(self) -> dict[str, Any]:
        """What defines the batch's scenarios (not how many): a resumed batch must match it."""
        plan = self.plan()
        data = hashlib.sha256()
        for d in plan.history:
            for column in (d.ts_open_ns, d.open, d.high, d.low, d.close, d.volume):
                data.update(np.ascontiguousarray(column).tobytes())
        return {
            "config": plan.config.model_dump(mode="json"),
            "model": plan.model,
            "models": [m.describe() for m in plan.models],
            "correlation": None
            if plan.joint is None
            else plan.joint.correlation.round(12).tolist(),
            "stress_sets": [[s.model_dump(mode="json") for s in ss] for ss in plan.stress_sets],
            "root_seed": plan.root_seed,
            "bars_per_path": plan.bars_per_path,
            "sample_points": plan.sample_points,
            "data_sha256": data.hexdigest(),
            # Chunks written with other columns cannot be merged with this batch's.
            "result_columns": ROW_SCHEMA.names,
        }

    # -- running ----------------------------------------------------------------------------

    def run(self) -> pa.Table:
        """Run every scenario not yet done and return the table of all of them."""
        return self.run_batch().table

    def run_batch(self) -> MonteCarloResult:
        """Run the batch; the result carries the table, the summary and the digest."""
        started = time.perf_counter()
        plan = self.plan()
        previous = self._load_previous()
        finished = set(_successful(merge_results(previous, self.paths)).column("index").to_pylist())
        pending = [i for i in range(self.paths) if i not in finished]
        tables = list(previous)
        resumed = self.paths - len(pending)
        done = resumed
        if self.metrics is not None:
            self.metrics.set_planned(self.paths)

        def on_chunk(indices: list[int], table: pa.Table) -> None:
            nonlocal done
            tables.append(table)
            if self.out_dir is not None:
                write_chunk(self.out_dir / "chunks", indices, table)
            done += len(indices)
            if self.metrics is not None:
                ok = _successful(table).num_rows
                self.metrics.scenarios_finished(ok, table.num_rows - ok)
            if self.progress is not None:
                self.progress(
                    BatchProgress(done, self.paths, resumed, time.perf_counter() - started)
                )

        def on_lost(indices: list[int], error: str) -> None:
            rows = [failed_row(plan, i, error, attempts=2) for i in indices]
            on_chunk(indices, rows_to_table(rows))

        check: EngineCheck | None = None

        def engine_check() -> None:
            nonlocal check
            check = self._check_ray_engine(merge_results(tables, self.paths))

        startup_s = run_chunks(
            run_chunk,
            plan,
            pending,
            in_process=self.in_process,
            runner=self.runner,
            address=self.address,
            workers=self.workers,
            chunk_size=self.chunk_size,
            on_done=on_chunk,
            on_lost=on_lost,
            on_ray=engine_check if self.check_ray_engine else None,
        )
        table = merge_results(tables, self.paths)
        elapsed_s = time.perf_counter() - started
        return self._finish(table, elapsed_s, len(pending), check, startup_s)

    def _check_ray_engine(self, table: pa.Table) -> EngineCheck:
        assert self.ray_engine is not None
        ok = _successful(table)
        indices = ok.column("index").to_pylist()[: self.check_ray_engine]
        digests = dict(zip(indices, ok.column("fills_digest").to_pylist(), strict=False))
        return check_engine(
            self.plan(), indices, self.ray_engine, engine="ray", batch_digests=digests
        )

    def _load_previous(self) -> list[pa.Table]:
        if self.out_dir is None:
            return []
        return load_chunks(self.out_dir, self.fingerprint(), "config, model, stress, seed or data")

    def _finish(
        self,
        table: pa.Table,
        elapsed_s: float,
        ran: int,
        check: EngineCheck | None = None,
        startup_s: float = 0.0,
    ) -> MonteCarloResult:
        plan = self.plan()
        ok = _successful(table)
        returns = ok.column("return").to_pylist()
        drawdowns = ok.column("max_drawdown").to_pylist()
        digest = results_digest(table)
        summary: dict[str, Any] = {
            "name": self.config.name,
            "model": plan.model,
            "overlays": sorted({plan.overlay_label(i) for i in range(self.paths)}),
            "root_seed": plan.root_seed,
            "bars_per_path": plan.bars_per_path,
            "scenarios": self.paths,
            "scenarios_failed": table.num_rows - ok.num_rows,
            "scenarios_missing": self.paths - table.num_rows,
            "scenarios_run": ran,
            "scenarios_run_failed": _count(ok, "run_status", "failed"),
            "scenarios_with_stopped_strategy": int(
                pc.sum(pc.greater(ok.column("strategies_stopped"), 0)).as_py() or 0
            ),
            "strategies_stopped": int(pc.sum(ok.column("strategies_stopped")).as_py() or 0),
            **summarize(
                returns,
                drawdowns,
                ok.column("kill_switch_trips").to_pylist(),
                self.ruin_drawdown,
                liquidations=ok.column("liquidations").to_pylist(),
            ),
            "calibration": [m.describe() for m in plan.models],
            "correlation": None if plan.joint is None else plan.joint.correlation.tolist(),
            "elapsed_s": elapsed_s,
            "startup_s": startup_s,
            "scenarios_per_s": ran / (elapsed_s - startup_s) if elapsed_s > startup_s else 0.0,
            "results_digest": digest,
        }
        strategy_rows = strategies_table(ok)
        per_strategy = strategy_summary(strategy_rows.to_pylist())
        if per_strategy:
            summary["per_strategy"] = per_strategy
        if check is not None:
            summary["engine_check"] = check.to_dict()
        n_points = plan.sample_points
        quantile_values = equity_quantiles(ok.column("equity_samples").to_pylist())
        quantiles = _quantile_table(quantile_values, n_points)
        allocation = allocation_quantiles(strategy_rows)
        result = MonteCarloResult(
            table,
            summary,
            quantiles,
            digest,
            strategies=strategy_rows,
            allocation_quantiles=allocation,
        )
        if self.out_dir is not None:
            out = self.out_dir
            result.paths["results"] = write_parquet(table, out / "results.parquet")
            result.paths["quantiles"] = write_parquet(quantiles, out / "equity_quantiles.parquet")
            result.paths["strategies"] = write_parquet(strategy_rows, out / "strategies.parquet")
            if allocation:
                result.paths["allocation"] = write_parquet(
                    pa.concat_tables(
                        _quantile_table(values, n_points, strategy_id=sid)
                        for sid, values in allocation.items()
                    ),
                    out / "allocation_quantiles.parquet",
                )
            summary_path = out / "summary.json"
            summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
            result.paths["summary"] = summary_path
            if self.html:
                stress = plan.model == HISTORY
                result.paths["report"] = write_montecarlo_report(
                    out / "report.html",
                    title=f"tradegraph {'stress test' if plan.model == HISTORY else 'Monte Carlo'}: "
                    f"{self.config.name}",
                    summary=summary,
                    quantiles=quantile_values,
                    returns=returns,
                    max_drawdowns=drawdowns,
                    failed=result.failed,
                    config_summary={
                        "model": plan.model,
                        "overlays": ", ".join(summary["overlays"]),
                        "root seed": plan.root_seed,
                        "bars per path": plan.bars_per_path,
                        "strategies": ", ".join(
                            f"{s.id} ({s.class_path})" for s in self.config.strategies
                        ),
                    },
                    per_strategy=per_strategy,
                    allocation_quantiles=allocation,
                    scenarios=_scenario_rows(plan, table) if stress else None,
                    history=None if stress else history_result(plan),
                    currency=self.config.portfolio.currency,
                )
        return result


def describe_stress(scenarios: Sequence[StressScenario]) -> str:
    """What a stress set does, for a report: each scenario's description or its overlays."""
    parts = []
    for scenario in scenarios:
        overlays = "; ".join(
            f"{o.kind} "
            + ", ".join(
                f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in o.model_dump(exclude={"kind"}).items()
                if v is not None
            )
            for o in scenario.overlays
        )
        parts.append(f"{scenario.description} ({overlays})" if scenario.description else overlays)
    return " + ".join(parts)


def _scenario_rows(plan: BatchPlan, table: pa.Table) -> list[dict[str, Any]]:
    """The result rows in scenario order, each with ``applied``: what its stress did."""
    rows = sorted(
        ({k: v for k, v in row.items() if k != "equity_samples"} for row in table.to_pylist()),
        key=lambda row: int(row["index"]),
    )
    for row in rows:
        row["applied"] = describe_stress(plan.stress_for(int(row["index"])))
    return rows


def history_result(plan: BatchPlan) -> dict[str, Any] | None:
    """The strategies on the real history the model was calibrated from, for comparison."""
    if not plan.history or not any(len(d) for d in plan.history):
        return None
    result = run_backtest(
        plan.config, prepare_bar_stream(list(plan.history), plan.config.instrument_map())
    )
    return {
        "return": result.final_equity / result.starting_cash - 1.0,
        "max_drawdown": result.metrics.max_drawdown,
        "bars": result.bars,
    }


def _quantile_table(
    values: Mapping[str, Sequence[float]], n_points: int, strategy_id: str | None = None
) -> pa.Table:
    """Quantile series as a table: one row per sample point (and strategy, when given)."""
    columns: dict[str, pa.Array] = {}
    if strategy_id is not None:
        columns["strategy_id"] = pa.array([strategy_id] * n_points, pa.string())
    columns["point"] = pa.array(range(n_points), pa.int64())
    columns["fraction"] = pa.array([i / (n_points - 1) for i in range(n_points)], pa.float64())
    for name, series in values.items():
        columns[name] = pa.array(list(series) if series else [None] * n_points, pa.float64())
    return pa.table(columns)


def strategies_table(rows: pa.Table) -> pa.Table:
    """One row per (scenario, strategy) of the successful rows of a results table: the
    ``strategies`` column flattened, next to the scenario's index, seed and overlays."""
    flat: list[dict[str, Any]] = []
    for row in rows.select(["index", "seed", "overlays", "strategies"]).to_pylist():
        for entry in row["strategies"] or ():
            flat.append(
                {"index": row["index"], "seed": row["seed"], "overlays": row["overlays"], **entry}
            )
    identity = [("index", pa.int64()), ("seed", pa.int64()), ("overlays", pa.string())]
    schema = pa.schema([*identity, *STRATEGY_TYPE])
    return pa.Table.from_pylist(flat, schema=schema)


def allocation_quantiles(strategies: pa.Table) -> dict[str, dict[str, list[float]]]:
    """Quantiles across scenarios of each allocated strategy's capital over the run."""
    samples: dict[str, list[list[float]]] = {}
    for sid, series in zip(
        strategies.column("strategy_id").to_pylist(),
        strategies.column("allocation_samples").to_pylist(),
        strict=True,
    ):
        if series:
            samples.setdefault(sid, []).append(series)
    return {sid: equity_quantiles(values) for sid, values in samples.items()}


def _count(table: pa.Table, column: str, value: str) -> int:
    return int(pc.sum(pc.equal(table.column(column), value)).as_py() or 0)


def _successful(table: pa.Table) -> pa.Table:
    return table.filter(pc.equal(table.column("status"), "ok"))


def write_chunk(folder: Path, indices: Sequence[int], table: pa.Table) -> Path:
    """Write one finished chunk under a name no earlier chunk took; atomically, so a killed run
    never leaves half a file that a resume would read."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"chunk-{indices[0]:07d}-{len(indices):05d}"
    attempt = 0
    path = folder / f"{stem}.parquet"
    while path.exists():
        attempt += 1
        path = folder / f"{stem}-r{attempt}.parquet"
    partial = path.with_suffix(".partial")
    pq.write_table(table, partial, compression="zstd")
    partial.replace(path)
    return path
