"""Alert rules over a session's event stream: which messages raise an alert, and when.

:class:`AlertRules` is a plain, deterministic core: it is handed messages one at a time and
answers with the alerts they raise. Time is the messages' own (``ts_init_ns``, the graph's
clock), never the wall clock, so a replay raises the same alerts at the same times and a unit
test needs nothing but messages. Sending is someone else's job
(:mod:`tradegraph.observability.alert_sender`).

Per rule, in order: the message must be of the rule's type and match its ``where``,
``unless``, ``contains`` and ``above``; ``count`` such messages must fall within ``window_s``;
an alert with the same deduplication key must not have been sent within ``dedup_window_s``;
and the rule must have sent fewer than ``max_alerts`` within ``rate_window_s``. What the last
two hold back is counted, and the rule's next alert says how many it held back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from tradegraph.config.alert_events import AlertEvent
from tradegraph.config.models import AlertRuleConfig, AlertsConfig
from tradegraph.contracts import Message
from tradegraph.contracts.state import ComponentState

_NS = 1_000_000_000
# Fields never shown in an alert's text: timestamps (the alert has its own) and bulky tuples.
_HIDDEN_FIELDS = frozenset({"ts_event_ns", "ts_init_ns", "positions"})
# Above this many remembered keys, keys whose deduplication window has passed are forgotten.
_PRUNE_KEYS_ABOVE = 10_000


@dataclass(frozen=True)
class Alert:
    """One alert to send.

    Attributes:
        rule_id: The rule that raised it.
        event: The rule's event.
        severity: ``info``, ``warning``, ``error`` or ``critical``.
        key: What the alert is about (its deduplication key).
        ts_ns: Graph time of the message that raised it.
        title: One line: severity, session and what happened.
        body: What happened, with the message's fields.
        channels: Channel names to send it to.
        held_back: Alerts of this rule not sent since its previous one (rate limit).
    """

    rule_id: str
    event: str
    severity: str
    key: str
    ts_ns: int
    title: str
    body: str
    channels: tuple[str, ...]
    held_back: int = 0


class AlertRulesState(ComponentState):
    """Everything :class:`AlertRules` remembers, all times in graph nanoseconds.

    Attributes:
        matches: Per rule, times of recent matching messages (rules with a ``count``).
        last_sent: Per ``rule/key``, when its last alert was sent.
        sent: Per rule, times of its alerts within its rate window.
        held_back: Per rule, alerts held back by its rate limit since its last alert.
        duplicates: Alerts not sent because one with the same key was sent recently.
        rate_limited: Alerts not sent because their rule had sent its most.
    """

    matches: dict[str, list[int]] = {}
    last_sent: dict[str, int] = {}
    sent: dict[str, list[int]] = {}
    held_back: dict[str, int] = {}
    duplicates: int = 0
    rate_limited: int = 0


class _Rule:
    """One configured rule, resolved against its built-in event."""

    def __init__(self, config: AlertRuleConfig, channels: tuple[str, ...]) -> None:
        self.config = config
        self.id = config.rule_id
        self.event: AlertEvent = config.resolved()
        self.channels = config.channels or channels
        self.window_ns = int(self.event.window_s * _NS)
        self.dedup_ns = int(config.dedup_window_s * _NS)
        self.rate_ns = int(config.rate_window_s * _NS)

    def matches(self, msg: Message) -> bool:
        event = self.event
        for name, value in event.where.items():
            if _plain(getattr(msg, name)) != value:
                return False
        for name, value in event.unless.items():
            if _plain(getattr(msg, name)) == value:
                return False
        for name, text in event.contains.items():
            if text not in str(getattr(msg, name)):
                return False
        above = self.config.above
        if above is not None and event.field is not None:
            level = getattr(msg, event.field)
            if not isinstance(level, int | float) or not level > above:
                return False
        return True

    def key(self, msg: Message) -> str:
        if not self.event.key:
            return self.id
        return f"{self.id}/{self.event.key.format_map(_Fields(msg))}"


class AlertRules:
    """The alert rules of ``config``, evaluated over a stream of messages.

    Args:
        config: The ``alerts`` section.
        session_id: Named in every alert's title.
    """

    def __init__(self, config: AlertsConfig, session_id: str) -> None:
        self.session_id = session_id
        every_channel = tuple(c.name for c in config.channels)
        self._rules: dict[str, list[_Rule]] = {}
        for rule_config in config.rules:
            rule = _Rule(rule_config, every_channel)
            self._rules.setdefault(rule.event.message, []).append(rule)
        self._matches: dict[str, deque[int]] = {}
        self._sent: dict[str, deque[int]] = {}
        self._last_sent: dict[str, int] = {}
        self._held_back: dict[str, int] = {}
        self.duplicates = 0
        self.rate_limited = 0

    @property
    def message_types(self) -> frozenset[str]:
        """Names of the message types some rule reads."""
        return frozenset(self._rules)

    def observe(self, msg: Message) -> list[Alert]:
        """The alerts ``msg`` raises (often none)."""
        rules = self._rules.get(type(msg).__name__)
        if not rules:
            return []
        return [alert for rule in rules if (alert := self._evaluate(rule, msg)) is not None]

    def _evaluate(self, rule: _Rule, msg: Message) -> Alert | None:
        if not rule.matches(msg):
            return None
        now = msg.ts_init_ns
        count = rule.event.count
        if count > 1:
            recent = self._matches.setdefault(rule.id, deque())
            recent.append(now)
            _forget_before(recent, now - rule.window_ns)
            if len(recent) < count:
                return None
            recent.clear()
        key = rule.key(msg)
        last = self._last_sent.get(key)
        if last is not None and now - last < rule.dedup_ns:
            self.duplicates += 1
            return None
        sent = self._sent.setdefault(rule.id, deque())
        _forget_before(sent, now - rule.rate_ns + 1)
        if len(sent) >= rule.config.max_alerts:
            self._held_back[rule.id] = self._held_back.get(rule.id, 0) + 1
            self.rate_limited += 1
            return None
        sent.append(now)
        self._last_sent[key] = now
        if len(self._last_sent) > _PRUNE_KEYS_ABOVE:
            self._prune(now)
        held_back = self._held_back.pop(rule.id, 0)
        return self._alert(rule, msg, key, now, held_back)

    def _alert(self, rule: _Rule, msg: Message, key: str, now: int, held_back: int) -> Alert:
        event = rule.event
        severity = rule.config.severity
        title = f"[{severity.upper()}] tradegraph {self.session_id}: {event.title}"
        facts = describe_message(msg)
        lines = [f"{event.title}: {facts}" if facts else event.title]
        if event.field is not None and rule.config.above is not None:
            lines.append(
                f"{event.field} {_plain(getattr(msg, event.field)):.4g} is above "
                f"{rule.config.above:g}"
            )
        if event.count > 1:
            lines.append(f"{event.count} such events within {event.window_s:g} s")
        if held_back:
            lines.append(f"{held_back} earlier alerts of this rule were held back (rate limit)")
        lines.append(f"rule {rule.id}, session {self.session_id}, at {format_ns(now)}")
        return Alert(
            rule_id=rule.id,
            event=rule.config.event,
            severity=severity,
            key=key,
            ts_ns=now,
            title=title,
            body="\n".join(lines),
            channels=rule.channels,
            held_back=held_back,
        )

    def _prune(self, now: int) -> None:
        longest = max(
            (rule.dedup_ns for rules in self._rules.values() for rule in rules), default=0
        )
        self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < longest}

    def snapshot(self) -> AlertRulesState:
        return AlertRulesState(
            matches={k: list(v) for k, v in self._matches.items() if v},
            last_sent=dict(self._last_sent),
            sent={k: list(v) for k, v in self._sent.items() if v},
            held_back=dict(self._held_back),
            duplicates=self.duplicates,
            rate_limited=self.rate_limited,
        )

    def restore(self, state: AlertRulesState) -> None:
        self._matches = {k: deque(v) for k, v in state.matches.items()}
        self._last_sent = dict(state.last_sent)
        self._sent = {k: deque(v) for k, v in state.sent.items()}
        self._held_back = dict(state.held_back)
        self.duplicates = state.duplicates
        self.rate_limited = state.rate_limited


class _Fields(Mapping[str, Any]):
    """A message's fields and properties, as a deduplication key's template reads them."""

    def __init__(self, msg: Message) -> None:
        self._msg = msg

    def __getitem__(self, name: str) -> Any:
        try:
            return _plain(getattr(self._msg, name))
        except AttributeError:
            raise KeyError(name) from None

    def __iter__(self) -> Any:
        return iter(type(self._msg).model_fields)

    def __len__(self) -> int:
        return len(type(self._msg).model_fields)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _forget_before(times: deque[int], cutoff: int) -> None:
    while times and times[0] < cutoff:
        times.popleft()


def describe_message(msg: Message) -> str:
    """``name=value`` for each field of ``msg`` worth reading in an alert."""
    parts = []
    for name in type(msg).model_fields:
        if name in _HIDDEN_FIELDS:
            continue
        value = _plain(getattr(msg, name))
        if value in ("", None):
            continue
        parts.append(f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}")
    return ", ".join(parts)


def format_ns(ts_ns: int) -> str:
    """``ts_ns`` as an ISO 8601 UTC time, to the millisecond."""
    return (
        datetime.fromtimestamp(ts_ns / _NS, tz=UTC).isoformat(timespec="milliseconds")
        if ts_ns
        else "?"
    )


def rule_message_types(config: AlertsConfig) -> frozenset[str]:
    """Names of the message types the rules of ``config`` read."""
    return frozenset(rule.resolved().message for rule in config.rules)
