"""The lake on every fsspec store (file, memory, s3 via moto's server), schema evolution, compaction, retention."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from flowlake.engine import cli, schema
from flowlake.engine.sinks.lake import LakeSink
from flowlake.engine.store import lake, layout, maintenance, writer
from tests.conftest import BASE_MS, make_batch
from tests.sinks.harnesses import sort_rows

HOUR = layout.HOUR_MS


def now_ms(later_s: float = 0) -> int:
    """Wall-clock "now" for maintenance (it ages compacted files by the time in their names); test hours
    (late 2025) are long closed by then."""
    return int((time.time() + later_s) * 1000)


def frame(n: int, **kw: Any) -> pl.DataFrame:
    out = pl.from_arrow(make_batch(n, **kw))
    assert isinstance(out, pl.DataFrame)
    return out


@pytest.fixture(params=["file", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """(lake URL, storage options) on each kind of filesystem."""
    if request.param == "file":
        return f"file://{tmp_path}/lake", {}
    if request.param == "memory":
        return f"memory://lake-{uuid.uuid4().hex}", {}
    options: dict[str, Any] = request.getfixturevalue("moto_s3")
    bucket = f"flowlake-{uuid.uuid4().hex[:12]}"
    fs, _ = layout.open_root(f"s3://{bucket}", options)
    fs.mkdir(bucket)
    return f"s3://{bucket}/lake", options


def test_round_trip_and_time_pruning(store: tuple[str, dict[str, Any]], flows: pl.DataFrame) -> None:
    url, options = store
    sink = LakeSink(url, storage_options=options, flush_rows=700)
    for part in flows.iter_slices(500):
        sink.write(part)
    sink.close()
    assert_frame_equal(sort_rows(lake.scan(url, storage_options=options).collect()), sort_rows(flows))
    one_hour = lake.open_scan(url, BASE_MS, BASE_MS + HOUR, storage_options=options)
    assert {layout.hour_of_path(f) for f in one_hour.files} == {BASE_MS}
    assert one_hour.frame.select(pl.len()).collect().item() == flows.filter(
        pl.col("TimeFlowEndMs") < BASE_MS + HOUR).height
    fs, root = layout.open_root(url, options)
    assert not [p for p in fs.find(root) if layout.STAGING_DIR in p]  # nothing left half-written


def test_files_keep_statistics_only_where_queries_prune(tmp_path: Path, flows: pl.DataFrame) -> None:
    """Times, ports, counters, SrcAddr (the first sort key) and the cluster name carry row-group min/max;
    other text and lists do not (they never skip a row group in address order, and cost a fifth of the
    encoding)."""
    sink = LakeSink(str(tmp_path / "lake"))
    sink.write(flows)
    sink.close()
    files = sorted((tmp_path / "lake").rglob("*.parquet"))
    assert files
    for f in files:
        meta = pq.ParquetFile(f).metadata
        names = [meta.schema.column(i).path for i in range(meta.num_columns)]
        with_stats = {n for i, n in enumerate(names) if meta.row_group(0).column(i).is_stats_set}
        assert {"TimeFlowStartMs", "TimeFlowEndMs", "DstPort", "Bytes", "SrcAddr", "K8S_ClusterName"} <= with_stats
        assert not with_stats & {"DstAddr", "SrcK8S_Namespace", "DstK8S_Name"}
        assert not [n for n in with_stats if "list" in n or "element" in n]
    pruned = pl.scan_parquet(files).filter(pl.col("TimeFlowEndMs") < BASE_MS + HOUR).select(pl.len()).collect()
    assert pruned.item() == flows.filter(pl.col("TimeFlowEndMs") < BASE_MS + HOUR).height


def test_buffered_batches_sort_like_one_frame(flows: pl.DataFrame) -> None:
    """The sink's buffer is many chunks (one per written batch); the file order does not depend on that."""
    chunked = pl.concat(list(flows.iter_slices(333)), rechunk=False)
    assert chunked.n_chunks() > 1
    assert_frame_equal(writer.sort_rows(writer.conform(chunked)), writer.sort_rows(writer.conform(flows)))


def test_files_of_an_older_schema_read_beside_new_ones(tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    old = frame(10, start_ms=BASE_MS).select(["TimeFlowStartMs", "TimeFlowEndMs", "SrcAddr", "DstAddr", "SrcPort",
                                              "Proto", "Etype", "Bytes", "Packets"])
    table = old.to_arrow().cast(pa.schema([  # an older writer: fewer columns, narrower integers, an extra one
        ("TimeFlowStartMs", pa.int64()), ("TimeFlowEndMs", pa.int64()), ("SrcAddr", pa.string()),
        ("DstAddr", pa.string()), ("SrcPort", pa.uint16()), ("Proto", pa.uint8()), ("Etype", pa.uint16()),
        ("Bytes", pa.uint32()), ("Packets", pa.uint32())])).append_column("LegacyField", pa.array(["x"] * 10))
    part = layout.partition_dir(url, BASE_MS)
    Path(part).mkdir(parents=True)
    pq.write_table(table, f"{part}/part-20200101T000000000000-legacy.parquet")
    sink = LakeSink(url)
    sink.write(frame(5, start_ms=BASE_MS + 20_000, DnsName=["new.example"] * 5))
    sink.close()
    back = lake.scan(url).collect()
    assert back.columns == [f.name for f in schema.FIELDS] and back.height == 15
    assert back.filter(pl.col("DnsName").is_null()).height == 10  # a column the old files lack reads as null
    assert back.schema["Bytes"] == pl.UInt64
    assert sorted(back["Bytes"].to_list()) == sorted(list(range(100, 110)) + list(range(100, 105)))


def _publish(url: str, n: int, k: int, options: dict[str, Any] | None = None) -> None:
    sink = LakeSink(url, storage_options=options)
    sink.write(frame(n, start_ms=BASE_MS + k * 1000, step_ms=60_000, seed=k))  # spans hours 16 and 17
    sink.close()


def test_compaction_merges_closed_hours_atomically(store: tuple[str, dict[str, Any]]) -> None:
    url, options = store
    for k in range(4):
        _publish(url, 90, k, options)
    before = sort_rows(lake.scan(url, storage_options=options).collect())
    fs, root = layout.open_root(url, options)
    old_files = {h: len(p) for h, p in layout.hour_files(fs, root).items()}
    assert old_files == {BASE_MS: 4, BASE_MS + HOUR: 4}
    stale = lake.open_scan(url, storage_options=options)  # a query that listed the files before compaction
    stats = maintenance.compact(url, now_ms=now_ms(), storage_options=options)
    assert (stats.hours_compacted, stats.files_merged, stats.rows, stats.files_deleted) == (2, 8, 360, 0)
    assert_frame_equal(sort_rows(lake.scan(url, storage_options=options).collect()), before)  # no duplicates
    assert_frame_equal(sort_rows(stale.frame.collect()), before)  # its files are still there (grace period)
    assert all(len(layout.data_files(fs, root, h, h + HOUR)) == 1 for h in old_files)
    stats = maintenance.compact(url, now_ms=now_ms(3600), storage_options=options)  # past the grace
    assert stats.files_deleted == 8 and stats.hours_compacted == 0
    assert {h: len(p) for h, p in layout.hour_files(fs, root).items()} == {BASE_MS: 1, BASE_MS + HOUR: 1}
    _publish(url, 30, 9, options)  # late flows land beside the compacted file, and are read with it
    assert lake.scan(url, storage_options=options).select(pl.len()).collect().item() == 390
    maintenance.compact(url, now_ms=now_ms(2 * 3600), storage_options=options)
    maintenance.compact(url, now_ms=now_ms(4 * 3600), storage_options=options)
    assert {h: len(p) for h, p in layout.hour_files(fs, root).items()} == {BASE_MS: 1, BASE_MS + HOUR: 1}
    assert lake.scan(url, storage_options=options).select(pl.len()).collect().item() == 390


def test_readers_never_see_duplicates_or_gaps_while_compacting(tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    for k in range(6):
        _publish(url, 60, k)
    counts: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            counts.append(lake.scan(url).select(pl.len()).collect().item())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        # Compact, late files in between; replaced files are deleted once superseded for longer than the
        # grace period, which must outlast a read that listed them (0 would delete under the reader).
        for round_ in range(6):
            maintenance.compact(url, now_ms=now_ms(), grace_seconds=0.5)
            _publish(url, 10, 100 + round_)
            time.sleep(0.2)
    finally:
        stop.set()
        reader.join()
    assert len(counts) > 5
    grown = [c for c in counts if c not in range(360, 421, 10)]
    assert not grown, f"a reader saw a row count that was never published: {sorted(set(grown))}"


def test_racing_compactors_never_double_count(tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    for k in range(3):
        _publish(url, 60, k)
    fs, root = layout.open_root(url)
    paths = layout.hour_files(fs, root)[BASE_MS]
    names = [p.rsplit("/", 1)[1] for p in paths]
    rows = lake.read_files(fs, paths).collect()
    # two compactors merged overlapping sets at the same time: {a, b} and {a, b, c}
    writer.publish(fs, root, BASE_MS, rows.filter(pl.col("Bytes") < 0), writer.Encoding(),
                   prefix=layout.COMPACT_PREFIX, replaces=names[:2])  # (rows elided: it loses anyway)
    time.sleep(0.002)
    writer.publish(fs, root, BASE_MS, writer.sort_rows(rows), writer.Encoding(), prefix=layout.COMPACT_PREFIX,
                   replaces=names)
    visible = layout.data_files(fs, root, BASE_MS, BASE_MS + HOUR)
    assert len(visible) == 1 and visible[0].rsplit("/", 1)[1].startswith("compact-")
    assert lake.scan(url, BASE_MS, BASE_MS + HOUR).select(pl.len()).collect().item() == rows.height


def test_retention_deletes_old_hours_only(store: tuple[str, dict[str, Any]]) -> None:
    url, options = store
    sink = LakeSink(url, storage_options=options)
    sink.write(frame(48, step_ms=HOUR))  # 48 hours, one flow each
    sink.close()
    now = BASE_MS + 48 * HOUR
    expired = maintenance.expire(url, 1, now_ms=now, storage_options=options)
    assert expired == [BASE_MS + h * HOUR for h in range(24)]
    left = lake.scan(url, storage_options=options).select("TimeFlowEndMs").collect()
    assert left.height == 24 and left["TimeFlowEndMs"].min() == BASE_MS + 24 * HOUR
    with pytest.raises(ValueError, match="positive number of days"):
        maintenance.expire(url, 0, storage_options=options)


def test_cli_compacts_and_expires(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "lake")
    for k in range(2):
        _publish(url, 60, k)
    assert cli.main(["lake", "compact", "--lake", url, "--min-age-seconds", "0", "--grace-seconds", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["files_merged"] == 2  # one hour, two files
    assert cli.main(["lake", "expire", "--lake", url, "--days", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"expired_hours": 1}
    assert cli.main(["lake", "expire", "--lake", url]) == 2  # a usage error: no --days and no lake.retention_days
    assert "give --days" in capsys.readouterr().err
