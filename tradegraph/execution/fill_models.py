"""Price and cost models for simulated fills: slippage on taker fills, and fee rates.

Slippage is expressed in basis points of price and always moves the price against the trader
(buys pay more, sells receive less). Fees are fractions of notional, taken from the instrument
unless the venue configuration overrides them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from tradegraph.config.models import SlippageConfig, VenueConfig
from tradegraph.contracts import Instrument, LiquiditySide, OrderSide

__all__ = [
    "FixedSlippage",
    "LinearImpactSlippage",
    "NoSlippage",
    "SlippageModel",
    "SqrtImpactSlippage",
    "apply_slippage",
    "build_slippage_model",
    "fee_rate",
    "fill_fee",
]

_BPS = 1e-4


class SlippageModel(Protocol):
    """How many basis points a taker fill of ``quantity`` pays when ``volume`` traded."""

    def slippage_bps(self, quantity: float, volume: float) -> float: ...


def _participation(quantity: float, volume: float) -> float:
    """Share of the traded volume the fill takes; with no volume the fill is all of it."""
    if volume <= 0.0:
        return 1.0
    return quantity / volume


@dataclass(frozen=True, slots=True)
class NoSlippage:
    """Fills at the reference price."""

    def slippage_bps(self, quantity: float, volume: float) -> float:
        return 0.0


@dataclass(frozen=True, slots=True)
class FixedSlippage:
    """A constant ``bps`` on every taker fill, whatever its size."""

    bps: float

    def slippage_bps(self, quantity: float, volume: float) -> float:
        return self.bps


@dataclass(frozen=True, slots=True)
class LinearImpactSlippage:
    """``bps + impact_bps * quantity / volume``: impact grows with participation."""

    bps: float
    impact_bps: float

    def slippage_bps(self, quantity: float, volume: float) -> float:
        return self.bps + self.impact_bps * _participation(quantity, volume)


@dataclass(frozen=True, slots=True)
class SqrtImpactSlippage:
    """``bps + impact_bps * sqrt(quantity / volume)``: the square-root market-impact law."""

    bps: float
    impact_bps: float

    def slippage_bps(self, quantity: float, volume: float) -> float:
        return self.bps + self.impact_bps * math.sqrt(_participation(quantity, volume))


def build_slippage_model(config: SlippageConfig) -> SlippageModel:
    """Build the slippage model a venue's ``slippage`` configuration names.

    Args:
        config: ``model`` is one of ``none``, ``fixed``, ``linear``, ``sqrt``.

    Returns:
        The model; ``none`` ignores ``bps`` and ``impact_bps``, ``fixed`` ignores ``impact_bps``.
    """
    if config.model == "fixed":
        return FixedSlippage(bps=config.bps)
    if config.model == "linear":
        return LinearImpactSlippage(bps=config.bps, impact_bps=config.impact_bps)
    if config.model == "sqrt":
        return SqrtImpactSlippage(bps=config.bps, impact_bps=config.impact_bps)
    return NoSlippage()


def apply_slippage(price: float, side: OrderSide, bps: float, instrument: Instrument) -> float:
    """Move ``price`` by ``bps`` against the trader and put it on the instrument's tick grid.

    The result is rounded to the tick adversely (up for a buy, down for a sell) so that
    rounding can never hand back part of the slippage. With ``bps == 0`` the price is returned
    unchanged, even if it is off the tick grid.

    Args:
        price: Reference price before slippage, > 0.
        side: Buys pay more, sells receive less.
        bps: Slippage in basis points, >= 0.
        instrument: Supplies the tick size.

    Returns:
        The slipped price; never below one tick.
    """
    if bps <= 0.0:
        return price
    slipped = price * (1.0 + side.sign * bps * _BPS)
    # round_price_passive rounds a buy down and a sell up; the adverse direction is the reverse.
    rounded = instrument.round_price_passive(slipped, is_buy=side is OrderSide.SELL)
    return max(rounded, instrument.tick_size)


def fee_rate(instrument: Instrument, liquidity: LiquiditySide, venue: VenueConfig) -> float:
    """Fee rate (fraction of notional) for a fill, the venue's override winning when set.

    Args:
        instrument: Supplies the default maker and taker rates.
        liquidity: Whether the fill added (maker) or removed (taker) liquidity.
        venue: ``maker_fee`` / ``taker_fee``, when not ``None``, replace the instrument's rate.

    Returns:
        The rate; a negative maker rate is a rebate.
    """
    if liquidity is LiquiditySide.MAKER:
        return instrument.maker_fee if venue.maker_fee is None else venue.maker_fee
    return instrument.taker_fee if venue.taker_fee is None else venue.taker_fee


def fill_fee(quantity: float, price: float, rate: float) -> float:
    """Fee in the quote currency: ``quantity * price * rate``."""
    return quantity * price * rate
