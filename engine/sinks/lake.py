"""Parquet lake sink: buffers flow frames, publishes Parquet files into hour partitions; never drops.

Used by the processor (`sinks: [lake]`) and by `flowlake synth --out`. Files appear whole or not at all
(`store.writer.publish`). When the destination fails, rows stay buffered and are published by the next
flush; once `max_buffer_rows` are held, `write` blocks the ingest thread (backpressure, visible in
flowlake_sink_blocked_writers) and retries the publish itself until it succeeds. With `background`, a
full buffer is published by a publisher thread instead of the writer that filled it: a burst is absorbed
at the rate of the stages (Parquet encoding releases the GIL, so it runs on the other core meanwhile).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import polars as pl

from flowlake.engine import selfmetrics
from flowlake.engine.errors import SinkError
from flowlake.engine.sinks.base import Capabilities
from flowlake.engine.store import layout, maintenance, writer

log = logging.getLogger(__name__)


class LakeSink:
    """Writes flows to a Parquet lake at an fsspec URL; flushes when `flush_rows` are buffered."""

    name = "lake"
    output = "Loki"  # the flow store: NetObserv's Loki, as the per-output filter target
    capabilities = Capabilities(durable=True, ordered=False, atomic_publish=True, backpressure=True)

    def __init__(self, url: str, *, flush_rows: int = 500_000, compression: str = "zstd",
                 compression_level: int | None = 3, row_group_rows: int = 256_000,
                 max_buffer_rows: int = 5_000_000, retry_seconds: float = 1.0,
                 storage_options: Mapping[str, Any] | None = None, retention_days: float = 0.0,
                 maintenance_seconds: float = 0.0, background: bool = False) -> None:
        self.url = url
        self.storage_options = dict(storage_options or {})
        self.fs, self.root = layout.open_root(url, self.storage_options)
        self.flush_rows = flush_rows
        self.encoding = writer.Encoding(compression, compression_level, row_group_rows)
        self.max_buffer_rows = max_buffer_rows  # beyond, writers wait: memory stays bounded, nothing is lost
        self.retry_seconds = retry_seconds  # a blocked writer's first wait between publish attempts
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0
        self._lock = threading.Lock()  # guards the buffer
        self._room = threading.Condition(self._lock)  # notified when a publish frees buffer room
        self._io_lock = threading.Lock()  # one publisher at a time keeps file counts predictable
        self.retention_days = retention_days
        self._stop = threading.Event()
        self._maintainer: threading.Thread | None = None
        if maintenance_seconds > 0:
            self._maintainer = threading.Thread(target=self._maintain, args=(maintenance_seconds,), daemon=True,
                                                name="flowlake-lake-maintenance")
            self._maintainer.start()
        self._publisher: threading.Thread | None = None
        self._due = threading.Event()  # set when `flush_rows` are buffered, for the publisher thread
        if background:
            self._publisher = threading.Thread(target=self._publish_loop, daemon=True, name="flowlake-lake-publisher")
            self._publisher.start()

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        with self._lock:
            if self._pending_rows and self._pending_rows + frame.height > self.max_buffer_rows:
                self._wait_for_room(frame.height)
            self._pending.append(frame)
            self._pending_rows += frame.height
            full = self._pending_rows >= self.flush_rows
        if full and self._publisher is not None:
            self._due.set()
        elif full:
            self.flush()

    def _publish_loop(self) -> None:
        """Publish whenever a writer filled `flush_rows`; a failure leaves the rows for the next try."""
        while True:
            self._due.wait()
            if self._stop.is_set():
                return
            self._due.clear()
            try:
                self.flush()
            except SinkError as exc:  # rows kept; writers block once max_buffer_rows are held
                log.warning("%s; retrying in %.1fs", exc, self.retry_seconds)
                if self._stop.wait(self.retry_seconds):
                    return
                self._due.set()

    def _wait_for_room(self, rows: int) -> None:
        """Block (holding nothing but the condition) until `rows` fit; publish ourselves meanwhile."""
        gauge = selfmetrics.SINK_BLOCKED.labels(sink=self.name)
        gauge.inc()
        started, delay = time.monotonic(), self.retry_seconds
        try:
            while self._pending_rows and self._pending_rows + rows > self.max_buffer_rows:
                failed = False
                self._lock.release()
                try:
                    self.flush()  # raises while the destination is down
                except SinkError as exc:
                    failed = True
                    log.warning("%s; ingest waits for the lake (%.1fs so far)", exc, time.monotonic() - started)
                finally:
                    self._lock.acquire()
                if failed and self._pending_rows + rows > self.max_buffer_rows:
                    self._room.wait(delay)  # woken early when another thread's publish succeeds
                    delay = min(delay * 2, 30.0)
        finally:
            gauge.dec()
            selfmetrics.SINK_BLOCKED_SECONDS.labels(sink=self.name).inc(time.monotonic() - started)

    def flush(self) -> int:
        """Publish everything buffered; returns the rows written.

        On a failure the hours not yet published go back to the buffer for the next flush (hours
        already published stay published, so nothing is written twice) and SinkError is raised.
        """
        with self._io_lock:
            with self._lock:
                frames, self._pending, self._pending_rows = self._pending, [], 0
            if not frames:
                return 0
            frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
            parts = hour_slices(writer.sort_rows(writer.conform(frame)))
            written = 0
            for i, (hour_ms, part) in enumerate(parts):
                try:
                    self._publish_hour(part, hour_ms)
                except Exception as exc:  # any failure: keep the rows, report it, let the caller go on
                    kept = [p for _, p in parts[i:]]
                    self._requeue(kept)
                    rows = sum(p.height for p in kept)
                    selfmetrics.SINK_ERRORS.labels(sink=self.name).inc()
                    selfmetrics.SINK_RETRIES.labels(sink=self.name).inc(rows)
                    raise SinkError(f"lake sink: cannot publish to {self.url} ({type(exc).__name__}: {exc}); "
                                    f"{rows} rows kept for the next flush; check the URL, its permissions "
                                    "and credentials (lake.url, lake.storage_options)") from exc
                written += part.height
            with self._room:
                self._room.notify_all()
        return written

    def _requeue(self, parts: list[pl.DataFrame]) -> None:
        """Put unpublished rows back in front of the buffer, in order; nothing is ever dropped."""
        with self._lock:
            self._pending = parts + self._pending
            self._pending_rows += sum(p.height for p in parts)

    def buffered_rows(self) -> int:
        """Rows written but not yet published."""
        with self._lock:
            return self._pending_rows

    def close(self) -> None:
        self._stop.set()
        self._due.set()
        for thread in (self._maintainer, self._publisher):
            if thread is not None:
                thread.join()
        self.flush()

    def _maintain(self, every: float) -> None:
        """Compaction and retention in the processor (`lake.maintenance_seconds`)."""
        while not self._stop.wait(every):
            try:
                maintenance.compact(self.url, encoding=self.encoding, storage_options=self.storage_options)
                if self.retention_days > 0:
                    maintenance.expire(self.url, self.retention_days, storage_options=self.storage_options)
            except Exception:  # keep publishing; the next round tries again
                log.exception("lake maintenance of %s failed; retrying in %.0fs", self.url, every)

    def _publish_hour(self, part: pl.DataFrame, hour_ms: int) -> None:
        path = writer.publish(self.fs, self.root, hour_ms, part, self.encoding)
        selfmetrics.SINK_ROWS.labels(sink=self.name).inc(part.height)
        selfmetrics.LAKE_FILES.inc()
        log.debug("lake: published %d rows to %s", part.height, path)


def hour_slices(frame: pl.DataFrame) -> list[tuple[int, pl.DataFrame]]:
    """(hour start ms, zero-copy slice) for each hour of a frame whose hours are contiguous runs.

    Only the hours that hold rows are visited, however far apart they are.
    """
    runs = (frame.get_column("TimeFlowEndMs") // layout.HOUR_MS).rle().struct.unnest()
    out, offset = [], 0
    for length, hour in zip(runs.get_column("len").to_list(), runs.get_column("value").to_list(), strict=True):
        out.append((int(hour) * layout.HOUR_MS, frame.slice(offset, length)))
        offset += length
    return out
