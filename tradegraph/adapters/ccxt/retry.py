"""Retrying venue calls: full-jitter backoff, rate-limit bans, and a circuit breaker.

Which ccxt errors are worth another try: :data:`RETRYABLE_ERRORS` (network trouble, timeouts,
rate limits, exchange unavailable, clock skew, garbled responses). Of those, the ones in
:data:`NOT_EXECUTED_ERRORS` are refusals the venue makes *before* acting on a request (HTTP
429/418, which ccxt raises as ``DDoSProtection`` or ``RateLimitExceeded``, and a timestamp
outside the receive window, ``InvalidNonce``): an order sent in such a request certainly does
not exist. For the others (a timeout after the request left, a dropped connection) the outcome
is unknown, and an order must be looked up before it is sent again.

Every other ccxt error means the venue answered (the order is invalid, funds are short, ...):
it is not retried, and it counts as a success for the circuit breaker, which tracks whether the
venue can be reached at all.

A rate-limit refusal (HTTP 429, or 418 once a venue has banned the address) is a *ban*: the
venue will refuse every request for ``Retry-After`` seconds, and Binance lengthens the ban of a
client that keeps calling. So a refusal opens the venue's :class:`CircuitBreaker` at once, for
the whole ``Retry-After`` (without one: :meth:`CircuitBreaker.ban_s`, exponential from
``RetryConfig.ban_floor_s``), and every call that shares the breaker (submits, cancels, polls,
market data) is refused *without sending* until the ban is over; then one probe goes out.

Time and randomness are injected (``monotonic``, ``sleep``, ``rand``), so tests run without
waiting.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

import ccxt

from tradegraph.config.models import CircuitBreakerConfig, RetryConfig
from tradegraph.errors import OrderPathError
from tradegraph.observability import get_logger

__all__ = [
    "NOT_EXECUTED_ERRORS",
    "RATE_LIMIT_ERRORS",
    "RETRYABLE_ERRORS",
    "Backoff",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Retrier",
    "is_retryable",
    "parse_retry_after",
    "request_not_executed",
    "retry_after_from_headers",
]

T = TypeVar("T")

RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (ccxt.NetworkError, ccxt.BadResponse)
"""Errors that may pass: network, timeouts, rate limits, unavailability, clock skew."""

RATE_LIMIT_ERRORS: tuple[type[BaseException], ...] = (ccxt.DDoSProtection, ccxt.RateLimitExceeded)
"""The venue throttled us (HTTP 429/418 and venue-specific codes)."""

NOT_EXECUTED_ERRORS: tuple[type[BaseException], ...] = (*RATE_LIMIT_ERRORS, ccxt.InvalidNonce)
"""Retryable errors the venue raises before acting on the request."""


def is_retryable(exc: BaseException) -> bool:
    """Whether another try of the same call may succeed."""
    return isinstance(exc, RETRYABLE_ERRORS)


def request_not_executed(exc: BaseException) -> bool:
    """Whether the venue certainly did not act on the request that raised ``exc``."""
    return isinstance(exc, NOT_EXECUTED_ERRORS)


def parse_retry_after(value: Any, now_epoch_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value (seconds or an HTTP date)."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - now_epoch_s
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retry_after_from_headers(headers: Mapping[str, Any] | None, now_epoch_s: float) -> float | None:
    """The ``Retry-After`` of a response's headers (any capitalisation), in seconds."""
    if not headers:
        return None
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            return parse_retry_after(value, now_epoch_s)
    return None


class CircuitState(StrEnum):
    """Closed: calls go through. Open: calls are refused. Half-open: one probe goes through."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(OrderPathError):
    """A call was refused without trying because the venue's circuit breaker is open."""


class CircuitBreaker:
    """Stops calling a venue that keeps failing, and probes it again after a cool-down.

    ``failure_threshold`` consecutive failures open the circuit. After ``cooldown_s`` the next
    :meth:`allow` moves it to half-open and lets that one call through; its success closes the
    circuit, its failure opens it for another cool-down. Every state change is reported to
    ``on_change(state, detail)`` (the broker turns open/closed into ``VenueStatus``).

    A ban met by another caller of the venue (another process) is applied with
    :meth:`honour_ban`; a ban this breaker's own calls meet is reported to ``on_ban(seconds,
    detail)``, so the owner can tell the venue's other callers.

    Args:
        failure_threshold: Consecutive failures that open the circuit.
        cooldown_s: How long it stays open before a probe.
        monotonic: Seconds from a monotonic clock.
        on_change: Called on every state change.
        on_ban: Called when a call of ours met a ban, with how long it still lasts.
    """

    def __init__(
        self,
        failure_threshold: int,
        cooldown_s: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitState, str], None] | None = None,
        on_ban: Callable[[float, str], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, was {failure_threshold}")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._monotonic = monotonic
        self._on_change = on_change
        self._on_ban = on_ban
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._open_until = 0.0
        self._banned_until = 0.0
        self._bans_in_a_row = 0
        self._probe_in_flight = False

    @classmethod
    def from_config(
        cls,
        config: CircuitBreakerConfig,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitState, str], None] | None = None,
        on_ban: Callable[[float, str], None] | None = None,
    ) -> CircuitBreaker:
        return cls(
            config.failure_threshold,
            config.cooldown_s,
            monotonic=monotonic,
            on_change=on_change,
            on_ban=on_ban,
        )

    @property
    def state(self) -> CircuitState:
        return self._state

    @property
    def bans_in_a_row(self) -> int:
        """Rate-limit refusals since the venue last answered."""
        return self._bans_in_a_row

    @property
    def probing(self) -> bool:
        """Whether the one probe of a half-open circuit is out (other calls are refused)."""
        return self._state is CircuitState.HALF_OPEN and self._probe_in_flight

    def ban_remaining_s(self) -> float:
        """Seconds until the venue's ban is over (0 when there is none)."""
        return max(0.0, self._banned_until - self._monotonic())

    def closed_for_s(self) -> float:
        """Seconds until the open circuit lets a probe through (0 when calls may go now)."""
        if self._state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self._open_until - self._monotonic())

    def ban_s(self, retry_after_s: float | None, floor_s: float, max_s: float) -> float:
        """How long the next ban lasts: all of ``Retry-After`` when the venue sent one, else
        ``floor_s`` doubled for each ban in a row before this one, at most ``max_s``."""
        if retry_after_s is not None:
            return retry_after_s
        return min(max_s, floor_s * (2.0 ** min(self._bans_in_a_row, 30)))

    def ban(self, seconds: float, detail: str) -> None:
        """The venue refused a call for its rate limit: refuse every call for ``seconds``.

        Opens the circuit at once (whatever the failure count), so the owner is told now; a
        longer ban already running is kept.
        """
        now = self._monotonic()
        self._failures += 1
        self._bans_in_a_row += 1
        self._probe_in_flight = False
        self._banned_until = max(self._banned_until, now + seconds)
        self._open_until = self._banned_until
        self._set(
            CircuitState.OPEN,
            f"rate-limited by the venue ({detail}); every call waits {self.ban_remaining_s():g}s "
            f"(ban {self._bans_in_a_row} in a row)",
        )
        if self._on_ban is not None:
            self._on_ban(self.ban_remaining_s(), detail)

    def honour_ban(self, seconds: float, detail: str) -> None:
        """Another caller of the venue met a ban lasting ``seconds`` more: refuse every call
        until it ends (a longer ban already running is kept).

        Opens the circuit like :meth:`ban`, but neither counts the ban as one of ours nor
        reports it to ``on_ban`` (it came from there).
        """
        if seconds <= 0.0:
            return
        until = self._monotonic() + seconds
        if until <= self._banned_until and self._state is CircuitState.OPEN:
            return
        self._banned_until = max(self._banned_until, until)
        self._open_until = max(self._open_until, self._banned_until)
        self._probe_in_flight = False
        self._set(
            CircuitState.OPEN,
            f"rate-limited by the venue ({detail}); every call waits {self.ban_remaining_s():g}s",
        )

    def allow(self) -> bool:
        """Whether a call may go out now (moves an open circuit past its cool-down to half-open)."""
        if self._state is CircuitState.CLOSED:
            return True
        if self._state is CircuitState.OPEN:
            if self.closed_for_s() > 0.0:
                return False
            self._set(CircuitState.HALF_OPEN, "cool-down over; probing the venue")
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self) -> None:
        """The venue answered."""
        self._failures = 0
        self._bans_in_a_row = 0
        self._probe_in_flight = False
        # An answer to a call sent before a ban began does not end the ban.
        if self._state is not CircuitState.CLOSED and self.ban_remaining_s() <= 0.0:
            self._set(CircuitState.CLOSED, "venue answered again")

    def record_failure(self, detail: str) -> None:
        """A call failed in a way that says the venue cannot be reached (or throttles us)."""
        self._failures += 1
        self._probe_in_flight = False
        if self._state is CircuitState.HALF_OPEN or (
            self._state is CircuitState.CLOSED and self._failures >= self.failure_threshold
        ):
            self._open_until = max(self._banned_until, self._monotonic() + self.cooldown_s)
            self._set(
                CircuitState.OPEN,
                f"{self._failures} consecutive failed calls, last: {detail}; "
                f"next probe in {self.cooldown_s:g}s",
            )

    def describe(self) -> str:
        """Why calls are refused now, for errors."""
        ban = self.ban_remaining_s()
        if ban > 0.0:
            return (
                f"the venue rate-limited us ({self._bans_in_a_row} in a row); banned {ban:g}s more"
            )
        return (
            f"the venue's circuit breaker is open after {self._failures} consecutive failed "
            f"calls; it probes again in {self.closed_for_s():g}s"
        )

    def _set(self, state: CircuitState, detail: str) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(state, detail)


class Backoff:
    """Full-jitter exponential delays that never end before the venue's ``Retry-After``.

    Args:
        config: Base and maximum delay.
        sleep: Awaitable sleep (``asyncio.sleep`` in production, a recorder in tests).
        rand: Uniform random numbers in ``[0, 1)``.
    """

    def __init__(
        self,
        config: RetryConfig,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._rand = rand if rand is not None else random.Random().random

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Delay before retry number ``attempt`` (0 for the first retry)."""
        cap = min(self.config.max_delay_s, self.config.base_delay_s * (2.0 ** min(attempt, 60)))
        delay = self._rand() * cap
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return delay

    async def sleep(self, seconds: float) -> None:
        """Sleep with the injected sleep function."""
        await self._sleep(seconds)

    async def wait(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Sleep for :meth:`delay_s` and return how long that was."""
        delay = self.delay_s(attempt, retry_after_s)
        await self._sleep(delay)
        return delay


class Retrier:
    """Runs a venue call, retrying what may pass, through a circuit breaker.

    Args:
        config: Attempts and delays.
        breaker: Shared by every call to the venue; ``None`` for no breaker.
        backoff: Delay policy (built from ``config`` when not given).
        retry_after: The venue's ``Retry-After`` for a failed call, in seconds, if it sent one.
        describe: Turns an error into text safe to log (secrets scrubbed).
        component: Name for log lines.
    """

    def __init__(
        self,
        config: RetryConfig,
        breaker: CircuitBreaker | None,
        *,
        backoff: Backoff | None = None,
        retry_after: Callable[[BaseException], float | None] | None = None,
        describe: Callable[[BaseException], str] = lambda exc: type(exc).__name__,
        component: str = "venue",
    ) -> None:
        self.config = config
        self.breaker = breaker
        self.backoff = backoff if backoff is not None else Backoff(config)
        self._retry_after = retry_after
        self._describe = describe
        self._log = get_logger(component)
        # Bans when there is no breaker to keep them (a one-off download, say).
        self._bans_in_a_row = 0
        self._ban_s = 0.0

    def retry_after_s(self, exc: BaseException) -> float | None:
        """The venue's ``Retry-After`` for a throttling error, else ``None``."""
        if self._retry_after is None or not isinstance(exc, RATE_LIMIT_ERRORS):
            return None
        return self._retry_after(exc)

    def check_circuit(self, operation: str) -> None:
        """Raise :class:`CircuitOpenError` if the breaker refuses calls now."""
        if self.breaker is not None and not self.breaker.allow():
            raise CircuitOpenError(f"{operation}: not sent, {self.breaker.describe()}")

    def record(self, exc: BaseException | None) -> None:
        """Tell the breaker how a call ended (``None``: success); a rate-limit refusal bans the
        venue for its ``Retry-After`` (or our own exponential ban)."""
        if exc is not None and isinstance(exc, RATE_LIMIT_ERRORS):
            retry_after = self.retry_after_s(exc)
            config = self.config
            if self.breaker is not None:
                seconds = self.breaker.ban_s(retry_after, config.ban_floor_s, config.ban_max_s)
                source = "Retry-After" if retry_after is not None else "no Retry-After"
                self.breaker.ban(seconds, f"{self._describe(exc)}; {source}: {seconds:g}s")
            else:
                self._bans_in_a_row += 1
                self._ban_s = (
                    retry_after
                    if retry_after is not None
                    else min(
                        config.ban_max_s,
                        config.ban_floor_s * 2.0 ** min(self._bans_in_a_row - 1, 30),
                    )
                )
            return
        if exc is None or not is_retryable(exc):
            self._bans_in_a_row = 0
        if self.breaker is None:
            return
        if exc is None or not is_retryable(exc):
            self.breaker.record_success()
        else:
            self.breaker.record_failure(self._describe(exc))

    def ban_wait_s(self, exc: BaseException) -> float | None:
        """How long a call that failed with ``exc`` must wait for the venue's ban to end
        (``None``: ``exc`` is no rate-limit refusal)."""
        if not isinstance(exc, RATE_LIMIT_ERRORS):
            return None
        if self.breaker is not None:
            return self.breaker.closed_for_s()
        return self._ban_s

    async def pause(self, operation: str, attempt: int, exc: BaseException) -> bool:
        """Back off before retry ``attempt`` after ``exc``, logging why.

        Returns:
            ``False`` without waiting when the venue's ban lasts longer than
            ``max_ban_wait_s``: the call should give up now.
        """
        ban_s = self.ban_wait_s(exc)
        if ban_s is not None and ban_s > self.config.max_ban_wait_s:
            self._log.warning(
                "venue_call_given_up",
                operation=operation,
                error=self._describe(exc),
                ban_s=round(ban_s, 3),
                max_ban_wait_s=self.config.max_ban_wait_s,
            )
            return False
        delay = self.backoff.delay_s(attempt, ban_s)
        self._log.warning(
            "venue_call_retry",
            operation=operation,
            attempt=attempt + 1,
            error=self._describe(exc),
            delay_s=round(delay, 3),
            ban_s=ban_s,
        )
        await self.backoff.sleep(delay)
        return True

    async def call(
        self,
        operation: str,
        fn: Callable[[], Awaitable[T]],
        *,
        on_retryable: Callable[[BaseException], Awaitable[None]] | None = None,
    ) -> T:
        """Await ``fn()``; retry retryable errors up to ``max_attempts`` calls in all.

        Only for calls that are safe to repeat (reads, cancels): a submit with an unknown
        outcome must be looked up instead (see ``CcxtBroker``).

        Args:
            operation: What is being done, for errors and logs.
            fn: Makes the call.
            on_retryable: Awaited after each retryable failure before backing off (e.g. to
                resynchronise the clock after ``InvalidNonce``).

        Raises:
            CircuitOpenError: The breaker refused the call.
            ccxt.BaseError: The last error, when it is not retryable or attempts ran out.
        """
        attempt = 0
        while True:
            self.check_circuit(operation)
            try:
                result = await fn()
            except ccxt.BaseError as exc:
                self.record(exc)
                if not is_retryable(exc) or attempt + 1 >= self.config.max_attempts:
                    raise
                if on_retryable is not None:
                    await on_retryable(exc)
                if not await self.pause(operation, attempt, exc):
                    raise
                attempt += 1
                continue
            self.record(None)
            return result
