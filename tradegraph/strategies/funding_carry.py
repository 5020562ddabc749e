"""A delta-neutral funding carry: long spot, short the perpetual of the same asset."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field, ValidationInfo, field_validator

from tradegraph.config.models import StrategyConfig
from tradegraph.contracts import (
    Clock,
    FundingPaid,
    FundingRate,
    Instrument,
    OrderSide,
    Outbox,
)
from tradegraph.errors import ConfigError
from tradegraph.strategies.base import Strategy, StrategyParams


class FundingCarryParams(StrategyParams):
    """Parameters of :class:`FundingCarry`."""

    quantity: float = Field(default=0.1, gt=0.0, description="base units held on each leg")
    entry_rate: float = Field(
        default=0.0001,
        gt=-1.0,
        lt=1.0,
        description="enter when a funding rate is above this (longs pay shorts)",
    )
    exit_rate: float = Field(
        default=0.0,
        gt=-1.0,
        lt=1.0,
        description="leave when a funding rate is at or below this",
    )

    @field_validator("exit_rate")
    @classmethod
    def _exit_not_above_entry(cls, exit_rate: float, info: ValidationInfo) -> float:
        entry = info.data.get("entry_rate")
        if entry is not None and exit_rate > entry:
            raise ValueError(f"must not be above entry_rate ({entry})")
        return exit_rate


class FundingCarry(Strategy):
    """Collects funding without price risk: long ``quantity`` of the spot asset and short the
    same base amount of its perpetual while the perpetual's funding pays shorts.

    Trades on the funding events of the perpetual (``on_funding_rate``; the simulated venue
    announces each one of ``data.funding``): a rate above ``entry_rate`` opens the carry, a
    rate at or below ``exit_rate`` closes it. At each event both legs are brought to their
    target with market orders (a leg with an open order waits for the next event), so a leg a
    venue refused is retried instead of left unhedged. The two instruments are the
    strategy's ``instruments``: one spot, one perpetual of the same base asset; they may sit
    on two venues (a cash account for spot, a margin account for the perpetual). Sizes are in
    base units, rounded down to both instruments' lots so the legs match.

    Attributes:
        funding_received: Funding received on the short (negative: paid), in the settle asset.
        entries: Times the carry was opened.
        exits: Times it was closed.
    """

    Params = FundingCarryParams
    params: FundingCarryParams

    def __init__(
        self,
        config: StrategyConfig,
        instruments: Mapping[str, Instrument],
        clock: Clock,
        outbox: Outbox,
    ) -> None:
        super().__init__(config, instruments, clock, outbox)
        perps = [i for i in self.instruments.values() if i.is_perpetual]
        spots = [i for i in self.instruments.values() if not i.is_perpetual]
        where = f"strategies.{config.id}.instruments"
        if len(perps) != 1 or len(spots) != 1:
            raise ConfigError(
                f"{where}: funding_carry needs one spot instrument and one perpetual, "
                f"got {list(self.instruments)}"
            )
        spot, perp = spots[0], perps[0]
        if spot.base != perp.base:
            raise ConfigError(
                f"{where}: the spot ({spot.base}) and the perpetual ({perp.base}) "
                "must trade the same base asset"
            )
        base = perp.round_quantity(self.params.quantity / perp.contract_size) * perp.contract_size
        base = spot.round_quantity(base)
        if base <= 0.0:
            raise ConfigError(
                f"strategies.{config.id}.params.quantity: {self.params.quantity} is below a lot "
                f"of {spot.instrument_id} or {perp.instrument_id}"
            )
        self.spot_id = spot.instrument_id
        self.perp_id = perp.instrument_id
        self._spot_size = base
        self._perp_size = perp.round_quantity(base / perp.contract_size)
        self._holding = False
        self.funding_received = 0.0
        self.entries = 0
        self.exits = 0

    @property
    def holding(self) -> bool:
        """Whether the carry is on (its target; orders may still be on their way)."""
        return self._holding

    def on_funding_rate(self, event: FundingRate) -> None:
        if event.instrument_id != self.perp_id:
            return
        if not self._holding and event.rate > self.params.entry_rate:
            self._holding = True
            self.entries += 1
        elif self._holding and event.rate <= self.params.exit_rate:
            self._holding = False
            self.exits += 1
        self._rebalance()

    def on_funding(self, event: FundingPaid) -> None:
        self.funding_received -= event.amount

    def _rebalance(self) -> None:
        on = self._holding
        for iid, target in (
            (self.spot_id, self._spot_size if on else 0.0),
            (self.perp_id, -self._perp_size if on else 0.0),
        ):
            if self.has_open_orders(iid):
                continue
            held = self.position(iid)
            change = self.instruments[iid].round_quantity(abs(target - held))
            if change > 0.0:
                side = OrderSide.BUY if target > held else OrderSide.SELL
                self.submit_order(iid, side, change, tag="carry")
