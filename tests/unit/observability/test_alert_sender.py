"""Sending alerts: secrets from the environment, never in a log; a slow or failing channel
never blocks or raises into the caller; Apprise posts to a real webhook on 127.0.0.1."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.webhook import webhook_receiver
from tradegraph.config.models import AlertChannelConfig, AlertsConfig
from tradegraph.errors import ConfigError
from tradegraph.observability import configure_logging
from tradegraph.observability.alert_sender import (
    AlertSender,
    Redactor,
    alert_environment,
    redact_url,
    resolve_channel_urls,
    take_alert_environment,
)
from tradegraph.observability.alerts import Alert

SECRET = "tok-5ecr3t-value"


def alert(rule: str = "kill_switch_tripped", channels: tuple[str, ...] = ("ops",)) -> Alert:
    return Alert(
        rule_id=rule,
        event=rule,
        severity="critical",
        key=f"{rule}/x",
        ts_ns=1,
        title="[CRITICAL] tradegraph s: kill switch tripped",
        body="kill switch tripped: tripped=True, reason='operator stop'",
        channels=channels,
    )


def alerts_config(*urls: str) -> AlertsConfig:
    return AlertsConfig(
        channels=tuple(AlertChannelConfig(name=f"c{i}", url=u) for i, u in enumerate(urls))
    )


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    yield stream
    configure_logging("WARNING")


def test_channel_urls_take_their_secrets_from_the_environment() -> None:
    config = alerts_config("json://127.0.0.1:9/hook/${TOKEN}?x=${OTHER}", "json://h/plain")
    environ = {"TOKEN": SECRET, "OTHER": "2", "UNRELATED": "3"}

    urls = resolve_channel_urls(config, environ)

    assert urls == {"c0": f"json://127.0.0.1:9/hook/{SECRET}?x=2", "c1": "json://h/plain"}
    assert alert_environment(config, environ) == {"OTHER": "2", "TOKEN": SECRET}


def test_a_missing_variable_names_the_channel_and_the_variable_not_the_url() -> None:
    config = alerts_config("json://h/plain", "json://user:inline-pw@h/${TOKEN}")

    with pytest.raises(ConfigError) as caught:
        resolve_channel_urls(config, {})

    assert str(caught.value) == (
        "alerts.channels.1.url: environment variable TOKEN is not set (channel 'c1')"
    )


def test_taking_the_environment_removes_the_secrets_from_it() -> None:
    environ = {"TOKEN": SECRET, "PATH": "/bin"}

    taken = take_alert_environment(alerts_config("json://h/${TOKEN}"), environ)

    assert taken == {"TOKEN": SECRET}
    assert environ == {"PATH": "/bin"}


def test_a_url_is_shown_as_its_scheme_only() -> None:
    assert redact_url(f"tgram://{SECRET}/12345") == "tgram://***"
    assert redact_url("no scheme at all") == "***"


def test_an_alert_reaches_a_real_webhook_through_apprise(log: io.StringIO) -> None:
    with webhook_receiver() as hook:
        sender = AlertSender(
            {"ops": f"json://127.0.0.1:{hook.port}/hook/{SECRET}"},
            {"TOKEN": SECRET},
            queue_size=10,
            timeout_s=5.0,
        )
        assert sender.submit(alert())
        assert sender.close(10.0)

        (request,) = hook.received()
    assert request.path == f"/hook/{SECRET}"
    assert request.body["title"] == "[CRITICAL] tradegraph s: kill switch tripped"
    assert "reason='operator stop'" in request.body["message"]
    assert request.body["type"] == "failure"
    assert sender.counts() == {"sent": 1, "failed": 0, "dropped": 0}
    assert '"event": "alert_sent"' in log.getvalue()
    assert "json://***" in log.getvalue()
    assert SECRET not in log.getvalue()


def test_a_failing_channel_is_logged_redacted_and_counted_never_raised(
    log: io.StringIO,
) -> None:
    with webhook_receiver(status=500) as hook:
        sender = AlertSender(
            {"ops": f"json://127.0.0.1:{hook.port}/hook/{SECRET}"},
            {"TOKEN": SECRET},
            queue_size=10,
            timeout_s=5.0,
        )
        sender.submit(alert())
        assert sender.close(10.0)

    assert sender.counts() == {"sent": 0, "failed": 1, "dropped": 0}
    text = log.getvalue()
    assert '"event": "alert_not_sent"' in text
    assert '"channel": "ops"' in text
    assert SECRET not in text


def test_a_hung_channel_never_blocks_the_caller_and_a_full_queue_drops(
    log: io.StringIO,
) -> None:
    release = threading.Event()
    calls: list[str] = []

    def hung(url: str, title: str, body: str, severity: str, timeout_s: float) -> tuple[bool, str]:
        calls.append(title)
        release.wait(30)
        return True, ""

    sender = AlertSender({"ops": "json://h/x"}, {}, queue_size=2, timeout_s=1.0, notify=hung)
    started = time.monotonic()
    taken = [sender.submit(alert(f"r{i}")) for i in range(6)]
    elapsed = time.monotonic() - started

    # One is being sent (hung), two wait in the queue, the rest are dropped, at once.
    assert elapsed < 0.5
    assert taken.count(False) >= 3
    assert sender.counts()["dropped"] == taken.count(False)
    assert '"event": "alert_dropped"' in log.getvalue()
    release.set()
    assert sender.close(10.0)
    assert sender.counts()["sent"] == taken.count(True)


def test_a_channel_that_raises_is_counted_as_failed() -> None:
    def broken(
        url: str, title: str, body: str, severity: str, timeout_s: float
    ) -> tuple[bool, str]:
        raise OSError(f"cannot reach {url}")

    sender = AlertSender(
        {"ops": f"json://h/{SECRET}"}, {"TOKEN": SECRET}, queue_size=2, timeout_s=1.0, notify=broken
    )
    sender.submit(alert())

    assert sender.close(10.0)
    assert sender.counts() == {"sent": 0, "failed": 1, "dropped": 0}


def test_a_library_message_quoting_a_url_or_its_secret_is_masked() -> None:
    url = f"tgram://{SECRET}/12345"
    redact = Redactor({"chat": url}, {"TOKEN": SECRET, "SHORT": "ab"})

    assert redact(f"cannot post to {url}: 404") == "cannot post to ***: 404"
    assert redact(f"bot {SECRET} unknown") == "bot *** unknown"
    # Values too short to be secrets would mask ordinary words.
    assert redact("about") == "about"
