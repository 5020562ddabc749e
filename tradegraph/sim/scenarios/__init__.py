"""Scenario generation: price-path models calibrated from real bars, and stress overlays."""

from __future__ import annotations

from tradegraph.sim.scenarios.models import (
    MODEL_NAMES,
    BarShape,
    BlockBootstrapModel,
    GarchModel,
    GbmModel,
    JumpDiffusionModel,
    PathDraw,
    PriceModel,
    calibrate,
    generate_bars,
    scenario_rng,
    scenario_seed,
)
from tradegraph.sim.scenarios.overlays import (
    PRESETS,
    ExchangeOutage,
    FeeShock,
    FlashCrash,
    GapMove,
    LatencySpike,
    LiquidityCrunch,
    Overlay,
    StressFile,
    StressScenario,
    load_stress_file,
    resolve_stress,
)

__all__ = [
    "MODEL_NAMES",
    "PRESETS",
    "BarShape",
    "BlockBootstrapModel",
    "ExchangeOutage",
    "FeeShock",
    "FlashCrash",
    "GapMove",
    "GarchModel",
    "GbmModel",
    "JumpDiffusionModel",
    "LatencySpike",
    "LiquidityCrunch",
    "Overlay",
    "PathDraw",
    "PriceModel",
    "StressFile",
    "StressScenario",
    "calibrate",
    "generate_bars",
    "load_stress_file",
    "resolve_stress",
    "scenario_rng",
    "scenario_seed",
]
