"""``tradegraph twin SESSION_DIR``: replay a finished session's recorded market data as a
backtest and compare the two order by order (see :mod:`tradegraph.research.twin`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tradegraph.strategies.registry import use_strategy_modules


def _drift_line(summary: dict[str, Any]) -> str:
    price = summary["price_drift_bps"]
    timing = summary["time_drift_s"]
    parts = [
        f"{summary['matched']} orders in both, {summary['session_only']} only in the session, "
        f"{summary['twin_only']} only in the twin"
    ]
    if price["mean"] is not None:
        parts.append(
            f"price drift {price['mean']:+.2f} bps mean, {price['p95']:+.2f} bps p95, "
            f"cost {summary['drift_cost']:+,.2f}"
        )
    if timing["mean"] is not None:
        parts.append(f"fill time drift {timing['mean']:+.3f} s mean")
    return "; ".join(parts)


def cmd_twin(args: argparse.Namespace) -> int:
    from tradegraph.report.outputs import write_outputs
    from tradegraph.report.twin import write_twin_report
    from tradegraph.research.twin import (
        check_session_folder,
        compare_session,
        load_session_config,
        run_twin,
    )

    session_dir = Path(args.session_dir)
    check_session_folder(session_dir)
    config, config_path = load_session_config(session_dir)
    use_strategy_modules(
        config, config_path if config_path and Path(config_path).is_file() else None
    )
    out_dir = Path(args.out) if args.out else session_dir / "twin"
    twin, result = run_twin(session_dir, out_dir / "data")
    write_outputs(result, out_dir, html=False)
    comparison = compare_session(session_dir, result)
    summary = comparison.summary
    summary["session_dir"] = str(session_dir.resolve())
    drift_path = out_dir / "drift.parquet"
    import pyarrow.parquet as pq

    pq.write_table(comparison.drift, drift_path)
    report = write_twin_report(
        out_dir / "report.html",
        title=f"tradegraph twin: {twin.name}",
        summary=summary,
        drift_rows=comparison.drift.to_pylist(),
    )
    summary["report"] = str(report)
    (out_dir / "twin.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(
        f"twin of {session_dir}: {len(result.fills)} fills "
        f"(session {summary.get('session_fills_digest') or '-'}, twin {result.fills_digest})"
    )
    print(_drift_line(summary))
    print("zero drift" if summary["zero_drift"] else "drift found: see the drift table")
    print(f"outputs in {out_dir.resolve()}:\n  drift    {drift_path}\n  report   {report}")
    if args.json:
        print(json.dumps(summary, default=str))
    return 0


def add_twin_command(sub: Any) -> None:
    """Register ``twin`` on the ``tradegraph`` command."""
    p = sub.add_parser(
        "twin",
        help="replay a finished paper or live session's recorded market data as a backtest "
        "and compare the two order by order",
    )
    p.add_argument("session_dir", metavar="SESSION_DIR", help="the session's output folder")
    p.add_argument("--out", help="output folder (default: SESSION_DIR/twin)")
    p.add_argument("--json", action="store_true", help="print the summary as the last line")
    p.set_defaults(func=cmd_twin)
