"""Configuration: pydantic models for a whole graph, YAML loading with errors that name the field."""

from __future__ import annotations

from tradegraph.config.loader import apply_overrides, config_from_mapping, load_config
from tradegraph.config.models import (
    BarSourceConfig,
    DataConfig,
    FillAt,
    GraphConfig,
    InstrumentConfig,
    PortfolioConfig,
    ReportConfig,
    RiskConfig,
    SlippageConfig,
    StrategyConfig,
    VenueConfig,
)

__all__ = [
    "BarSourceConfig",
    "DataConfig",
    "FillAt",
    "GraphConfig",
    "InstrumentConfig",
    "PortfolioConfig",
    "ReportConfig",
    "RiskConfig",
    "SlippageConfig",
    "StrategyConfig",
    "VenueConfig",
    "apply_overrides",
    "config_from_mapping",
    "load_config",
]
