"""A slow or dead sink never blocks ingest or the other sinks; what it drops is counted; the lake never drops."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import polars as pl
import pytest

from flowlake.engine import config, processor, selfmetrics
from flowlake.engine.config import ProcessorConfig
from flowlake.engine.errors import SinkError
from flowlake.engine.processor import Processor
from flowlake.engine.sinks.base import Capabilities
from flowlake.engine.sinks.memory import MemorySink
from flowlake.engine.sinks.queued import QueuedSink
from flowlake.engine.store import lake
from tests.conftest import make_batch


class StuckSink:
    """A remote sink whose destination never answers: `write` blocks until the test releases it."""

    name = "stuck"
    output = "Exporters"
    capabilities = Capabilities()

    def __init__(self) -> None:
        self.release = threading.Event()

    def write(self, frame: pl.DataFrame) -> None:
        self.release.wait()

    def flush(self) -> int:
        self.release.wait()
        return 0

    def close(self) -> None:
        pass


def dropped(sink: str) -> float:
    return selfmetrics.REGISTRY.get_sample_value("flowlake_sink_dropped_rows_total", {"sink": sink}) or 0.0


def test_a_dead_sink_does_not_stop_the_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = StuckSink()
    monkeypatch.setitem(processor.SINKS, "stuck", lambda cfg: stuck)
    cfg: ProcessorConfig = config.load(None, sinks=["stuck", "lake"], stages=[], sink_queue_rows=100,
                                       sink_timeout_seconds=0.3, **{"lake.url": str(tmp_path)})
    proc = Processor(cfg)
    assert isinstance(proc.sinks[0], QueuedSink) and not isinstance(proc.sinks[1], QueuedSink)
    before, lake_before = dropped("stuck"), dropped("lake")
    started = time.monotonic()
    for k in range(10):
        proc.ingest(make_batch(50, start_ms=1_764_000_000_000 + k * 50_000), "test")
    assert time.monotonic() - started < 5  # ingest never waited for the stuck sink
    assert dropped("stuck") == before + 400  # 100 rows fit its queue (one batch in its worker's hands)
    assert selfmetrics.REGISTRY.get_sample_value("flowlake_sink_queued_rows", {"sink": "stuck"}) == 100
    started = time.monotonic()
    proc.close()  # the stuck sink's flush and close give up after sink_timeout_seconds each
    assert time.monotonic() - started < 3
    assert lake.scan(str(tmp_path)).select(pl.len()).collect().item() == 500  # the lake got everything
    assert dropped("stuck") == before + 500  # and the 100 queued rows count as dropped at close
    assert dropped("lake") == lake_before
    stuck.release.set()


def test_queued_flush_publishes_what_was_written_before_it() -> None:
    inner = MemorySink()
    sink = QueuedSink(inner, max_rows=10_000, flush_interval=3600)
    for k in range(5):
        sink.write(pl.from_arrow(make_batch(20, seed=k)))  # type: ignore[arg-type]
    assert sink.flush() == 100
    assert inner.frame().height == 100
    sink.close()


def test_queued_sink_flushes_on_its_interval() -> None:
    inner = MemorySink()
    sink = QueuedSink(inner, max_rows=10_000, flush_interval=0.05)
    sink.write(pl.from_arrow(make_batch(20)))  # type: ignore[arg-type]
    deadline = time.monotonic() + 5
    while inner.frame().height < 20:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    sink.close()


def test_a_stuck_flush_is_reported_not_waited_for_twice() -> None:
    stuck = StuckSink()
    sink = QueuedSink(stuck, max_rows=10, flush_interval=3600, timeout=0.1)  # type: ignore[arg-type]
    with pytest.raises(SinkError, match="still running"):
        sink.flush()
    started = time.monotonic()
    with pytest.raises(SinkError, match="has been running"):
        sink.flush()
    assert time.monotonic() - started < 0.05
    stuck.release.set()
    sink.close()
