"""Performance metrics and the HTML report of a run."""

from __future__ import annotations

from tradegraph.report.html import downsample_min_max, format_metrics_table, write_html_report
from tradegraph.report.performance import (
    PerformanceMetrics,
    RoundTrip,
    compute_metrics,
    drawdown_series,
    infer_periods_per_year,
    max_drawdown_duration_ns,
    metric_rows,
    round_trips_from_fills,
)

__all__ = [
    "PerformanceMetrics",
    "RoundTrip",
    "compute_metrics",
    "downsample_min_max",
    "drawdown_series",
    "format_metrics_table",
    "infer_periods_per_year",
    "max_drawdown_duration_ns",
    "metric_rows",
    "round_trips_from_fills",
    "write_html_report",
]
