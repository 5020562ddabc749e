"""The example configs run as shipped; their numbers are pinned and their books balance."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradegraph.config import load_config
from tradegraph.engine.backtest import run_backtest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_multi_strategy_example_is_pinned_and_value_is_conserved() -> None:
    config = load_config(EXAMPLES / "multi_strategy.yaml")

    result = run_backtest(config)

    assert (result.bars, result.orders, len(result.fills)) == (89_280, 4_368, 4_377)
    assert result.final_equity == pytest.approx(192_683.42872429785, rel=1e-12)
    assert result.strategy_errors == []
    # Every strategy traded, and the per-strategy books add up to the account's PnL.
    assert set(result.per_strategy) == {"sma_btc", "meanrev_eth", "breakout_both"}
    assert all(s["fills"] > 0 for s in result.per_strategy.values())
    attributed = sum(
        s["realized_pnl"] + s["unrealized_pnl"] - s["fees"] for s in result.per_strategy.values()
    )
    assert attributed == pytest.approx(result.pnl, rel=1e-9)
    assert result.fees == pytest.approx(sum(f.fee for f in result.fills), rel=1e-12)
