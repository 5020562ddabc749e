"""Runs as pandas DataFrames: the output folders of backtests, sessions, Monte Carlo and stress
batches and sweeps, loaded for a notebook; and a backtest run from Python.

A folder argument may be a run's own folder, a ``latest`` link, or a command's base folder
(``out/backtest``), which stands for its newest run. Anything else is refused with one
:class:`~tradegraph.errors.DataError` line naming the folder or file. A run that failed is
loaded like any other; its ``summary["status"]`` is ``"failed"`` and says so.

pandas is imported when a loader runs, not with this module, so the ``tradegraph`` command
starts without it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradegraph.config import GraphConfig, apply_overrides, config_from_mapping, load_config
from tradegraph.errors import DataError
from tradegraph.strategies.registry import use_strategy_modules

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from tradegraph.engine.backtest import BacktestResult

LATEST = "latest"
RUN_FILES = ("equity.parquet", "fills.parquet", "orders.parquet", "summary.json")
"""What every backtest, paper or live run folder holds (see ``report/outputs.py``)."""
MONTECARLO_FILES = ("results.parquet", "equity_quantiles.parquet", "summary.json")
SWEEP_FILES = ("results.parquet", "summary.json")
PARAM_PREFIX = "param."


@dataclass(frozen=True)
class Run:
    """One backtest, paper or live run.

    Attributes:
        path: The run's folder (None for a run made in memory by :func:`run_backtest`).
        equity: Account equity, one row per curve point: an ``equity`` column on a UTC
            ``DatetimeIndex`` named ``ts``.
        fills: One row per fill (``fills.parquet`` columns), plus ``ts``, the fill's UTC time.
        orders: One row per order (``orders.parquet`` columns), plus ``ts``, its UTC submit time.
        summary: ``summary.json`` as written: ``status`` is ``"failed"`` for a failed run.
        session: ``session.json`` of a paper or live session, else None.
        result: The in-memory result when the run was made by :func:`run_backtest`.
    """

    path: Path | None
    equity: pd.DataFrame
    fills: pd.DataFrame
    orders: pd.DataFrame
    summary: dict[str, Any]
    session: dict[str, Any] | None = None
    config: GraphConfig | None = None
    result: BacktestResult | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The config's name, as recorded in the summary."""
        return str(self.summary.get("name") or (self.path.name if self.path else "run"))

    @property
    def failed(self) -> bool:
        return self.summary.get("status") == "failed"


@dataclass(frozen=True)
class MonteCarloRun:
    """A Monte Carlo or stress batch (see ``batch/montecarlo.py``).

    Attributes:
        results: One row per scenario (``results.parquet``); ``status`` says whether it ran.
        quantiles: Equity quantiles across scenarios at each sample point.
        strategies: One row per scenario and strategy (empty when the file is absent).
        allocation: Per-strategy capital quantiles, when strategies were allocated, else None.
        summary: ``summary.json`` (VaR, CVaR, drawdowns, ``results_digest``...).
    """

    path: Path
    results: pd.DataFrame
    quantiles: pd.DataFrame
    strategies: pd.DataFrame | None
    allocation: pd.DataFrame | None
    summary: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.summary.get("name") or self.path.name)


@dataclass(frozen=True)
class SweepRun:
    """A parameter sweep: one row per trial.

    Attributes:
        results: ``results.parquet``: ``trial``, ``param.<key>`` columns, ``status``, every
            metric of a backtest summary, ``fills_digest``.
        daily_returns: Per-day returns as periods x trials (a UTC ``DatetimeIndex`` of days,
            one column per trial), the matrix the overfitting statistics take; None when the
            sweep wrote no ``daily_returns.parquet``.
        summary: ``summary.json``: ``trials``, ``best``, ``results_digest``...
    """

    path: Path
    results: pd.DataFrame
    daily_returns: pd.DataFrame | None
    summary: dict[str, Any]

    @property
    def params(self) -> list[str]:
        """The swept keys (``param.`` columns without their prefix), in column order."""
        return [c[len(PARAM_PREFIX) :] for c in self.results.columns if c.startswith(PARAM_PREFIX)]

    @property
    def best(self) -> dict[str, Any] | None:
        best: dict[str, Any] | None = self.summary.get("best")
        return best


# -- folders --------------------------------------------------------------------------------


def _is_output(folder: Path) -> bool:
    return (folder / "summary.json").is_file() or (folder / "session.json").is_file()


def resolve_run_folder(path: str | Path) -> Path:
    """The run folder ``path`` names: itself when it holds a run's outputs, its ``latest``
    link's target, or else the newest run folder inside it (a command's base folder).

    Raises:
        DataError: ``path`` does not exist, is not a folder, or holds no run.
    """
    folder = Path(path)
    if not folder.exists():
        raise DataError(f"{folder}: no such run folder")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a run folder (a file; give the folder that holds it)")
    if _is_output(folder):
        return folder.resolve()
    latest = folder / LATEST
    if latest.is_dir() and _is_output(latest):
        return latest.resolve()
    runs = [
        child
        for child in folder.iterdir()
        if child.is_dir() and child.name != LATEST and _is_output(child)
    ]
    if not runs:
        raise DataError(
            f"{folder}: not a run folder (no summary.json or session.json in it or in a "
            "folder below it)"
        )
    return max(runs, key=lambda child: (_written_ns(child), child.name)).resolve()


def _written_ns(folder: Path) -> int:
    marker = folder / "summary.json"
    return (marker if marker.is_file() else folder / "session.json").stat().st_mtime_ns


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: missing") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _read_table(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DataError(f"{path}: missing")
    try:
        return pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as Parquet ({exc})") from None


def _require(folder: Path, names: Sequence[str], kind: str) -> None:
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{folder}: not a complete {kind} folder, missing {', '.join(missing)}")


def _kind(folder: Path) -> str:
    """What wrote ``folder``: ``run``, ``sweep`` or ``montecarlo``."""
    if (folder / "equity.parquet").is_file() or (folder / "session.json").is_file():
        return "run"
    if (folder / "equity_quantiles.parquet").is_file():
        return "montecarlo"
    if (folder / "results.parquet").is_file():
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(folder / "results.parquet").names
        except (OSError, ValueError) as exc:
            raise DataError(f"{folder / 'results.parquet'}: cannot be read ({exc})") from None
        return "sweep" if "trial" in names else "montecarlo"
    return "run"


def _refuse_other_kind(folder: Path, wanted: str) -> None:
    kind = _kind(folder)
    if kind != wanted:
        loader = {"run": "load_run", "sweep": "load_sweep", "montecarlo": "load_montecarlo"}
        raise DataError(f"{folder}: a {kind} folder, not a {wanted}; use {loader[kind]}()")


# -- frames ---------------------------------------------------------------------------------


def _utc(ns: Any) -> pd.DatetimeIndex:
    import pandas as pd

    return pd.DatetimeIndex(pd.to_datetime(ns, unit="ns", utc=True))


def equity_frame(ts_ns: Any, equity: Any) -> pd.DataFrame:
    """An equity curve as a DataFrame: ``equity`` on a UTC ``DatetimeIndex`` named ``ts``."""
    import numpy as np
    import pandas as pd

    index = _utc(np.asarray(ts_ns, dtype=np.int64))
    index.name = "ts"
    return pd.DataFrame({"equity": np.asarray(equity, dtype=np.float64)}, index=index)


def _with_time(table: pa.Table, column: str) -> pd.DataFrame:
    frame = table.to_pandas()
    frame["ts"] = _utc(frame[column].to_numpy(dtype="int64"))
    return frame


def _frames(
    equity: pa.Table, fills: pa.Table, orders: pa.Table, where: Path | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    for table, name, column in (
        (equity, "equity.parquet", "ts_ns"),
        (fills, "fills.parquet", "ts_event_ns"),
        (orders, "orders.parquet", "ts_submit_ns"),
    ):
        if column not in table.column_names:
            place = where / name if where else name
            raise DataError(f"{place}: no {column!r} column; not written by tradegraph")
    if "equity" not in equity.column_names:
        place = where / "equity.parquet" if where else "equity.parquet"
        raise DataError(f"{place}: no 'equity' column; not written by tradegraph")
    return (
        equity_frame(equity.column("ts_ns").to_numpy(), equity.column("equity").to_numpy()),
        _with_time(fills, "ts_event_ns"),
        _with_time(orders, "ts_submit_ns"),
    )


# -- loaders --------------------------------------------------------------------------------


def load_run(path: str | Path) -> Run:
    """Load a backtest, paper or live run folder (see ``report/outputs.py``).

    Args:
        path: The run's folder, a ``latest`` link, or a base folder such as ``out/backtest``
            (its newest run).

    Raises:
        DataError: Not a run folder (or a sweep or Monte Carlo one), or a file is missing or
            unreadable; the message names it.
    """
    folder = resolve_run_folder(path)
    _refuse_other_kind(folder, "run")
    session = _read_json(folder / "session.json") if (folder / "session.json").is_file() else None
    if session is not None and not (folder / "summary.json").is_file():
        raise DataError(
            f"{folder}: the session wrote no outputs (session.json only, "
            f"status {session.get('status', 'unknown')!r})"
        )
    _require(folder, RUN_FILES, "run")
    summary = _read_json(folder / "summary.json")
    equity, fills, orders = _frames(
        _read_table(folder / "equity.parquet"),
        _read_table(folder / "fills.parquet"),
        _read_table(folder / "orders.parquet"),
        folder,
    )
    return Run(folder, equity, fills, orders, summary, session=session)


def load_montecarlo(path: str | Path) -> MonteCarloRun:
    """Load a Monte Carlo or stress batch folder (``tradegraph montecarlo`` / ``stress``).

    Raises:
        DataError: Not such a folder, or a file is missing or unreadable.
    """
    folder = resolve_run_folder(path)
    _refuse_other_kind(folder, "montecarlo")
    _require(folder, MONTECARLO_FILES, "Monte Carlo")
    optional = {
        name: _read_table(folder / name).to_pandas() if (folder / name).is_file() else None
        for name in ("strategies.parquet", "allocation_quantiles.parquet")
    }
    return MonteCarloRun(
        folder,
        results=_read_table(folder / "results.parquet").to_pandas(),
        quantiles=_read_table(folder / "equity_quantiles.parquet").to_pandas(),
        strategies=optional["strategies.parquet"],
        allocation=optional["allocation_quantiles.parquet"],
        summary=_read_json(folder / "summary.json"),
    )


def load_sweep(path: str | Path) -> SweepRun:
    """Load a sweep folder (``tradegraph sweep``): ``results.parquet`` and, when present,
    ``daily_returns.parquet`` as a periods x trials matrix.

    Raises:
        DataError: Not a sweep folder, or a file is missing or unreadable.
    """
    folder = resolve_run_folder(path)
    _refuse_other_kind(folder, "sweep")
    _require(folder, SWEEP_FILES, "sweep")
    results = _read_table(folder / "results.parquet").to_pandas()
    daily_path = folder / "daily_returns.parquet"
    daily = _daily_matrix(_read_table(daily_path), daily_path) if daily_path.is_file() else None
    return SweepRun(folder, results, daily, _read_json(folder / "summary.json"))


def _daily_matrix(table: pa.Table, path: Path) -> pd.DataFrame:
    """Periods x trials from ``daily_returns.parquet``: either one row per trial (a ``trial``
    column, then one column per UTC day) or one row per trial and day (``trial``, ``day_ns``
    or ``day``, ``return``)."""
    import pandas as pd

    frame = table.to_pandas()
    if "trial" not in frame.columns:
        raise DataError(f"{path}: no 'trial' column; not written by tradegraph sweep")
    long_day = next((c for c in ("day_ns", "day", "ts_ns") if c in frame.columns), None)
    if long_day is not None and "return" in frame.columns:
        days = frame[long_day]
        index = _utc(days.to_numpy(dtype="int64")) if long_day.endswith("_ns") else days
        matrix = pd.DataFrame(
            {"day": pd.DatetimeIndex(pd.to_datetime(index, utc=True)), "trial": frame["trial"]}
        ).assign(value=frame["return"].to_numpy())
        wide = matrix.pivot(index="day", columns="trial", values="value")
    else:
        wide = frame.set_index("trial").T
        try:
            wide.index = pd.DatetimeIndex(pd.to_datetime(wide.index, utc=True))
        except (ValueError, TypeError):
            raise DataError(f"{path}: day columns are not dates") from None
    wide = wide.sort_index()
    wide.index.name = "day"
    wide.columns.name = "trial"
    return wide.astype("float64")


def load(path: str | Path) -> Run | SweepRun | MonteCarloRun:
    """Load whatever tradegraph wrote at ``path``: a run, a sweep or a Monte Carlo batch."""
    folder = resolve_run_folder(path)
    kind = _kind(folder)
    if kind == "sweep":
        return load_sweep(folder)
    if kind == "montecarlo":
        return load_montecarlo(folder)
    return load_run(folder)


# -- running --------------------------------------------------------------------------------


def run_from_result(result: BacktestResult, path: Path | None = None) -> Run:
    """The :class:`Run` of a finished in-memory backtest."""
    import pyarrow as pa

    from tradegraph.report.outputs import fills_table

    equity, fills, orders = _frames(
        pa.table({"ts_ns": result.ts_ns, "equity": result.equity}),
        fills_table(result.fills),
        result.ledger.to_table(),
        None,
    )
    summary = json.loads(json.dumps(result.summary(), default=str))
    return Run(path, equity, fills, orders, summary, config=result.config, result=result)


def run_backtest(
    config: GraphConfig | str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    out: str | Path | None = None,
    html: bool = False,
) -> Run:
    """Run a backtest in this process, as ``tradegraph backtest CONFIG --set ...`` does.

    Args:
        config: A config, the path of a YAML config, or None for the packaged default.
        overrides: ``KEY=VALUE`` strings, as ``--set`` takes them
            (``"strategies.sma.params.fast_period=30"``).
        out: When given, write the run's files there as the command does, so
            :func:`load_run` reads them back.
        html: With ``out``, also write the HTML report.

    Returns:
        The run as DataFrames; ``.result`` holds the full in-memory result.

    Raises:
        ConfigError: The config or an override is wrong.
        DataError: Its data cannot be read.
    """
    from tradegraph.engine.backtest import run_backtest as run_graph

    if isinstance(config, GraphConfig):
        graph = config
        if overrides:
            raw = apply_overrides(config.model_dump(mode="json"), list(overrides))
            graph = config_from_mapping(raw, "overrides")
    else:
        graph = load_config(config, list(overrides))
        use_strategy_modules(graph, config)
    result = run_graph(graph)
    folder = None
    if out is not None:
        from tradegraph.report.outputs import write_outputs

        folder = Path(out)
        write_outputs(result, folder, html=html)
    return run_from_result(result, folder)
