"""Instrument definitions: what a venue lets you trade and in which increments."""

from __future__ import annotations

import math
from decimal import Decimal
from functools import lru_cache
from typing import Self

from pydantic import BaseModel, ConfigDict, model_validator

from tradegraph.contracts.enums import InstrumentKind


@lru_cache(maxsize=256)
def _decimals(step: float) -> int:
    """Number of decimal places needed to print multiples of ``step`` exactly."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


class MarginTier(BaseModel):
    """One notional bracket of a perpetual's margin rules: up to ``max_notional`` of position
    value, ``initial_rate`` and ``maintenance_rate`` of notional are required (less
    ``maintenance_amount``, the exchange's cumulative deduction)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True
    )

    max_notional: float
    """Upper bound of the bracket's position notional (quote currency)."""
    initial_rate: float
    """Initial margin as a fraction of notional (1 / the bracket's highest leverage)."""
    maintenance_rate: float
    """Maintenance margin as a fraction of notional."""
    maintenance_amount: float = 0.0
    """Amount deducted from the maintenance margin (the exchange's cumulative deduction)."""


class Instrument(BaseModel):
    """A tradable instrument on one venue: spot (the default) or a linear perpetual swap.

    ``instrument_id`` is ``"{symbol}.{venue}"``, e.g. ``BTCUSDT.BINANCE``. Fees are fractions of
    notional (0.001 is 10 bps). A perpetual (``kind: perpetual``, symbols like
    ``BTCUSDT-PERP``) is quoted in ``quote``, settled in ``settle`` (empty: the quote asset),
    one contract is ``contract_size`` units of ``base``, and funding is paid every
    ``funding_interval_h`` hours.
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
            return f"{self.base}/{self.quote}:{self.settle or self.quote}"
        return f"{self.base}/{self.quote}"

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
