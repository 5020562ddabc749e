"""Sending alerts to their channels through Apprise, off the caller's thread.

:class:`AlertSender` takes alerts into a bounded queue and returns at once; one background
thread sends them. A full queue drops the alert, a channel that fails is logged: both are
counted, and neither ever raises into the caller, so the order path never waits for, nor
fails with, a notification service.

Channel URLs name their secrets as ``${ENV_VAR}``: :func:`resolve_channel_urls` fills them in
from the environment of the sending process (:func:`alert_environment` says which variables
that takes). A resolved URL is never logged or put in an error: it is shown as its scheme only
(:func:`redact_url`), and any secret value that shows up in a notification library's own
message is masked (:class:`Redactor`).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from tradegraph.config.models import AlertsConfig, env_references
from tradegraph.errors import ConfigError
from tradegraph.observability.alerts import Alert
from tradegraph.observability.logging import get_logger

MASK = "***"
_STOP = object()
# Apprise's notification types, by severity.
_NOTIFY_TYPES = {"info": "info", "warning": "warning", "error": "failure", "critical": "failure"}


def redact_url(url: str) -> str:
    """How a channel URL is shown anywhere: its scheme only (``json://***``)."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://{MASK}" if sep else MASK


def alert_environment(config: AlertsConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment variables the channel URLs of ``config`` name, and their values."""
    return {name: environ[name] for name in alert_variable_names(config) if name in environ}


def alert_variable_names(config: AlertsConfig) -> list[str]:
    """The environment variables the channel URLs of ``config`` name."""
    return sorted({name for channel in config.channels for name in env_references(channel.url)})


def take_alert_environment(
    config: AlertsConfig, environ: MutableMapping[str, str]
) -> dict[str, str]:
    """:func:`alert_environment`, with the variables removed from ``environ``: call it before a
    local Ray starts, so that only the actor that sends alerts is given them."""
    found = alert_environment(config, environ)
    for name in found:
        environ.pop(name, None)
    return found


def resolve_channel_urls(config: AlertsConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """Each channel's URL with its ``${ENV_VAR}`` references filled in, by channel name.

    Raises:
        ConfigError: a variable a URL names is not set (the error names the channel and the
            variable, never the URL).
    """
    urls: dict[str, str] = {}
    for index, channel in enumerate(config.channels):
        url = channel.url
        for name in env_references(url):
            value = environ.get(name)
            if not value:
                raise ConfigError(
                    f"alerts.channels.{index}.url: environment variable {name} is not set "
                    f"(channel {channel.name!r})"
                )
            url = url.replace(f"${{{name}}}", value)
        urls[channel.name] = url
    return urls


class Redactor:
    """Masks the secrets of channel URLs in any text: each whole URL, then each secret value
    (an ``${ENV_VAR}`` value), so a library's message that quotes part of a URL shows none."""

    def __init__(self, urls: Mapping[str, str], secrets: Mapping[str, str]) -> None:
        texts = [*urls.values(), *(v for v in secrets.values() if len(v) >= 4)]
        self._texts = sorted(set(texts), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._texts:
            text = text.replace(secret, MASK)
        return text


@dataclass(frozen=True)
class Delivery:
    """What sending one message to one channel came to."""

    channel: str
    ok: bool
    detail: str = ""


Notify = Callable[[str, str, str, str, float], tuple[bool, str]]
"""Sends ``(url, title, body, severity, timeout_s)``; answers ``(sent, why not)``."""


def apprise_notify(
    url: str, title: str, body: str, severity: str, timeout_s: float
) -> tuple[bool, str]:
    """Send one notification through Apprise; ``(False, what Apprise said)`` on failure."""
    import apprise

    with _apprise_warnings() as captured:
        notifier = apprise.Apprise()
        if not notifier.add(url):
            return False, "Apprise does not accept the URL (unknown scheme or malformed)"
        for server in notifier:
            # HTTP services take a connect and a read timeout.
            with contextlib.suppress(AttributeError, TypeError):
                server.socket_connect_timeout = timeout_s
                server.socket_read_timeout = timeout_s
        sent = notifier.notify(
            body=body, title=title, notify_type=_NOTIFY_TYPES.get(severity, "info")
        )
    if sent:
        return True, ""
    return False, "; ".join(captured) or "the service did not accept the notification"


@contextlib.contextmanager
def _apprise_warnings() -> Iterator[list[str]]:
    """Apprise's warnings while sending, kept here instead of reaching any log."""
    captured: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record.getMessage())

    logger = logging.getLogger("apprise")
    handler = _Keep(logging.WARNING)
    propagate, level = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield captured
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        logger.setLevel(level)


def send_to_channels(
    urls: Mapping[str, str],
    title: str,
    body: str,
    severity: str,
    *,
    redactor: Redactor,
    timeout_s: float,
    notify: Notify = apprise_notify,
) -> list[Delivery]:
    """Send one message to each channel of ``urls`` now; what each came to, redacted."""
    deliveries = []
    for name, url in urls.items():
        try:
            ok, detail = notify(url, title, body, severity, timeout_s)
        except Exception as exc:  # a channel's failure is reported, never raised
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        deliveries.append(Delivery(name, ok, redactor(detail)))
    return deliveries


class AlertSender:
    """Sends alerts to their channels from a background thread.

    Args:
        urls: Resolved channel URLs, by channel name (:func:`resolve_channel_urls`).
        secrets: The environment values filled into them, masked in anything logged.
        queue_size: Alerts waiting to be sent; beyond it new ones are dropped and counted.
        timeout_s: Longest one channel may take to accept one alert.
        session_id: Named in the sender's log lines.
        notify: Sends one message (Apprise unless given).
    """

    def __init__(
        self,
        urls: Mapping[str, str],
        secrets: Mapping[str, str],
        *,
        queue_size: int,
        timeout_s: float,
        session_id: str = "",
        notify: Notify = apprise_notify,
    ) -> None:
        self._urls = dict(urls)
        self._redact = Redactor(urls, secrets)
        self._timeout_s = timeout_s
        self._notify = notify
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._log = get_logger("alerts", session_id=session_id)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="alert-sender", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(
        cls, config: AlertsConfig, environ: Mapping[str, str], session_id: str = ""
    ) -> AlertSender:
        """A sender for ``config``'s channels, their secrets read from ``environ``.

        Raises:
            ConfigError: a variable a channel URL names is not set.
        """
        return cls(
            resolve_channel_urls(config, environ),
            alert_environment(config, environ),
            queue_size=config.queue_size,
            timeout_s=config.send_timeout_s,
            session_id=session_id,
        )

    def counts(self) -> dict[str, int]:
        """Alerts sent, failed (per channel) and dropped so far."""
        with self._lock:
            return {"sent": self.sent, "failed": self.failed, "dropped": self.dropped}

    def submit(self, alert: Alert) -> bool:
        """Queue ``alert`` for sending; never blocks. ``False`` when the queue was full (the
        alert is dropped, counted and logged)."""
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            self._log.error(
                "alert_dropped", rule=alert.rule_id, key=alert.key, reason="alert queue full"
            )
            return False
        return True

    def close(self, timeout_s: float) -> bool:
        """Send what is queued, for at most ``timeout_s``; then stop. ``True`` if all went."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        left = self._queue.qsize()
        if self._thread.is_alive() or left:
            self._log.error("alerts_not_sent_at_stop", queued=left)
            return False
        return True

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is _STOP:
                return
            self._deliver(alert)

    def _deliver(self, alert: Alert) -> None:
        urls = {name: self._urls[name] for name in alert.channels if name in self._urls}
        for delivery in send_to_channels(
            urls,
            alert.title,
            alert.body,
            alert.severity,
            redactor=self._redact,
            timeout_s=self._timeout_s,
            notify=self._notify,
        ):
            with self._lock:
                if delivery.ok:
                    self.sent += 1
                else:
                    self.failed += 1
            if delivery.ok:
                self._log.info(
                    "alert_sent",
                    rule=alert.rule_id,
                    severity=alert.severity,
                    channel=delivery.channel,
                    url=redact_url(self._urls[delivery.channel]),
                )
            else:
                self._log.error(
                    "alert_not_sent",
                    rule=alert.rule_id,
                    severity=alert.severity,
                    channel=delivery.channel,
                    url=redact_url(self._urls[delivery.channel]),
                    error=delivery.detail,
                )
