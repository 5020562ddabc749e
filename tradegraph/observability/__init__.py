"""Observation: structured logs and metrics, the same in every process and transport.

- :mod:`tradegraph.observability.logging`: structlog JSON lines (``configure_logging``,
  ``get_logger``, ``bind_process_context``) and the Ray worker setup hook.
- :mod:`tradegraph.observability.metrics`: ``GraphMetrics``, which turns the message stream
  into counters, gauges and histograms, written to a ``MetricsSink``.
- :mod:`tradegraph.observability.prometheus`: ``PrometheusSink`` and ``serve_metrics`` (an
  HTTP ``/metrics`` endpoint) for in-process runs and drivers. The Ray sink lives in
  ``tradegraph.actors.metrics``.
"""

from __future__ import annotations

from tradegraph.observability.logging import (
    bind_process_context,
    configure_logging,
    get_logger,
)

__all__ = ["bind_process_context", "configure_logging", "get_logger"]
