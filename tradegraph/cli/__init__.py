"""The ``tradegraph`` command: one module per command family."""

from tradegraph.cli.main import STRICT_EXIT_CODE, main

__all__ = ["STRICT_EXIT_CODE", "main"]
