"""Risk limits changed on a running paper session survive a restart of the Risk actor."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.test_paper_session import resting_config, wait_until
from tradegraph.actors.session import LiveSession, change_limits
from tradegraph.config.limits import parse_limit_settings
from tradegraph.config.models import GraphConfig

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


def test_changed_limits_survive_a_restart_of_risk(
    tmp_path: Path, started: Callable[[GraphConfig], LiveSession]
) -> None:
    namespace = "paper-limits"
    config = resting_config(tmp_path, namespace)
    session = started(config)
    wait_until(lambda: session.status("broker:BINANCE").details["open_orders"] == 1, 30.0)

    changed = change_limits(
        parse_limit_settings(["risk.max_order_notional=7.5", "risk.max_orders_per_s=3"]),
        "tighter overnight",
        namespace=namespace,
    )
    assert changed.details["limits"]["max_order_notional"] == 7.5
    pid = session.status("risk").pid

    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: _restarted(session, pid), 60.0)
    risk = session.status("risk")

    assert risk.recovered
    assert risk.details["limits"]["max_order_notional"] == 7.5
    assert risk.details["limits"]["max_orders_per_s"] == 3
    assert session.status("control").details["counts"].get("LimitsChanged") == 1


def _restarted(session: LiveSession, pid: int) -> bool:
    try:
        return session.status("risk").pid != pid
    except Exception:  # still restarting
        return False
