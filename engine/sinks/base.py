"""The Sink seam: where processed flow frames leave the processor. Called by `engine.processor`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import polars as pl


@dataclass(frozen=True)
class Capabilities:
    """What a sink promises; the conformance suite checks each promise it makes."""

    durable: bool = False  # data survives a process restart once flush() returned
    ordered: bool = False  # rows come back in write order
    atomic_publish: bool = False  # readers never see partially written data
    # Never drops: when its destination fails and its buffer is full, `write` blocks the ingest thread
    # (flowlake_sink_blocked_writers) until a publish succeeds. The processor calls it directly.
    backpressure: bool = False
    # `write` never waits on I/O (in-memory aggregation or buffering): the processor calls it directly.
    # Every other sink (`backpressure` and `in_process` both false, the default) runs behind a bounded
    # queue and its own worker thread (`sinks.queued`), so a slow or dead destination drops, counted,
    # instead of blocking ingest or the other sinks.
    in_process: bool = False


@runtime_checkable
class Sink(Protocol):
    """Accepts frames of the flow schema; `flush` publishes buffered rows; `close` flushes and stops."""

    name: str
    capabilities: Capabilities
    output: str  # per-output filter target (`filters[].output_target`): Loki (the flow store), Metrics, Exporters

    def write(self, frame: pl.DataFrame) -> None: ...

    def flush(self) -> int: ...

    def close(self) -> None: ...
