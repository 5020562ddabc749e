"""The ``tradegraph`` command (also ``python -m tradegraph``): the parser, assembled from one
module per command family, and the turning of errors into exit codes.

Errors a user can fix (configuration, data) print one clear line and exit non-zero, with no
traceback: 2 for configuration, 3 for data, 1 for anything else tradegraph raised on purpose.
With ``--strict``, a run that failed (see :data:`STRICT_EXIT_CODE`) exits 5; a rerun from a
manifest whose fills differ from the recorded ones exits 6.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import tradegraph
from tradegraph.cli.alerts import add_alerts_commands
from tradegraph.cli.args import (
    STRICT_EXIT_CODE,
    OneLineParser,
    add_config_args,
    add_everywhere,
    add_metrics_args,
)
from tradegraph.cli.audit import add_audit_commands
from tradegraph.cli.backtest import add_backtest_command
from tradegraph.cli.batch import add_batch_commands
from tradegraph.cli.compare import add_compare_command
from tradegraph.cli.data import add_data_commands
from tradegraph.cli.sessions import add_session_commands
from tradegraph.cli.starter import add_init_command
from tradegraph.cli.sweep import add_sweep_command
from tradegraph.cli.twin import add_twin_command
from tradegraph.cli.walkforward import add_walkforward_command
from tradegraph.errors import TradegraphError
from tradegraph.observability import configure_logging
from tradegraph.observability.logging import quiet_ray

__all__ = ["STRICT_EXIT_CODE", "build_parser", "main"]

LOG_LEVEL_HELP = "log level of the JSON lines on stderr (default WARNING; DEBUG also shows Ray's)"
DEBUG_HELP = "show tracebacks of errors"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="tradegraph", description="Actor-model trading system for crypto markets on Ray."
    )
    parser.add_argument(
        "--version", action="version", version=f"tradegraph {tradegraph.__version__}"
    )
    parser.add_argument("--log-level", default="WARNING", help=LOG_LEVEL_HELP)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    add_backtest_command(sub)
    add_batch_commands(sub)
    add_sweep_command(sub)
    add_walkforward_command(sub)
    add_init_command(sub)
    add_session_commands(sub, add_config_args, add_metrics_args)
    add_alerts_commands(sub, add_config_args)
    add_data_commands(sub)
    add_compare_command(sub)
    add_twin_command(sub)
    add_audit_commands(sub)
    # Global flags are taken after the subcommand too: `tradegraph backtest --log-level INFO`.
    add_everywhere(parser, "--log-level", help=LOG_LEVEL_HELP)
    add_everywhere(parser, "--debug", action="store_true", help=DEBUG_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    quiet_ray(args.log_level.upper() == "DEBUG")
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
