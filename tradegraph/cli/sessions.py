"""``tradegraph paper``, ``kill``, ``resume`` and ``status``: sessions of the actor graph.

Ray is imported only when one of these commands runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tradegraph.cli.args import (
    STRICT_EXIT_CODE,
    config_path,
    non_negative_float,
    positive_float,
)
from tradegraph.cli.progress import ProgressLine
from tradegraph.cli.run_folder import LATEST, run_folder
from tradegraph.config import GraphConfig, load_config
from tradegraph.config.models import DEFAULT_NAMESPACE
from tradegraph.contracts import KillSwitchMode
from tradegraph.strategies.registry import use_strategy_modules

PROGRESS_HELP = (
    "show the status line (events, orders, fills, equity, health) on stderr even when it is "
    "not a terminal (on a terminal it is always shown)"
)


def cmd_paper(args: argparse.Namespace) -> int:
    return _run_session(args, live=False)


def cmd_live(args: argparse.Namespace) -> int:
    return _run_session(args, live=True)


def _run_session(args: argparse.Namespace, *, live: bool) -> int:
    from tradegraph.actors.gateway import take_broker_environment
    from tradegraph.actors.ray_runtime import ray_session
    from tradegraph.actors.session import LiveSession
    from tradegraph.engine.backtest import rejection_reasons
    from tradegraph.engine.recording import prepare_session_folder
    from tradegraph.observability.alert_sender import take_alert_environment
    from tradegraph.report.html import format_run_outcome
    from tradegraph.report.manifest import build_manifest, write_manifest
    from tradegraph.report.outputs import session_description, write_outputs

    overrides = list(args.overrides)
    if live:
        overrides += ["session.market_data=ccxt", "session.clock=wall"]
    elif args.speed is not None:
        overrides.append(f"session.speed={args.speed}")
    if args.namespace:
        overrides.append(f"session.namespace={args.namespace}")
    path = config_path(args)
    config = load_config(path, overrides)
    use_strategy_modules(config, path)
    out_dir = _out_dir(args, config, live=live)
    # The keys go to the broker actors alone: out of this environment before a local Ray
    # starts, so no other process of the session inherits them.
    secrets = take_broker_environment(config, os.environ) if live else None
    # The same for the alert channels' secrets: only the control actor, which sends, gets them.
    alert_secrets = take_alert_environment(config.alerts, os.environ)
    stop = threading.Event()
    resume = True if args.resume else False if args.fresh else None

    def write_so_far() -> None:
        # Outputs land while the session runs: a driver that dies leaves what it had.
        so_far = session.result_so_far()
        if so_far is None:
            return
        try:
            write_outputs(so_far, out_dir, html=False)
        except OSError as exc:  # a full disk must not stop the trading session
            print(f"outputs not written to {out_dir}: {exc}", file=sys.stderr, flush=True)

    config = prepare_session_folder(config, out_dir, path)
    state_dir = _state_dir(config, out_dir, live=live)
    session = LiveSession(
        config,
        state_dir=state_dir,
        resume=resume,
        secrets=secrets,
        # Without a state directory the audit trail still has a home: the run's folder.
        audit_dir=None if state_dir is not None else out_dir / "audit",
        alert_secrets=alert_secrets,
    )
    session.claim_state_dir()  # refuse before starting Ray: another session, or old state
    manifest = build_manifest(
        "live" if live else "paper",
        config,
        config_path=path,
        run={"session_id": session.session_id, "resume": resume},
    )
    write_manifest(out_dir, manifest)  # at the start: a driver that dies leaves it too
    with ray_session(args.address), ExitStack() as endpoint:
        if args.metrics_port is not None:
            endpoint.enter_context(_serve_session_metrics(session, args))
        previous = {
            sig: signal.signal(sig, lambda signum, frame: stop.set())
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            session.start()
            source = (
                "live market data"
                if live
                else "replay at "
                + ("full speed" if config.session.speed == 0 else f"{config.session.speed:g}x")
            )
            print(
                f"{'live' if live else 'paper'} session {session.session_id}: "
                f"{len(session.hosts)} actors in namespace {config.session.namespace!r}, {source}",
                flush=True,
            )
            for venue, mode, reason in session.venue_modes():
                print(f"venue {venue}: {mode} ({reason})", flush=True)
            print(f"audit trail in {session.audit_dir}", flush=True)
            line, show_status = _status_line(
                "live" if live else "paper", session, forced=args.progress
            )
            ended_by = session.run(
                args.duration,
                stop,
                checkpoint=write_so_far,
                checkpoint_interval_s=args.write_every,
                on_check=show_status,
            )
            line.close()
        finally:
            if session.hosts:
                outcome = session.stop(ended_by if "ended_by" in locals() else "error")
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    summary = outcome.summary()
    rejections: list[dict[str, Any]] = []
    if outcome.result is not None:
        write_outputs(
            outcome.result,
            out_dir,
            html=not args.no_html,
            title=f"tradegraph {'live' if live else 'paper'} session: {config.name}",
            description=session_description(summary),
            failure_reasons=summary["failure_reasons"],
        )
        rejections = rejection_reasons(outcome.result.ledger)
        summary["fills_digest"] = outcome.result.fills_digest
        summary["orders"] = outcome.result.orders
        summary["pnl"] = outcome.result.final_equity - outcome.result.starting_cash
        summary["kill_switch_halts"] = outcome.result.kill_switch_halts()
        summary["kill_switch_closed"] = outcome.result.kill_switch_closed()
        manifest["results"] = {
            "fills_digest": outcome.result.fills_digest,
            "fills": summary["fills"],
            "orders": summary["orders"],
        }
        write_manifest(out_dir, manifest)
    (out_dir / "session.json").parent.mkdir(parents=True, exist_ok=True)
    (out_dir / "session.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(
        f"stopped by {summary['stopped_by']} after {summary['elapsed_s']:.1f} s "
        f"(clean stop {summary['stop_s']:.2f} s): {summary['market_events']:,} market events, "
        f"{summary['fills']} fills, equity {summary['equity'] or 0:,.2f}, "
        f"positions {summary['positions']}"
    )
    report = format_run_outcome(
        {
            "rejection_reasons": rejections,
            "failure_reasons": summary["failure_reasons"],
            "kill_switch_closed": summary.get("kill_switch_closed", []),
        }
    )
    if report:
        print(report)
    print(f"outputs in {out_dir.resolve()}")
    if outcome.halted:
        print(f"trading halted: {outcome.halted}", file=sys.stderr)
    if summary["status"] == "failed":
        print(f"run failed: {'; '.join(summary['failure_reasons'])}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, default=str))
    if outcome.halted:
        return 4
    return STRICT_EXIT_CODE if args.strict and summary["status"] == "failed" else 0


def _add_state_args(p: argparse.ArgumentParser) -> None:
    """``--resume`` / ``--fresh``: what to do with an earlier run's state in session.state_dir."""
    state = p.add_mutually_exclusive_group()
    state.add_argument(
        "--resume",
        action="store_true",
        help="continue the session whose state is in session.state_dir (order ids, open "
        "orders, positions and outputs carry over)",
    )
    state.add_argument(
        "--fresh",
        action="store_true",
        help="discard the earlier run's state in session.state_dir and start a new session "
        "(order journals are kept for reconciliation)",
    )
    p.add_argument(
        "--write-every",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="write orders, fills and equity to --out this often while running (default 5)",
    )


def _add_strict_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strict",
        action="store_true",
        help=f"exit {STRICT_EXIT_CODE} when the session failed: a strategy stopped or every "
        "order was refused (a halt exits 4 with or without it)",
    )


STATUS_EVERY_S = 5.0
"""With ``--progress`` and no terminal, one status line this often."""


def _status_line(
    label: str, session: Any, *, forced: bool
) -> tuple[ProgressLine, Callable[[], None] | None]:
    """Events, orders, fills, equity and health on stderr while a session runs: rewritten in
    place on a terminal; with ``--progress`` and no terminal, one line every few seconds.
    Returns the line and the callback that updates it (None when nothing is shown)."""
    line = ProgressLine(plain=forced, every_s=STATUS_EVERY_S)

    def render() -> str:
        p = session.progress()
        equity = "?" if p["equity"] is None else f"{p['equity']:,.2f}"
        return (
            f"{label}: {p['events']:,} events  orders {p['orders']:,}  "
            f"fills {p['fills']:,}  equity {equity}  health {p['health']}"
        )

    return line, (lambda: line.update(render)) if line.shown else None


def _out_dir(args: argparse.Namespace, config: GraphConfig, *, live: bool) -> Path:
    """``--out``; else, to resume a paper session, the newest run's folder (its state is
    there); else a new run folder."""
    base = Path("out/live" if live else "out/paper")
    if args.out is None and args.resume and not live and (base / LATEST).is_dir():
        return (base / LATEST).resolve()
    return run_folder(args.out, base, config.name)


def _state_dir(config: GraphConfig, out_dir: Path, *, live: bool) -> str | None:
    """A paper session keeps its recovery state under its output folder, unless the config
    names ``session.state_dir`` itself. A live session keeps the config's: its order journal
    must outlive the run, for the next session to reconcile against."""
    if live or "state_dir" in config.session.model_fields_set:
        return config.session.state_dir
    return str(out_dir / "state")


def _connect(args: argparse.Namespace) -> Any:
    from tradegraph.actors.ray_runtime import ray_session

    return ray_session(args.address or "auto", namespace=args.namespace)


def cmd_operator(args: argparse.Namespace) -> int:
    from tradegraph.actors.session import operator_command

    mode = getattr(args, "mode", None)
    with _connect(args):
        status = operator_command(
            args.command,
            args.reason,
            mode=None if mode is None else KillSwitchMode(mode),
            namespace=args.namespace,
        )
    d = status.details
    state = "tripped" if d.get("kill_switch_tripped") else "reset"
    shown_mode = f" in {d['kill_switch_mode']} mode" if d.get("kill_switch_tripped") else ""
    print(
        f"kill switch {state} ({d.get('kill_switch_reason') or args.reason}){shown_mode}; "
        f"open orders at risk: {d.get('open_orders')}"
    )
    return 0


def cmd_limits(args: argparse.Namespace) -> int:
    from tradegraph.config.limits import parse_limit_settings

    # Checked here first, field by field, so a typo never reaches the session.
    changes = parse_limit_settings(args.settings)
    from tradegraph.actors.session import change_limits

    with _connect(args):
        status = change_limits(changes, args.reason, namespace=args.namespace)
    limits = status.details.get("limits", {})
    for change in changes:
        print(f"risk.{change.field} = {limits.get(change.field, change.value)}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from tradegraph.actors.session import graph_status

    with _connect(args):
        found = graph_status(args.namespace)
    if args.json:
        print(json.dumps(found, default=str))
        return 0
    unhealthy = 0
    for name, status in found.items():
        if isinstance(status, str):
            unhealthy += 1
            print(f"{name:22s} UNHEALTHY {status}")
            continue
        details = status["details"]
        facts = ", ".join(f"{k}={v}" for k, v in details.items() if v not in (None, {}, ""))
        halted = f" HALTED: {status['halted']}" if status["halted"] else ""
        print(
            f"{name:22s} pid {status['pid']:<7d} in {status['messages_in']:<9,d} "
            f"out {status['messages_out']:<9,d} queue {status['queue_depth']:<3d}"
            f"{' recovered' if status['recovered'] else ''}{halted}  {facts}"
        )
    return 1 if unhealthy else 0


def _add_cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address", help="Ray cluster of the session (default: auto, the local cluster)"
    )
    p.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help=f"the session's Ray namespace (default {DEFAULT_NAMESPACE})",
    )


@contextmanager
def _serve_session_metrics(session: Any, args: argparse.Namespace) -> Iterator[None]:
    """Serve the graph's metrics, as its actors last reported them, at the driver's /metrics,
    and its liveness and readiness at /healthz and /readyz."""
    from prometheus_client import CollectorRegistry

    from tradegraph.actors.session_health import SessionHealth
    from tradegraph.observability.prometheus import TotalsCollector, serve_metrics

    registry = CollectorRegistry()
    registry.register(TotalsCollector(session.metric_totals))
    probe = SessionHealth(session)
    with serve_metrics(registry, args.metrics_host, args.metrics_port, health=probe) as server:
        print(f"metrics at {server.url}", file=sys.stderr, flush=True)
        print(
            f"health at {server.base_url}/healthz and {server.base_url}/readyz",
            file=sys.stderr,
            flush=True,
        )
        yield


def add_session_commands(sub: Any, add_config_args: Any, add_metrics_args: Any) -> None:
    """Add ``paper``, ``kill``, ``resume`` and ``status`` to the ``tradegraph`` parser."""
    paper = sub.add_parser(
        "paper", help="run the actor graph in real time on a replay, against the simulated venue"
    )
    add_config_args(paper)
    paper.add_argument("--duration", type=positive_float, help="stop after this many seconds")
    paper.add_argument(
        "--speed",
        type=non_negative_float,
        help="replay speed: data seconds per second (0: full speed)",
    )
    paper.add_argument(
        "--address", help="Ray cluster to run on (default: RAY_ADDRESS, else a local Ray)"
    )
    paper.add_argument("--namespace", help="Ray namespace of the session's actors")
    paper.add_argument(
        "--out",
        help="output folder, recovery state under its state/ (default: a new folder "
        "<name>-<UTC time> under out/paper, with a 'latest' link to it)",
    )
    paper.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    paper.add_argument("--progress", action="store_true", help=PROGRESS_HELP)
    paper.add_argument("--no-html", action="store_true", help="skip the HTML report")
    _add_state_args(paper)
    _add_strict_arg(paper)
    add_metrics_args(paper)
    paper.set_defaults(func=cmd_paper)

    live = sub.add_parser(
        "live",
        help="run the actor graph on live exchange data: paper, dry-run or live orders "
        "(venues[].live.mode; real orders need TRADEGRAPH_ENABLE_LIVE=1 and a notional cap)",
    )
    add_config_args(live)
    live.add_argument("--duration", type=positive_float, help="stop after this many seconds")
    live.add_argument(
        "--address", help="Ray cluster to run on (default: RAY_ADDRESS, else a local Ray)"
    )
    live.add_argument("--namespace", help="Ray namespace of the session's actors")
    live.add_argument(
        "--out",
        help="output folder (default: a new folder <name>-<UTC time> under out/live, with a "
        "'latest' link to it)",
    )
    live.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    live.add_argument("--progress", action="store_true", help=PROGRESS_HELP)
    live.add_argument("--no-html", action="store_true", help="skip the HTML report")
    _add_state_args(live)
    _add_strict_arg(live)
    add_metrics_args(live)
    live.set_defaults(func=cmd_live, speed=None)

    for name, text in (
        (
            "kill",
            "trip the kill switch of a running session: by default no new orders and open ones "
            "cancelled (--mode)",
        ),
        ("resume", "reset the kill switch of a running session"),
    ):
        p = sub.add_parser(name, help=text)
        _add_cluster_args(p)
        p.add_argument("--reason", default=f"operator {name}", help="why (logged and reported)")
        if name == "kill":
            p.add_argument(
                "--mode",
                choices=[m.value for m in KillSwitchMode],
                help="halt: refuse every order; reduce_only: pass only orders that shrink a "
                "position; flatten: cancel open orders, close every position at market, then "
                "halt (default: risk.kill_switch_modes.operator, else risk.kill_switch_mode)",
            )
        p.set_defaults(func=cmd_operator)

    lim = sub.add_parser(
        "limits",
        help="change risk limits of a running session (validated, applied to the next order, "
        "recorded as LimitsChanged, kept across restarts)",
    )
    _add_cluster_args(lim)
    lim.add_argument(
        "--session",
        dest="namespace",
        help="the session's Ray namespace (same as --namespace)",
    )
    lim.add_argument(
        "--set",
        dest="settings",
        action="append",
        required=True,
        metavar="risk.KEY=VALUE",
        help="a risk limit and its new value (null turns it off); may be repeated",
    )
    lim.add_argument("--reason", default="operator limits", help="why (logged and recorded)")
    lim.set_defaults(func=cmd_limits)

    st = sub.add_parser("status", help="positions, PnL, open orders and health of a session")
    _add_cluster_args(st)
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    st.set_defaults(func=cmd_status)
