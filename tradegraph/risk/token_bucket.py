"""A token bucket driven by simulated or wall time in integer nanoseconds."""

from __future__ import annotations

from tradegraph.contracts.state import StateRecord

_NS_PER_S = 1_000_000_000


class TokenBucketState(StateRecord):
    """A :class:`TokenBucket`'s tokens and when they were last counted."""

    tokens: float
    updated_ns: int


class TokenBucket:
    """Allows bursts of up to ``capacity`` events and ``rate_per_s`` events per second on average.

    The bucket never reads a clock itself: callers pass the current time, so it behaves the same
    under a simulated clock and the wall clock. It starts full.

    Args:
        rate_per_s: Tokens added per second.
        capacity: Most tokens the bucket holds (the largest burst).
        now_ns: Current time; refills are measured from here.

    Raises:
        ValueError: If ``rate_per_s`` is not above zero or ``capacity`` is below one.
    """

    def __init__(self, rate_per_s: float, capacity: float, now_ns: int) -> None:
        if not rate_per_s > 0.0:
            raise ValueError(f"rate_per_s must be > 0, was {rate_per_s!r}")
        if not capacity >= 1.0:
            raise ValueError(f"capacity must be >= 1, was {capacity!r}")
        self.rate_per_s = float(rate_per_s)
        self.capacity = float(capacity)
        self._tokens = self.capacity
        self._updated_ns = now_ns

    @property
    def tokens(self) -> float:
        """Tokens held at the last refill."""
        return self._tokens

    def refill(self, now_ns: int) -> float:
        """Add the tokens earned since the last refill and return how many are available.

        Time that runs backwards (a clock reset) earns nothing rather than removing tokens.
        """
        elapsed_ns = now_ns - self._updated_ns
        if elapsed_ns > 0:
            earned = elapsed_ns * self.rate_per_s / _NS_PER_S
            self._tokens = min(self.capacity, self._tokens + earned)
        self._updated_ns = now_ns
        return self._tokens

    def take(self, count: float = 1.0) -> None:
        """Spend ``count`` tokens; the caller has checked that they are available."""
        self._tokens -= count

    def snapshot(self) -> TokenBucketState:
        """The bucket's state."""
        return TokenBucketState(tokens=self._tokens, updated_ns=self._updated_ns)

    def restore(self, state: TokenBucketState) -> None:
        """Take the tokens and time of a :meth:`snapshot`; rate and capacity stay configured."""
        self._tokens = state.tokens
        self._updated_ns = state.updated_ns
