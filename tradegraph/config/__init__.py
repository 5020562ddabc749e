"""Configuration: pydantic models for a whole graph, YAML loading with errors that name the field."""

from __future__ import annotations

from tradegraph.config.loader import config_from_mapping, load_config
from tradegraph.config.models import (
    ENABLE_LIVE_ENV,
    BarSourceConfig,
    CircuitBreakerConfig,
    DataConfig,
    FillAt,
    GraphConfig,
    InstrumentConfig,
    LiveMode,
    LiveVenueConfig,
    PortfolioConfig,
    ReportConfig,
    RetryConfig,
    RiskConfig,
    SlippageConfig,
    StrategyConfig,
    VenueConfig,
    resolve_mode,
)
from tradegraph.config.overrides import apply_overrides

__all__ = [
    "ENABLE_LIVE_ENV",
    "BarSourceConfig",
    "CircuitBreakerConfig",
    "DataConfig",
    "FillAt",
    "GraphConfig",
    "InstrumentConfig",
    "LiveMode",
    "LiveVenueConfig",
    "PortfolioConfig",
    "ReportConfig",
    "RetryConfig",
    "RiskConfig",
    "SlippageConfig",
    "StrategyConfig",
    "VenueConfig",
    "apply_overrides",
    "config_from_mapping",
    "load_config",
    "resolve_mode",
]
