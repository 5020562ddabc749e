"""Unit tests never start Ray: component cores are plain objects.

Every test logs to its own stderr: structlog's print logger keeps the stream it was configured
with, and a test that ran the CLI under ``capsys`` leaves it pointing at a closed capture.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tradegraph.observability import configure_logging


@pytest.fixture(autouse=True)
def _forbid_ray_init(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = sys.modules.get("ray")
    if ray is not None:

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("unit tests must not start Ray")

        monkeypatch.setattr(ray, "init", refuse)


@pytest.fixture(autouse=True)
def _log_to_current_stderr() -> None:
    configure_logging()
