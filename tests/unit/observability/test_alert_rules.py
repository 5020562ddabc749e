"""Alert rules over a stream of messages: matching, thresholds, deduplication, rate limits, all
on the messages' own clock (no Ray, no wall time)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tradegraph.config.models import AlertRuleConfig, AlertsConfig
from tradegraph.contracts import (
    ActorRestarted,
    FeedStatus,
    GuardBreached,
    KillSwitchChanged,
    LimitChange,
    LimitsChanged,
    Message,
    OrderRejected,
    PortfolioSnapshot,
    ReconciliationDrift,
    TripKillSwitch,
    VenueStatus,
)
from tradegraph.observability.alerts import Alert, AlertRules

S = 1_000_000_000
T0 = 1_750_000_000 * S


def rules(*rule_fields: dict[str, Any], channels: tuple[str, ...] = ("ops",)) -> AlertRules:
    config = AlertsConfig(
        channels=tuple({"name": n, "url": f"json://127.0.0.1/{n}"} for n in channels),
        rules=tuple(AlertRuleConfig(**fields) for fields in rule_fields),
    )
    return AlertRules(config, "sess-1")


def tripped(reason: str, at_s: float = 0.0, *, on: bool = True) -> KillSwitchChanged:
    ts = T0 + int(at_s * S)
    return KillSwitchChanged(tripped=on, reason=reason, ts_event_ns=ts, ts_init_ns=ts)


def rejected(venue: str, at_s: float) -> OrderRejected:
    ts = T0 + int(at_s * S)
    return OrderRejected(
        client_order_id=f"c{at_s}",
        strategy_id="s",
        instrument_id=f"BTCUSDT.{venue}",
        venue=venue,
        reason="insufficient balance",
        ts_event_ns=ts,
        ts_init_ns=ts,
    )


def snapshot(drawdown: float, peak: float = 100_000.0, at_s: float = 0.0) -> PortfolioSnapshot:
    ts = T0 + int(at_s * S)
    return PortfolioSnapshot(
        cash=peak - drawdown,
        equity=peak - drawdown,
        gross_exposure=0.0,
        net_exposure=0.0,
        realized_pnl=-drawdown,
        unrealized_pnl=0.0,
        fees=0.0,
        peak_equity=peak,
        drawdown=drawdown,
        day_start_equity=peak,
        positions=(),
        ts_event_ns=ts,
        ts_init_ns=ts,
    )


def observe_all(engine: AlertRules, messages: Sequence[Message]) -> list[Alert]:
    return [alert for msg in messages for alert in engine.observe(msg)]


def test_kill_switch_trip_raises_an_alert_with_its_reason_and_severity() -> None:
    engine = rules({"event": "kill_switch_tripped", "severity": "critical"})

    (alert,) = engine.observe(tripped("daily_loss breached: -5,200"))

    assert alert.rule_id == "kill_switch_tripped"
    assert alert.severity == "critical"
    assert alert.channels == ("ops",)
    assert alert.title == "[CRITICAL] tradegraph sess-1: kill switch tripped"
    assert "reason='daily_loss breached: -5,200'" in alert.body
    assert alert.ts_ns == T0
    assert "2025-06-15T15:06:40.000+00:00" in alert.body


def test_a_reset_and_the_clean_stop_of_a_session_raise_no_trip_alert() -> None:
    engine = rules({"event": "kill_switch_tripped"})

    alerts = observe_all(engine, [tripped("x", on=False), tripped("session stopping")])

    assert alerts == []


def test_the_same_alert_is_sent_once_per_dedup_window_and_again_after_it() -> None:
    engine = rules({"event": "kill_switch_tripped", "dedup_window_s": 60})

    alerts = observe_all(
        engine,
        [tripped("a", 0), tripped("a", 30), tripped("b", 31), tripped("a", 59.9), tripped("a", 61)],
    )

    assert [(a.key, a.ts_ns - T0) for a in alerts] == [
        ("kill_switch_tripped/a", 0),
        ("kill_switch_tripped/b", 31 * S),
        ("kill_switch_tripped/a", 61 * S),
    ]
    assert engine.duplicates == 2


def test_a_rule_past_its_rate_limit_is_quiet_and_then_says_how_many_it_held_back() -> None:
    engine = rules(
        {
            "event": "kill_switch_tripped",
            "dedup_window_s": 0,
            "max_alerts": 2,
            "rate_window_s": 100,
        }
    )

    alerts = observe_all(engine, [tripped(f"r{i}", i) for i in range(5)] + [tripped("late", 100)])

    assert [a.key.split("/")[1] for a in alerts] == ["r0", "r1", "late"]
    assert engine.rate_limited == 3
    assert alerts[-1].held_back == 3
    assert "3 earlier alerts of this rule were held back" in alerts[-1].body


def test_venue_rejections_alert_only_when_n_fall_within_m_seconds() -> None:
    engine = rules({"event": "venue_rejections", "count": 3, "window_s": 60})

    spread = observe_all(engine, [rejected("BINANCE", t) for t in (0, 40, 80, 120)])
    bunched = observe_all(engine, [rejected("BINANCE", t) for t in (200, 210, 220)])

    assert spread == []
    (alert,) = bunched
    assert alert.key == "venue_rejections/BINANCE"
    assert "3 such events within 60 s" in alert.body
    assert alert.ts_ns == T0 + 220 * S


def test_venue_rejections_default_to_five_in_five_minutes() -> None:
    engine = rules({"event": "venue_rejections"})

    four = observe_all(engine, [rejected("X", t) for t in range(4)])
    fifth = engine.observe(rejected("X", 299))

    assert four == []
    assert len(fifth) == 1


def test_drawdown_alerts_above_its_level_in_percent_of_peak_equity() -> None:
    engine = rules({"event": "drawdown", "above": 5.0, "severity": "error"})

    below = engine.observe(snapshot(drawdown=4_000.0))
    (above,) = engine.observe(snapshot(drawdown=6_000.0, at_s=1))

    assert below == []
    assert "drawdown_pct 6 is above 5" in above.body


def test_any_message_type_can_be_alerted_on_with_where_and_a_key() -> None:
    engine = rules(
        {
            "event": "VenueStatus",
            "id": "venue_down",
            "where": {"available": False},
            "dedup_key": "{venue}",
        }
    )

    def status(venue: str, available: bool, at_s: float) -> VenueStatus:
        ts = T0 + int(at_s * S)
        return VenueStatus(venue=venue, available=available, ts_event_ns=ts, ts_init_ns=ts)

    alerts = observe_all(
        engine,
        [status("A", True, 0), status("A", False, 1), status("B", False, 2), status("A", False, 3)],
    )

    assert [a.key for a in alerts] == ["venue_down/A", "venue_down/B"]
    assert alerts[0].title.endswith(": VenueStatus")


def test_built_in_events_read_feed_halts_and_restarts() -> None:
    engine = rules(
        {"event": "feed_stale"},
        {"event": "trading_halted", "severity": "critical"},
        {"event": "reconciliation_failed"},
        {"event": "actor_restarted"},
    )
    messages: list[Message] = [
        FeedStatus(instrument_id="BTCUSDT.X", stale=False, ts_event_ns=T0, ts_init_ns=T0),
        FeedStatus(instrument_id="BTCUSDT.X", stale=True, ts_event_ns=T0, ts_init_ns=T0),
        TripKillSwitch(
            reason="halted by broker:X: reconciliation failed: 2 unknown orders",
            ts_event_ns=T0,
            ts_init_ns=T0,
        ),
        ActorRestarted(component_id="risk", recovered=True, ts_event_ns=T0, ts_init_ns=T0),
    ]

    alerts = observe_all(engine, messages)

    assert [a.rule_id for a in alerts] == [
        "feed_stale",
        "trading_halted",
        "reconciliation_failed",
        "actor_restarted",
    ]
    assert alerts[0].key == "feed_stale/BTCUSDT.X"
    assert alerts[3].key == "actor_restarted/risk"


def test_built_in_events_read_reconciliation_drift_guards_and_limit_changes() -> None:
    engine = rules(
        {"event": "reconciliation_drift", "severity": "critical"},
        {"event": "guard_warning"},
        {"event": "guard_halt", "severity": "critical"},
        {"event": "memory"},
        {"event": "limits_changed"},
    )

    def guard(name: str, level: str) -> GuardBreached:
        return GuardBreached(
            guard=name,
            level=level,
            value=900.0,
            limit=800.0,
            component="risk",
            detail=f"{name} {level}",
            ts_event_ns=T0,
            ts_init_ns=T0,
        )

    messages: list[Message] = [
        ReconciliationDrift(
            venue="X",
            problems=("USDT balance differs",),
            reason="reconciliation drift at X",
            ts_event_ns=T0,
            ts_init_ns=T0,
        ),
        guard("tick_to_order_p99", "warn"),
        guard("memory", "halt"),
        LimitsChanged(
            changes=(LimitChange(field="max_order_notional", value=1.0),),
            previous=(LimitChange(field="max_order_notional", value=25_000.0),),
            reason="desk",
            ts_event_ns=T0,
            ts_init_ns=T0,
        ),
    ]

    alerts = observe_all(engine, messages)

    assert [a.rule_id for a in alerts] == [
        "reconciliation_drift",
        "guard_warning",
        "guard_halt",
        "memory",
        "limits_changed",
    ]
    assert alerts[0].key == "reconciliation_drift/X"
    assert alerts[2].key == "guard_halt/memory:risk"


def test_a_rule_sends_to_its_own_channels_or_to_every_channel() -> None:
    engine = rules(
        {"event": "kill_switch_tripped", "channels": ["pager"]},
        {"event": "kill_switch_reset"},
        channels=("pager", "chat"),
    )

    alerts = observe_all(engine, [tripped("x"), tripped("y", on=False)])

    assert [a.channels for a in alerts] == [("pager",), ("pager", "chat")]


def test_restored_rules_remember_what_was_sent_and_replays_give_the_same_alerts() -> None:
    spec = {"event": "kill_switch_tripped", "dedup_window_s": 60}
    first = rules(spec)
    before = observe_all(first, [tripped("a", 0)])

    restored = rules(spec)
    restored.restore(first.snapshot())
    after = observe_all(restored, [tripped("a", 10), tripped("a", 70)])
    again = observe_all(rules(spec), [tripped("a", 0), tripped("a", 10), tripped("a", 70)])

    assert [a.ts_ns for a in before + after] == [a.ts_ns for a in again] == [T0, T0 + 70 * S]
    assert restored.duplicates == 1
