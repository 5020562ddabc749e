"""Parameter sweeps: many configurations of one graph, each a full backtest, on the batch
machinery Monte Carlo uses (:mod:`tradegraph.batch.montecarlo`).

A sweep is a *space* (``--grid KEY=SPEC``, one dimension per key), optional *constraints*
between parameters (``--where "fast_period < slow_period"``) and a *search* that turns them
into a list of trials: ``grid`` (every combination that passes the constraints, the last key
varying fastest) or ``random`` (``trials`` draws without repeats from those combinations,
seeded). Trial ``i`` is the config with trial ``i``'s overrides applied exactly as
``tradegraph backtest --set KEY=VALUE`` applies them, so its fills and metrics are that
backtest's.

Recovery contract (as for Monte Carlo): trials run in chunks; with an output folder every
finished chunk is written at once under ``chunks/``, and a rerun into the same folder (same
sweep, checked against ``batch.json``) runs only the trials that did not finish. A trial whose
config is invalid (a value the config or the strategy refuses) becomes a ``failed`` row at
once; one that raises otherwise is tried once more first. ``results_digest`` is sha256 over
the rows sorted by trial (timings and error texts left out), so it is the same for any worker
count and chunk order.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import dataclasses
import hashlib
import itertools
import json
import math
import operator
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from tradegraph.batch.montecarlo import (
    BatchProgress,
    ChunkRunner,
    chunk_indices,
    describe_error,
    load_chunks,
    merge_results,
    results_digest,
    run_chunks,
    run_each,
    write_chunk,
)
from tradegraph.config.loader import format_validation_error, include_instruments, read_raw
from tradegraph.config.models import GraphConfig
from tradegraph.config.overrides import apply_overrides, parse_value, set_dotted
from tradegraph.data.catalog import write_parquet
from tradegraph.engine.backtest import (
    BacktestResult,
    load_bar_stream,
    load_trade_stream,
    run_backtest,
)
from tradegraph.engine.shared import run_shared_backtests
from tradegraph.engine.streams import BarStream, TradeStream
from tradegraph.errors import ConfigError
from tradegraph.report.sweep import write_sweep_report
from tradegraph.research.overfitting import (
    deflated_sharpe_ratio_from_returns,
    probability_of_backtest_overfitting,
)
from tradegraph.strategies.registry import load_strategy_class, use_strategy_modules

if TYPE_CHECKING:
    from tradegraph.batch.optuna_search import OptunaSearch

SEARCHES = ("grid", "random", "optuna")
MAX_COMBINATIONS = 1_000_000
"""The most combinations a space may hold before constraints (a guard against typos such as
``1:1e9:1``)."""
NS_PER_DAY = 86_400 * 1_000_000_000
PARAM_PREFIX = "param."

SUMMARY_METRICS: tuple[tuple[str, pa.DataType], ...] = (
    ("bars", pa.int64()),
    ("trade_ticks", pa.int64()),
    ("intents", pa.int64()),
    ("orders", pa.int64()),
    ("risk_rejections", pa.int64()),
    ("venue_rejections", pa.int64()),
    ("kill_switch_trips", pa.int64()),
    ("fills", pa.int64()),
    ("starting_cash", pa.float64()),
    ("final_equity", pa.float64()),
    ("pnl", pa.float64()),
    ("fees", pa.float64()),
    ("total_return", pa.float64()),
    ("sharpe", pa.float64()),
    ("sortino", pa.float64()),
    ("max_drawdown", pa.float64()),
    ("calmar", pa.float64()),
    ("round_trips", pa.int64()),
    ("win_rate", pa.float64()),
    ("profit_factor", pa.float64()),
    ("dropped_rows", pa.int64()),
)
"""The numbers of ``BacktestResult.summary()``, as ``tradegraph backtest --json`` prints them."""

PERFORMANCE_METRICS: tuple[tuple[str, pa.DataType], ...] = (
    ("cagr", pa.float64()),
    ("volatility", pa.float64()),
    ("max_drawdown_duration_s", pa.float64()),
    ("avg_trade_pnl", pa.float64()),
    ("gross_profit", pa.float64()),
    ("gross_loss", pa.float64()),
    ("exposure_time", pa.float64()),
)
"""The rest of the run's ``PerformanceMetrics`` (``report/performance.py``)."""

METRIC_NAMES = tuple(name for name, _ in (*SUMMARY_METRICS, *PERFORMANCE_METRICS))
OBJECTIVES = tuple(
    n for n in METRIC_NAMES if n not in {"bars", "trade_ticks", "starting_cash", "dropped_rows"}
)
MINIMISED = frozenset(
    {
        "max_drawdown",
        "max_drawdown_duration_s",
        "volatility",
        "fees",
        "risk_rejections",
        "venue_rejections",
        "kill_switch_trips",
    }
)
"""Objectives where less is better; every other objective is maximised."""

DIGEST_EXCLUDED = frozenset({"error", "attempts", "elapsed_s", "failure_reasons"})


# -- the space -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    """One swept key and the values it takes.

    Attributes:
        key: The config path, e.g. ``strategies.sma.params.fast_period``.
        spec: The text it was given as (``10,20,40``, ``10:100:10``, ``log:1e-4:1e-1:4``).
        values: Every value, in order.
        low: For a range, its start (a continuous search may draw between ``low`` and ``high``).
        high: For a range, its end.
        log: The range is log-spaced.
        step: For a linear range, its step (negative when it counts down).
    """

    key: str
    spec: str
    values: tuple[Any, ...]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @property
    def name(self) -> str:
        """The last segment of the key (``fast_period``)."""
        return self.key.rsplit(".", 1)[-1]


def _number(text: str, where: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ConfigError(f"{where}: {text.strip()!r} is not a number") from None
    if not value.is_finite():
        raise ConfigError(f"{where}: {text.strip()!r} is not a finite number")
    return value


def _is_int(text: str) -> bool:
    body = text.strip().lstrip("+-")
    return body.isdigit()


def parse_dimension(entry: str, flag: str = "--grid") -> Dimension:
    """One ``KEY=SPEC`` entry: a list ``10,20,40``, a range ``START:END:STEP`` (ints when all
    three are, else floats; the end is included when it lands on a step) or a log range
    ``log:START:END:COUNT`` (``COUNT`` log-spaced floats from ``START`` to ``END``).

    Raises:
        ConfigError: one line naming the entry and what is wrong with it.
    """
    key, sep, spec = entry.partition("=")
    key = key.strip()
    where = f"{flag} {entry}"
    if not sep or not key or not spec.strip():
        raise ConfigError(f"{flag} {entry!r}: expected KEY=SPEC, e.g. fast_period=10,20,40")
    if any(not part for part in key.split(".")):
        raise ConfigError(f"{where}: the key {key!r} has an empty segment")
    spec = spec.strip()
    if spec.startswith("log:"):
        parts = spec[4:].split(":")
        if len(parts) != 3:
            raise ConfigError(f"{where}: a log range is log:START:END:COUNT")
        start, end = (float(_number(p, where)) for p in parts[:2])
        if not _is_int(parts[2]) or int(parts[2]) < 2:
            raise ConfigError(f"{where}: COUNT must be a whole number >= 2, was {parts[2]!r}")
        if start <= 0 or end <= 0:
            raise ConfigError(f"{where}: a log range needs START and END > 0")
        if start == end:
            raise ConfigError(f"{where}: START and END are equal")
        count = int(parts[2])
        if count > MAX_COMBINATIONS:
            raise ConfigError(f"{where}: more than {MAX_COMBINATIONS:,} values")
        exponents = np.linspace(math.log10(start), math.log10(end), count)
        values = tuple(float(f"{10.0**e:.12g}") for e in exponents)
        return Dimension(key, spec, values, low=start, high=end, log=True)
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) != 3:
            raise ConfigError(f"{where}: a range is START:END:STEP (or log:START:END:COUNT)")
        start_d, end_d, step_d = (_number(p, where) for p in parts)
        if step_d == 0:
            raise ConfigError(f"{where}: STEP must not be 0")
        if (end_d - start_d) * step_d < 0:
            raise ConfigError(f"{where}: STEP {parts[2]} never gets from {parts[0]} to {parts[1]}")
        count = int((end_d - start_d) / step_d) + 1
        if count > MAX_COMBINATIONS:
            raise ConfigError(f"{where}: {count:,} values, more than {MAX_COMBINATIONS:,}")
        as_int = all(_is_int(p) for p in parts)
        decimals = [start_d + i * step_d for i in range(count)]
        values = tuple(int(d) if as_int else float(d) for d in decimals)
        step = int(step_d) if as_int else float(step_d)
        return Dimension(key, spec, values, low=float(start_d), high=float(end_d), step=step)
    items = [item.strip() for item in spec.split(",")]
    if any(not item for item in items):
        raise ConfigError(f"{where}: an empty value in the list")
    values = tuple(parse_value(item, flag) for item in items)
    seen: list[Any] = []
    for item, value in zip(items, values, strict=True):
        if value in seen:
            raise ConfigError(f"{where}: the value {item} is given twice")
        seen.append(value)
    return Dimension(key, spec, values)


def parse_space(entries: Sequence[str]) -> tuple[Dimension, ...]:
    """Every ``--grid`` entry as a dimension, in the order given.

    Raises:
        ConfigError: an entry is malformed, a key is given twice, or the space is too big.
    """
    if not entries:
        raise ConfigError("a sweep needs at least one --grid KEY=SPEC")
    dims = tuple(parse_dimension(e) for e in entries)
    keys = [d.key for d in dims]
    for key in keys:
        if keys.count(key) > 1:
            raise ConfigError(f"--grid {key}: the key is given more than once")
    if math.prod(len(d.values) for d in dims) > MAX_COMBINATIONS:
        raise ConfigError(
            f"--grid: {math.prod(len(d.values) for d in dims):,} combinations, more than "
            f"{MAX_COMBINATIONS:,}"
        )
    return dims


# -- constraints -----------------------------------------------------------------------------

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` of a chain of plain attribute accesses on a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


@dataclass(frozen=True)
class Constraint:
    """One ``--where`` expression over swept parameters, checked without ``eval``.

    Names are the swept keys' last segments (when no other key ends the same) or the full
    keys; the expression may use numbers, ``< <= > >= == !=``, ``and or not`` and ``+ - * /``.
    """

    text: str
    tree: ast.Expression
    names: Mapping[str, str]
    """Name in the expression -> swept key."""

    def holds(self, params: Mapping[str, Any]) -> bool:
        """Whether the parameters (by key) satisfy the constraint.

        Raises:
            ConfigError: the expression cannot be evaluated for them (division by zero,
                comparing text with a number).
        """
        try:
            return bool(self._eval(self.tree.body, params))
        except (ZeroDivisionError, TypeError) as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
            raise ConfigError(f"--where {self.text!r}: {exc} (for {shown})") from None

    def _eval(self, node: ast.expr, params: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name | ast.Attribute):
            return params[self.names[_dotted(node) or ""]]
        if isinstance(node, ast.BoolOp):
            values = (self._eval(v, params) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand, params)
            if isinstance(node.op, ast.Not):
                return not value
            return -value if isinstance(node.op, ast.USub) else +value
        if isinstance(node, ast.BinOp):
            return _ARITHMETIC[type(node.op)](
                self._eval(node.left, params), self._eval(node.right, params)
            )
        assert isinstance(node, ast.Compare)
        left = self._eval(node.left, params)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self._eval(comparator, params)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True


def parameter_names(dims: Sequence[Dimension]) -> dict[str, str]:
    """The names a ``--where`` may use: every full key, and each last segment no other key
    shares."""
    names = {d.key: d.key for d in dims}
    for d in dims:
        if sum(1 for other in dims if other.name == d.name) == 1:
            names.setdefault(d.name, d.key)
    return names


def parse_constraint(text: str, dims: Sequence[Dimension]) -> Constraint:
    """Parse a ``--where`` expression with :mod:`ast` and refuse anything but names of swept
    parameters, numbers, comparisons, ``and or not`` and ``+ - * /``.

    Raises:
        ConfigError: a syntax error, an unknown name, or a construct that is not allowed.
    """
    names = parameter_names(dims)
    where = f"--where {text!r}"
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"{where}: not an expression ({exc.msg})") from None

    def check(node: ast.AST) -> None:
        if isinstance(node, ast.Name | ast.Attribute):
            dotted = _dotted(node)
            if dotted is None or dotted not in names:
                shown = dotted or ast.unparse(node)
                raise ConfigError(
                    f"{where}: {shown!r} is not a swept parameter; use one of {sorted(names)}"
                )
            return
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise ConfigError(f"{where}: only numbers may appear, not {node.value!r}")
            return
        allowed = (
            isinstance(node, ast.Expression | ast.BoolOp | ast.Compare)
            or (
                isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub | ast.UAdd)
            )
            or (isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC)
            or isinstance(node, ast.And | ast.Or | ast.Not | ast.USub | ast.UAdd)
            or type(node) in _COMPARE
            or type(node) in _ARITHMETIC
        )
        if not allowed:
            raise ConfigError(
                f"{where}: {type(node).__name__} is not allowed; use names of swept "
                "parameters, numbers, comparisons, and/or/not and + - * /"
            )
        for child in ast.iter_child_nodes(node):
            check(child)

    check(tree)
    return Constraint(text, tree, names)


# -- trials ----------------------------------------------------------------------------------


def combinations(
    dims: Sequence[Dimension], constraints: Sequence[Constraint] = ()
) -> list[dict[str, Any]]:
    """Every combination of the dimensions' values that passes every constraint, in grid
    order: the first key varies slowest, the last fastest."""
    keys = [d.key for d in dims]
    out = []
    for values in itertools.product(*(d.values for d in dims)):
        params = dict(zip(keys, values, strict=True))
        if all(c.holds(params) for c in constraints):
            out.append(params)
    return out


def plan_trials(
    dims: Sequence[Dimension],
    constraints: Sequence[Constraint] = (),
    *,
    search: str = "grid",
    trials: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The trials of a search, each a mapping key -> value, in trial order.

    ``grid``: every combination passing the constraints (``trials``, if given, must not be
    fewer). ``random``: ``trials`` of them drawn without repeats by a generator seeded by
    ``seed``, in the order drawn; the same arguments always give the same trials.

    Raises:
        ConfigError: an unknown search, no combination passes the constraints, or ``random``
            without ``trials``.
    """
    if search not in SEARCHES:
        raise ConfigError(f"--search {search!r}: choose one of {list(SEARCHES)}")
    if search == "optuna":
        raise ConfigError(
            "--search optuna draws each round of trials from the results of the rounds "
            "before; run it through Sweep, which plans as it goes"
        )
    candidates = combinations(dims, constraints)
    if not candidates:
        raise ConfigError("no combination of the --grid values passes --where")
    if search == "grid":
        return candidates
    if trials is None:
        raise ConfigError("--search random needs --trials N")
    if trials > len(candidates):
        raise ConfigError(
            f"--trials {trials}: the grid and --where allow only {len(candidates)} distinct "
            "combinations; ask for fewer or use --search grid"
        )
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0x5EE9])))
    picks = rng.choice(len(candidates), size=trials, replace=False)
    return [candidates[int(i)] for i in picks]


def _walk(tree: Any, key: str) -> bool:
    """Whether ``key`` names a place in ``tree`` (list elements by index, id, name or symbol)."""
    node = tree
    for part in key.split("."):
        if isinstance(node, dict):
            if part not in node:
                return False
            node = node[part]
        elif isinstance(node, list):
            match = [
                item
                for item in node
                if isinstance(item, dict)
                and part in (item.get("id"), item.get("name"), item.get("symbol"))
            ]
            if part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
                node = node[int(part)]
            elif match:
                node = match[0]
            else:
                return False
        else:
            return False
    return True


def known_tree(config: GraphConfig) -> dict[str, Any]:
    """The config as plain data with every default filled in, strategy parameters included
    (each strategy's ``Params`` model), for checking that a swept key exists."""
    tree: dict[str, Any] = config.model_dump(mode="json")
    for raw, strategy in zip(tree.get("strategies", []), config.strategies, strict=True):
        params_model = load_strategy_class(strategy.class_path).Params
        # Invalid parameters are left as given: the strategy says what is wrong when built.
        with contextlib.suppress(ValidationError):
            raw["params"] = params_model.model_validate(strategy.params).model_dump(mode="json")
    return tree


# -- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepPlan:
    """Everything a worker needs to run any trial of a sweep (sent once per sweep).

    Attributes:
        raw: The config as loaded (``--set`` applied), before validation.
        source: The config's label for error messages.
        base_dir: The config's folder (relative ``instruments_file`` paths start there).
        keys: The swept keys, in ``--grid`` order.
        trials: Trial ``i``'s values, by key.
        stream: The bars every trial replays, loaded once (None when a swept key changes the
            data or instruments: then every trial loads its own).
        trades: The trade ticks, likewise.
        schema: The columns of a trial's row (see :func:`row_schema`).
    """

    raw: dict[str, Any]
    source: str
    base_dir: str
    keys: tuple[str, ...]
    trials: tuple[dict[str, Any], ...]
    stream: BarStream | None
    trades: TradeStream | None
    schema: pa.Schema

    def trial_config(self, index: int) -> GraphConfig:
        """Trial ``index``'s config: its values set as ``--set`` sets them, then validated.

        Raises:
            ConfigError: the config refuses a value (the message names the field).
        """
        raw = copy.deepcopy(self.raw)
        for key, value in self.trials[index].items():
            set_dotted(raw, key, value, flag="--grid")
        raw = include_instruments(raw, Path(self.base_dir), self.source)
        try:
            config = GraphConfig.model_validate(raw)
        except ValidationError as exc:
            message = format_validation_error(exc, self.source).replace("\n", "; ")
            raise ConfigError(message) from None
        for strategy in config.strategies:
            params_model = load_strategy_class(strategy.class_path).Params
            try:
                params_model.model_validate(strategy.params)
            except ValidationError as exc:
                problems = "; ".join(
                    f"strategies.{strategy.id}.params."
                    + ".".join(str(p) for p in err["loc"])
                    + f": {err['msg'].removeprefix('Value error, ')}"
                    for err in exc.errors(include_url=False)
                )
                raise ConfigError(problems) from None
        return config


def param_type(dim: Dimension) -> pa.DataType:
    """The Arrow type of a ``param.<key>`` column."""
    values = dim.values
    if all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pa.float64()
    return pa.string()


def row_schema(dims: Sequence[Dimension]) -> pa.Schema:
    """The columns of a trial row: identity, ``param.<key>``, verdicts, every metric, the
    fills digest and the per-day returns (those go to ``daily_returns.parquet``)."""
    return pa.schema(
        [
            ("trial", pa.int64()),
            *((PARAM_PREFIX + d.key, param_type(d)) for d in dims),
            ("status", pa.string()),
            ("error", pa.string()),
            ("attempts", pa.int32()),
            ("run_status", pa.string()),
            ("failure_reasons", pa.list_(pa.string())),
            *SUMMARY_METRICS,
            *PERFORMANCE_METRICS,
            ("fills_digest", pa.string()),
            ("day_ns", pa.list_(pa.int64())),
            ("daily_returns", pa.list_(pa.float64())),
            ("elapsed_s", pa.float64()),
        ]
    )


DAILY_COLUMNS = ("day_ns", "daily_returns")


def daily_returns(
    ts_ns: npt.ArrayLike, equity: npt.ArrayLike, starting_cash: float
) -> tuple[list[int], list[float]]:
    """Close-to-close returns over UTC days (the first day from ``starting_cash``): the start
    of each day (ns) and its return."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    values = np.asarray(equity, dtype=np.float64)
    if values.size == 0:
        return [], []
    day = ts // NS_PER_DAY
    ends = np.append(np.flatnonzero(np.diff(day) != 0), values.size - 1)
    closes = values[ends]
    previous = np.concatenate(([starting_cash], closes[:-1]))
    safe = np.where(previous > 0.0, previous, 1.0)
    returns = np.where(previous > 0.0, closes / safe - 1.0, 0.0)
    return (day[ends] * NS_PER_DAY).tolist(), returns.tolist()


def trial_row(
    plan: SweepPlan, index: int, result: BacktestResult, elapsed_s: float
) -> dict[str, Any]:
    """The row of trial ``index`` from its finished backtest."""
    summary = result.summary()
    metrics = result.metrics.model_dump()
    days, returns = daily_returns(result.ts_ns, result.equity, result.starting_cash)
    return {
        **_identity(plan, index),
        "status": "ok",
        "error": None,
        "attempts": 1,
        "run_status": summary["status"],
        "failure_reasons": summary["failure_reasons"],
        **{name: summary[name] for name, _ in SUMMARY_METRICS},
        **{name: metrics[name] for name, _ in PERFORMANCE_METRICS},
        "fills_digest": summary["fills_digest"],
        "day_ns": days,
        "daily_returns": returns,
        "elapsed_s": elapsed_s,
    }


def _identity(plan: SweepPlan, index: int) -> dict[str, Any]:
    return {
        "trial": index,
        **{PARAM_PREFIX + k: v for k, v in plan.trials[index].items()},
    }


def run_trial(plan: SweepPlan, index: int) -> dict[str, Any]:
    """Run trial ``index``'s backtest (in this process) and return its row."""
    started = time.perf_counter()
    config = plan.trial_config(index)
    if plan.stream is None and plan.trades is None:
        result = run_backtest(config)
    else:
        result = run_backtest(config, plan.stream or BarStream.empty(), plan.trades)
    return trial_row(plan, index, result, time.perf_counter() - started)


def failed_trial_row(plan: SweepPlan, index: int, error: str, attempts: int) -> dict[str, Any]:
    return {**_identity(plan, index), "status": "failed", "error": error, "attempts": attempts}


SHARED_PASS_TRIALS = 16
"""At most this many trials share one pass over the market data (each keeps its own graph,
equity curve and ledger in memory until the pass ends)."""


def run_trial_chunk(plan: SweepPlan, indices: Sequence[int]) -> pa.Table:
    """Run trials ``indices``: an invalid config fails its trial at once, any other error
    after a second try; the chunk always comes back.

    When the sweep loaded its market data once (no swept key changes it), the trials replay
    it in shared passes (:func:`run_shared_trials`); otherwise each runs its own backtest.
    """
    if (plan.stream is None and plan.trades is None) or len(indices) < 2:
        rows = _run_each_trial(plan, indices)
    else:
        rows = run_shared_trials(plan, indices)
    return pa.Table.from_pylist(rows, schema=plan.schema)


def _run_each_trial(plan: SweepPlan, indices: Sequence[int]) -> list[dict[str, Any]]:
    return run_each(
        indices,
        lambda index: run_trial(plan, index),
        lambda index, error, attempts: failed_trial_row(plan, index, error, attempts),
        final=(ConfigError,),
    )


def run_shared_trials(plan: SweepPlan, indices: Sequence[int]) -> list[dict[str, Any]]:
    """The rows of trials ``indices``, run in passes of up to :data:`SHARED_PASS_TRIALS` that
    share one replay of the sweep's market data (``engine.shared``).

    Each row is the row :func:`run_trial` gives, with the same retry rule as
    :func:`run_trial_chunk`: a trial whose config is refused runs the unshared way (and fails
    at once); a trial that raises in the pass counts that as its first attempt and is tried
    once more alone, unless the error is a ``ConfigError`` (a second try would raise it again).
    """
    rows: dict[int, dict[str, Any]] = {}
    configs: dict[int, GraphConfig] = {}
    alone: list[int] = []
    for index in indices:
        try:
            configs[index] = plan.trial_config(index)
        except Exception:
            alone.append(index)
    for index, row in zip(alone, _run_each_trial(plan, alone), strict=True):
        rows[index] = row
    groups: dict[str, list[int]] = {}
    for index, config in configs.items():
        key = config.data.model_dump_json() + repr(config.instruments)
        groups.setdefault(key, []).append(index)
    passes = [
        group[lo : lo + SHARED_PASS_TRIALS]
        for group in groups.values()
        for lo in range(0, len(group), SHARED_PASS_TRIALS)
    ]
    for batch in passes:
        started = time.perf_counter()
        results = run_shared_backtests(
            [configs[i] for i in batch], plan.stream or BarStream.empty(), plan.trades
        )
        share_s = (time.perf_counter() - started) / len(batch)
        for index, outcome in zip(batch, results, strict=True):
            if isinstance(outcome, Exception):
                rows[index] = _after_shared_failure(plan, index, outcome)
            else:
                rows[index] = trial_row(plan, index, outcome, share_s)
    return [rows[index] for index in indices]


def _after_shared_failure(plan: SweepPlan, index: int, error: Exception) -> dict[str, Any]:
    """A trial that raised in a shared pass (its first attempt): as :func:`run_each` would
    have it after that first attempt."""
    if isinstance(error, ConfigError):
        return failed_trial_row(plan, index, f"{type(error).__name__}: {error}", attempts=1)
    try:
        row = run_trial(plan, index)
    except Exception as exc:  # one trial's failure must never sink its chunk
        return failed_trial_row(plan, index, describe_error(exc), attempts=2)
    row["attempts"] = 2
    return row


# -- the batch -------------------------------------------------------------------------------


def best_trial(table: pa.Table, objective: str) -> dict[str, Any] | None:
    """The successful trial with the best ``objective`` (lowest for :data:`MINIMISED`, else
    highest); ties go to the lowest trial index. Trials whose run failed count only when no
    trial's run succeeded."""
    rows = [r for r in table.to_pylist() if r["status"] == "ok"]
    trusted = [r for r in rows if r["run_status"] == "ok"] or rows
    scored = [r for r in trusted if r[objective] is not None and math.isfinite(r[objective])]
    if not scored:
        return None
    sign = 1.0 if objective in MINIMISED else -1.0
    chosen: dict[str, Any] = min(scored, key=lambda r: (sign * r[objective], r["trial"]))
    return chosen


@dataclass
class SweepResult:
    """What a sweep produced.

    Attributes:
        table: One row per trial (``results.parquet``), sorted by trial.
        daily: Per-day returns, one row per trial and one column per UTC day.
        summary: ``trials``, ``trials_failed``, ``best``, ``results_digest``, ``elapsed_s``...
        paths: Files written, by name.
    """

    table: pa.Table
    daily: pa.Table
    summary: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def results_digest(self) -> str:
        return str(self.summary["results_digest"])

    @property
    def failed(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.table.filter(
            pc.equal(self.table.column("status"), "failed")
        ).to_pylist()
        return rows


def daily_table(table: pa.Table) -> pa.Table:
    """Trials x days: a ``trial`` column, then one column of returns per UTC day (named
    ``YYYY-MM-DD``); a trial without a return for a day has a null there."""
    trials = table.column("trial").to_pylist()
    series = [
        dict(zip(days or [], returns or [], strict=True))
        for days, returns in zip(
            table.column("day_ns").to_pylist(),
            table.column("daily_returns").to_pylist(),
            strict=True,
        )
    ]
    all_days = sorted({d for s in series for d in s})
    columns: dict[str, pa.Array] = {"trial": pa.array(trials, pa.int64())}
    for day in all_days:
        label = datetime.fromtimestamp(day / 1e9, UTC).strftime("%Y-%m-%d")
        columns[label] = pa.array([s.get(day) for s in series], pa.float64())
    return pa.table(columns)


PBO_MAX_SPLITS = 16
"""The most blocks CSCV cuts the days into (the paper's 16: C(16, 8) = 12,870 combinations)."""
PBO_MIN_BLOCK_DAYS = 2


def pbo_splits(days: int) -> int | None:
    """The blocks CSCV cuts ``days`` into: the largest even S <= :data:`PBO_MAX_SPLITS` with
    at least :data:`PBO_MIN_BLOCK_DAYS` days in every block; None when not even 2 blocks fit."""
    splits = min(PBO_MAX_SPLITS, days // PBO_MIN_BLOCK_DAYS)
    splits -= splits % 2
    return splits if splits >= 2 else None


def returns_matrix(table: pa.Table) -> tuple[list[int], npt.NDArray[np.float64]]:
    """The successful trials and their per-day returns as a days x trials matrix, over the
    days every one of them has (with one data set, all their days)."""
    ok = table.filter(pc.equal(table.column("status"), "ok"))
    trials = ok.column("trial").to_pylist()
    series = [
        dict(zip(days or [], returns or [], strict=True))
        for days, returns in zip(
            ok.column("day_ns").to_pylist(), ok.column("daily_returns").to_pylist(), strict=True
        )
    ]
    common = sorted(set.intersection(*(set(s) for s in series))) if series else []
    matrix = np.array([[s[d] for s in series] for d in common], dtype=np.float64)
    return trials, matrix.reshape(len(common), len(trials))


def overfitting_odds(table: pa.Table, best: int | None) -> dict[str, Any]:
    """How likely the sweep's winner is a fluke, from the successful trials' per-day returns:
    the probability of backtest overfitting (CSCV, :func:`pbo_splits` blocks) and the deflated
    Sharpe ratio of trial ``best`` given the number of trials. A statistic that cannot be
    computed is None, with the reason beside it."""
    trials, matrix = returns_matrix(table)
    days, count = matrix.shape
    pbo: dict[str, Any] = {"value": None, "days": days, "trials": count, "n_splits": None}
    dsr: dict[str, Any] = {"value": None, "days": days, "trials": count, "trial": best}
    if count < 2:
        pbo["reason"] = dsr["reason"] = f"needs at least 2 successful trials, had {count}"
    else:
        splits = pbo_splits(days)
        if splits is None:
            pbo["reason"] = (
                f"needs at least {2 * PBO_MIN_BLOCK_DAYS} days of returns (2 blocks of "
                f"{PBO_MIN_BLOCK_DAYS}), had {days}"
            )
        else:
            found = probability_of_backtest_overfitting(matrix, n_splits=splits)
            pbo.update(value=found.pbo, n_splits=splits, days_used=found.rows_used)
        if days < 2:
            dsr["reason"] = f"needs at least 2 days of returns, had {days}"
        elif best is None:
            dsr["reason"] = "no best trial"
        else:
            try:
                deflated = deflated_sharpe_ratio_from_returns(matrix, trials.index(best))
            except ConfigError as exc:
                dsr["reason"] = str(exc)
            else:
                dsr.update(
                    value=deflated.deflated_sharpe_ratio,
                    sharpe_per_day=deflated.sharpe,
                    expected_max_sharpe_per_day=deflated.expected_max_sharpe,
                )
    return {"pbo": pbo, "deflated_sharpe": dsr}


class Sweep:
    """A sweep of one graph over a parameter space: the Python driver API.

    Example::

        result = Sweep("my.yaml", ["strategies.sma.params.fast_period=10:60:10",
                                   "strategies.sma.params.slow_period=120,240"],
                       where=["fast_period < slow_period"], in_process=True).run()

    Args:
        config_path: The graph config file (None: the packaged default).
        grid: ``KEY=SPEC`` entries (see :func:`parse_dimension`).
        overrides: ``--set`` overrides applied to the config before any trial's.
        where: Constraints between swept parameters (see :func:`parse_constraint`).
        search: ``grid`` or ``random``.
        trials: Draws of a random search.
        objective: The metric that ranks trials (one of :data:`OBJECTIVES`).
        seed: Seeds a random search (default: the config's seed).
        workers: Most trial chunks at once on Ray (default: every CPU Ray sees).
        address: A Ray cluster to join.
        out_dir: Where chunks, results, summary and report go; rerunning into it resumes.
        chunk_size: Trials per task (default: about four chunks per worker, at most 50).
        in_process: Run every chunk in this process, without Ray.
        html: Write ``report.html``.
        heatmap: The two keys (or last segments) the report's heatmap spans (default: the
            first two swept).
        progress: Called after every finished chunk.
        runner: Runs chunks on Ray (``tradegraph.actors.batch.RayChunkRunner()``).

    Raises:
        ConfigError: a malformed or unknown key, a bad spec or constraint, an unknown
            objective, or an output folder holding another sweep.
    """

    def __init__(
        self,
        config_path: str | Path | None,
        grid: Sequence[str],
        *,
        overrides: Sequence[str] = (),
        where: Sequence[str] = (),
        search: str = "grid",
        trials: int | None = None,
        objective: str = "sharpe",
        seed: int | None = None,
        workers: int | None = None,
        address: str | None = None,
        out_dir: Path | None = None,
        chunk_size: int | None = None,
        in_process: bool = False,
        html: bool = True,
        heatmap: Sequence[str] | None = None,
        progress: Callable[[BatchProgress], None] | None = None,
        runner: ChunkRunner | None = None,
    ) -> None:
        if objective not in OBJECTIVES:
            raise ConfigError(f"--objective {objective!r}: choose one of {list(OBJECTIVES)}")
        if workers is not None and workers < 1:
            raise ConfigError(f"workers must be >= 1, was {workers}")
        if trials is not None and trials < 1:
            raise ConfigError(f"--trials must be >= 1, was {trials}")
        if chunk_size is not None and chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, was {chunk_size}")
        raw, source = read_raw(config_path)
        self.config_path = config_path
        raw = apply_overrides(raw, list(overrides))
        base_dir = str(Path(config_path).parent if config_path is not None else Path.cwd())
        try:
            base = GraphConfig.model_validate(include_instruments(raw, Path(base_dir), source))
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, source)) from None
        use_strategy_modules(base, config_path)
        self.config = base
        self.dims = parse_space(grid)
        tree = known_tree(base)
        for dim in self.dims:
            self._check_key(dim, raw, tree, base_dir, source)
        self.constraints = tuple(parse_constraint(w, self.dims) for w in where)
        self.search = search
        self.root_seed = base.seed if seed is None else seed
        self.trials_wanted = trials
        self.round_size = workers or os.cpu_count() or 1
        """Trials an optuna search asks for at a time (``workers``, else this machine's CPUs)."""
        self.trials_pruned = 0
        """Proposals of an optuna search that ``--where`` rejected, unrun."""
        self.duplicates_skipped = 0
        """Trials of an optuna search that repeated an earlier trial's values and took its
        row instead of running again."""
        if search == "optuna":
            if trials is None:
                raise ConfigError("--search optuna needs --trials N")
            trial_values: list[dict[str, Any]] = []  # drawn round by round as results come in
        else:
            trial_values = plan_trials(
                self.dims, self.constraints, search=search, trials=trials, seed=self.root_seed
            )
        self.objective = objective
        self.workers = workers
        self.address = address
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.chunk_size = chunk_size
        self.in_process = in_process
        self.html = html
        self.heatmap_keys = self._heatmap_keys(heatmap)
        self.progress = progress
        self.runner = runner
        shares_data = not any(
            d.key.split(".")[0] in ("data", "instruments", "instruments_file") for d in self.dims
        )
        self.plan = SweepPlan(
            raw=raw,
            source=source,
            base_dir=base_dir,
            keys=tuple(d.key for d in self.dims),
            trials=tuple(trial_values),
            stream=load_bar_stream(base) if shares_data else None,
            trades=load_trade_stream(base) if shares_data else None,
            schema=row_schema(self.dims),
        )
        self.schema = self.plan.schema

    @property
    def trials(self) -> int:
        if self.search == "optuna" and self.trials_wanted is not None:
            return self.trials_wanted
        return len(self.plan.trials)

    def _check_key(
        self, dim: Dimension, raw: dict[str, Any], tree: dict[str, Any], base_dir: str, source: str
    ) -> None:
        """Refuse a key that names no place in the config: it must exist in the config with
        its defaults, or the config must accept it when the first value is applied."""
        if _walk(tree, dim.key):
            return
        trial = copy.deepcopy(raw)
        try:
            set_dotted(trial, dim.key, dim.values[0], flag="--grid")
            GraphConfig.model_validate(include_instruments(trial, Path(base_dir), source))
        except (ConfigError, ValidationError):
            pass
        else:
            if ".params." not in f".{dim.key}":
                return
        parent = dim.key.rsplit(".", 1)[0] if "." in dim.key else ""
        raise ConfigError(
            f"--grid {dim.key}: no such key in the config"
            + (f" (is {parent} spelled right? see tradegraph config reference)" if parent else "")
        )

    def _heatmap_keys(self, heatmap: Sequence[str] | None) -> tuple[str, ...]:
        if heatmap is None:
            return tuple(d.key for d in self.dims[:2])
        names = parameter_names(self.dims)
        keys = []
        for name in heatmap:
            if name not in names:
                raise ConfigError(
                    f"--heatmap {name!r}: not a swept parameter; use one of {sorted(names)}"
                )
            keys.append(names[name])
        if len(keys) != 2 or keys[0] == keys[1]:
            raise ConfigError("--heatmap takes two different swept parameters, KEY1,KEY2")
        return tuple(keys)

    def fingerprint(self) -> dict[str, Any]:
        """What defines the sweep's trials: a resumed sweep must match it."""
        data = hashlib.sha256()
        for stream in (self.plan.stream, self.plan.trades):
            if stream is None:
                continue
            data.update(repr(stream.instrument_ids).encode())
            for f in dataclasses.fields(stream):
                value = getattr(stream, f.name)
                if isinstance(value, np.ndarray):
                    data.update(np.ascontiguousarray(value).tobytes())
        return {
            "config": self.config.model_dump(mode="json"),
            "grid": [{"key": d.key, "spec": d.spec} for d in self.dims],
            "trials": self._trials_fingerprint(),
            "data_sha256": data.hexdigest(),
            "result_columns": self.schema.names,
        }

    def _trials_fingerprint(self) -> Any:
        if self.search != "optuna":
            return json.loads(json.dumps(list(self.plan.trials), default=str))
        # Not the number of trials: a rerun with a larger --trials extends the same search.
        return {
            "search": "optuna",
            "seed": self.root_seed,
            "round_size": self.round_size,
            "objective": self.objective,
            "where": [c.text for c in self.constraints],
        }

    def run(self) -> SweepResult:
        """Run every trial not yet done; the result carries the table and the summary."""
        if self.search == "optuna":
            return self._run_optuna()
        batch = self.begin()
        startup_s = run_chunks(
            run_trial_chunk,
            self.plan,
            batch.pending,
            in_process=self.in_process,
            runner=self.runner,
            address=self.address,
            workers=self.workers,
            chunk_size=self.chunk_size,
            on_done=batch.on_chunk,
            on_lost=batch.on_lost,
        )
        return batch.end(startup_s)

    def begin(self) -> SweepBatch:
        """The trials of a grid or random sweep still to run (earlier chunks in ``out_dir``
        are read back), for a caller that runs them itself: hand every finished chunk to
        :meth:`SweepBatch.on_chunk`, then call :meth:`SweepBatch.end`. :meth:`run` does this
        with its own pool; a walk-forward runs many sweeps' chunks on one."""
        if self.search == "optuna":
            raise ConfigError("an optuna sweep runs in rounds: use begin_optuna()")
        started = time.perf_counter()
        total = self.trials
        previous = (
            []
            if self.out_dir is None
            else load_chunks(
                self.out_dir, self.fingerprint(), "config, grid, constraints, search, seed or data"
            )
        )
        merged = merge_results(previous, total, schema=self.schema, key="trial")
        finished = set(
            merged.filter(pc.equal(merged.column("status"), "ok")).column("trial").to_pylist()
        )
        pending = [i for i in range(total) if i not in finished]
        return SweepBatch(self, pending, list(previous), started)

    def _run_optuna(self) -> SweepResult:
        """Ask ``round_size`` trials of the TPE sampler, run them as one set of chunks, tell
        their results in trial order, repeat (see :mod:`tradegraph.batch.optuna_search`)."""
        rounds = self.begin_optuna()
        pool: contextlib.AbstractContextManager[int] = contextlib.nullcontext(self.round_size)
        startup_s = 0.0
        if not self.in_process:
            if self.runner is None:
                raise ConfigError(
                    "a sweep on Ray needs runner=RayChunkRunner() (tradegraph.actors.batch); "
                    "pass in_process=True to run it in this process"
                )
            pool = self.runner.pool(self.address, self.workers)
        pool_started = time.perf_counter()
        with pool as concurrency:
            if not self.in_process:
                assert self.runner is not None
                self.runner.prepare(run_trial_chunk, concurrency)
                startup_s = time.perf_counter() - pool_started
            while (pending := rounds.ask()) is not None:
                if self.in_process:
                    for chunk in chunk_indices(pending, 1, self.chunk_size):
                        rounds.on_chunk(chunk, run_trial_chunk(self.plan, chunk))
                elif pending:
                    assert self.runner is not None
                    self.runner.run(
                        run_trial_chunk,
                        self.plan,
                        chunk_indices(pending, concurrency, self.chunk_size),
                        concurrency=concurrency,
                        on_done=rounds.on_chunk,
                        on_lost=rounds.on_lost,
                    )
                rounds.tell()
        return rounds.end(startup_s)

    def begin_optuna(self) -> OptunaRounds:
        """The rounds of an optuna search, for a caller that runs each round's trials itself
        (see :class:`OptunaRounds`); earlier chunks in ``out_dir`` are read back."""
        # Imported here: optuna is needed only by this search, and takes a while to import.
        from tradegraph.batch.optuna_search import OptunaSearch

        started = time.perf_counter()
        previous = (
            []
            if self.out_dir is None
            else load_chunks(
                self.out_dir,
                self.fingerprint(),
                "config, grid, constraints, objective, seed, workers or data",
            )
        )
        recorded = {
            row["trial"]: row
            for row in merge_results(
                previous, self.trials, schema=self.schema, key="trial"
            ).to_pylist()
            if row["status"] == "ok"
        }
        search = OptunaSearch(
            self.dims, self.constraints, minimise=self.objective in MINIMISED, seed=self.root_seed
        )
        return OptunaRounds(self, search, recorded, started)

    def _finish(
        self, table: pa.Table, elapsed_s: float, ran: int, startup_s: float = 0.0
    ) -> SweepResult:
        digest = results_digest(
            table, key="trial", names=self.schema.names, excluded=DIGEST_EXCLUDED
        )
        best = best_trial(table, self.objective)
        ok = table.filter(pc.equal(table.column("status"), "ok"))
        summary: dict[str, Any] = {
            "name": self.config.name,
            "search": self.search,
            "objective": self.objective,
            "objective_direction": "min" if self.objective in MINIMISED else "max",
            "grid": {d.key: list(d.values) for d in self.dims},
            "where": [c.text for c in self.constraints],
            "seed": self.root_seed,
            "trials": self.trials,
            "trials_failed": table.num_rows - ok.num_rows,
            "trials_missing": self.trials - table.num_rows,
            "trials_run": ran,
            "trials_run_failed": int(
                pc.sum(pc.equal(ok.column("run_status"), "failed")).as_py() or 0
            ),
            "best": None
            if best is None
            else {
                "trial": best["trial"],
                "params": {k: best[PARAM_PREFIX + k] for k in self.plan.keys},
                "metrics": {n: best[n] for n in METRIC_NAMES},
                "fills_digest": best["fills_digest"],
            },
            "results_digest": digest,
            "elapsed_s": elapsed_s,
            "startup_s": startup_s,
            "trials_per_s": ran / (elapsed_s - startup_s) if elapsed_s > startup_s else 0.0,
        }
        odds = overfitting_odds(table, None if best is None else best["trial"])
        summary["pbo"] = odds["pbo"]["value"]
        summary["deflated_sharpe"] = odds["deflated_sharpe"]["value"]
        summary["overfitting"] = odds
        if self.search == "optuna":
            summary["round_size"] = self.round_size
            summary["trials_pruned"] = self.trials_pruned
            summary["duplicates_skipped"] = self.duplicates_skipped
        results = table.drop_columns(list(DAILY_COLUMNS))
        daily = daily_table(table)
        result = SweepResult(results, daily, summary)
        if self.out_dir is not None:
            out = self.out_dir
            result.paths["results"] = write_parquet(results, out / "results.parquet")
            result.paths["daily_returns"] = write_parquet(daily, out / "daily_returns.parquet")
            summary_path = out / "summary.json"
            summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
            result.paths["summary"] = summary_path
            if self.html:
                result.paths["report"] = write_sweep_report(
                    out / "report.html",
                    title=f"tradegraph sweep: {self.config.name}",
                    rows=results.to_pylist(),
                    keys=list(self.plan.keys),
                    objective=self.objective,
                    minimise=self.objective in MINIMISED,
                    heatmap=self.heatmap_keys,
                    summary=summary,
                )
        return result


class SweepBatch:
    """A grid or random sweep's trials under way (:meth:`Sweep.begin`): its caller runs
    ``pending`` in chunks, hands each finished one to :meth:`on_chunk` (a lost one to
    :meth:`on_lost`) and ends with :meth:`end`. Every chunk is written to the sweep's folder
    as it arrives, so an interrupted batch resumes from it."""

    def __init__(
        self, sweep: Sweep, pending: list[int], tables: list[pa.Table], started: float
    ) -> None:
        self.sweep = sweep
        self.pending = pending
        """The trials not done yet, in trial order."""
        self.tables = tables
        self.started = started
        self.resumed = sweep.trials - len(pending)
        self.done = self.resumed

    def on_chunk(self, indices: list[int], table: pa.Table) -> None:
        sweep = self.sweep
        self.tables.append(table)
        if sweep.out_dir is not None:
            write_chunk(sweep.out_dir / "chunks", indices, table)
        self.done += len(indices)
        if sweep.progress is not None:
            elapsed = time.perf_counter() - self.started
            sweep.progress(BatchProgress(self.done, sweep.trials, self.resumed, elapsed))

    def on_lost(self, indices: list[int], error: str) -> None:
        rows = [failed_trial_row(self.sweep.plan, i, error, attempts=2) for i in indices]
        self.on_chunk(indices, pa.Table.from_pylist(rows, schema=self.sweep.schema))

    def end(self, startup_s: float = 0.0) -> SweepResult:
        """The sweep's result once every pending chunk was handed on; ``startup_s`` is the
        pool's start-up inside the time since :meth:`Sweep.begin`."""
        sweep = self.sweep
        table = merge_results(self.tables, sweep.trials, schema=sweep.schema, key="trial")
        elapsed = time.perf_counter() - self.started
        return sweep._finish(table, elapsed, len(self.pending), startup_s)


def _values_key(values: Mapping[str, Any]) -> str:
    """A trial's values as text that tells ``1``, ``1.0`` and ``true`` apart."""
    return json.dumps(list(values.items()), default=str)


class OptunaRounds:
    """An optuna sweep's rounds (:meth:`Sweep.begin_optuna`), for a caller that runs each
    round's trials itself: :meth:`ask` proposes the next ``round_size`` trials and returns
    those to run (None when the search is done); the caller runs them on ``sweep.plan`` in
    chunks, hands each to :meth:`on_chunk` (or :meth:`on_lost`), then calls :meth:`tell`;
    :meth:`end` gives the result. Several sweeps' rounds may run side by side on one pool
    (a walk-forward does): each study still sees exactly its own asks and tells.

    A proposal whose values an earlier trial of the search already had is not run again: it
    takes that trial's row (``trial`` and ``elapsed_s`` its own) once the row is known, is told
    to the study like any trial, and counts in ``duplicates_skipped``. A backtest is a
    function of its config, so the row is the one a second run would give, and
    ``results_digest`` is unchanged.
    """

    def __init__(
        self,
        sweep: Sweep,
        search: OptunaSearch,
        recorded: dict[int, dict[str, Any]],
        started: float,
    ) -> None:
        self.sweep = sweep
        self.search = search
        self.recorded = recorded
        self.started = started
        self.rows: dict[int, dict[str, Any]] = {}
        self.params: list[dict[str, Any]] = []
        self.first_of: dict[str, int] = {}
        """Values (:func:`_values_key`) -> the first trial that had them."""
        self.asked: list[tuple[int, Any]] = []
        self.copies: dict[int, int] = {}
        """This round's duplicate trials -> the earlier trial whose row each takes."""
        self.ran = 0
        self.resumed = 0

    def ask(self) -> list[int] | None:
        """Propose the next round; the trials of it to run (None: the search is done)."""
        sweep = self.sweep
        if len(self.params) >= sweep.trials:
            return None
        asked = self.search.ask(min(sweep.round_size, sweep.trials - len(self.params)))
        first = len(self.params)
        self.params.extend(p for _, p in asked)
        sweep.plan = dataclasses.replace(sweep.plan, trials=tuple(self.params))
        self.asked = [(first + n, trial) for n, (trial, _) in enumerate(asked)]
        self.copies = {}
        pending = []
        for n, (_, values) in enumerate(asked):
            index = first + n
            key = _values_key(values)
            earlier = self.first_of.setdefault(key, index)
            row = self.recorded.get(index)
            if row is not None and all(row[PARAM_PREFIX + k] == v for k, v in values.items()):
                self.rows[index] = row
                self.resumed += 1
            elif earlier != index:
                self.copies[index] = earlier
            else:
                pending.append(index)
        self.ran += len(pending)
        return pending

    def on_chunk(self, indices: list[int], table: pa.Table) -> None:
        sweep = self.sweep
        if sweep.out_dir is not None:
            write_chunk(sweep.out_dir / "chunks", indices, table)
        for row in table.to_pylist():
            self.rows[row["trial"]] = row
        if sweep.progress is not None:
            elapsed = time.perf_counter() - self.started
            sweep.progress(BatchProgress(len(self.rows), sweep.trials, self.resumed, elapsed))

    def on_lost(self, indices: list[int], error: str) -> None:
        failed = [failed_trial_row(self.sweep.plan, i, error, attempts=2) for i in indices]
        self.on_chunk(indices, pa.Table.from_pylist(failed, schema=self.sweep.schema))

    def tell(self) -> None:
        """Fill this round's duplicates from their earlier trials' rows, then tell the study
        every result of the round in trial order."""
        for index, earlier in sorted(self.copies.items()):
            self.rows[index] = {**self.rows[earlier], "trial": index, "elapsed_s": 0.0}
            self.sweep.duplicates_skipped += 1
        for index, trial in self.asked:
            self.search.tell(trial, self.rows[index], self.sweep.objective)

    def end(self, startup_s: float = 0.0) -> SweepResult:
        sweep = self.sweep
        sweep.trials_pruned = self.search.pruned
        rows = [self.rows[i] for i in sorted(self.rows)]
        table = pa.Table.from_pylist(rows, schema=sweep.schema)
        elapsed = time.perf_counter() - self.started
        return sweep._finish(table, elapsed, self.ran, startup_s)
