from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradegraph.report.montecarlo import (
    conditional_value_at_risk,
    equity_quantiles,
    sample_curve,
    sample_steps,
    strategy_summary,
    summarize,
    value_at_risk,
    worst_day_return,
    write_montecarlo_report,
)

DAY = 86_400 * 1_000_000_000


def test_var_and_cvar_of_a_hundred_returns_by_hand() -> None:
    # Returns -0.50, -0.49, ..., 0.49: the 5 smallest are -0.50 .. -0.46.
    returns = np.arange(-50, 50) / 100.0
    np.random.default_rng(0).shuffle(returns)

    assert value_at_risk(returns, 0.95) == pytest.approx(0.46)
    assert conditional_value_at_risk(returns, 0.95) == pytest.approx(0.48)
    assert value_at_risk(returns, 0.99) == pytest.approx(0.50)
    assert conditional_value_at_risk(returns, 0.99) == pytest.approx(0.50)


def test_var_needs_returns_and_a_sane_level() -> None:
    with pytest.raises(ValueError, match="no returns"):
        value_at_risk([], 0.95)
    with pytest.raises(ValueError, match="level"):
        value_at_risk([0.1], 1.5)


def test_summary_probabilities_and_drawdown_distribution() -> None:
    returns = [-0.2, -0.1, 0.0, 0.1, 0.3]
    drawdowns = [0.6, 0.3, 0.1, 0.05, 0.5]

    s = summarize(returns, drawdowns, [1, 0, 0, 2, 0], ruin_drawdown=0.5)

    assert s["prob_loss"] == pytest.approx(0.4)
    assert s["prob_ruin"] == pytest.approx(0.4)
    assert s["mean_return"] == pytest.approx(0.02)
    assert s["drawdown"]["max"] == 0.6
    assert s["drawdown"]["p50"] == pytest.approx(0.3)
    assert s["kill_switch_trips"] == 3
    assert s["scenarios_with_kill_switch"] == 2
    assert s["var_95"] == pytest.approx(0.2)


def test_worst_day_return_uses_utc_day_closes() -> None:
    ts = np.array([0, DAY // 2, DAY + 1, DAY + 2, 2 * DAY + 5], dtype=np.int64)
    equity = np.array([101.0, 110.0, 100.0, 99.0, 108.9])

    worst = worst_day_return(ts, equity, starting_cash=100.0)

    # Day closes 110, 99, 108.9 from 100: +10 %, -10 %, +10 %.
    assert worst == pytest.approx(-0.1)
    assert worst_day_return([], [], 100.0) == 0.0


def test_sample_curve_keeps_first_and_last() -> None:
    assert sample_curve([1.0, 2.0, 3.0, 4.0, 5.0], 3, 0.0) == [1.0, 3.0, 5.0]
    assert sample_curve([], 2, 7.0) == [7.0, 7.0]


def test_equity_quantiles_per_sample_point() -> None:
    samples = [[100.0, float(v)] for v in range(101)]

    q = equity_quantiles(samples)

    assert q["q50"] == [100.0, 50.0]
    assert q["q05"] == [100.0, 5.0]
    assert q["q95"] == [100.0, 95.0]


def test_report_draws_fan_chart_and_histograms(tmp_path: Path) -> None:
    returns = list(np.linspace(-0.1, 0.1, 20))
    quantiles = equity_quantiles([[100.0, 100.0 + 10 * r, 100.0 + 20 * r] for r in returns])

    path = write_montecarlo_report(
        tmp_path / "r.html",
        title="mc <test>",
        summary={"scenarios": 20, **summarize(returns, [0.01] * 20, [0] * 20, 0.5)},
        quantiles=quantiles,
        returns=returns,
        max_drawdowns=[0.01] * 20,
        failed=[{"index": 3, "error": "boom"}],
    )

    html = path.read_text()
    assert "mc &lt;test&gt;" in html
    assert 'class="chart chart-fan"' in html
    assert "band-q05-q95" in html
    assert html.count('class="bin"') >= 2
    assert "boom" in html


def test_strategy_summary_gives_each_strategy_its_pnl_distribution() -> None:
    rows = [
        {
            "strategy_id": sid,
            "net_pnl": pnl,
            "fees": 1.0,
            "fills": 2,
            "orders": 3,
            "final_capital": capital,
        }
        for i in range(100)
        for sid, pnl, capital in (("a", float(i) - 49.0, None), ("b", -2.0 * i, 1_000.0 + i))
    ]

    stats = strategy_summary(rows)

    assert stats["a"]["scenarios"] == 100
    assert stats["a"]["pnl_q50"] == pytest.approx(0.5)
    assert stats["a"]["prob_loss"] == pytest.approx(0.49)
    assert stats["b"]["worst_pnl"] == -198.0
    assert stats["b"]["pnl_q05"] == pytest.approx(np.quantile(-2.0 * np.arange(100), 0.05))
    assert stats["b"]["final_capital_q95"] == pytest.approx(
        np.quantile(1_000.0 + np.arange(100), 0.95)
    )
    assert "final_capital_q50" not in stats["a"]
    assert stats["a"]["mean_fills"] == 2.0


def test_step_series_is_read_at_even_times() -> None:
    samples = sample_steps([10, 20], [5.0, 7.0], 0, 40, 5)

    assert samples == [5.0, 5.0, 7.0, 7.0, 7.0]


def test_monte_carlo_report_shows_the_model_round_ticks_and_the_real_history(
    tmp_path: Path,
) -> None:
    returns = list(np.linspace(-0.1, 0.1, 20))
    quantiles = equity_quantiles([[100.0, 100.0 + 10 * r] for r in returns])
    summary = {
        "scenarios": 20,
        **summarize(returns, [0.01] * 20, [0] * 20, 0.5),
        "calibration": [{"mu": 1.234567e-6, "sigma": 0.000371412}],
    }

    html = write_montecarlo_report(
        tmp_path / "r.html",
        title="mc",
        summary=summary,
        quantiles=quantiles,
        returns=returns,
        max_drawdowns=[0.01] * 20,
        history={"return": -0.05, "max_drawdown": 0.02, "bars": 3_000},
        currency="USDT",
    ).read_text()

    assert "<th>mu</th><th>sigma</th>" in html
    assert "<td>1.235e-06</td><td>0.0003714</td>" in html
    assert html.count('class="history-mark"') == 2
    assert "real history -5.00 %" in html
    assert "return -5.00 %, maximum drawdown 2.00 % over 3,000 bars" in html
    ticks = re.findall(r'text-anchor="middle">(-?[0-9.,]+) %</text>', html)
    assert ticks
    assert all(len(t.lstrip("-").replace(".", "")) <= 3 for t in ticks), ticks
    assert ">USDT</text>" in html


def test_stress_report_is_one_row_per_scenario_next_to_the_baseline(tmp_path: Path) -> None:
    base: dict[str, Any] = {"status": "ok", "max_drawdown": 0.01, "fills": 10, "risk_rejections": 0}
    scenarios: list[dict[str, Any]] = [
        {
            **base,
            "overlays": "none",
            "return": -0.01,
            "venue_rejections": 0,
            "kill_switch_trips": 0,
            "applied": "",
        },
        {
            **base,
            "overlays": "exchange_outage",
            "return": 0.02,
            "venue_rejections": 3,
            "kill_switch_trips": 1,
            "applied": "one hour of rejected orders",
        },
        {"status": "failed", "overlays": "meteor", "error": "boom"},
    ]

    html = write_montecarlo_report(
        tmp_path / "r.html",
        title="stress",
        summary={"scenarios": 3},
        quantiles={},
        returns=[-0.01, 0.02],
        max_drawdowns=[0.01, 0.01],
        scenarios=scenarios,
    ).read_text()

    assert "band-q05-q95" not in html
    assert 'class="bin"' not in html
    rows = html.split('class="scenario-table"')[1].split("<tr")[2:]
    assert len(rows) == 3
    assert "<td>none (baseline)</td><td>-1.00%</td><td></td>" in rows[0]
    assert (
        "<td>exchange_outage</td><td>2.00%</td><td>+3.00 pp</td><td>1.00%</td>"
        "<td>10</td><td>0</td><td>3</td><td>1</td>"
    ) in rows[1]
    assert "one hour of rejected orders" in rows[1]
    assert "failed: boom" in rows[2]
