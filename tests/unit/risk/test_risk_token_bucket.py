"""Unit tests for the token bucket behind Risk's order-rate limit."""

from __future__ import annotations

import pytest

from tradegraph.risk import TokenBucket

SECOND_NS = 1_000_000_000


def test_bucket_starts_full() -> None:
    bucket = TokenBucket(rate_per_s=2.0, capacity=5.0, now_ns=0)

    assert bucket.refill(0) == 5.0


def test_tokens_refill_at_the_rate_up_to_capacity() -> None:
    bucket = TokenBucket(rate_per_s=2.0, capacity=5.0, now_ns=0)
    for _ in range(5):
        bucket.take()

    after_half_second = bucket.refill(SECOND_NS // 2)
    after_ten_seconds = bucket.refill(10 * SECOND_NS)

    assert after_half_second == pytest.approx(1.0)
    assert after_ten_seconds == 5.0


def test_time_running_backwards_earns_nothing() -> None:
    bucket = TokenBucket(rate_per_s=1.0, capacity=3.0, now_ns=10 * SECOND_NS)
    bucket.take(3.0)

    tokens = bucket.refill(5 * SECOND_NS)

    assert tokens == 0.0


def test_snapshot_restore_round_trip() -> None:
    bucket = TokenBucket(rate_per_s=4.0, capacity=8.0, now_ns=0)
    bucket.take(6.0)
    bucket.refill(SECOND_NS // 4)
    copy = TokenBucket(rate_per_s=4.0, capacity=8.0, now_ns=123)

    copy.restore(bucket.snapshot())

    assert copy.snapshot() == bucket.snapshot()
    assert copy.refill(SECOND_NS) == bucket.refill(SECOND_NS)


@pytest.mark.parametrize(("rate", "capacity"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.5)])
def test_invalid_rate_or_capacity_is_refused(rate: float, capacity: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(rate_per_s=rate, capacity=capacity, now_ns=0)
