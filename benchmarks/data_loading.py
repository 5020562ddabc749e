"""Peak memory and time of reading bars from Parquet; prints one JSON line.

Writes a 1M-bar file of GBM bars (``ts``, OHLCV, ``symbol``, ``venue``; zstd, in row groups
of ``--row-group-rows`` rows, as :func:`tradegraph.data.catalog.write_parquet` writes them)
into a temporary folder, then measures three reads with :func:`read_bars`, each in a fresh
process so that its peak RSS is its own:

- ``whole``: the whole file;
- ``slice``: ``--slice`` bars from the middle of the file, by ``start_ns``/``end_ns``;
- ``limit``: the first ``--slice`` bars, by ``limit``.

Each case runs ``--runs`` times; the line gives the median of each figure. ``peak_rss_mb`` is
the process's peak resident size (``VmHWM``), ``read_rss_mb`` that peak less the resident
size just before the read (the imports), ``arrow_peak_mb`` the peak of Arrow's memory pool.

    python benchmarks/data_loading.py [--bars 1000000] [--slice 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

MINUTE_NS = 60_000_000_000
FIRST_NS = 1_700_000_000_000_000_000


def _status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, in MB.

    Not ``getrusage``: its peak is inherited across fork and exec, so a child would report
    the parent's peak when that was higher.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def write_file(path: Path, bars: int, row_group_rows: int) -> int:
    """The benchmark file: ``bars`` one-minute bars whose closes follow a GBM (seed 42, as
    ``backtest_throughput.py`` makes them); returns its number of row groups."""
    from tradegraph.data.catalog import BarArrays

    rng = np.random.default_rng(42)
    log_returns = 0.001 * rng.standard_normal(bars) - 0.5 * 0.001 * 0.001
    close = np.round(30_000.0 * np.exp(np.cumsum(log_returns)), 2)
    open_ = np.concatenate(([30_000.0], close[:-1]))
    table = BarArrays(
        symbol="BTCUSDT",
        venue="BINANCE",
        interval_ns=MINUTE_NS,
        ts_open_ns=FIRST_NS + np.arange(bars, dtype=np.int64) * MINUTE_NS,
        open=open_,
        high=np.maximum(open_, close),
        low=np.minimum(open_, close),
        close=close,
        volume=np.full(bars, 10.0),
    ).to_table()
    pq.write_table(table, path, compression="zstd", row_group_size=row_group_rows)
    return int(pq.ParquetFile(path).metadata.num_row_groups)


def child(case: str, path: str, bars: int, slice_bars: int) -> None:
    """One read in this process; prints its figures as JSON."""
    import pyarrow as pa

    from tradegraph.data.catalog import read_bars

    start = FIRST_NS + (bars // 2) * MINUTE_NS if case == "slice" else None
    end = start + slice_bars * MINUTE_NS if start is not None else None
    limit = slice_bars if case == "limit" else None
    before = _status_mb("VmRSS")
    started = time.perf_counter()
    (out,) = read_bars(path, start_ns=start, end_ns=end, limit=limit)
    elapsed = time.perf_counter() - started
    peak = _status_mb("VmHWM")
    print(
        json.dumps(
            {
                "rows": len(out),
                "seconds": elapsed,
                "peak_rss_mb": peak,
                "read_rss_mb": peak - before,
                "arrow_peak_mb": pa.default_memory_pool().max_memory() / 2**20,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--slice", type=int, default=10_000, help="bars in the slice and limit")
    parser.add_argument("--runs", type=int, default=5, help="runs of each case (median kept)")
    parser.add_argument("--row-group-rows", type=int, default=65_536)
    parser.add_argument("--child", choices=("whole", "slice", "limit"), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.file, args.bars, args.slice)
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bars.parquet"
        groups = write_file(path, args.bars, args.row_group_rows)
        runs: dict[str, list[dict[str, float]]] = {"whole": [], "slice": [], "limit": []}
        for _ in range(args.runs):
            # Interleaved, so that a slow spell of the machine hits every case alike.
            for case, results in runs.items():
                proc = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        case,
                        "--file",
                        str(path),
                        "--bars",
                        str(args.bars),
                        "--slice",
                        str(args.slice),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        size_mb = path.stat().st_size / 2**20
    cases = {
        case: {
            "rows": int(results[0]["rows"]),
            **{
                key: round(statistics.median(r[key] for r in results), 4 if key == "seconds" else 1)
                for key in ("seconds", "peak_rss_mb", "read_rss_mb", "arrow_peak_mb")
            },
        }
        for case, results in runs.items()
    }
    print(
        json.dumps(
            {
                "benchmark": "data_loading",
                "bars": args.bars,
                "row_groups": groups,
                "file_mb": round(size_mb, 1),
                "runs": args.runs,
                "numpy": np.__version__,
                **cases,
            }
        )
    )


if __name__ == "__main__":
    main()
