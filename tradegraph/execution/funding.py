"""A perpetual's funding events as the simulated venue applies them."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FundingSeries:
    """Funding events of one perpetual, in time order.

    Attributes:
        ts_ns: Time of each event, ns since the epoch.
        rate: Funding rate of each event (fraction of notional; positive: longs pay).
        mark_price: The venue's mark at each event; NaN where the data has none.
    """

    ts_ns: tuple[int, ...]
    rate: tuple[float, ...]
    mark_price: tuple[float, ...]

    def __post_init__(self) -> None:
        if not len(self.ts_ns) == len(self.rate) == len(self.mark_price):
            raise ValueError("ts_ns, rate and mark_price must have the same length")
        if any(b < a for a, b in zip(self.ts_ns, self.ts_ns[1:], strict=False)):
            raise ValueError("funding events must be in time order")

    def __len__(self) -> int:
        return len(self.ts_ns)

    def mark_at(self, index: int) -> float | None:
        """The event's own mark, or ``None`` when the data has none."""
        mark = self.mark_price[index]
        return None if math.isnan(mark) else mark
