"""Run a Monte Carlo batch from Python and look at the worst scenarios.

python examples/montecarlo_driver.py [--paths 200] [--workers 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow.compute as pc

from tradegraph.actors.batch import RayChunkRunner
from tradegraph.batch.montecarlo import MonteCarlo
from tradegraph.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--paths", type=int, default=200)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    config = load_config(None)  # the packaged default graph; pass your YAML path instead
    batch = MonteCarlo(
        config,
        paths=args.paths,
        model="garch",
        stress=["flash_crash"],
        bars_per_path=1_440,
        workers=args.workers,
        out_dir=Path("out/montecarlo-example"),
        runner=RayChunkRunner(),
    )
    result = batch.run_batch()
    s = result.summary
    print(
        f"VaR 95 %: {s['var_95']:.4%}  CVaR 95 %: {s['cvar_95']:.4%}  P(loss): {s['prob_loss']:.1%}"
    )
    worst = result.table.sort_by([("return", "ascending")]).slice(0, 5)
    for row in worst.select(["index", "seed", "return", "max_drawdown", "fills"]).to_pylist():
        print(row)
    print("mean fills:", pc.mean(result.table.column("fills")).as_py())
    print("report:", result.paths.get("report"))


if __name__ == "__main__":
    main()
