"""The inbox: each sender's batches in order, once, and nothing before the market data behind it."""

from __future__ import annotations

from tradegraph.actors.inbox import Batch, Fence, Inbox
from tradegraph.contracts import MARKET_DATA

BROKER = "broker:BINANCE"
STRATEGY = "strategy:sma_btc"


def batch(sender: str, incarnation: int, seq: int, fence: Fence | None = None) -> Batch:
    return Batch(sender, incarnation, seq, [], 0, fence)


def ids(batches: list[Batch]) -> list[tuple[str, int, int]]:
    return [(b.sender, b.incarnation, b.seq) for b in batches]


def test_batches_in_turn_are_handed_out_at_once() -> None:
    inbox = Inbox(STRATEGY)
    first = inbox.offer(batch(BROKER, 3, 1))
    second = inbox.offer(batch(BROKER, 3, 2))
    assert ids(first.ready) == [(BROKER, 3, 1)]
    assert ids(second.ready) == [(BROKER, 3, 2)]
    assert inbox.watermarks == {BROKER: (3, 2)}


def test_an_early_batch_is_held_until_the_one_before_it_comes() -> None:
    inbox = Inbox(STRATEGY)
    early = inbox.offer(batch(BROKER, 3, 2))
    assert early.held
    assert early.ready == []
    assert inbox.held_count() == 1
    late = inbox.offer(batch(BROKER, 3, 1))
    assert ids(late.ready) == [(BROKER, 3, 1), (BROKER, 3, 2)]
    assert inbox.held_count() == 0


def test_a_batch_sent_again_is_dropped() -> None:
    inbox = Inbox(STRATEGY)
    inbox.offer(batch(BROKER, 3, 1))
    again = inbox.offer(batch(BROKER, 3, 1))
    assert again.ready == []
    assert not again.held


def test_an_earlier_incarnation_is_ignored_once_a_later_one_has_spoken() -> None:
    inbox = Inbox(STRATEGY)
    inbox.offer(batch(BROKER, 4, 1))
    old = inbox.offer(batch(BROKER, 3, 2))
    assert old.ready == []
    assert not old.held
    assert inbox.watermarks[BROKER] == (4, 1)


def test_a_restarted_sender_starts_over_and_its_stale_held_batches_are_dropped() -> None:
    inbox = Inbox(STRATEGY)
    inbox.offer(batch(BROKER, 3, 1))
    stale = batch(BROKER, 3, 5)
    assert inbox.offer(stale).held
    restarted = inbox.offer(batch(BROKER, 4, 1))
    assert ids(restarted.ready) == [(BROKER, 4, 1)]
    assert restarted.dropped == [stale]
    assert inbox.held_count() == 0


def test_a_fenced_batch_waits_for_its_market_data_and_then_follows_it() -> None:
    inbox = Inbox(STRATEGY)
    inbox.offer(batch(MARKET_DATA, 5, 1))
    fill = inbox.offer(batch(BROKER, 3, 1, {STRATEGY: (5, 2)}))
    after = inbox.offer(batch(BROKER, 3, 2))
    assert fill.held
    assert after.held
    bar = inbox.offer(batch(MARKET_DATA, 5, 2))
    assert ids(bar.ready) == [(MARKET_DATA, 5, 2), (BROKER, 3, 1), (BROKER, 3, 2)]


def test_a_fence_of_an_md_that_restarted_since_is_met() -> None:
    inbox = Inbox(BROKER)
    inbox.offer(batch(MARKET_DATA, 6, 1))
    order = inbox.offer(batch("risk", 7, 1, {BROKER: (5, 9)}))
    assert ids(order.ready) == [("risk", 7, 1)]


def test_a_fence_naming_another_receiver_does_not_hold() -> None:
    inbox = Inbox(BROKER)
    order = inbox.offer(batch("risk", 7, 1, {STRATEGY: (5, 9)}))
    assert ids(order.ready) == [("risk", 7, 1)]


def test_what_was_handed_out_carries_on_the_latest_fence_per_receiver_once() -> None:
    inbox = Inbox(BROKER)
    inbox.offer(batch(MARKET_DATA, 5, 1, {BROKER: (5, 1), STRATEGY: (5, 3)}))
    inbox.offer(batch(MARKET_DATA, 5, 2, {BROKER: (5, 2), STRATEGY: (5, 2)}))
    assert inbox.take_fence() == {BROKER: (5, 2), STRATEGY: (5, 3)}
    assert inbox.take_fence() == {}


def test_a_recovered_watermark_drops_batches_already_handled() -> None:
    inbox = Inbox(STRATEGY)
    inbox.mark(BROKER, 3, 4)
    assert inbox.offer(batch(BROKER, 3, 4)).ready == []
    assert ids(inbox.offer(batch(BROKER, 3, 5)).ready) == [(BROKER, 3, 5)]


def test_a_resend_of_a_held_batch_takes_its_place() -> None:
    inbox = Inbox(STRATEGY)
    first = batch(BROKER, 3, 2)
    inbox.offer(first)
    second = inbox.offer(batch(BROKER, 3, 2))
    assert second.held
    assert second.dropped == [first]
    assert inbox.held_count() == 1
