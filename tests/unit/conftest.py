"""Unit tests never start Ray: component cores are plain objects."""

from __future__ import annotations

import sys
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _forbid_ray_init(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = sys.modules.get("ray")
    if ray is not None:

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("unit tests must not start Ray")

        monkeypatch.setattr(ray, "init", refuse)
