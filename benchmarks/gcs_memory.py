"""Memory of Ray's GCS while a paper session runs flat out; one JSON line.

Starts its own local Ray, runs ``examples/paper.yaml`` on a month of BTC and ETH minutes as a
causal replay as fast as the graph takes it, and samples the resident memory of the GCS
process (``/proc/<pid>/status``) and the size of the portfolio's snapshot file every ``--every``
seconds for ``--duration`` seconds.
Every market-data batch is an actor call; what Ray keeps per call in the GCS (task events)
decides whether its memory levels off or grows with the session.

    python benchmarks/gcs_memory.py [--duration 60] [--every 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import ray

from tradegraph.actors import ray_session
from tradegraph.actors.session import LiveSession
from tradegraph.config import load_config

PAPER_YAML = Path(__file__).resolve().parents[1] / "examples" / "paper.yaml"


def gcs_pid() -> int:
    """The pid of the GCS server of the Ray this process started."""
    from ray._private import ray_constants, worker

    node = worker._global_node
    assert node is not None, "this process did not start the Ray it is connected to"
    info = node.all_processes[ray_constants.PROCESS_TYPE_GCS_SERVER][0]
    assert info.process is not None
    return int(info.process.pid)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ray_session(num_cpus=2):
        config = load_config(
            PAPER_YAML,
            [
                "data.bars.0.limit=44640",
                "data.bars.1.limit=44640",
                "session.speed=0",
                "session.namespace=gcs-memory",
                f"session.state_dir={tmp}",
                "session.hang_timeout_s=30",
            ],
        )
        pid = gcs_pid()
        before = rss_mb(pid)
        session = LiveSession(config)
        session.start()
        samples: list[tuple[float, float, int]] = []
        snapshot_kb: list[float] = []
        snapshot = Path(tmp) / config.name / "portfolio" / "snapshot.json"
        started = time.monotonic()
        try:
            while time.monotonic() - started < args.duration:
                time.sleep(args.every)
                elapsed = time.monotonic() - started
                published = int(session.status("md").details["published"])
                samples.append((round(elapsed, 1), round(rss_mb(pid), 1), published))
                size = snapshot.stat().st_size if snapshot.exists() else 0
                snapshot_kb.append(round(size / 1024, 1))
        finally:
            outcome = session.stop("duration")
        after = rss_mb(pid)
        ray_version = ray.__version__
    first, last = samples[0], samples[-1]
    print(
        json.dumps(
            {
                "benchmark": "gcs_memory",
                "ray": ray_version,
                "duration_s": args.duration,
                "market_events": outcome.market_events,
                "gcs_rss_mb_before_session": round(before, 1),
                "gcs_rss_mb_after_session": round(after, 1),
                "gcs_rss_mb_samples": [[t, mb] for t, mb, _ in samples],
                "portfolio_snapshot_kb_samples": snapshot_kb,
                "gcs_growth_mb_per_min": round(
                    (last[1] - first[1]) / max(1e-9, last[0] - first[0]) * 60, 1
                ),
                "gcs_growth_kb_per_1000_events": round(
                    (last[1] - first[1]) * 1024 / max(1, last[2] - first[2]) * 1000, 2
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
