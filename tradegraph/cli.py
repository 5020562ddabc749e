"""The ``tradegraph`` command (also ``python -m tradegraph``).

Errors a user can fix (configuration, data) print one clear line and exit non-zero, with no
traceback: 2 for configuration, 3 for data, 1 for anything else tradegraph raised on purpose.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tradegraph.config import BarSourceConfig, DataConfig, GraphConfig, load_config
from tradegraph.errors import TradegraphError
from tradegraph.observability import configure_logging


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="graph config YAML (default: the packaged default)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set strategies.sma.params.fast_period=5",
    )


def _load(args: argparse.Namespace) -> GraphConfig:
    config = load_config(args.config, args.overrides)
    data = getattr(args, "data", None)
    if data:
        first = config.data.bars[0]
        inst = config.instruments[0]
        source = BarSourceConfig(
            path=data, symbol=inst.symbol, venue=inst.venue, interval_s=first.interval_s
        )
        config = config.model_copy(update={"data": DataConfig(bars=(source,))})
    return config


def cmd_backtest(args: argparse.Namespace) -> int:
    from tradegraph.report.html import format_metrics_table
    from tradegraph.sim.backtest import run_backtest, write_outputs

    config = _load(args)
    if args.engine == "ray":
        from tradegraph.actors import ray_session, run_backtest_ray

        with ray_session(args.address):
            result = run_backtest_ray(config)
    else:
        result = run_backtest(config)
    out_dir = Path(args.out or config.report.out_dir)
    paths = write_outputs(result, out_dir, html=config.report.html and not args.no_html)
    s = result.summary()
    print(
        f"backtest {config.name} ({args.engine} engine): {s['bars']:,} bars in {s['elapsed_s']:.2f} s ({s['bars_per_s']:,.0f} bars/s)"
    )
    print(format_metrics_table(result.metrics))
    print(
        f"orders {s['orders']}  fills {s['fills']}  risk rejections {s['risk_rejections']}  "
        f"final equity {s['final_equity']:,.2f}  pnl {s['pnl']:,.2f}  fees {s['fees']:,.2f}"
    )
    if s["dropped_rows"]:
        print(f"dropped malformed bars: {s['dropped_rows']} ({result.dropped})")
    for err in result.strategy_errors:
        print(f"strategy {err.strategy_id} stopped: {err.error_type}: {err.error}")
    print(f"outputs in {out_dir.resolve()}:")
    for name, path in paths.items():
        print(f"  {name:8s} {path}")
    if args.json:
        print(json.dumps(s, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradegraph", description="Actor-model trading system for crypto markets on Ray."
    )
    parser.add_argument("--log-level", default="WARNING", help="log level (JSON lines on stderr)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True)

    bt = sub.add_parser("backtest", help="run a backtest in one process or as Ray actors")
    _add_config_args(bt)
    bt.add_argument("--data", help="Parquet bar file (ts, open, high, low, close, volume)")
    bt.add_argument("--out", help="output folder (default: report.out_dir of the config)")
    bt.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    bt.add_argument("--no-html", action="store_true", help="skip the HTML report")
    bt.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: every component in this process; ray: each component in a named Ray actor, "
        "stepped through simulated time (same results)",
    )
    bt.add_argument(
        "--address",
        help="with --engine ray: address of a running Ray cluster ('auto' finds a local one); "
        "without it a local Ray is started for the run",
    )
    bt.set_defaults(func=cmd_backtest)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except TradegraphError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
