"""The ``alerts`` section: rules and channels are checked when the config loads, and an error
names the field (never a channel URL, which may hold a secret)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tradegraph.config import load_config
from tradegraph.config.loader import default_config_text
from tradegraph.config.models import AlertsConfig
from tradegraph.errors import ConfigError


def write_config(tmp_path: Path, alerts: dict[str, Any]) -> Path:
    raw = yaml.safe_load(default_config_text())
    raw["alerts"] = alerts
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def load_error(tmp_path: Path, alerts: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, alerts))
    return str(caught.value)


HOOK = {"name": "ops", "url": "json://127.0.0.1:9/hook/${HOOK_TOKEN}"}


def test_a_config_without_alerts_has_none() -> None:
    assert load_config().alerts == AlertsConfig()


def test_a_full_alerts_section_loads(tmp_path: Path) -> None:
    config = load_config(
        write_config(
            tmp_path,
            {
                "channels": [HOOK, {"name": "chat", "url": "slack://${A}/${B}/${C}"}],
                "rules": [
                    {"event": "kill_switch_tripped", "severity": "critical"},
                    {"event": "venue_rejections", "count": 3, "window_s": 60, "channels": ["ops"]},
                    {"event": "drawdown", "above": 5},
                    {"event": "VenueStatus", "id": "venue_up", "where": {"available": True}},
                ],
            },
        )
    )

    rules = config.alerts.rules
    assert [r.rule_id for r in rules] == [
        "kill_switch_tripped",
        "venue_rejections",
        "drawdown",
        "venue_up",
    ]
    assert rules[1].resolved().count == 3
    # The URL is kept as written: the secret is read when sending, never stored.
    assert config.alerts.channels[0].url == HOOK["url"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"event": "kill_swich"}, "alerts.rules.0: Value error, event: unknown event 'kill_swich'"),
        (
            {"event": "feed_stale", "where": {"stael": True}},
            "where: FeedStatus has no field 'stael'",
        ),
        ({"event": "drawdown"}, "above: event 'drawdown' needs a level"),
        (
            {"event": "OrderRejected", "dedup_key": "{venu}"},
            "dedup_key: OrderRejected has no field 'venu'",
        ),
        ({"event": "fill", "channels": ["pager"]}, "unknown channel 'pager'"),
        ({"event": "fill", "severity": "loud"}, "alerts.rules.0.severity: Input should be"),
        ({"event": "fill", "count": 0}, "alerts.rules.0.count: Input should be greater than"),
    ],
)
def test_a_bad_rule_names_its_field(tmp_path: Path, rule: dict[str, Any], message: str) -> None:
    error = load_error(tmp_path, {"channels": [HOOK], "rules": [rule]})

    assert message.removeprefix("alerts.rules.0: Value error, ") in error
    assert "rules.0" in error


def test_two_rules_on_one_event_need_their_own_ids(tmp_path: Path) -> None:
    error = load_error(
        tmp_path, {"channels": [HOOK], "rules": [{"event": "fill"}, {"event": "fill"}]}
    )

    assert "alerts: rules: duplicate rule id in ['fill', 'fill']" in error


def test_rules_without_a_channel_are_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, {"rules": [{"event": "fill"}]})

    assert "rules: there are rules but no channels" in error


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1/hook?token=s3cr3t-value", "not an Apprise URL"),
        ("json://host/${1BAD}", "${1BAD} is not an environment variable name"),
        ("json://host/${TOKEN", "an unclosed ${"),
    ],
)
def test_a_bad_channel_url_is_refused_without_being_shown(
    tmp_path: Path, url: str, message: str
) -> None:
    error = load_error(tmp_path, {"channels": [{"name": "ops", "url": url}]})

    assert "alerts.channels.0: url: " in error
    assert message in error
    assert "s3cr3t-value" not in error
