from __future__ import annotations

import re
from html import escape
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.portfolio.builders import fill as taker_fill
from tradegraph.contracts import OrderSide
from tradegraph.report import (
    PerformanceMetrics,
    compute_metrics,
    downsample_min_max,
    format_metrics_table,
    metric_rows,
    write_html_report,
)

MINUTE_NS = 60 * 1_000_000_000
JAN_1_2024_NS = 1_704_067_200 * 1_000_000_000


def sample_curve(points: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    ts = JAN_1_2024_NS + np.arange(points, dtype=np.int64) * MINUTE_NS
    equity = 10_000.0 * np.cumprod(1.0 + rng.normal(0.0, 0.001, points))
    return ts, equity


def sample_metrics(ts: np.ndarray, equity: np.ndarray) -> PerformanceMetrics:
    return compute_metrics(ts, equity, [], starting_cash=10_000.0, periods_per_year=525_600.0)


def polyline_point_counts(document: str) -> list[int]:
    return [len(points.split()) for points in re.findall(r'<polyline points="([^"]*)"', document)]


def test_report_is_one_self_contained_html_file_with_two_charts_and_the_metrics(
    tmp_path: Path,
) -> None:
    ts, equity = sample_curve(5_000)
    metrics = sample_metrics(ts, equity)
    target = tmp_path / "nested" / "report.html"

    written = write_html_report(
        target,
        title="SMA <fast> & slow",
        metrics=metrics,
        ts_ns=ts,
        equity=equity,
        per_strategy={"sma_fast": {"realized_pnl": 12.5, "fills": 4}},
        config_summary={"seed": 7, "venue": "BINANCE"},
    )
    document = written.read_text(encoding="utf-8")

    assert written == target
    assert document.startswith("<!DOCTYPE html>")
    assert document.rstrip().endswith("</html>")
    assert document.count("<svg") == 2
    assert document.count("</svg>") == 2
    assert "SMA &lt;fast&gt; &amp; slow" in document
    for label, value in metric_rows(metrics):
        assert f"<td>{escape(label)}</td><td>{escape(value)}</td>" in document
    assert "<td>sma_fast</td><td>12.50</td><td>4</td>" in document
    assert "<td>seed</td><td>7</td>" in document
    assert "2024-01-0" in document


def test_report_references_nothing_outside_the_file(tmp_path: Path) -> None:
    ts, equity = sample_curve(100)

    document = write_html_report(
        tmp_path / "r.html",
        title="t",
        metrics=sample_metrics(ts, equity),
        ts_ns=ts,
        equity=equity,
    ).read_text(encoding="utf-8")

    assert "http" not in document
    assert "<script" not in document
    assert "<link" not in document
    assert "url(" not in document


def test_long_series_are_drawn_with_at_most_two_thousand_points(tmp_path: Path) -> None:
    ts, equity = sample_curve(200_000)

    document = write_html_report(
        tmp_path / "r.html",
        title="long",
        metrics=sample_metrics(ts, equity),
        ts_ns=ts,
        equity=equity,
    ).read_text(encoding="utf-8")

    counts = polyline_point_counts(document)
    assert len(counts) == 2
    assert all(1_000 < count <= 2_000 for count in counts)


def test_empty_series_still_gives_a_report(tmp_path: Path) -> None:
    ts = np.zeros(0, dtype=np.int64)
    equity = np.zeros(0)

    document = write_html_report(
        tmp_path / "r.html",
        title="empty",
        metrics=sample_metrics(ts, equity),
        ts_ns=ts,
        equity=equity,
    ).read_text(encoding="utf-8")

    assert document.count("no data") == 2
    assert document.count("<svg") == 2


def test_short_series_is_not_downsampled() -> None:
    ts = np.arange(10, dtype=np.int64)
    values = np.linspace(1.0, 2.0, 10)

    out_ts, out_values = downsample_min_max(ts, values, max_points=100)

    assert out_ts.tolist() == ts.tolist()
    assert out_values.tolist() == values.tolist()


def test_downsampling_keeps_a_single_spike() -> None:
    ts = np.arange(100_000, dtype=np.int64)
    values = np.ones(100_000)
    values[54_321] = 50.0
    values[77_777] = -3.0

    out_ts, out_values = downsample_min_max(ts, values, max_points=2_000)

    assert out_values.size <= 2_000
    assert 54_321 in out_ts.tolist()
    assert out_values.max() == 50.0
    assert out_values.min() == -3.0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=1, max_size=3_000),
    st.integers(min_value=4, max_value=500),
)
def test_downsampling_keeps_global_extremes_endpoints_and_order(
    values: list[float], max_points: int
) -> None:
    series = np.array(values)
    ts = np.arange(series.size, dtype=np.int64) * 3

    out_ts, out_values = downsample_min_max(ts, series, max_points=max_points)

    assert out_values.size <= max_points
    assert out_values.max() == series.max()
    assert out_values.min() == series.min()
    assert out_ts[0] == ts[0]
    assert out_ts[-1] == ts[-1]
    assert bool(np.all(np.diff(out_ts) > 0))
    assert out_values.tolist() == series[out_ts // 3].tolist()


def test_downsampling_rejects_too_few_points() -> None:
    with pytest.raises(ValueError, match="max_points"):
        downsample_min_max(np.arange(10), np.arange(10.0), max_points=3)


def test_terminal_table_lists_every_metric_aligned() -> None:
    ts, equity = sample_curve(50)
    metrics = sample_metrics(ts, equity)

    table = format_metrics_table(metrics)

    lines = table.splitlines()
    rows = metric_rows(metrics)
    assert len(lines) == len(rows) + 2
    assert len({len(line) for line in lines}) == 1
    for (label, value), line in zip(rows, lines[1:-1], strict=True):
        assert line.startswith(label)
        assert line.endswith(value)


def test_report_shows_allocation_over_time_as_steps_and_the_execution_reports(
    tmp_path: Path,
) -> None:
    ts, equity = sample_curve(100)
    metrics = sample_metrics(ts, equity)
    t0 = int(ts[0])

    document = write_html_report(
        tmp_path / "report.html",
        title="alloc",
        metrics=metrics,
        ts_ns=ts,
        equity=equity,
        allocation={"a": ([t0, t0 + 10 * MINUTE_NS], [600.0, 650.0]), "b": ([t0], [400.0])},
        execution_reports=[{"parent_id": "a-P000001", "status": "completed", "avg_price": 101.5}],
    ).read_text(encoding="utf-8")

    assert "Allocated capital over time" in document
    assert document.count('class="chart chart-allocation-') == 2
    # a: start, step up at +10 min (two points), held to the end of the run.
    assert polyline_point_counts(document)[2:] == [4, 2]
    assert "<td>a-P000001</td><td>completed</td><td>101.50</td>" in document


def test_backtest_report_shows_fills_on_the_price_the_trades_and_monthly_returns(
    tmp_path: Path,
) -> None:
    # Two months of hourly equity; one round trip in January.
    hour = 60 * MINUTE_NS
    ts = JAN_1_2024_NS + np.arange(24 * 60, dtype=np.int64) * hour
    equity = np.full(ts.size, 10_000.0)
    equity[ts >= JAN_1_2024_NS + 31 * 24 * hour] = 10_500.0
    fills = [
        taker_fill("f1", OrderSide.BUY, 1.0, 100.0, fee=1.0, ts_ns=int(ts[10])),
        taker_fill("f2", OrderSide.SELL, 1.0, 110.0, fee=1.0, ts_ns=int(ts[20])),
    ]
    per_strategy = {"a": {"realized_pnl": 10.0, "fills": 2.0, "intents": 2.0}}

    document = write_html_report(
        tmp_path / "r.html",
        title="t",
        metrics=sample_metrics(ts, equity),
        ts_ns=ts,
        equity=equity,
        per_strategy=per_strategy,
        prices={"BTCUSDT.BINANCE": (ts, np.linspace(90.0, 120.0, ts.size))},
        fills=fills,
        currency="USDT",
    ).read_text()

    assert document.count('class="marker-buy"') == 1
    assert document.count('class="marker-sell"') == 1
    assert ">price (USDT)</text>" in document
    assert "<th>Realized PnL</th><th>Fills</th><th>Orders asked</th>" in document
    assert "<td>a</td><td>10.00</td><td>2</td><td>2</td>" in document
    trades = document.split('class="trades"')[1]
    assert trades.count("<tr>") == 2  # header and one round trip
    assert "<td>10.00</td><td>2.00</td>" in trades  # realized pnl, fees (net 8.00)
    assert '<td>2024-01</td><td class="">+0.00%</td>' in document
    assert '<td>2024-02</td><td class="pos">+5.00%</td>' in document
    assert 'id="run-failed"' not in document


def test_failed_run_is_shown_loudly_with_its_rejection_reasons(tmp_path: Path) -> None:
    ts, equity = sample_curve(100)
    outcome = {
        "status": "failed",
        "failure_reasons": ["strategy s stopped: ValueError: boom"],
        "rejection_reasons": [{"source": "risk", "reason": "max_order_notional", "count": 3}],
    }

    document = write_html_report(
        tmp_path / "r.html",
        title="t",
        metrics=sample_metrics(ts, equity),
        ts_ns=ts,
        equity=equity,
        outcome=outcome,
    ).read_text()

    assert '<div class="failed" id="run-failed"><h2>Run failed</h2>' in document
    assert "<li>strategy s stopped: ValueError: boom</li>" in document
    assert "<td>risk</td><td>max_order_notional</td><td>3</td>" in document


def test_time_ticks_of_a_two_day_run_are_all_different(tmp_path: Path) -> None:
    ts, equity = sample_curve(3_000)  # two days and two hours of minutes

    document = write_html_report(
        tmp_path / "r.html", title="t", metrics=sample_metrics(ts, equity), ts_ns=ts, equity=equity
    ).read_text()

    equity_chart = document.split('class="chart chart-equity"')[1].split("</svg>")[0]
    ticks = re.findall(r'y="\d+" text-anchor="(?:start|middle|end)">([^<]+)</text>', equity_chart)
    time_ticks = [t for t in ticks if ":" in t]
    assert len(time_ticks) == 6
    assert len(set(time_ticks)) == 6
