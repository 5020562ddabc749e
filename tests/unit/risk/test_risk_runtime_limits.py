"""Risk limits changed on a running session: validated by the config's model, applied to the
next order, published as ``LimitsChanged``, and kept across a restore."""

from __future__ import annotations

import pytest

from tests.unit.risk.test_risk_engine import INSTRUMENTS, Harness, priced
from tradegraph.config.limits import parse_limit_settings
from tradegraph.config.models import RiskConfig
from tradegraph.contracts import ChangeLimits, LimitChange, LimitsChanged, RiskReason
from tradegraph.engine.clock import SimClock
from tradegraph.errors import ConfigError
from tradegraph.risk import RiskEngine
from tradegraph.testing import RecordingOutbox


def change(h: Harness, *settings: str, reason: str = "operator") -> ChangeLimits:
    return ChangeLimits(changes=parse_limit_settings(settings), reason=reason, **h.ts())


def test_a_lowered_order_notional_refuses_the_next_order_with_that_limit() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_order_notional=1_000.0))
    h.submit(h.intent(quantity=1.0))  # 100 USDT: passes

    [published] = h.send(change(h, "risk.max_order_notional=50", reason="desk lowers it"))
    refused = h.refusal(h.intent(quantity=1.0))

    assert isinstance(published, LimitsChanged)
    assert published.changes == (LimitChange(field="max_order_notional", value=50),)
    assert published.previous == (LimitChange(field="max_order_notional", value=1_000.0),)
    assert published.reason == "desk lowers it"
    assert refused.reason is RiskReason.MAX_ORDER_NOTIONAL
    assert "exceeds risk.max_order_notional 50.00" in refused.detail


def test_a_change_the_config_model_refuses_changes_nothing_and_says_why() -> None:
    h = priced(RiskConfig(price_band_pct=None, max_order_notional=1_000.0))
    bad = ChangeLimits(changes=(LimitChange(field="max_order_notional", value=-5),), **h.ts())

    out = h.send(bad)

    assert out == []
    assert h.engine.limits.max_order_notional == 1_000.0
    assert "risk.max_order_notional: Input should be greater than 0" in h.engine.limits_refused
    h.submit(h.intent(quantity=1.0))


def test_changed_limits_survive_snapshot_and_restore_and_later_changes_add_up() -> None:
    h = priced(RiskConfig(price_band_pct=None))
    h.send(change(h, "risk.max_order_notional=50"))
    h.send(change(h, "risk.max_orders_per_s=2", "risk.order_burst=1"))
    restored = RiskEngine(
        RiskConfig(price_band_pct=None), INSTRUMENTS, SimClock(h.clock.now_ns()), RecordingOutbox()
    )

    restored.restore(RiskEngine.State.model_validate(h.engine.snapshot().model_dump(mode="json")))

    assert restored.limits.max_order_notional == 50
    assert restored.limits.max_orders_per_s == 2
    assert restored.limits.order_burst == 1


def test_a_changed_order_rate_applies_at_once() -> None:
    h = priced(RiskConfig(price_band_pct=None))
    h.send(change(h, "risk.max_orders_per_s=1", "risk.order_burst=1"))

    h.submit(h.intent())
    refused = h.refusal(h.intent())

    assert refused.reason is RiskReason.ORDER_RATE


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("risk.max_order_notional=-5", "risk.max_order_notional: Input should be greater than 0"),
        ("risk.max_order_notional=lots", "risk.max_order_notional: Input should be a valid number"),
        ("risk.max_drawdown_pct=150", "risk.max_drawdown_pct: Input should be less than or equal"),
        ("risk.order_burst=0", "risk.order_burst: Input should be greater than or equal to 1"),
        ("risk.no_such_limit=1", "risk.no_such_limit: not a limit a running session takes"),
        ("portfolio.starting_cash=1", "only risk limits change on a running session"),
        ("risk.max_order_notional", "expected risk.KEY=VALUE"),
    ],
)
def test_bad_settings_name_the_field(setting: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        parse_limit_settings([setting])
    assert message in str(caught.value)


def test_null_turns_a_limit_off() -> None:
    assert parse_limit_settings(["risk.price_band_pct=null"]) == (
        LimitChange(field="price_band_pct", value=None),
    )
