"""Backoff with full jitter, Retry-After, and the circuit breaker, without real sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradegraph.adapters.ccxt.retry import (
    Backoff,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    Retrier,
    is_retryable,
    parse_retry_after,
    request_not_executed,
    retry_after_from_headers,
)
from tradegraph.config.models import RetryConfig


class FakeTime:
    """A monotonic clock and a sleep that only moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """An async call that raises the given errors in turn, then returns ``result``."""

    def __init__(self, errors: list[BaseException], result: str = "ok") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def run(coro: Awaitable[Any]) -> Any:
    async def wrapper() -> Any:
        return await coro

    return asyncio.run(wrapper())


def make_retrier(
    config: RetryConfig,
    fake: FakeTime,
    breaker: CircuitBreaker | None = None,
    retry_after: Callable[[BaseException], float | None] | None = None,
    rand: float = 0.5,
) -> Retrier:
    backoff = Backoff(config, sleep=fake.sleep, rand=lambda: rand)
    return Retrier(config, breaker, backoff=backoff, retry_after=retry_after)


# ------------------------------------------------------------------ classification


@pytest.mark.parametrize(
    "exc",
    [
        ccxt.NetworkError("x"),
        ccxt.RequestTimeout("x"),
        ccxt.DDoSProtection("x"),
        ccxt.RateLimitExceeded("x"),
        ccxt.ExchangeNotAvailable("x"),
        ccxt.InvalidNonce("x"),
        ccxt.BadResponse("x"),
    ],
)
def test_transient_errors_are_retryable(exc: BaseException) -> None:
    assert is_retryable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ccxt.InvalidOrder("x"),
        ccxt.InsufficientFunds("x"),
        ccxt.AuthenticationError("x"),
        ccxt.ExchangeError("x"),
        ValueError("x"),
    ],
)
def test_answers_from_the_venue_are_not_retryable(exc: BaseException) -> None:
    assert not is_retryable(exc)


def test_only_throttling_and_clock_skew_prove_the_request_was_not_executed() -> None:
    assert request_not_executed(ccxt.DDoSProtection("429"))
    assert request_not_executed(ccxt.RateLimitExceeded("-1003"))
    assert request_not_executed(ccxt.InvalidNonce("-1021"))
    assert not request_not_executed(ccxt.RequestTimeout("timeout"))
    assert not request_not_executed(ccxt.ExchangeNotAvailable("connection reset"))


# ------------------------------------------------------------------ Retry-After


def test_retry_after_in_seconds_is_read_whatever_the_header_case() -> None:
    assert retry_after_from_headers({"Retry-After": "7"}, 0.0) == 7.0
    assert retry_after_from_headers({"retry-after": "1.5"}, 0.0) == 1.5
    assert retry_after_from_headers({"Content-Type": "x"}, 0.0) is None
    assert retry_after_from_headers(None, 0.0) is None


def test_retry_after_as_http_date_counts_from_now() -> None:
    now = 1_700_000_000.0
    header = "Tue, 14 Nov 2023 22:13:30 GMT"  # now + 10 s

    assert parse_retry_after(header, now) == pytest.approx(10.0)
    assert parse_retry_after(header, now + 60.0) == 0.0


@pytest.mark.parametrize("value", ["", "soon", "nan", None])
def test_unreadable_retry_after_is_ignored(value: Any) -> None:
    assert parse_retry_after(value, 0.0) is None


# ------------------------------------------------------------------ backoff


@settings(max_examples=200, deadline=None)
@given(attempt=st.integers(0, 100), rand=st.floats(0.0, 0.999999))
def test_full_jitter_delay_stays_within_its_exponential_cap(attempt: int, rand: float) -> None:
    config = RetryConfig(base_delay_s=0.1, max_delay_s=5.0)
    backoff = Backoff(config, rand=lambda: rand)

    delay = backoff.delay_s(attempt)

    assert 0.0 <= delay <= min(5.0, 0.1 * 2.0**attempt) + 1e-12


@settings(max_examples=100, deadline=None)
@given(retry_after=st.floats(0.0, 100_000.0), rand=st.floats(0.0, 0.999999))
def test_delay_honours_retry_after_in_full(retry_after: float, rand: float) -> None:
    config = RetryConfig(base_delay_s=0.1, max_delay_s=5.0)
    backoff = Backoff(config, rand=lambda: rand)

    delay = backoff.delay_s(0, retry_after)

    assert delay >= retry_after
    assert delay <= max(retry_after, 0.1)


# ------------------------------------------------------------------ retrier


def test_transient_failures_are_retried_until_the_call_succeeds() -> None:
    fake = FakeTime()
    retrier = make_retrier(RetryConfig(max_attempts=5, base_delay_s=1.0), fake, rand=0.5)
    call = Flaky([ccxt.RequestTimeout("t"), ccxt.ExchangeNotAvailable("e")])

    result = run(retrier.call("fetch", call))

    assert result == "ok"
    assert call.calls == 3
    assert fake.sleeps == [0.5, 1.0]


def test_attempts_run_out_and_the_last_error_is_raised() -> None:
    fake = FakeTime()
    retrier = make_retrier(RetryConfig(max_attempts=3, base_delay_s=0.01), fake)
    call = Flaky([ccxt.RequestTimeout(str(n)) for n in range(5)])

    with pytest.raises(ccxt.RequestTimeout, match="2"):
        run(retrier.call("fetch", call))

    assert call.calls == 3
    assert len(fake.sleeps) == 2


def test_venue_answer_is_not_retried() -> None:
    fake = FakeTime()
    retrier = make_retrier(RetryConfig(max_attempts=5), fake)
    call = Flaky([ccxt.InvalidOrder("bad lot")])

    with pytest.raises(ccxt.InvalidOrder):
        run(retrier.call("create", call))

    assert call.calls == 1
    assert fake.sleeps == []


def test_rate_limit_waits_for_the_retry_after_the_venue_asked_for() -> None:
    fake = FakeTime()
    retrier = make_retrier(
        RetryConfig(max_attempts=3, base_delay_s=0.01),
        fake,
        retry_after=lambda exc: 2.0,
        rand=0.0,
    )
    call = Flaky([ccxt.DDoSProtection("429"), ccxt.RequestTimeout("t")])

    run(retrier.call("fetch", call))

    # Retry-After applies to the throttling error only, not to the timeout after it.
    assert fake.sleeps == [2.0, 0.0]


def test_hook_runs_after_each_retryable_failure() -> None:
    fake = FakeTime()
    retrier = make_retrier(RetryConfig(max_attempts=3, base_delay_s=0.01), fake)
    seen: list[str] = []

    async def resync(exc: BaseException) -> None:
        seen.append(type(exc).__name__)

    run(retrier.call("fetch", Flaky([ccxt.InvalidNonce("-1021")]), on_retryable=resync))

    assert seen == ["InvalidNonce"]


# ------------------------------------------------------------------ circuit breaker


def test_breaker_opens_after_consecutive_failures_and_reports_it() -> None:
    fake = FakeTime()
    changes: list[CircuitState] = []
    breaker = CircuitBreaker(
        3, 10.0, monotonic=fake.monotonic, on_change=lambda s, d: changes.append(s)
    )

    breaker.record_failure("a")
    breaker.record_failure("b")
    closed_after_two = breaker.allow()
    breaker.record_failure("c")

    assert closed_after_two
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow()
    assert changes == [CircuitState.OPEN]


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(2, 10.0, monotonic=FakeTime().monotonic)

    breaker.record_failure("a")
    breaker.record_success()
    breaker.record_failure("b")

    assert breaker.state is CircuitState.CLOSED


def test_breaker_lets_one_probe_through_after_cool_down_and_closes_on_success() -> None:
    fake = FakeTime()
    changes: list[CircuitState] = []
    breaker = CircuitBreaker(
        1, 10.0, monotonic=fake.monotonic, on_change=lambda s, d: changes.append(s)
    )
    breaker.record_failure("down")

    fake.now = 9.9
    before_cool_down = breaker.allow()
    fake.now = 10.0
    probe = breaker.allow()
    second_while_probing = breaker.allow()
    breaker.record_success()

    assert (before_cool_down, probe, second_while_probing) == (False, True, False)
    assert changes == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]
    assert breaker.allow()


def test_failed_probe_opens_the_circuit_for_another_cool_down() -> None:
    fake = FakeTime()
    breaker = CircuitBreaker(1, 10.0, monotonic=fake.monotonic)
    breaker.record_failure("down")
    fake.now = 10.0
    breaker.allow()

    breaker.record_failure("still down")

    assert breaker.state is CircuitState.OPEN
    fake.now = 19.0
    assert not breaker.allow()
    fake.now = 20.0
    assert breaker.allow()


def test_open_circuit_refuses_calls_without_making_them() -> None:
    fake = FakeTime()
    breaker = CircuitBreaker(2, 30.0, monotonic=fake.monotonic)
    retrier = make_retrier(RetryConfig(max_attempts=5, base_delay_s=0.01), fake, breaker=breaker)
    failing = Flaky([ccxt.ExchangeNotAvailable(str(n)) for n in range(10)])
    never = Flaky([])

    with pytest.raises(CircuitOpenError, match="circuit breaker is open"):
        run(retrier.call("fetch", failing))
    with pytest.raises(CircuitOpenError):
        run(retrier.call("fetch", never))

    assert failing.calls == 2
    assert never.calls == 0


def test_venue_answers_keep_the_circuit_closed() -> None:
    fake = FakeTime()
    breaker = CircuitBreaker(2, 30.0, monotonic=fake.monotonic)
    retrier = make_retrier(RetryConfig(max_attempts=1), fake, breaker=breaker)

    for _ in range(5):
        with pytest.raises(ccxt.InsufficientFunds):
            run(retrier.call("create", Flaky([ccxt.InsufficientFunds("no")])))

    assert breaker.state is CircuitState.CLOSED
