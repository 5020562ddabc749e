"""``tradegraph compare RUN [RUN ...]``: runs' metrics side by side, their equity normalised on
one chart (``compare.html``), and a bootstrap interval for each difference in Sharpe.

A RUN is a run folder, a ``latest`` link or a command's folder such as ``out/backtest`` (its
newest run). pandas is imported when the command runs, never at the start of ``tradegraph``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tradegraph.cli.args import fraction, non_negative_int, positive_float, positive_int
from tradegraph.cli.run_folder import run_folder

COMPARE_BASE = "out/compare"


def _format(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool | str):
        return str(value)
    if key in ("total_return", "max_drawdown", "win_rate"):
        return f"{value:.2%}"
    if isinstance(value, int):
        return f"{value:,}"
    if key in ("final_equity", "pnl", "fees"):
        return f"{value:,.2f}"
    return f"{value:.3f}"


def metric_rows(comparison: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """One ``(metric, values per run)`` row per compared metric, formatted for reading."""
    from tradegraph.research.compare import COMPARED_METRICS

    return [
        (key, [_format(key, run[key]) for run in comparison["runs"]]) for key in COMPARED_METRICS
    ]


def _table(labels: list[str], rows: list[tuple[str, list[str]]]) -> str:
    widths = [max(len("metric"), *(len(name) for name, _ in rows))]
    for i, label in enumerate(labels):
        widths.append(max(len(label), *(len(values[i]) for _, values in rows)))
    lines = [
        "  ".join(
            [f"{'metric':<{widths[0]}}"]
            + [f"{label:>{w}}" for label, w in zip(labels, widths[1:], strict=True)]
        )
    ]
    for name, values in rows:
        lines.append(
            "  ".join(
                [f"{name:<{widths[0]}}"]
                + [f"{v:>{w}}" for v, w in zip(values, widths[1:], strict=True)]
            )
        )
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    from tradegraph.report.comparison import write_compare_report
    from tradegraph.research.compare import compare_runs
    from tradegraph.research.runs import load_run

    runs = [load_run(path) for path in args.runs]
    comparison = compare_runs(
        runs,
        resamples=args.resamples,
        confidence=args.confidence,
        mean_block=args.mean_block,
        seed=args.seed,
    )
    labels = [run["label"] for run in comparison["runs"]]
    rows = metric_rows(comparison)
    out_dir = run_folder(args.out, COMPARE_BASE, "compare")
    curves = []
    for label, run in zip(labels, runs, strict=True):
        equity = run.equity["equity"].to_numpy()
        start = float(run.summary.get("starting_cash") or (equity[0] if equity.size else 1.0))
        curves.append((label, run.equity.index.asi8, equity / (start or 1.0)))
    report = write_compare_report(
        out_dir / "compare.html",
        title="tradegraph compare: " + " vs ".join(labels),
        labels=labels,
        metrics=rows,
        curves=curves,
        intervals=comparison["sharpe_difference"],
        method=comparison.get("method", ""),
    )
    comparison["report"] = str(report)
    (out_dir / "compare.json").write_text(json.dumps(comparison, indent=2, default=str) + "\n")

    print(_table(labels, rows))
    for entry in comparison["sharpe_difference"]:
        print(
            f"Sharpe {entry['baseline']} - {entry['run']}: {entry['difference']:.3f}, "
            f"{entry['confidence']:.0%} interval [{entry['low']:.3f}, {entry['high']:.3f}] "
            f"over {entry['periods']:,} common periods"
            + (" (excludes 0)" if entry["excludes_zero"] else " (holds 0)")
        )
    for run in comparison["runs"]:
        if run["status"] == "failed":
            print(f"note: run {run['label']} failed (see its summary.json)")
    print(f"outputs in {out_dir.resolve()}:\n  report   {report}")
    if args.json:
        print(json.dumps(comparison, default=str))
    return 0


def add_compare_command(sub: Any) -> None:
    """Register ``compare`` on the ``tradegraph`` command."""
    p = sub.add_parser(
        "compare",
        help="compare runs: metrics side by side, normalised equity, Sharpe difference intervals",
    )
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run folders (or a 'latest' link, or out/backtest for its newest run); the first "
        "is the baseline of the Sharpe differences",
    )
    p.add_argument("--json", action="store_true", help="print the comparison as the last line")
    p.add_argument(
        "--out",
        help=f"output folder (default: a new folder under {COMPARE_BASE} with a 'latest' link)",
    )
    p.add_argument(
        "--resamples",
        type=positive_int,
        default=2_000,
        help="stationary-bootstrap resamples of the Sharpe difference (default 2000)",
    )
    p.add_argument(
        "--confidence",
        type=fraction,
        default=0.95,
        help="confidence level of the intervals, in (0, 1) (default 0.95)",
    )
    p.add_argument(
        "--mean-block",
        type=positive_float,
        default=None,
        help="mean block length in periods (default: periods ** (1/3))",
    )
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the resampling (default 0)"
    )
    p.set_defaults(func=cmd_compare)
