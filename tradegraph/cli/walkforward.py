"""``tradegraph walkforward``: in each fold, a sweep on the train window picks parameters that
then run out of sample on the test window (see :mod:`tradegraph.batch.walkforward`)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from typing import Any

from tradegraph.batch.montecarlo import BatchProgress
from tradegraph.batch.sweep import OBJECTIVES, SEARCHES
from tradegraph.batch.walkforward import WalkForward
from tradegraph.cli.args import (
    STRICT_EXIT_CODE,
    add_config_args,
    config_path,
    non_negative_int,
    positive_int,
)
from tradegraph.cli.progress import run_timing
from tradegraph.cli.run_folder import run_folder
from tradegraph.report.manifest import build_manifest, write_manifest


def _progress(done: int, total: int, _batch: BatchProgress | None) -> None:
    print(f"walkforward: fold {done}/{total} done", file=sys.stderr, flush=True)


def cmd_walkforward(args: argparse.Namespace) -> int:
    wf = WalkForward(
        config_path(args),
        args.grid,
        train=args.train,
        test=args.test,
        step=args.step,
        embargo=args.embargo,
        anchored=args.anchored,
        overrides=args.overrides,
        where=args.where,
        search=args.search,
        trials=args.trials,
        objective=args.objective,
        seed=args.seed,
        workers=args.workers,
        address=args.address,
        in_process=not (args.ray or args.address),
        html=not args.no_html,
        progress=_progress,
    )
    out = run_folder(args.out, "out/walkforward", wf.config.name)
    if args.out and args.fresh:
        for name in ("folds", "walkforward.json"):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    wf.out_dir = out
    manifest = build_manifest(
        "walkforward",
        wf.config,
        config_path=config_path(args),
        seeds={"search_seed": args.seed if args.seed is not None else wf.config.seed},
        run={
            "grid": args.grid,
            "train": args.train,
            "test": args.test,
            "step": args.step,
            "embargo": args.embargo,
            "anchored": args.anchored,
            "search": args.search,
            "trials": args.trials,
            "objective": args.objective,
        },
    )
    write_manifest(out, manifest)  # before the run: a walk-forward that dies leaves it too
    where = "in this process" if wf.in_process else "on Ray"
    print(f"walkforward: {len(wf.folds)} folds, sweeps {where}", file=sys.stderr, flush=True)
    if not wf.in_process:
        from tradegraph.actors.batch import RayChunkRunner

        wf.runner = RayChunkRunner()
    try:
        result = wf.run()
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished folds are kept in {out.resolve()}; "
            f"rerun the same command with --out {out} to resume",
            file=sys.stderr,
        )
        return 130
    s = result.summary
    batch_s = s["elapsed_s"] - s["startup_s"]
    rate = s["folds_run"] / batch_s if batch_s > 0 else 0.0
    print(
        f"walkforward {wf.config.name}: {s['folds']} folds ({s['folds_run']} run now) "
        + run_timing(s["elapsed_s"], s["startup_s"], rate, "folds")
    )
    if "duplicates_skipped" in s:
        print(f"optuna: {s['duplicates_skipped']} repeated parameter sets reused, not rerun")
    for row in s["fold_rows"]:
        params = " ".join(
            f"{k.rsplit('.', 1)[-1]}={v}" for k, v in row.items() if k.startswith("param.")
        )
        print(
            f"fold {row['fold']}: test {row['test_start']} to {row['test_end']} ({params}) "
            f"IS {_pct(row['is_total_return'])} OOS {_pct(row['oos_total_return'])}"
        )
    wfe = s["walk_forward_efficiency"]
    print(f"walk-forward efficiency {'-' if wfe is None else f'{wfe:.3f}'}")
    print(
        f"overfitting odds: mean PBO {_num(s['pbo'])}, mean deflated sharpe "
        f"{_num(s['deflated_sharpe'])}, OOS loss share {_num(s['oos_loss_share'])}"
    )
    print(f"stitched OOS return {_pct(s['oos']['total_return'])}, sharpe {s['oos']['sharpe']:.3f}")
    print(f"results_digest {s['results_digest']}")
    manifest["results"] = {"results_digest": s["results_digest"]}
    result.paths["manifest"] = write_manifest(out, manifest)
    print(f"outputs in {out.resolve()}:")
    for name, path in result.paths.items():
        print(f"  {name:11s} {path}")
    if args.json:
        print(json.dumps(s, default=str))
    failed = any(r["oos_status"] != "ok" for r in s["fold_rows"])
    return STRICT_EXIT_CODE if args.strict and failed else 0


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:+.2f}%"


def add_walkforward_command(sub: Any) -> None:
    """Register ``walkforward`` on the ``tradegraph`` command."""
    p = sub.add_parser(
        "walkforward", help="sweep on rolling or anchored train windows, test out of sample"
    )
    add_config_args(p)
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        required=True,
        metavar="KEY=SPEC",
        help="a swept config key and its values, as for tradegraph sweep",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="EXPR",
        help="a constraint between swept parameters, as for tradegraph sweep",
    )
    p.add_argument("--search", choices=SEARCHES, default="grid", help="search (default grid)")
    p.add_argument("--trials", type=positive_int, help="draws of a random search")
    p.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="sharpe",
        metavar="NAME",
        help="the metric that picks each fold's parameters (default sharpe)",
    )
    p.add_argument("--seed", type=non_negative_int, help="seed of a random search")
    p.add_argument("--train", required=True, help="train window, e.g. 30d, 12h, 90m")
    p.add_argument("--test", required=True, help="test window, e.g. 7d")
    p.add_argument("--step", help="how far each fold moves on (default: --test)")
    p.add_argument("--embargo", help="gap between train end and test start (default 0)")
    p.add_argument(
        "--anchored",
        action="store_true",
        help="every train window starts at the data's start (default: rolling)",
    )
    p.add_argument("--workers", type=positive_int, help="most trial chunks at once on Ray")
    p.add_argument("--address", help="Ray cluster to join: auto or ray://HOST:10001")
    p.add_argument(
        "--out",
        help="output folder; rerunning into it skips finished folds "
        "(default: a new folder <name>-<UTC time> under out/walkforward, with 'latest')",
    )
    p.add_argument("--fresh", action="store_true", help="discard earlier folds in --out first")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--in-process", action="store_true", help="run the sweeps in this process (the default)"
    )
    where.add_argument("--ray", action="store_true", help="run the sweeps' trials on Ray")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.add_argument("--no-html", action="store_true", help="skip the HTML report")
    p.add_argument(
        "--strict",
        action="store_true",
        help=f"exit {STRICT_EXIT_CODE} when a fold's out-of-sample run failed",
    )
    p.set_defaults(func=cmd_walkforward)
