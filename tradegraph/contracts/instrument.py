"""Instrument definitions: what a venue lets you trade and in which increments."""

from __future__ import annotations

import math
from decimal import Decimal
from functools import lru_cache
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradegraph.contracts.enums import InstrumentKind


@lru_cache(maxsize=256)
def _decimals(step: float) -> int:
    """Number of decimal places needed to print multiples of ``step`` exactly."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


class MarginTier(BaseModel):
    """One step of a venue's margin schedule for a position up to ``max_notional``.

    Initial margin is ``notional * initial_rate``; maintenance margin is
    ``notional * maintenance_rate - maintenance_amount`` (the amount makes the schedule
    continuous across tiers, as Binance's ``cum`` does).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=True)

    max_notional: float = Field(
        description="largest position notional (settle asset) the tier covers; the last tier "
        "covers all"
    )
    initial_rate: float = Field(description="initial margin as a fraction of notional")
    maintenance_rate: float = Field(description="maintenance margin as a fraction of notional")
    maintenance_amount: float = Field(
        default=0.0, description="subtracted from notional * maintenance_rate (Binance's cum)"
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.max_notional > 0:
            raise ValueError("max_notional must be > 0")
        if not (0 < self.initial_rate <= 1 and 0 < self.maintenance_rate <= self.initial_rate):
            raise ValueError(
                "rates are fractions of notional: 0 < maintenance_rate <= initial_rate <= 1"
            )
        return self


class Instrument(BaseModel):
    """A tradable instrument on one venue: spot, or a linear perpetual swap.

    ``instrument_id`` is ``"{symbol}.{venue}"``, e.g. ``BTCUSDT.BINANCE``. Fees are fractions of
    notional (0.001 is 10 bps).

    A perpetual (``kind: perpetual``, symbols like ``BTCUSDT-PERP``) is margined and settled in
    ``settle`` (the quote asset when empty); quantities are in contracts of ``contract_size``
    base units; funding falls due every ``funding_interval_h`` hours; ``margin_tiers`` (sorted
    by ``max_notional``) give initial and maintenance rates by position size, and
    ``liquidation_fee`` is the fraction of notional the venue charges when it liquidates.
    Defaults leave a spot instrument exactly as before.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    symbol: str
    venue: str
    base: str
    quote: str
    tick_size: float
    lot_size: float
    min_quantity: float = 0.0
    min_notional: float = 0.0
    maker_fee: float = 0.001
    taker_fee: float = 0.001
    kind: InstrumentKind = InstrumentKind.SPOT
    contract_size: float = 1.0
    settle: str = ""
    max_leverage: float = 1.0
    margin_tiers: tuple[MarginTier, ...] = ()
    funding_interval_h: float = 8.0
    liquidation_fee: float = 0.0

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.contract_size <= 0:
            raise ValueError("contract_size must be > 0")
        if self.max_leverage < 1:
            raise ValueError("max_leverage must be >= 1")
        if self.funding_interval_h <= 0:
            raise ValueError("funding_interval_h must be > 0")
        if not 0 <= self.liquidation_fee <= 0.1:
            raise ValueError("liquidation_fee is a fraction of notional in [0, 0.1]")
        if any(
            b.max_notional <= a.max_notional
            for a, b in zip(self.margin_tiers, self.margin_tiers[1:], strict=False)
        ):
            raise ValueError("margin_tiers must be sorted by max_notional, ascending")
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise ValueError("tick_size and lot_size must be > 0")
        if self.min_quantity < 0 or self.min_notional < 0:
            raise ValueError("min_quantity and min_notional must be >= 0")
        if not (-0.01 <= self.maker_fee <= 0.05 and 0 <= self.taker_fee <= 0.05):
            raise ValueError(
                "fees are fractions of notional: maker in [-0.01, 0.05], taker in [0, 0.05]"
            )
        return self

    @property
    def instrument_id(self) -> str:
        return f"{self.symbol}.{self.venue}"

    @property
    def ccxt_symbol(self) -> str:
        """ccxt's market symbol: ``BTC/USDT``, or ``BTC/USDT:USDT`` for a perpetual."""
        if self.kind is InstrumentKind.PERPETUAL:
            return f"{self.base}/{self.quote}:{self.settle_asset}"
        return f"{self.base}/{self.quote}"

    @property
    def settle_asset(self) -> str:
        """The asset margin and profit are held in: ``settle``, else the quote asset."""
        return self.settle or self.quote

    @property
    def is_perpetual(self) -> bool:
        return self.kind is InstrumentKind.PERPETUAL

    def margin_tier(self, notional: float) -> MarginTier | None:
        """The tier whose ``max_notional`` first covers ``notional`` (the last one above all);
        ``None`` when the instrument has no tiers."""
        tiers = self.margin_tiers
        if not tiers:
            return None
        for tier in tiers:
            if notional <= tier.max_notional:
                return tier
        return tiers[-1]

    @property
    def price_decimals(self) -> int:
        return _decimals(self.tick_size)

    @property
    def size_decimals(self) -> int:
        return _decimals(self.lot_size)

    def round_price(self, price: float) -> float:
        """Nearest multiple of the tick size."""
        return round(round(price / self.tick_size) * self.tick_size, self.price_decimals)

    def round_price_passive(self, price: float, is_buy: bool) -> float:
        """Round a limit price away from the market: down for a buy, up for a sell."""
        ticks = price / self.tick_size
        n = math.floor(ticks + 1e-9) if is_buy else math.ceil(ticks - 1e-9)
        return round(n * self.tick_size, self.price_decimals)

    def round_quantity(self, quantity: float) -> float:
        """Largest multiple of the lot size not above ``quantity`` (never trades more than asked)."""
        n = math.floor(quantity / self.lot_size + 1e-9)
        return round(n * self.lot_size, self.size_decimals)


def instrument_id(symbol: str, venue: str) -> str:
    return f"{symbol}.{venue}"
