"""Exceptions, grouped by what the operator has to do about them."""

from __future__ import annotations


class TradegraphError(Exception):
    """Base of every error tradegraph raises on purpose."""


class ConfigError(TradegraphError):
    """The configuration is wrong. Fix it and start again; nothing ran."""

    exit_code = 2


class DataError(TradegraphError):
    """Input data cannot be read or has the wrong shape."""

    exit_code = 3


class StrategyLoadError(ConfigError):
    """A strategy named in the configuration cannot be imported or built."""


class OrderPathError(TradegraphError):
    """Something failed between a strategy and a venue. Trading halts and says why."""

    exit_code = 4


class RerunMismatchError(TradegraphError):
    """A rerun from a manifest did not give the results the manifest recorded."""

    exit_code = 6
