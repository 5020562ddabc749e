"""Reading a window or the first bars of a long Parquet file touches only the row groups that
hold them: the other row groups of these files are overwritten with garbage, so that reading
them fails."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tradegraph.data.catalog import ROW_GROUP_ROWS, BarArrays, read_bars, read_trades, write_parquet
from tradegraph.errors import DataError

MINUTE_NS = 60_000_000_000
FIRST_NS = 1_751_328_000_000_000_000  # 2025-07-01
GROUP = 100
ROWS = 10 * GROUP
NOW_NS = FIRST_NS + 365 * 86_400_000_000_000


def _bars(n: int = ROWS) -> BarArrays:
    close = 100.0 + np.arange(n, dtype=np.float64)
    return BarArrays(
        symbol="BTCUSDT",
        venue="BINANCE",
        interval_ns=MINUTE_NS,
        ts_open_ns=FIRST_NS + np.arange(n, dtype=np.int64) * MINUTE_NS,
        open=close - 0.5,
        high=close + 1,
        low=close - 1,
        close=close,
        volume=np.ones(n),
    )


def _spoil(path: Path, keep_groups: set[int], columns: set[str] | None = None) -> None:
    """Overwrite the column chunks of every row group not in ``keep_groups`` (only of
    ``columns`` when given) with bytes no Parquet reader can decode."""
    meta = pq.ParquetFile(path).metadata
    data = bytearray(path.read_bytes())
    for group in range(meta.num_row_groups):
        if group in keep_groups:
            continue
        for i in range(meta.num_columns):
            chunk = meta.row_group(group).column(i)
            if columns is not None and chunk.path_in_schema not in columns:
                continue
            start = chunk.data_page_offset
            if chunk.has_dictionary_page and chunk.dictionary_page_offset:
                start = min(start, chunk.dictionary_page_offset)
            data[start : start + chunk.total_compressed_size] = (
                b"\xff" * chunk.total_compressed_size
            )
    path.write_bytes(bytes(data))


@pytest.fixture
def bar_file(tmp_path: Path) -> Path:
    path = tmp_path / "bars.parquet"
    write_parquet(_bars().to_table(), path, row_group_rows=GROUP)
    assert pq.ParquetFile(path).metadata.num_row_groups == ROWS // GROUP
    return path


def test_a_window_reads_only_the_row_groups_it_reaches(bar_file: Path) -> None:
    # Bars 250..449 lie in row groups 2, 3 and 4.
    start = FIRST_NS + 250 * MINUTE_NS
    end = FIRST_NS + 450 * MINUTE_NS
    (expected,) = read_bars(bar_file, start_ns=start, end_ns=end, now_ns=NOW_NS)
    _spoil(bar_file, keep_groups={2, 3, 4})

    (bars,) = read_bars(bar_file, start_ns=start, end_ns=end, now_ns=NOW_NS)

    assert len(bars) == 200
    assert bars.ts_open_ns[0] == start
    np.testing.assert_array_equal(bars.ts_open_ns, expected.ts_open_ns)
    np.testing.assert_array_equal(bars.close, 100.0 + np.arange(250, 450))
    np.testing.assert_array_equal(bars.open, expected.open)
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_bars(bar_file, now_ns=NOW_NS)


def test_a_limit_reads_prices_only_from_the_row_groups_of_the_bars_kept(bar_file: Path) -> None:
    # Times (which tell the order and the rows to drop) are read everywhere, prices only from
    # the groups holding the first 150 bars.
    _spoil(bar_file, keep_groups={0, 1}, columns={"open", "high", "low", "close", "volume"})

    (bars,) = read_bars(bar_file, limit=150, now_ns=NOW_NS)

    assert len(bars) == 150
    np.testing.assert_array_equal(bars.close, 100.0 + np.arange(150))
    np.testing.assert_array_equal(bars.high, bars.close + 1)
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_bars(bar_file, limit=250, now_ns=NOW_NS)


def test_pruned_reads_equal_reads_of_the_same_rows_in_one_row_group(tmp_path: Path) -> None:
    # Two symbols, rows out of order and one row years before the rest: the answer must not
    # depend on how the file is cut into row groups.
    btc = _bars().to_table()
    eth = _bars().to_table().set_column(6, "symbol", pa.array(["ETHUSDT"] * ROWS))
    table = pa.concat_tables([btc, eth]).take(
        pa.array(np.random.default_rng(1).permutation(2 * ROWS))
    )
    ts = table.column("ts").to_numpy().copy()
    ts[7] -= 3 * 365 * 86_400_000_000_000
    table = table.set_column(0, "ts", pa.array(ts, pa.int64()))
    many = write_parquet(table, tmp_path / "many.parquet", row_group_rows=GROUP)
    one = write_parquet(table, tmp_path / "one.parquet", row_group_rows=10 * ROWS)
    windows = [
        {},
        {"limit": 120},
        {"start_ns": FIRST_NS + 333 * MINUTE_NS, "end_ns": FIRST_NS + 777 * MINUTE_NS},
        {"start_ns": FIRST_NS + 900 * MINUTE_NS, "limit": 50},
    ]

    for window in windows:
        got = read_bars(many, now_ns=NOW_NS, **window)  # type: ignore[arg-type]
        want = read_bars(one, now_ns=NOW_NS, **window)  # type: ignore[arg-type]
        assert [(b.symbol, len(b), dict(b.dropped)) for b in got] == [
            (b.symbol, len(b), dict(b.dropped)) for b in want
        ]
        for a, b in zip(got, want, strict=True):
            for name in ("ts_open_ns", "open", "high", "low", "close", "volume"):
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
            assert np.all(np.diff(a.ts_open_ns) > 0)


def test_null_times_in_row_groups_outside_the_window_still_stop_the_read(tmp_path: Path) -> None:
    table = _bars().to_table()
    ts = pa.array(
        [None if i == 950 else int(v) for i, v in enumerate(table.column("ts").to_numpy())],
        pa.int64(),
    )
    path = write_parquet(
        table.set_column(0, "ts", ts), tmp_path / "bars.parquet", row_group_rows=GROUP
    )

    with pytest.raises(DataError, match=r"column 'ts' has 1 null values"):
        read_bars(path, start_ns=FIRST_NS, end_ns=FIRST_NS + 10 * MINUTE_NS, now_ns=NOW_NS)


def test_a_trade_window_reads_only_the_row_groups_it_reaches(tmp_path: Path) -> None:
    n = ROWS
    table = pa.table(
        {
            "ts": pa.array(FIRST_NS + np.arange(n, dtype=np.int64) * 1_000_000_000),
            "price": 100.0 + np.arange(n, dtype=np.float64),
            "size": np.full(n, 0.5),
            "side": pa.array(["buy", "sell"] * (n // 2)),
            "trade_id": pa.array(np.arange(n, dtype=np.int64)),
        }
    )
    path = write_parquet(table, tmp_path / "trades.parquet", row_group_rows=GROUP)
    _spoil(path, keep_groups={5})

    trades = read_trades(
        path,
        symbol="BTCUSDT",
        start_ns=FIRST_NS + 510 * 1_000_000_000,
        end_ns=FIRST_NS + 530 * 1_000_000_000,
        now_ns=NOW_NS,
    )

    assert trades.trade_id.tolist() == list(range(510, 530))
    assert trades.price.tolist() == [100.0 + i for i in range(510, 530)]
    assert trades.aggressor_buy.tolist() == [i % 2 == 0 for i in range(510, 530)]
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_trades(path, symbol="BTCUSDT", now_ns=NOW_NS)


def test_a_dataset_day_file_is_read_only_in_the_row_groups_the_window_reaches(
    tmp_path: Path,
) -> None:
    path = tmp_path / "symbol=BTCUSDT" / "date=2025-07-01" / "part.parquet"
    write_parquet(_bars().to_table(), path, row_group_rows=GROUP)
    _spoil(path, keep_groups={0})

    (bars,) = read_bars(tmp_path, symbol="BTCUSDT", end_ns=FIRST_NS + 30 * MINUTE_NS, now_ns=NOW_NS)

    assert bars.close.tolist() == [100.0 + i for i in range(30)]


def test_write_parquet_cuts_long_tables_into_row_groups(tmp_path: Path) -> None:
    path = write_parquet(_bars(ROW_GROUP_ROWS + 1).to_table(), tmp_path / "bars.parquet")

    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [ROW_GROUP_ROWS, 1]


def test_a_dataset_keeps_no_day_file_open_between_reads(tmp_path: Path) -> None:
    from tradegraph.data.catalog import _read_bar_dataset

    day_ns = 86_400_000_000_000
    for day in range(40):
        bars = _bars(3)
        shifted = replace(bars, ts_open_ns=bars.ts_open_ns + day * day_ns)
        name = f"2025-07-{day + 1:02d}" if day < 31 else f"2025-08-{day - 30:02d}"
        write_parquet(
            shifted.to_table(), tmp_path / "symbol=BTCUSDT" / f"date={name}" / "part.parquet"
        )
    fds = Path("/proc/self/fd")
    before = len(list(fds.iterdir()))

    source = _read_bar_dataset(tmp_path, "BTCUSDT", None, None)

    assert len(source.pieces) == 40
    assert len(list(fds.iterdir())) - before < 5
    (bars,) = read_bars(tmp_path, symbol="BTCUSDT", now_ns=NOW_NS)
    assert len(bars) == 120
