"""``tradegraph backtest``: one run of the graph over history, in one process or as Ray actors."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tradegraph.batch import apply_stress, load_stress_file, resolve_stress
from tradegraph.cli.args import (
    STRICT_EXIT_CODE,
    add_config_args,
    add_metrics_args,
    config_path,
    load_graph_config,
    metrics_endpoint,
)
from tradegraph.cli.run_folder import run_folder
from tradegraph.config import GraphConfig
from tradegraph.engine.streams import BarStream, prepare_bar_stream
from tradegraph.errors import ConfigError, RerunMismatchError
from tradegraph.observability.metrics import GraphMetrics
from tradegraph.report.manifest import (
    build_manifest,
    read_manifest,
    recorded_input,
    rerun_config,
    write_manifest,
)
from tradegraph.strategies.registry import use_strategy_modules


def _stressed_history(
    config: GraphConfig, names: list[str], stress_file: str | None
) -> tuple[GraphConfig, BarStream]:
    """The config's bars and venues bent by the stress scenarios named on the command line."""
    from tradegraph.engine.backtest import load_datasets

    if config.data.trades:
        raise ConfigError("--stress bends bar data only; this config also replays trade ticks")
    catalog = load_stress_file(stress_file) if stress_file else None
    scenarios = resolve_stress(names, catalog)
    stressed, datasets = apply_stress(scenarios, config, load_datasets(config))
    return stressed, prepare_bar_stream(datasets, stressed.instrument_map())


def _what_to_run(
    args: argparse.Namespace,
) -> tuple[GraphConfig, str | None, list[str], str | None, dict[str, Any] | None]:
    """The config, its file, the stress scenarios and stress file: from the command line, or
    from ``--manifest`` (then also the manifest)."""
    if not args.manifest:
        return load_graph_config(args), config_path(args), args.stress, args.stress_file, None
    given = [
        flag
        for flag, value in (
            ("CONFIG", config_path(args)),
            ("--set", args.overrides),
            ("--data", args.data),
            ("--stress", args.stress),
            ("--stress-file", args.stress_file),
        )
        if value
    ]
    if given:
        raise ConfigError(
            f"--manifest reruns the run as it was recorded: drop {', '.join(given)} "
            "(change the config instead, and run it without --manifest)"
        )
    manifest = read_manifest(args.manifest)
    if manifest.get("kind") != "backtest":
        raise ConfigError(
            f"--manifest {args.manifest}: field 'kind' is {manifest.get('kind')!r}; "
            "tradegraph backtest reruns backtest manifests"
        )
    config = rerun_config(manifest)
    path = manifest.get("config_path")
    use_strategy_modules(config, path)
    stress_file = recorded_input(manifest, "stress_file")
    stress = list(manifest.get("run", {}).get("stress", []))
    return config, path, stress, str(stress_file) if stress_file else None, manifest


def _check_rerun(manifest: dict[str, Any], results: dict[str, Any], source: str) -> None:
    """Raise unless the rerun's fills are the recorded ones, saying what differs."""
    recorded = manifest.get("results", {})
    if "fills_digest" not in recorded:
        raise RerunMismatchError(f"--manifest {source}: field 'results.fills_digest' is missing")
    if results["fills_digest"] == recorded["fills_digest"]:
        print(f"rerun matches {source}: fills digest {results['fills_digest']}")
        return
    differs = [
        f"{key} {results.get(key)} (recorded {recorded.get(key)})"
        for key in ("fills_digest", "fills", "orders", "final_equity")
        if key in recorded and results.get(key) != recorded.get(key)
    ]
    raise RerunMismatchError(f"rerun of {source} differs: {'; '.join(differs)}")


def _add_strict_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strict",
        action="store_true",
        help=f"exit {STRICT_EXIT_CODE} when the run failed: a strategy stopped, the kill switch "
        "halted trading or every order was refused",
    )


def cmd_backtest(args: argparse.Namespace) -> int:
    from tradegraph.engine.backtest import run_backtest
    from tradegraph.report.html import format_metrics_table, format_run_outcome
    from tradegraph.report.outputs import write_outputs

    config, config_file, stress, stress_file, manifest = _what_to_run(args)
    original = config
    stream = None
    if stress:
        config, stream = _stressed_history(config, stress, stress_file)
    # With --audit the folder is chosen first: the trail is written while the run goes.
    out_dir = run_folder(args.out, config.report.out_dir, config.name) if args.audit else None
    audit_dir = out_dir / "audit" if out_dir is not None else None
    if args.engine == "ray":
        if config.data.trade_start is not None:
            # Checked before Ray starts: the actor runtime does not replay a warm-up yet.
            raise ConfigError("--engine ray does not support data.trade_start yet")
        from tradegraph.actors import ray_session, run_causal_session

        if args.metrics_port is not None:
            raise ConfigError(
                "--metrics-port serves the local engine's metrics; with --engine ray the "
                "actors report through Ray's metrics (see the README, Observation)"
            )
        with ray_session(args.address, session_id=config.name, log_level=args.log_level):
            result = run_causal_session(config, stream, audit_dir=audit_dir)
    else:
        with metrics_endpoint(args) as sink:
            metrics = GraphMetrics(sink) if sink is not None else None
            result = run_backtest(config, stream, metrics=metrics, audit_dir=audit_dir)
    if out_dir is None:
        out_dir = run_folder(args.out, config.report.out_dir, config.name)
    paths = write_outputs(result, out_dir, html=config.report.html and not args.no_html)
    s = result.summary()
    results = {
        "fills_digest": result.fills_digest,
        "fills": s["fills"],
        "orders": s["orders"],
        "final_equity": s["final_equity"],
    }
    paths["manifest"] = write_manifest(
        out_dir,
        build_manifest(
            "backtest",
            original,
            config_path=config_file,
            run={
                "engine": args.engine,
                "stress": stress,
                **({"rerun_of": str(args.manifest)} if manifest is not None else {}),
            },
            results=results,
            extra_files={"stress_file": stress_file} if stress_file else None,
        ),
    )
    print(
        f"backtest {config.name} ({args.engine} engine): {s['bars']:,} bars in {s['elapsed_s']:.2f} s ({s['bars_per_s']:,.0f} bars/s)"
    )
    print(format_metrics_table(result.metrics))
    print(
        f"orders {s['orders']}  fills {s['fills']}  risk rejections {s['risk_rejections']}  "
        f"venue rejections {s['venue_rejections']}  final equity {s['final_equity']:,.2f}  pnl {s['pnl']:,.2f}  fees {s['fees']:,.2f}"
    )
    if s["dropped_rows"]:
        print(f"dropped malformed bars: {s['dropped_rows']} ({result.dropped})")
    outcome = format_run_outcome(s)
    if outcome:
        print(outcome)
    print(f"outputs in {out_dir.resolve()}:")
    for name, path in paths.items():
        print(f"  {name:8s} {path}")
    if audit_dir is not None:
        print(f"  {'audit':8s} {audit_dir} (tradegraph audit verify {audit_dir})")
    if s["status"] == "failed":
        print(f"run failed: {'; '.join(s['failure_reasons'])}", file=sys.stderr)
    if args.json:
        print(json.dumps(s, default=str))
    if manifest is not None:
        _check_rerun(manifest, results, args.manifest)
    return STRICT_EXIT_CODE if args.strict and s["status"] == "failed" else 0


def add_backtest_command(sub: Any) -> None:
    """Register ``backtest`` on the ``tradegraph`` command."""
    bt = sub.add_parser("backtest", help="run a backtest in one process or as Ray actors")
    add_config_args(bt)
    bt.add_argument("--data", help="Parquet bar file (ts, open, high, low, close, volume)")
    bt.add_argument(
        "--out",
        help="output folder (default: a new folder <name>-<UTC time> under the config's "
        "report.out_dir, out/backtest, with a 'latest' link to it)",
    )
    bt.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    bt.add_argument("--no-html", action="store_true", help="skip the HTML report")
    bt.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: every component in this process; ray: each component in a named Ray actor, "
        "stepped through simulated time (same results)",
    )
    bt.add_argument(
        "--address",
        help="with --engine ray: address of a running Ray cluster ('auto' finds a local one); "
        "without it a local Ray is started for the run",
    )
    add_metrics_args(bt)
    bt.add_argument(
        "--stress",
        nargs="+",
        default=[],
        metavar="NAME",
        help="bend the history and the venues by these stress scenarios, in order",
    )
    bt.add_argument("--stress-file", help="YAML file of custom stress scenarios")
    bt.add_argument(
        "--manifest",
        metavar="FILE",
        help="rerun the backtest a manifest.json records (its configuration and data, refused "
        "if a data file changed) and check its fills digest is the recorded one (exit 6 if not)",
    )
    bt.add_argument(
        "--audit",
        action="store_true",
        help="write the run's hash-chained audit trail (intents, Risk's decisions, venue "
        "events, fills, kill switch) to audit/ in the output folder, as a session does",
    )
    _add_strict_arg(bt)
    bt.set_defaults(func=cmd_backtest)
