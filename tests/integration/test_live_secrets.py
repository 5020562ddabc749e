"""``tradegraph live`` starting its own Ray: no process of the session inherits the API keys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.test_live_session import API_KEY, PRICE, SECRET, live_config
from tests.support.fake_exchange import FakeExchange
from tests.support.sockets import process_tree
from tradegraph.config.models import LiveMode

pytestmark = pytest.mark.ray

START_TIMEOUT_S = 240.0


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange(api_key=API_KEY, secret=SECRET) as exchange:
        exchange.set_price("BTCUSDT", str(PRICE))
        yield exchange


def descendants(root: int) -> list[int]:
    """Every process below ``root``."""
    return sorted(process_tree(root) - {root})


def environ_of(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None  # gone meanwhile


def test_no_process_of_a_local_live_session_inherits_the_keys(
    fake: FakeExchange, tmp_path: Path
) -> None:
    config = live_config(fake, tmp_path, "secrets-test", LiveMode.LIVE, 1_000_000)
    config_file = tmp_path / "live.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(
        {
            "TG_TEST_BINANCE_KEY": API_KEY,
            "TG_TEST_BINANCE_SECRET": SECRET,
            "TRADEGRAPH_ENABLE_LIVE": "1",
            "RAY_AUTH_MODE": "disabled",
        }
    )
    with (tmp_path / "stderr.log").open("wb") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tradegraph",
                "live",
                "--config",
                str(config_file),
                "--duration",
                "300",
                "--out",
                str(tmp_path / "out"),
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            text=True,
        )
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            deadline = time.monotonic() + START_TIMEOUT_S
            while not any(line.startswith("venue BINANCE") for line in lines):
                assert time.monotonic() < deadline, "the session did not start"
                line = proc.stdout.readline()
                assert line, f"the session ended: {(tmp_path / 'stderr.log').read_text()[-2000:]}"
                lines.append(line)
            environs = {pid: environ_of(pid) for pid in descendants(proc.pid)}
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    assert "venue BINANCE: live" in "".join(lines)  # the broker did get the keys
    readable = {pid: e for pid, e in environs.items() if e is not None}
    assert len(readable) >= 6, readable.keys()  # Ray's processes and the session's actors
    holding = [pid for pid, e in readable.items() if API_KEY.encode() in e or SECRET.encode() in e]
    assert holding == []
