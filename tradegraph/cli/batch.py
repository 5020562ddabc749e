"""``tradegraph montecarlo`` and ``tradegraph stress``: batches of runs, in this process or on Ray."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from tradegraph.batch import MODEL_NAMES, PRESETS
from tradegraph.batch.montecarlo import BatchProgress, MonteCarlo
from tradegraph.cli.args import (
    STRICT_EXIT_CODE,
    add_config_args,
    add_metrics_args,
    config_path,
    fraction,
    load_graph_config,
    metrics_endpoint,
    non_negative_int,
    positive_int,
    stress_catalog,
)
from tradegraph.cli.progress import ProgressLine, run_timing
from tradegraph.cli.run_folder import run_folder
from tradegraph.config import GraphConfig
from tradegraph.engine.streams import BarStream
from tradegraph.observability.metrics import BatchMetrics, MetricsSink
from tradegraph.report.manifest import build_manifest, write_manifest

if TYPE_CHECKING:
    from tradegraph.engine.backtest import BacktestResult


def _progress_line(label: str, unit: str = "scenarios") -> Callable[[BatchProgress], None]:
    """Runs done (``unit``), rate and ETA on stderr: rewritten in place on a terminal, else one
    line per update."""
    line = ProgressLine(plain=True)

    def show(progress: BatchProgress) -> None:
        eta = "?" if progress.eta_s is None else f"{progress.eta_s:,.0f} s"
        line.update(
            lambda: (
                f"{label}: {progress.done:,}/{progress.total:,} {unit}  "
                f"{progress.rate:,.1f}/s  ETA {eta}"
            )
        )
        if progress.done >= progress.total:
            line.close()

    return show


def _batch_out(args: argparse.Namespace, base: str, name: str) -> Path:
    out = run_folder(args.out, base, name)
    if args.out and args.fresh:
        shutil.rmtree(out / "chunks", ignore_errors=True)
        (out / "batch.json").unlink(missing_ok=True)
    return out


# What choosing Ray costs and gains on one machine, measured on a loaded 2-core machine: a
# local Ray takes 8-25 s to start and spread a batch, and the in-process engine runs about
# 40,000 bars a second. Ray pays off only when the batch would run longer than that.
RAY_START_S = 10.0
IN_PROCESS_BARS_PER_S = 40_000.0


def _choose_execution(batch: MonteCarlo, args: argparse.Namespace, label: str) -> None:
    """Run in this process unless Ray is asked for, a cluster is given, or the batch is big
    enough on this machine for Ray's workers to win back its start-up; say which, on stderr."""
    if args.in_process:
        batch.in_process, why = True, "--in-process"
    elif args.address or os.environ.get("RAY_ADDRESS"):
        batch.in_process, why = False, "joining a Ray cluster"
    elif args.ray:
        batch.in_process, why = False, "--ray"
    else:
        plan = batch.plan()
        bars = plan.bars_per_path or max(len(d) for d in plan.history)
        estimate_s = batch.paths * bars * len(plan.history) / IN_PROCESS_BARS_PER_S
        cpus = args.workers or os.cpu_count() or 1
        saved_s = estimate_s * (1.0 - 1.0 / cpus)
        batch.in_process = saved_s <= RAY_START_S
        why = (
            f"about {estimate_s:,.0f} s of work, too little for Ray's start-up to pay off on "
            f"{cpus} workers; --ray to use Ray anyway"
            if batch.in_process
            else f"about {estimate_s:,.0f} s of work for {cpus} workers; --in-process to stay "
            "in this process"
        )
    where = "in this process" if batch.in_process else "on Ray"
    print(f"{label}: running {where} ({why})", file=sys.stderr, flush=True)
    if not batch.in_process or batch.check_ray_engine:
        from tradegraph.actors.batch import RayChunkRunner

        batch.runner = RayChunkRunner()


TOP_FAILED_RUNS = 5
"""How many scenarios whose run failed the terminal lists with their reasons."""


def _run_batch(
    batch: MonteCarlo,
    out: Path,
    as_json: bool,
    headline: str,
    strict: bool = False,
    manifest: dict[str, Any] | None = None,
) -> int:
    if manifest is not None:
        write_manifest(out, manifest)  # before the run: a batch that dies leaves it too
    try:
        result = batch.run_batch()
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished scenarios are kept in {out.resolve()}; "
            f"rerun the same command with --out {out} to resume",
            file=sys.stderr,
        )
        return 130
    s = result.summary
    print(
        f"{headline}: {s['scenarios']:,} scenarios ({s['scenarios_run']:,} run now, "
        f"{s['scenarios_failed']} failed) "
        + run_timing(s["elapsed_s"], s["startup_s"], s["scenarios_per_s"], "scenarios")
    )
    if s.get("scenarios_ok"):
        print(
            f"return mean {s['mean_return']:.4%}  median {s['median_return']:.4%}  "
            f"worst {s['worst_return']:.4%}\n"
            f"VaR 95% {s['var_95']:.4%}  CVaR 95% {s['cvar_95']:.4%}  "
            f"VaR 99% {s['var_99']:.4%}  CVaR 99% {s['cvar_99']:.4%}\n"
            f"P(loss) {s['prob_loss']:.2%}  P(ruin: drawdown >= {s['ruin_drawdown']:.0%}) "
            f"{s['prob_ruin']:.2%}  max drawdown p95 {s['drawdown']['p95']:.4%}  "
            f"kill-switch trips {s['kill_switch_trips']}\n"
            f"P(liquidation) {s['prob_liquidation']:.2%}  liquidations {s['liquidations']} "
            f"in {s['scenarios_with_liquidation']} scenarios"
        )
    for row in result.failed:
        print(f"scenario {row['index']} failed: {row['error']}")
    runs_failed = [row for row in result.table.to_pylist() if row["run_status"] == "failed"]
    if runs_failed:
        print(
            f"RUNS FAILED: {len(runs_failed)} of {s['scenarios']:,} scenarios "
            f"(a strategy stopped in {s['scenarios_with_stopped_strategy']}, "
            f"{s['strategies_stopped']} strategies in all)"
        )
        for row in runs_failed[:TOP_FAILED_RUNS]:
            print(
                f"  scenario {row['index']} ({row['overlays']}): "
                f"{'; '.join(row['failure_reasons'])}"
            )
        if len(runs_failed) > TOP_FAILED_RUNS:
            print(f"  ... and {len(runs_failed) - TOP_FAILED_RUNS} more (results.parquet)")
    check = s.get("engine_check")
    if check is not None:
        checked = check["scenarios_checked"]
        if check["identical"]:
            print(
                f"{check['engine']} engine check: {checked}/{checked} scenarios identical to the "
                "in-process run (fills, equity, orders, messages)"
            )
        else:
            for row in check["scenarios"]:
                if row["differences"]:
                    print(
                        f"{check['engine']} engine check: scenario {row['index']} "
                        f"({row['overlays']}) differs in {', '.join(row['differences'])}"
                    )
    print(f"results_digest {result.results_digest}")
    if manifest is not None:
        manifest["results"] = {"results_digest": result.results_digest}
        result.paths["manifest"] = write_manifest(out, manifest)
    print(f"outputs in {out.resolve()}:")
    for name, path in result.paths.items():
        print(f"  {name:10s} {path}")
    if as_json:
        print(json.dumps(s, default=str))
    if check is not None and not check["identical"]:
        return 1
    failed = (
        s["scenarios_failed"] > 0
        or s.get("kill_switch_trips", 0) > 0
        or s["scenarios_with_stopped_strategy"] > 0
    )
    return STRICT_EXIT_CODE if strict and failed else 0


def _batch_metrics(sink: MetricsSink | None) -> BatchMetrics | None:
    return BatchMetrics(sink) if sink is not None else None


def cmd_montecarlo(args: argparse.Namespace) -> int:
    config = load_graph_config(args)
    out = _batch_out(args, "out/montecarlo", config.name)
    with metrics_endpoint(args) as sink:
        batch = MonteCarlo(
            config,
            paths=args.paths,
            model=args.model,
            stress=args.stress,
            root_seed=args.seed,
            bars_per_path=args.bars_per_path,
            workers=args.workers,
            address=args.address,
            out_dir=out,
            calibrate_from=args.calibrate_from,
            stress_catalog=stress_catalog(args),
            ruin_drawdown=args.ruin_drawdown,
            in_process=args.in_process,
            html=not args.no_html,
            progress=_progress_line("montecarlo"),
            metrics=_batch_metrics(sink),
            check_ray_engine=args.check_ray_engine,
            ray_engine=_ray_engine(args.check_ray_engine),
        )
        _choose_execution(batch, args, "montecarlo")
        manifest = build_manifest(
            "montecarlo",
            config,
            config_path=config_path(args),
            seeds={"root_seed": args.seed if args.seed is not None else config.seed},
            run={
                "paths": args.paths,
                "model": args.model,
                "stress": args.stress,
                "bars_per_path": args.bars_per_path,
                "calibrate_from": args.calibrate_from,
            },
            extra_files={"stress_file": args.stress_file} if args.stress_file else None,
        )
        return _run_batch(
            batch,
            out,
            args.json,
            f"montecarlo {config.name} ({args.model})",
            args.strict,
            manifest=manifest,
        )


def _ray_engine(scenarios: int) -> Callable[[GraphConfig, BarStream], BacktestResult] | None:
    """The actor graph's runner for ``--check-ray-engine`` (none when nothing is checked)."""
    if not scenarios:
        return None
    from tradegraph.actors import run_causal_session

    return run_causal_session


def cmd_stress(args: argparse.Namespace) -> int:
    config = load_graph_config(args)
    catalog = stress_catalog(args)
    names = args.scenario or [*PRESETS, *(catalog or {})]
    out = _batch_out(args, "out/stress", config.name)
    with metrics_endpoint(args) as sink:
        batch = MonteCarlo(
            config,
            paths=len(names) + 1,
            model="history",
            stress_sets=[[], *([n] for n in names)],
            workers=args.workers,
            address=args.address,
            out_dir=out,
            stress_catalog=catalog,
            ruin_drawdown=args.ruin_drawdown,
            in_process=args.in_process,
            html=not args.no_html,
            progress=_progress_line("stress"),
            metrics=_batch_metrics(sink),
            check_ray_engine=args.check_ray_engine,
            ray_engine=_ray_engine(args.check_ray_engine),
        )
        _choose_execution(batch, args, "stress")
        manifest = build_manifest(
            "stress",
            config,
            config_path=config_path(args),
            run={"scenarios": names},
            extra_files={"stress_file": args.stress_file} if args.stress_file else None,
        )
        code = _run_batch(
            batch, out, False, f"stress {config.name}", args.strict, manifest=manifest
        )
    if code == 130:
        return code
    table = pq.read_table(out / "results.parquet").to_pylist()
    print(
        f"{'scenario':22s} {'return':>10s} {'max dd':>9s} {'fills':>6s} {'rejected':>8s} "
        f"{'kill':>5s} {'liq':>5s} {'stopped':>7s}  run"
    )
    for row in table:
        if row["status"] != "ok":
            print(f"{row['overlays']:22s} failed: {row['error']}")
            continue
        print(
            f"{row['overlays']:22s} {row['return']:>10.4%} {row['max_drawdown']:>9.4%} "
            f"{row['fills']:>6d} {row['venue_rejections']:>8d} {row['kill_switch_trips']:>5d} "
            f"{row['liquidations']:>5d} {row['strategies_stopped']:>7d}  {row['run_status']}"
        )
    if args.json:
        summary = json.loads((out / "summary.json").read_text())
        summary["scenarios_table"] = [
            {k: v for k, v in row.items() if k != "equity_samples"} for row in table
        ]
        print(json.dumps(summary, default=str))
    return code


def _add_batch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers", type=positive_int, help="most scenario chunks at once (default: all CPUs)"
    )
    p.add_argument(
        "--address", help="Ray cluster to join: auto or ray://HOST:10001 (default: start locally)"
    )
    p.add_argument(
        "--out",
        help="output folder; rerunning into it resumes the batch (default: a new folder "
        "<name>-<UTC time> under out/<command>, with a 'latest' link to it)",
    )
    p.add_argument("--fresh", action="store_true", help="discard earlier results in --out first")
    p.add_argument("--stress-file", help="YAML file of custom stress scenarios")
    p.add_argument(
        "--ruin-drawdown",
        type=fraction,
        default=0.5,
        help="a maximum drawdown at or beyond this fraction counts as ruin (default 0.5)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--in-process", action="store_true", help="run without Ray, in this process")
    where.add_argument(
        "--ray",
        action="store_true",
        help="run on Ray even when the batch is small enough to finish sooner in this process "
        "(without either, the quicker is chosen; with --address, Ray)",
    )
    p.add_argument(
        "--check-ray-engine",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="afterwards, run the first K scenarios again both in-process and through the Ray "
        "actor graph (one actor per component) and check they give identical fills, equity and "
        "orders; exit 1 if not (slow: keep K and the paths small)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.add_argument("--no-html", action="store_true", help="skip the HTML report")
    p.add_argument(
        "--strict",
        action="store_true",
        help=f"exit {STRICT_EXIT_CODE} when a scenario failed, or a strategy stopped or the kill "
        "switch halted trading in any scenario",
    )
    add_metrics_args(p)


def add_batch_commands(sub: Any) -> None:
    """Register ``montecarlo`` and ``stress`` on the ``tradegraph`` command."""
    mc = sub.add_parser("montecarlo", help="run the graph over many simulated markets")
    add_config_args(mc)
    mc.add_argument(
        "--paths", type=positive_int, default=100, help="number of scenarios (default 100)"
    )
    mc.add_argument("--model", choices=MODEL_NAMES, default="gbm", help="price model (default gbm)")
    mc.add_argument(
        "--stress", nargs="+", default=[], metavar="NAME", help="stress overlays on every path"
    )
    mc.add_argument("--bars-per-path", type=positive_int, help="bars per path (default: one week)")
    mc.add_argument("--calibrate-from", help="Parquet bar file to calibrate the model from")
    mc.add_argument("--seed", type=non_negative_int, help="root seed (default: the config's seed)")
    _add_batch_args(mc)
    mc.set_defaults(func=cmd_montecarlo)

    st = sub.add_parser("stress", help="run each stress scenario on the real history")
    add_config_args(st)
    st.add_argument(
        "--scenario",
        nargs="+",
        default=[],
        metavar="NAME",
        help=f"scenarios to run (default: every preset): {', '.join(PRESETS)}",
    )
    _add_batch_args(st)
    st.set_defaults(func=cmd_stress)
