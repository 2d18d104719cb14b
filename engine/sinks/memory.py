"""In-memory sink: keeps every frame it is given. Used by tests and by `flowlake processor --sink memory`."""

from __future__ import annotations

import threading

import polars as pl

from flowlake.engine import selfmetrics
from flowlake.engine.sinks.base import Capabilities


class MemorySink:
    """Collects frames in a list; `frame()` returns everything flushed so far as one DataFrame."""

    name = "memory"
    output = "Loki"  # stands in for the flow store in tests and `--sink memory`
    capabilities = Capabilities(durable=False, ordered=True, atomic_publish=True, in_process=True)

    def __init__(self) -> None:
        self._pending: list[pl.DataFrame] = []
        self._flushed: list[pl.DataFrame] = []
        self._lock = threading.Lock()

    def write(self, frame: pl.DataFrame) -> None:
        with self._lock:
            self._pending.append(frame)

    def flush(self) -> int:
        with self._lock:
            rows = sum(f.height for f in self._pending)
            self._flushed += self._pending
            self._pending = []
        selfmetrics.SINK_ROWS.labels(sink=self.name).inc(rows)
        return rows

    def close(self) -> None:
        self.flush()

    def frame(self) -> pl.DataFrame:
        with self._lock:
            return pl.concat(self._flushed, how="diagonal_relaxed") if self._flushed else pl.DataFrame()
