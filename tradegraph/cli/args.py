"""Arguments the commands of ``tradegraph`` share: types, the parser class, the config and
metrics flags and what they resolve to.

A flag given a value it cannot use (``--duration -1``, ``--paths 0``) is refused while the
command line is read, in one line naming the flag, before anything starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from tradegraph.batch import StressScenario, load_stress_file
from tradegraph.config import BarSourceConfig, DataConfig, GraphConfig, load_config
from tradegraph.errors import ConfigError
from tradegraph.observability.metrics import MetricsSink
from tradegraph.strategies.registry import use_strategy_modules

STRICT_EXIT_CODE = 5
"""Exit code under ``--strict`` when a run failed (a strategy stopped, trading halted, every
order refused; for batches also a failed scenario)."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``error: ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _number(
    kind: Callable[[str], float], test: Callable[[float], bool], what: str
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, was {text!r}") from None
        if value != value or not test(value):  # NaN fails every test
            raise argparse.ArgumentTypeError(f"must be {what}, was {text}")
        return value

    parse.__name__ = what
    return parse


positive_float = _number(float, lambda v: 0 < v < float("inf"), "a number > 0")
non_negative_float = _number(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
fraction = _number(float, lambda v: 0 < v <= 1, "a fraction in (0, 1]")


def positive_int(text: str) -> int:
    return int(_number(int, lambda v: v > 0, "a whole number > 0")(text))


def non_negative_int(text: str) -> int:
    return int(_number(int, lambda v: v >= 0, "a whole number >= 0")(text))


def port_number(text: str) -> int:
    """A TCP port; 0 lets the system pick a free one."""
    return int(_number(int, lambda v: 0 <= v <= 65535, "a port in 0..65535")(text))


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    """``--config FILE``, the same as the positional ``CONFIG`` (see :func:`config_path`)."""
    parser.add_argument(
        "--config",
        dest="config_file",
        metavar="CONFIG",
        help="graph config YAML (the same as the positional CONFIG)",
    )


def config_path(args: argparse.Namespace) -> str | None:
    """The config file named positionally or by ``--config`` (None: the packaged default).

    Raises:
        ConfigError: Both name a file, and not the same one.
    """
    flag: str | None = getattr(args, "config_file", None)
    positional: str | None = getattr(args, "config", None)
    if flag and positional and flag != positional:
        raise ConfigError(f"two configs given, {positional} and --config {flag}: give one")
    return flag or positional


def add_everywhere(parser: argparse.ArgumentParser, *flags: str, **options: Any) -> None:
    """Add an option to every subcommand (and theirs) below ``parser``, with no default of
    its own there, so it may come after the subcommand and the top-level value stands
    otherwise."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if not any(flag in sub._option_string_actions for flag in flags):
                    sub.add_argument(*flags, default=argparse.SUPPRESS, **options)
                add_everywhere(sub, *flags, **options)


def add_config_args(p: argparse.ArgumentParser) -> None:
    """``CONFIG``, ``--config`` and ``--set KEY=VALUE``: the graph config of a command."""
    p.add_argument("config", nargs="?", help="graph config YAML (default: the packaged default)")
    add_config_flag(p)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set strategies.sma.params.fast_period=5",
    )


def load_graph_config(args: argparse.Namespace) -> GraphConfig:
    """The config the arguments name, ``--set`` applied; with ``--data``, that bar file."""
    path = config_path(args)
    config = load_config(path, args.overrides)
    use_strategy_modules(config, path)
    data = getattr(args, "data", None)
    if data:
        first = config.data.bars[0]
        inst = config.instruments[0]
        source = BarSourceConfig(
            path=data, symbol=inst.symbol, venue=inst.venue, interval_s=first.interval_s
        )
        config = config.model_copy(update={"data": DataConfig(bars=(source,))})
    return config


def add_metrics_args(p: argparse.ArgumentParser) -> None:
    """``--metrics-port`` and ``--metrics-host``: a Prometheus endpoint while running."""
    p.add_argument(
        "--metrics-port",
        type=port_number,
        metavar="PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics while running (0: any free port)",
    )
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address the metrics endpoint listens on (default 127.0.0.1; 0.0.0.0 for all)",
    )


@contextmanager
def metrics_endpoint(args: argparse.Namespace) -> Iterator[MetricsSink | None]:
    """With ``--metrics-port``: a Prometheus sink served over HTTP for the block, else None."""
    if args.metrics_port is None:
        yield None
        return
    from tradegraph.observability.prometheus import PrometheusSink, serve_metrics

    sink = PrometheusSink()
    with serve_metrics(sink.registry, args.metrics_host, args.metrics_port) as server:
        print(f"metrics at {server.url}", file=sys.stderr, flush=True)
        yield sink


def stress_catalog(args: argparse.Namespace) -> dict[str, StressScenario] | None:
    """The custom stress scenarios of ``--stress-file`` (None: the presets only)."""
    return load_stress_file(args.stress_file) if args.stress_file else None
