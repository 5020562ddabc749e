"""``tradegraph audit verify | order | export``: read a session's audit trail.

The trail itself is written by the session's actors and driver (see
:mod:`tradegraph.observability.audit` for the format). ``verify`` checks every chain under a
folder and names the first line of each that fails; ``order`` prints one order's life across
the chains; ``export`` writes a CSV blotter, one row per order event and fill.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_ROOT = "out"


def _when(ts_ns: Any) -> str:
    try:
        ns = int(ts_ns)
    except (TypeError, ValueError):
        return "?"
    stamp = datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ns % 1_000_000_000 // 1_000_000:03d}Z"


def cmd_verify(args: argparse.Namespace) -> int:
    from tradegraph.observability.audit import verify_tree

    root = Path(args.dir)
    reports = verify_tree(root)
    failed = 0
    for report in reports:
        name = report.path.relative_to(root) if report.path != root else report.path
        if report.failure is not None:
            failed += 1
            line, why = report.failure
            print(f"FAILED  {name} line {line}: {why}")
            continue
        print(f"ok      {name}  {report.lines} lines  head {report.head}")
        for note in report.notes:
            print(f"        note: {note}")
    if failed:
        print(f"{failed} of {len(reports)} chains failed verification")
        return 1
    print(f"{len(reports)} chains verified")
    return 0


def _summary(record: dict[str, Any]) -> str:
    """The facts of an order record worth a glance: side, size, price, reason."""
    msg = record.get("msg") or {}
    facts = []
    if record.get("decision"):
        facts.append(str(record["decision"]))
    if "last_qty" in msg:
        facts.append(f"{msg.get('side')} {msg['last_qty']:g} @ {msg.get('last_px'):g}")
        facts.append(f"fee {msg.get('fee'):g} leaves {msg.get('leaves_qty'):g}")
    elif "quantity" in msg:
        price = msg.get("limit_price")
        at = f" @ {price:g}" if isinstance(price, int | float) else ""
        facts.append(f"{msg.get('side')} {msg['quantity']:g} {msg.get('order_type')}{at}")
    for key in ("venue_order_id", "reason", "detail", "code"):
        if msg.get(key):
            facts.append(f"{key}={msg[key]}")
    return "  ".join(facts)


def cmd_order(args: argparse.Namespace) -> int:
    from tradegraph.observability.audit import order_life

    root = Path(args.dir)
    life = order_life(root, args.client_order_id)
    if not life:
        print(f"error: no record of order {args.client_order_id} under {root}", file=sys.stderr)
        return 1
    for path, record in life:
        msg = record["msg"]
        where = f"{path.relative_to(root) if path != root else path.name}:{record['n']}"
        print(
            f"{_when(msg.get('ts_event_ns'))}  {record['writer']:<18} {record['event']:<9} "
            f"{record['type']:<15} {_summary(record)}  ({where})"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tradegraph.observability.audit import blotter_rows, read_records, write_blotter

    rows = blotter_rows(read_records(Path(args.dir)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as fh:
        write_blotter(rows, fh)
    print(f"{len(rows)} rows written to {out}")
    return 0


def add_audit_commands(subparsers: Any) -> None:
    """Register ``audit verify``, ``audit order`` and ``audit export``."""
    audit = subparsers.add_parser(
        "audit", help="check and read a session's hash-chained audit trail"
    )
    sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = sub.add_parser(
        "verify",
        help="check every chain under DIR; name the first line of each that fails (exit 1)",
    )
    verify.add_argument("dir", metavar="DIR", help="an audit folder, or any folder above them")
    verify.set_defaults(func=cmd_verify)
    order = sub.add_parser("order", help="print one order's whole life, in time order")
    order.add_argument("client_order_id", metavar="CLIENT_ORDER_ID")
    order.add_argument(
        "dir",
        metavar="DIR",
        nargs="?",
        default=DEFAULT_ROOT,
        help=f"where to look for audit trails (default {DEFAULT_ROOT}/)",
    )
    order.set_defaults(func=cmd_order)
    export = sub.add_parser(
        "export", help="write a CSV blotter: one row per order event and fill, in time order"
    )
    export.add_argument("dir", metavar="DIR", help="an audit folder, or any folder above them")
    export.add_argument("--out", required=True, metavar="FILE", help="CSV file to write")
    export.set_defaults(func=cmd_export)
