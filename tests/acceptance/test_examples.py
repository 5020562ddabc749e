"""The example configs run as shipped; their numbers are pinned and their books balance."""

from __future__ import annotations

import subprocess
import sys
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


def test_research_example_runs_as_a_script_in_percent_cells(tmp_path: Path) -> None:
    script = EXAMPLES / "research.py"
    assert script.read_text().startswith("# %%")

    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out" / "research-example"
    assert sorted(p.name for p in out.iterdir()) == [
        "default",
        "fast-120",
        "fast-20",
        "fast-40",
        "fast-60",
    ]
    assert (out / "default" / "equity.parquet").is_file()
    assert "168 hourly returns x 4 choices" in proc.stdout
    pbo = float(proc.stdout.split("probability of backtest overfitting: ")[1].split()[0])
    dsr = float(proc.stdout.split("deflated Sharpe ratio of the best choice: ")[1].split()[0])
    assert 0.0 <= pbo <= 1.0
    assert 0.0 <= dsr <= 1.0
    assert "Sharpe(fast 60) - Sharpe(fast 20) = " in proc.stdout
