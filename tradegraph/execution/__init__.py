"""Order execution: the simulated venue and the fill, slippage and fee models it uses."""

from __future__ import annotations

from tradegraph.execution.fill_models import (
    FixedSlippage,
    LinearImpactSlippage,
    NoSlippage,
    SlippageModel,
    SqrtImpactSlippage,
    apply_slippage,
    build_slippage_model,
    fee_rate,
    fill_fee,
)
from tradegraph.execution.venue import (
    CANCEL_REQUESTED,
    IOC_REMAINDER,
    POST_ONLY_WOULD_TAKE,
    SimulatedVenue,
    WorkingOrder,
)

__all__ = [
    "CANCEL_REQUESTED",
    "IOC_REMAINDER",
    "POST_ONLY_WOULD_TAKE",
    "FixedSlippage",
    "LinearImpactSlippage",
    "NoSlippage",
    "SimulatedVenue",
    "SlippageModel",
    "SqrtImpactSlippage",
    "WorkingOrder",
    "apply_slippage",
    "build_slippage_model",
    "fee_rate",
    "fill_fee",
]
