"""Parquet lake sink: hour partitions, atomic publication, and no loss when publishing fails."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flowlake.engine import config, selfmetrics
from flowlake.engine.errors import ConfigError, SinkError
from flowlake.engine.processor import Processor
from flowlake.engine.sinks.lake import LakeSink, hour_slices
from flowlake.engine.store import lake, layout
from tests.conftest import BASE_MS, make_batch

HOUR = layout.HOUR_MS


def frame(n: int, **kw: Any) -> pl.DataFrame:
    out = pl.from_arrow(make_batch(n, **kw))
    assert isinstance(out, pl.DataFrame)
    return out


def test_hour_slices_visit_only_hours_present() -> None:
    far = frame(3, start_ms=BASE_MS, step_ms=10_000 * HOUR)  # hours 0, 10000, 20000 apart
    parts = hour_slices(far)
    assert [h for h, _ in parts] == [BASE_MS, BASE_MS + 10_000 * HOUR, BASE_MS + 20_000 * HOUR]
    assert [p.height for _, p in parts] == [1, 1, 1]


def test_row_on_the_hour_boundary_goes_to_the_new_hour(tmp_path: Path) -> None:
    sink = LakeSink(str(tmp_path))
    sink.write(frame(3, start_ms=BASE_MS + HOUR - 1, step_ms=1))  # 59:59.999, 00:00.000, 00:00.001
    assert sink.flush() == 3
    back = {p.parent.name: pl.read_parquet(p).height for p in tmp_path.rglob("*.parquet")}
    assert back == {"hour=16": 1, "hour=17": 2}


def test_failed_publish_keeps_unpublished_rows_and_writes_nothing_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = LakeSink(str(tmp_path))
    sink.write(frame(180, step_ms=60_000))  # hours 16, 17, 18: 60 rows each
    real = LakeSink._publish_hour
    calls = []

    def flaky(self: LakeSink, part: pl.DataFrame, hour_ms: int) -> None:
        calls.append(hour_ms)
        if len(calls) == 2:
            raise OSError("bucket unavailable")
        real(self, part, hour_ms)

    monkeypatch.setattr(LakeSink, "_publish_hour", flaky)
    errors_before = selfmetrics.REGISTRY.get_sample_value("flowlake_sink_errors_total", {"sink": "lake"}) or 0
    with pytest.raises(SinkError, match=r"bucket unavailable.*120 rows kept for the next flush"):
        sink.flush()
    assert selfmetrics.REGISTRY.get_sample_value("flowlake_sink_errors_total", {"sink": "lake"}) == errors_before + 1
    assert lake.scan(str(tmp_path)).select(pl.len()).collect().item() == 60
    assert sink.flush() == 120  # the retry publishes the rest, once
    back = lake.scan(str(tmp_path)).collect()
    assert back.height == 180 and back["Bytes"].n_unique() == 180
    assert not list((tmp_path / layout.STAGING_DIR).iterdir())


def test_full_buffer_blocks_ingest_instead_of_dropping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = LakeSink(str(tmp_path), flush_rows=10**9, max_buffer_rows=250, retry_seconds=0.05)
    down = {"on": True}
    real = LakeSink._publish_hour

    def maybe(self: LakeSink, part: pl.DataFrame, hour_ms: int) -> None:
        if down["on"]:
            raise OSError("down")
        real(self, part, hour_ms)

    monkeypatch.setattr(LakeSink, "_publish_hour", maybe)
    dropped_before = selfmetrics.REGISTRY.get_sample_value("flowlake_sink_dropped_rows_total", {"sink": "lake"}) or 0
    for k in range(2):  # 200 rows: room for them
        sink.write(frame(100, start_ms=BASE_MS + k * HOUR))
    writer = threading.Thread(target=lambda: sink.write(frame(100, start_ms=BASE_MS + 2 * HOUR)))
    writer.start()
    deadline = time.monotonic() + 5
    while selfmetrics.REGISTRY.get_sample_value("flowlake_sink_blocked_writers", {"sink": "lake"}) != 1:
        assert time.monotonic() < deadline, "the third write should wait for room"
        time.sleep(0.01)
    time.sleep(0.2)
    assert writer.is_alive() and sink.buffered_rows() == 200  # held back, retrying the publish itself
    down["on"] = False
    writer.join(5)
    assert not writer.is_alive()
    assert selfmetrics.REGISTRY.get_sample_value("flowlake_sink_blocked_writers", {"sink": "lake"}) == 0
    sink.close()
    assert lake.scan(str(tmp_path)).select(pl.len()).collect().item() == 300
    assert selfmetrics.REGISTRY.get_sample_value("flowlake_sink_dropped_rows_total",
                                                 {"sink": "lake"}) in (None, dropped_before)


def test_processor_flusher_survives_a_failing_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config.load(None, flush_seconds=0.05, **{"lake.url": str(tmp_path)})
    proc = Processor(cfg)
    fail = {"on": True}
    real = LakeSink._publish_hour

    def maybe(self: LakeSink, part: pl.DataFrame, hour_ms: int) -> None:
        if fail["on"]:
            raise ValueError("unexpected")
        real(self, part, hour_ms)

    monkeypatch.setattr(LakeSink, "_publish_hour", maybe)
    proc.start_flusher()
    proc.ingest(make_batch(50), "test")
    time.sleep(0.3)  # several failing flushes
    fail["on"] = False
    deadline = time.monotonic() + 5
    while lake.scan(str(tmp_path)).select(pl.len()).collect().item() < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.close()
    assert lake.scan(str(tmp_path)).select(pl.len()).collect().item() == 50


@pytest.mark.parametrize("codec", ["zstd", "snappy", "lz4", "gzip", "none"])
def test_every_documented_codec_writes(tmp_path: Path, codec: str) -> None:
    cfg = config.load(None, **{"lake.url": str(tmp_path), "lake.compression": codec})
    proc = Processor(cfg)
    proc.ingest(make_batch(20), "test")
    proc.close()
    assert lake.scan(str(tmp_path)).select(pl.col("Bytes").sum()).collect().item() == sum(range(100, 120))


def test_unknown_codec_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"lake\.compression"):
        config.load(None, **{"lake.compression": "bogus"})


def test_memory_lake_round_trip() -> None:
    url = "memory://flowlake-test-lake"
    sink = LakeSink(url)
    sink.write(frame(120, step_ms=60_000))
    sink.close()
    assert lake.scan(url, BASE_MS + HOUR, BASE_MS + 2 * HOUR).select(pl.len()).collect().item() == 60


def test_background_publisher_publishes_full_buffers_off_the_writer_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    publishers: list[str] = []
    real = LakeSink._publish_hour

    def record(self: LakeSink, part: pl.DataFrame, hour_ms: int) -> None:
        publishers.append(threading.current_thread().name)
        real(self, part, hour_ms)

    monkeypatch.setattr(LakeSink, "_publish_hour", record)
    sink = LakeSink(str(tmp_path), flush_rows=100, background=True)
    sink.write(frame(60))
    sink.write(frame(60, start_ms=BASE_MS + 60_000))  # 120 >= flush_rows: due, published by the publisher
    deadline = time.monotonic() + 5
    while not list(tmp_path.rglob("*.parquet")):
        assert time.monotonic() < deadline, "the publisher thread should have published the full buffer"
        time.sleep(0.01)
    assert publishers == ["flowlake-lake-publisher"]
    assert sink.buffered_rows() == 0
    sink.write(frame(7, start_ms=BASE_MS + 2 * HOUR))  # below flush_rows: published by close
    sink.close()
    assert lake.scan(str(tmp_path)).select(pl.len()).collect().item() == 127
    assert publishers[-1] == "MainThread"


def test_background_publisher_retries_a_failing_destination(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    down = {"on": True, "tries": 0}
    real = LakeSink._publish_hour

    def maybe(self: LakeSink, part: pl.DataFrame, hour_ms: int) -> None:
        if down["on"]:
            down["tries"] += 1
            raise OSError("down")
        real(self, part, hour_ms)

    monkeypatch.setattr(LakeSink, "_publish_hour", maybe)
    sink = LakeSink(str(tmp_path), flush_rows=10, retry_seconds=0.02, background=True)
    sink.write(frame(50))
    deadline = time.monotonic() + 5
    while down["tries"] < 3:  # the publisher keeps trying; the writer returned at once
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert sink.buffered_rows() == 50
    down["on"] = False
    while sink.buffered_rows():
        assert time.monotonic() < deadline, "published once the destination is back"
        time.sleep(0.01)
    sink.close()
    assert lake.scan(str(tmp_path)).select(pl.len()).collect().item() == 50
