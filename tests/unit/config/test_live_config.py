"""Live venue configuration and the rule that decides whether real orders are sent."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tradegraph.config import load_config
from tradegraph.config.loader import default_config_text
from tradegraph.config.models import LiveMode, LiveVenueConfig, VenueConfig, resolve_mode

LIVE_ENV = {"TRADEGRAPH_ENABLE_LIVE": "1"}


def test_existing_configs_stay_valid_without_a_live_section(tmp_path: object) -> None:
    assert "live" not in default_config_text()
    assert VenueConfig().live is None


def test_live_mode_with_gate_and_cap_sends_real_orders() -> None:
    config = LiveVenueConfig(mode=LiveMode.LIVE, max_order_notional=500.0)

    mode, reason = resolve_mode(config, LIVE_ENV)

    assert mode is LiveMode.LIVE
    assert reason == (
        "mode is live with TRADEGRAPH_ENABLE_LIVE=1 and max_order_notional 500: "
        "real orders are sent to binance"
    )


@pytest.mark.parametrize(
    ("environ", "cap", "missing"),
    [
        ({}, 500.0, "TRADEGRAPH_ENABLE_LIVE=1 is not set in the environment"),
        ({"TRADEGRAPH_ENABLE_LIVE": "true"}, 500.0, "TRADEGRAPH_ENABLE_LIVE=1 is not set"),
        (LIVE_ENV, None, "live.max_order_notional (a hard per-order notional cap) is not set"),
    ],
)
def test_live_mode_missing_a_condition_runs_dry_run_and_says_why(
    environ: dict[str, str], cap: float | None, missing: str
) -> None:
    config = LiveVenueConfig(mode=LiveMode.LIVE, max_order_notional=cap)

    mode, reason = resolve_mode(config, environ)

    assert mode is LiveMode.DRY_RUN
    assert missing in reason
    assert reason.endswith("running dry-run: orders are journaled and never sent")


def test_gate_alone_never_turns_paper_or_dry_run_into_live() -> None:
    for configured in (LiveMode.PAPER, LiveMode.DRY_RUN):
        mode, _ = resolve_mode(LiveVenueConfig(mode=configured, max_order_notional=1.0), LIVE_ENV)
        assert mode is configured


def test_non_positive_cap_is_refused() -> None:
    with pytest.raises(ValidationError, match="max_order_notional"):
        LiveVenueConfig(max_order_notional=0.0)


def test_live_section_loads_from_yaml(tmp_path: object) -> None:
    from pathlib import Path

    text = default_config_text().replace(
        "  - name: BINANCE\n",
        "  - name: BINANCE\n"
        "    live:\n"
        "      mode: live\n"
        "      exchange: binance\n"
        "      api_key_env: BINANCE_KEY\n"
        "      api_secret_env: BINANCE_SECRET\n"
        "      max_order_notional: 1000\n"
        "      urls: {api: {public: 'http://127.0.0.1:1/api/v3'}}\n"
        "      options: {defaultType: spot}\n"
        "      stale_after_s: 5\n"
        "      retry: {max_attempts: 3}\n",
        1,
    )
    path = Path(str(tmp_path)) / "live.yaml"
    path.write_text(text)

    config = load_config(path)

    live = config.venues[0].live
    assert live is not None
    assert (live.mode, live.api_key_env, live.max_order_notional) == (
        LiveMode.LIVE,
        "BINANCE_KEY",
        1000.0,
    )
    assert live.retry.max_attempts == 3
    assert live.urls["api"]["public"] == "http://127.0.0.1:1/api/v3"
