"""Strategies: the Strategy base class, incremental indicators, the registry and samples.

Write a strategy by subclassing :class:`Strategy`; name it in configuration as
``"package.module:ClassName"`` or by a short name given with :func:`register_strategy`.
"""

from __future__ import annotations

from tradegraph.strategies.base import OpenOrder, Strategy, StrategyParams
from tradegraph.strategies.indicators import ATR, EMA, RSI, SMA, TEMA, BollingerBands, Indicator
from tradegraph.strategies.mean_reversion import MeanReversion, MeanReversionParams
from tradegraph.strategies.registry import (
    build_strategy,
    load_strategy_class,
    register_strategy,
    registered_strategies,
)
from tradegraph.strategies.sma_cross import SmaCross, SmaCrossParams
from tradegraph.strategies.trendline_breakout import TrendlineBreakout, TrendlineBreakoutParams

__all__ = [
    "ATR",
    "EMA",
    "RSI",
    "SMA",
    "TEMA",
    "BollingerBands",
    "Indicator",
    "MeanReversion",
    "MeanReversionParams",
    "OpenOrder",
    "SmaCross",
    "SmaCrossParams",
    "Strategy",
    "StrategyParams",
    "TrendlineBreakout",
    "TrendlineBreakoutParams",
    "build_strategy",
    "load_strategy_class",
    "register_strategy",
    "registered_strategies",
]
