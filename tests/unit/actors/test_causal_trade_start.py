"""The causal actor session refuses what it cannot honour yet, before any actor starts."""

from __future__ import annotations

import pytest

from tradegraph.actors.causal import run_causal_session
from tradegraph.config.loader import load_config
from tradegraph.errors import ConfigError


def test_causal_session_refuses_a_trade_start_before_touching_ray() -> None:
    config = load_config(None, ["data.trade_start='2025-07-05T00:00:00'"])

    with pytest.raises(ConfigError, match=r"^--engine ray does not support data\.trade_start"):
        run_causal_session(config)
