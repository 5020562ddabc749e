"""A ``flatten`` kill-switch trip under the actor runtime (``--engine ray``) gives exactly the
in-process kernel's fills: the closing order goes the same road at the same step."""

from __future__ import annotations

import pytest

from tests.acceptance.test_kill_switch_modes import FLATTEN_DIGEST
from tradegraph.actors.causal import run_causal_session
from tradegraph.config import load_config
from tradegraph.contracts import KillSwitchMode
from tradegraph.engine.backtest import run_backtest

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


def test_flatten_mode_gives_the_same_fills_in_process_and_on_ray() -> None:
    # The acceptance test's drawdown trip comes at bar 881 of 5000: 1000 bars hold all its fills.
    config = load_config(
        None,
        [
            "data.bars.0.limit=1000",
            "risk.max_drawdown_pct=0.5",
            "strategies.sma.params.quantity=0.4",
            "risk.kill_switch_mode=flatten",
        ],
    )

    local = run_backtest(config)
    actors = run_causal_session(config)

    assert local.fills_digest == FLATTEN_DIGEST
    assert actors.fills_digest == local.fills_digest
    assert actors.fills == local.fills
    assert actors.kill_switch_events == local.kill_switch_events
    [trip] = actors.halts
    assert trip.mode is KillSwitchMode.FLATTEN
    assert actors.kill_switch_closed() == local.kill_switch_closed()
    assert [row["quantity"] for row in actors.kill_switch_closed()] == [0.4]
