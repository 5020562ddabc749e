"""``tradegraph alerts test``: send a test message to every alert channel of a config."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any

from tradegraph.cli.args import config_path
from tradegraph.config import load_config
from tradegraph.errors import ConfigError
from tradegraph.observability.alert_sender import (
    Redactor,
    alert_environment,
    redact_url,
    resolve_channel_urls,
    send_to_channels,
)


def cmd_alerts_test(args: argparse.Namespace) -> int:
    """Send one test message to each channel; report each; exit 1 if any failed."""
    config = load_config(config_path(args), args.overrides)
    alerts = config.alerts
    if not alerts.channels:
        raise ConfigError(f"{config_path(args) or 'the config'}: alerts.channels is empty")
    secrets = alert_environment(alerts, os.environ)
    urls = resolve_channel_urls(alerts, secrets)
    shown = {channel.name: redact_url(channel.url) for channel in alerts.channels}
    title = f"[INFO] tradegraph {config.name}: test alert"
    body = (
        f"A test message from `tradegraph alerts test` on {socket.gethostname()}: "
        f"this channel receives the alerts of {config.name}."
    )
    deliveries = send_to_channels(
        urls,
        title,
        body,
        "info",
        redactor=Redactor(urls, secrets),
        timeout_s=alerts.send_timeout_s,
    )
    for delivery in deliveries:
        where = f"{delivery.channel} ({shown[delivery.channel]})"
        if delivery.ok:
            print(f"{where}: sent")
        else:
            print(f"{where}: FAILED: {delivery.detail}")
    failed = [d.channel for d in deliveries if not d.ok]
    if failed:
        print(
            f"error: {len(failed)} of {len(deliveries)} channels failed: {', '.join(failed)}",
            file=sys.stderr,
        )
        return 1
    return 0


def add_alerts_commands(sub: Any, add_config_args: Any) -> None:
    """Add ``alerts test`` to the ``tradegraph`` parser."""
    alerts = sub.add_parser("alerts", help="alert channels of paper and live sessions")
    commands = alerts.add_subparsers(dest="alerts_command", required=True)
    test = commands.add_parser(
        "test",
        help="send a test message to every channel of the config's alerts section; exit 1 "
        "if any failed",
    )
    add_config_args(test)
    test.set_defaults(func=cmd_alerts_test)
