"""Live and dry-run brokers: the order path from the graph to a real exchange through ccxt.

Both speak the simulated venue's language (``SubmitOrder`` / ``CancelOrder`` in;
``OrderAccepted``, ``OrderRejected``, ``OrderCancelled``, ``OrderFilled`` out, with the same
meaning), so Risk, Portfolio and strategies cannot tell a live session from a backtest:

* every order is acknowledged (``OrderAccepted``) before any of its fills;
* each fill is published once (deduplicated by the venue's trade id), with ``leaves_qty`` the
  quantity still open; a fee the venue takes in the base currency comes out of ``last_qty``
  (see :func:`_booked_fill`), so positions and cash follow the account's balances;
* an order ends with exactly one of: its last fill (``leaves_qty == 0``), ``OrderCancelled``
  (after every fill the venue reported for it), or ``OrderRejected``;
* a ``CancelOrder`` for an unknown or finished order publishes nothing;
* a ``SubmitOrder`` whose client order id was seen before publishes nothing more (it can
  never create a second order).

The broker publishes nothing itself. Every public coroutine returns the messages the broker
produced since the previous return, from any source (the call itself, websocket updates,
the circuit breaker), in the order it produced them; :meth:`CcxtBroker.watch` yields them as
they come. The host publishes each batch as soon as it gets it, which keeps the order.

Recovery contract (live): an order is journaled before it is sent, with a client order id
derived from the session and the order id. A submit whose outcome is unknown (timeout,
dropped connection) is never resent blindly: after ``ambiguous_settle_s`` the order is looked
up by client order id, and only a venue that does not know it gets the same id again. If even
the lookup fails, the order stays ``pending`` in the journal and :meth:`CcxtBroker.poll`
settles it later. After a restart, :meth:`CcxtBroker.reconcile` compares the journal with the
venue (orders, fills, balances) and says whether trading may start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tradegraph.adapters.base import BrokerGateway, ReconciliationReport
from tradegraph.adapters.ccxt.broker.core import DRY_RUN_NOT_SENT
from tradegraph.adapters.ccxt.broker.dry_run import DryRunBroker
from tradegraph.adapters.ccxt.broker.live import CcxtBroker
from tradegraph.adapters.ccxt.order_journal import OrderJournal
from tradegraph.config.models import LiveMode, VenueConfig, resolve_mode
from tradegraph.contracts import Instrument
from tradegraph.errors import ConfigError

__all__ = [
    "DRY_RUN_NOT_SENT",
    "BrokerGateway",
    "CcxtBroker",
    "DryRunBroker",
    "ReconciliationReport",
    "build_broker",
]


def build_broker(
    venue: VenueConfig,
    instruments: Mapping[str, Instrument],
    *,
    session_id: str,
    environ: Mapping[str, str] | None = None,
    journal_path: str | Path | None = None,
    exchange: Any | None = None,
) -> tuple[CcxtBroker | DryRunBroker, LiveMode, str]:
    """The broker a paper-less session should use for ``venue``, and why.

    The mode comes from :func:`tradegraph.config.models.resolve_mode`: real orders only with
    ``mode: live``, ``TRADEGRAPH_ENABLE_LIVE=1`` and ``live.max_order_notional``; anything less
    is dry-run.

    Args:
        venue: The venue; ``venue.live`` must be set.
        instruments: Instruments keyed by id; those of other venues are ignored.
        session_id: Stable across restarts of one session, different between sessions.
        environ: Environment to read the gate and the credentials from (``os.environ``).
        journal_path: JSON-lines file of the order journal (loaded if it exists; written with
            ``fsync`` in live mode).
        exchange: A ccxt client to use instead of building one (tests).

    Raises:
        ConfigError: ``venue.live`` is missing, or its mode is paper (the simulated venue is
            the broker then), or live credentials are missing.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    if venue.live is None:
        raise ConfigError(f"venues.{venue.name}.live is required for dry-run and live sessions")
    mode, reason = resolve_mode(venue.live, env)
    journal = (
        OrderJournal.load(journal_path, durable=mode is LiveMode.LIVE)
        if journal_path is not None
        else OrderJournal()
    )
    if mode is LiveMode.PAPER:
        raise ConfigError(
            f"venues.{venue.name}.live.mode is paper: the simulated venue is the broker"
        )
    if mode is LiveMode.DRY_RUN:
        return (
            DryRunBroker(venue, instruments, session_id=session_id, journal=journal, reason=reason),
            mode,
            reason,
        )
    broker = CcxtBroker(
        venue,
        instruments,
        session_id=session_id,
        environ=env,
        journal=journal,
        exchange=exchange,
    )
    return broker, mode, reason
