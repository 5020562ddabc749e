"""Pre-trade risk: checks, limits and the kill switch between strategies and venues."""

from __future__ import annotations

from tradegraph.risk.engine import (
    OpenOrder,
    OpenOrderState,
    OpenOrderStatus,
    RiskEngine,
    RiskState,
)
from tradegraph.risk.token_bucket import TokenBucket, TokenBucketState

__all__ = [
    "OpenOrder",
    "OpenOrderState",
    "OpenOrderStatus",
    "RiskEngine",
    "RiskState",
    "TokenBucket",
    "TokenBucketState",
]
