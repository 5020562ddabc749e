"""Argument types and the parser class of the ``tradegraph`` command.

A flag given a value it cannot use (``--duration -1``, ``--paths 0``) is refused while the
command line is read, in one line naming the flag, before anything starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from tradegraph.errors import ConfigError

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
