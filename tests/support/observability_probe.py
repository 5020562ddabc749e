"""A tiny actor for observation tests: records graph metrics through Ray and logs.

It lives in an importable module (not a test file) so Ray workers can load the class.
"""

from __future__ import annotations

import structlog

from tradegraph.actors.metrics import RayMetricsSink
from tradegraph.contracts import Message
from tradegraph.observability import get_logger
from tradegraph.observability.metrics import GraphMetrics


class ObservationProbe:
    """Feeds messages to a ``GraphMetrics`` on a ``RayMetricsSink`` and writes log events."""

    def __init__(self) -> None:
        self.metrics = GraphMetrics(RayMetricsSink())

    def record(self, messages: list[Message], queue_depth: int, tick_to_order_s: float) -> int:
        for msg in messages:
            self.metrics.observe(msg)
        self.metrics.set_queue_depth("probe", queue_depth)
        self.metrics.observe_tick_to_order(tick_to_order_s)
        self.metrics.flush()
        return len(messages)

    def log(self, event: str) -> None:
        structlog.get_logger().info(event)
        get_logger("risk").warning(event + "_from_risk")
