"""Order execution: the simulated venue (also under windows of stress), its fill, slippage and
fee models, the order emulator (stops, take-profits, trailing stops, OCO and contingent orders,
held by Risk until they trigger), and the execution algorithms (TWAP, VWAP, iceberg, POV)
strategies work parent orders with."""

from __future__ import annotations

from tradegraph.execution.algorithms import (
    AlgoChoice,
    AlgoName,
    ExecutionAlgorithm,
    OnlineVolumeProfile,
    ParentOrderBook,
    ParentStatus,
    Urgency,
    choose_algorithm,
    volume_profile_from_bars,
)
from tradegraph.execution.emulator import EmulatorState, OrderEmulator
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
    FOK_UNFILLED,
    IOC_REMAINDER,
    NATIVE_ORDER_TYPES,
    POST_ONLY_WOULD_TAKE,
    SimulatedVenue,
    VenueState,
    WorkingOrder,
    WorkingOrderState,
)
from tradegraph.execution.venue_stress import (
    StressedVenue,
    StressedVenueConfig,
    VenueConditions,
    VenueWindow,
)

__all__ = [
    "CANCEL_REQUESTED",
    "FOK_UNFILLED",
    "IOC_REMAINDER",
    "NATIVE_ORDER_TYPES",
    "POST_ONLY_WOULD_TAKE",
    "AlgoChoice",
    "AlgoName",
    "EmulatorState",
    "ExecutionAlgorithm",
    "FixedSlippage",
    "LinearImpactSlippage",
    "NoSlippage",
    "OnlineVolumeProfile",
    "OrderEmulator",
    "ParentOrderBook",
    "ParentStatus",
    "SimulatedVenue",
    "SlippageModel",
    "SqrtImpactSlippage",
    "StressedVenue",
    "StressedVenueConfig",
    "Urgency",
    "VenueConditions",
    "VenueState",
    "VenueWindow",
    "WorkingOrder",
    "WorkingOrderState",
    "apply_slippage",
    "build_slippage_model",
    "choose_algorithm",
    "fee_rate",
    "fill_fee",
    "volume_profile_from_bars",
]
