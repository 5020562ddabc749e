"""``tradegraph sweep``: a backtest per parameter set of a grid or random search, in this
process or on Ray (see :mod:`tradegraph.batch.sweep`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from tradegraph.batch.sweep import OBJECTIVES, PARAM_PREFIX, SEARCHES, Sweep
from tradegraph.cli.args import (
    STRICT_EXIT_CODE,
    add_config_args,
    config_path,
    non_negative_int,
    positive_int,
)
from tradegraph.cli.batch import IN_PROCESS_BARS_PER_S, RAY_START_S, _batch_out, _progress_line
from tradegraph.cli.progress import run_timing
from tradegraph.report.manifest import build_manifest, write_manifest
from tradegraph.report.sweep import rank_trials

TOP_TRIALS = 10
"""Trials the terminal table lists, best first."""


def _choose_execution(sweep: Sweep, args: argparse.Namespace) -> None:
    """As for Monte Carlo: in this process unless Ray is asked for, a cluster is given, or the
    sweep is big enough for Ray's workers to win back its start-up; say which, on stderr."""
    if args.in_process:
        sweep.in_process, why = True, "--in-process"
    elif args.address or os.environ.get("RAY_ADDRESS"):
        sweep.in_process, why = False, "joining a Ray cluster"
    elif args.ray:
        sweep.in_process, why = False, "--ray"
    else:
        bars = len(sweep.plan.stream) if sweep.plan.stream is not None else 0
        estimate_s = sweep.trials * max(bars, 1) / IN_PROCESS_BARS_PER_S
        cpus = args.workers or os.cpu_count() or 1
        sweep.in_process = estimate_s * (1.0 - 1.0 / cpus) <= RAY_START_S
        why = (
            f"about {estimate_s:,.0f} s of work, too little for Ray's start-up to pay off on "
            f"{cpus} workers; --ray to use Ray anyway"
            if sweep.in_process
            else f"about {estimate_s:,.0f} s of work for {cpus} workers; --in-process to stay "
            "in this process"
        )
    where = "in this process" if sweep.in_process else "on Ray"
    print(f"sweep: running {where} ({why})", file=sys.stderr, flush=True)
    if not sweep.in_process:
        from tradegraph.actors.batch import RayChunkRunner

        sweep.runner = RayChunkRunner()


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def top_trials_table(
    rows: list[dict[str, Any]], keys: list[str], objective: str, minimise: bool
) -> str:
    """The best trials as a plain-text table: trial, parameters, objective and key metrics."""
    metrics = [objective] + [
        m for m in ("total_return", "sharpe", "max_drawdown", "fills") if m != objective
    ]
    header = ["trial", *(_short(k) for k in keys), *metrics]
    lines: list[list[str]] = []
    for row in rank_trials(rows, objective, minimise)[:TOP_TRIALS]:
        lines.append(
            [
                str(row["trial"]),
                *(_cell(row[PARAM_PREFIX + k]) for k in keys),
                *(_cell(row[m]) for m in metrics),
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    out = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    out += ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


def overfitting_line(summary: dict[str, Any]) -> str:
    """``pbo 0.31 (CSCV, 16 blocks of 2 days); deflated Sharpe 0.82`` or the reasons why not."""
    odds = summary["overfitting"]
    pbo, dsr = odds["pbo"], odds["deflated_sharpe"]
    if pbo["value"] is None:
        pbo_text = f"pbo n/a ({pbo['reason']})"
    else:
        pbo_text = (
            f"pbo {pbo['value']:.2f} (CSCV, {pbo['n_splits']} blocks of "
            f"{pbo['days_used'] // pbo['n_splits']} days)"
        )
    if dsr["value"] is None:
        dsr_text = f"deflated Sharpe n/a ({dsr['reason']})"
    else:
        dsr_text = f"deflated Sharpe {dsr['value']:.2f} (best trial, {dsr['trials']} trials)"
    return f"{pbo_text}; {dsr_text}"


def cmd_sweep(args: argparse.Namespace) -> int:
    heatmap = [k.strip() for k in args.heatmap.split(",")] if args.heatmap else None
    sweep = Sweep(
        config_path(args),
        args.grid,
        overrides=args.overrides,
        where=args.where,
        search=args.search,
        trials=args.trials,
        objective=args.objective,
        seed=args.seed,
        workers=args.workers,
        address=args.address,
        html=not args.no_html,
        heatmap=heatmap,
        progress=_progress_line("sweep", "trials"),
    )
    out = _batch_out(args, "out/sweep", sweep.config.name)
    sweep.out_dir = out
    _choose_execution(sweep, args)
    manifest = build_manifest(
        "sweep",
        sweep.config,
        config_path=config_path(args),
        seeds={"search_seed": args.seed if args.seed is not None else sweep.config.seed},
        run={
            "grid": args.grid,
            "where": args.where,
            "search": args.search,
            "trials": args.trials,
            "objective": args.objective,
        },
    )
    write_manifest(out, manifest)  # before the run: a sweep that dies leaves it too
    try:
        result = sweep.run()
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished trials are kept in {out.resolve()}; "
            f"rerun the same command with --out {out} to resume",
            file=sys.stderr,
        )
        return 130
    s = result.summary
    print(
        f"sweep {sweep.config.name} ({s['search']}): {s['trials']:,} trials "
        f"({s['trials_run']:,} run now, {s['trials_failed']} failed) "
        + run_timing(s["elapsed_s"], s["startup_s"], s["trials_per_s"], "trials")
    )
    rows = result.table.to_pylist()
    minimise = s["objective_direction"] == "min"
    print(top_trials_table(rows, list(sweep.plan.keys), sweep.objective, minimise))
    best = s["best"]
    if best is not None:
        shown = " ".join(f"{_short(k)}={v}" for k, v in best["params"].items())
        print(f"best by {sweep.objective}: trial {best['trial']} ({shown})")
    print(overfitting_line(s))
    for row in result.failed:
        print(f"trial {row['trial']} failed: {row['error']}")
    runs_failed = sum(1 for r in rows if r["run_status"] == "failed")
    if runs_failed:
        print(f"RUNS FAILED: {runs_failed} of {s['trials']:,} trials (see results.parquet)")
    print(f"results_digest {s['results_digest']}")
    manifest["results"] = {"results_digest": s["results_digest"]}
    result.paths["manifest"] = write_manifest(out, manifest)
    print(f"outputs in {out.resolve()}:")
    for name, path in result.paths.items():
        print(f"  {name:13s} {path}")
    if args.json:
        print(json.dumps(s, default=str))
    failed = s["trials_failed"] > 0 or runs_failed > 0
    return STRICT_EXIT_CODE if args.strict and failed else 0


def add_sweep_command(sub: Any) -> None:
    """Register ``sweep`` on the ``tradegraph`` command."""
    p = sub.add_parser("sweep", help="run a backtest for every parameter set of a search")
    add_config_args(p)
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        required=True,
        metavar="KEY=SPEC",
        help="a swept config key and its values: a list 10,20,40, a range START:END:STEP "
        "(end included when on a step) or log:START:END:COUNT; repeat for more keys",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="EXPR",
        help='a constraint between swept parameters, e.g. "fast_period < slow_period" '
        "(names, numbers, comparisons, and/or/not, + - * /); repeat to add more",
    )
    p.add_argument(
        "--search",
        choices=SEARCHES,
        default="grid",
        help="search (default grid); optuna: TPE proposing one trial per worker per round",
    )
    p.add_argument("--trials", type=positive_int, help="trials of a random or optuna search")
    p.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="sharpe",
        metavar="NAME",
        help="the metric that ranks trials (default sharpe; max_drawdown and other costs are "
        f"minimised): {', '.join(OBJECTIVES)}",
    )
    p.add_argument(
        "--seed", type=non_negative_int, help="seed of a random search (default: the config's)"
    )
    p.add_argument(
        "--heatmap",
        metavar="KEY1,KEY2",
        help="the two parameters of the report's heatmap (default: the first two swept)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        help="most trial chunks at once on Ray, and the trials per optuna round (default: all "
        "CPUs)",
    )
    p.add_argument(
        "--address", help="Ray cluster to join: auto or ray://HOST:10001 (default: start locally)"
    )
    p.add_argument(
        "--out",
        help="output folder; rerunning into it runs only the trials not yet done (default: a "
        "new folder <name>-<UTC time> under out/sweep, with a 'latest' link to it)",
    )
    p.add_argument("--fresh", action="store_true", help="discard earlier results in --out first")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--in-process", action="store_true", help="run without Ray, in this process")
    where.add_argument(
        "--ray",
        action="store_true",
        help="run on Ray even when the sweep is small enough to finish sooner in this process",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.add_argument("--no-html", action="store_true", help="skip the HTML report")
    p.add_argument(
        "--strict",
        action="store_true",
        help=f"exit {STRICT_EXIT_CODE} when a trial failed, or a trial's run failed (a strategy "
        "stopped, the kill switch halted trading, every order refused)",
    )
    p.set_defaults(func=cmd_sweep)
