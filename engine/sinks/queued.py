"""A sink behind a bounded queue and its own worker thread, so a slow or dead destination never blocks ingest.

The processor wraps every sink that neither applies backpressure (the lake) nor works in memory
(metrics, memory) — loki, kafka, ... — in a `QueuedSink`. `write` only appends to the queue; when
`max_rows` are already waiting, the batch is dropped and counted (flowlake_sink_dropped_rows_total),
never waited for. The worker writes queued frames to the sink in order and calls its `flush` every
`flush_interval` seconds (Loki's batch wait) and when asked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import polars as pl

from flowlake.engine import selfmetrics
from flowlake.engine.errors import FlowlakeError, SinkError
from flowlake.engine.sinks.base import Capabilities, Sink

log = logging.getLogger(__name__)


class QueuedSink:
    """Wraps `inner`; same name, output and capabilities, so filters and metrics see the sink itself."""

    def __init__(self, inner: Sink, *, max_rows: int, flush_interval: float, timeout: float = 10.0) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.output: str = inner.output
        self.capabilities: Capabilities = inner.capabilities
        self.max_rows, self.flush_interval, self.timeout = max_rows, flush_interval, timeout
        self._queue: deque[pl.DataFrame] = deque()
        self._rows = 0
        self._cond = threading.Condition()
        self._asked = self._done = 0  # flush requests made / completed
        self._last_rows = 0  # rows the last completed flush published
        self._last_error: FlowlakeError | None = None  # and what it raised
        self._enqueued = self._written = self._mark = 0  # frames queued / handed to the sink / to flush
        self._closed = False
        self._dropping = 0  # rows dropped since the queue last had room (for one log line per episode)
        self._gauge = selfmetrics.SINK_QUEUED.labels(sink=self.name)
        self._thread = threading.Thread(target=self._run, name=f"flowlake-sink-{self.name}", daemon=True)
        self._thread.start()

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        with self._cond:
            if self._closed or (self._rows and self._rows + frame.height > self.max_rows):
                self._drop(frame.height)
                return
            if self._dropping:
                log.warning("%s sink: queue has room again after dropping %d flows", self.name, self._dropping)
                self._dropping = 0
            self._queue.append(frame)
            self._enqueued += 1
            self._rows += frame.height
            self._gauge.set(self._rows)
            self._cond.notify_all()

    def _drop(self, rows: int) -> None:
        selfmetrics.SINK_DROPPED.labels(sink=self.name).inc(rows)
        if not self._dropping:
            log.error("%s sink: %d flows already queued (processor.sink_queue_rows); dropping new batches until "
                      "it catches up; is its destination slow or down?", self.name, self._rows)
        self._dropping += rows

    def flush(self) -> int:
        """Ask the worker to flush after what is queued; wait up to `timeout` for it, never twice for a stuck one.

        Raises the sink's own flush error, or SinkError when the worker did not finish in time.
        """
        with self._cond:
            if self._done < self._asked:  # the previous flush has not finished: the sink is stuck, move on
                raise SinkError(f"{self.name} sink: a flush has been running for over {self.timeout:.0f}s; "
                                f"{self._rows} flows queued, new batches beyond {self.max_rows} are dropped; "
                                "is its destination slow or down?")
            self._asked += 1
            self._mark = self._enqueued  # this flush publishes every frame queued before it
            wanted = self._asked
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._done >= wanted, self.timeout):
                raise SinkError(f"{self.name} sink: flush still running after {self.timeout:.0f}s "
                                "(processor.sink_timeout_seconds); not waiting for it")
            if self._last_error is not None:
                raise self._last_error
            return self._last_rows

    def close(self) -> None:
        """Flush and close the sink from its worker; after `timeout`, count what is still queued as dropped."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(self.timeout)
        if self._thread.is_alive():
            with self._cond:
                rows, self._rows = self._rows, 0
                self._queue.clear()
                self._gauge.set(0)
            selfmetrics.SINK_DROPPED.labels(sink=self.name).inc(rows)
            log.error("%s sink: not closed after %.0fs; dropped the %d flows still queued", self.name,
                      self.timeout, rows)

    def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._asked > self._done or self._closed,
                                    max(0.0, last_flush + self.flush_interval - time.monotonic()))
                frame = self._queue.popleft() if self._queue else None
            if frame is not None:
                self._call(self.inner.write, frame)
            with self._cond:
                if frame is not None:
                    self._rows -= frame.height
                    self._written += 1
                    self._gauge.set(self._rows)
                asked = self._asked if self._written >= self._mark else self._done  # flushes wait for their rows
                closing = self._closed and not self._queue
            if closing:
                self._call(self.inner.close)
                with self._cond:
                    self._done = self._asked
                    self._cond.notify_all()
                return
            if asked > self._done or time.monotonic() - last_flush >= self.flush_interval:
                error: FlowlakeError | None = None
                try:
                    rows = self.inner.flush()
                except FlowlakeError as exc:  # the sink kept or counted its rows; a waiting flush() re-raises
                    rows, error = 0, exc
                    if asked <= self._done:  # nobody waits for this (batch-wait) flush: log it here
                        log.error("%s", exc)
                except Exception:  # a bug in a sink must not kill its worker: later batches would pile up
                    log.exception("%s sink: flush failed", self.name)
                    rows = 0
                last_flush = time.monotonic()
                with self._cond:
                    if asked > self._done:
                        self._done, self._last_rows, self._last_error = asked, rows, error
                    self._cond.notify_all()

    def _call(self, fn: Callable[..., object], *args: object) -> object:
        try:
            return fn(*args)
        except FlowlakeError as exc:  # the sink counted what it dropped; the worker goes on
            log.error("%s", exc)
        except Exception:  # a bug in a sink must not kill its worker: later batches would pile up
            log.exception("%s sink failed", self.name)
        return None
