"""Pre-trade risk: checks, limits and the kill switch between strategies and venues."""

from __future__ import annotations

from tradegraph.risk.engine import OpenOrder, OpenOrderStatus, RiskEngine
from tradegraph.risk.token_bucket import TokenBucket

__all__ = ["OpenOrder", "OpenOrderStatus", "RiskEngine", "TokenBucket"]
