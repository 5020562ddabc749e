"""The ``tradegraph`` command: one module per command family."""

from tradegraph.cli.args import STRICT_EXIT_CODE
from tradegraph.cli.main import main

__all__ = ["STRICT_EXIT_CODE", "main"]
