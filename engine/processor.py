"""The flow processor: ingest -> validate -> stages -> sinks, fed by a transport server.

`flowlake processor` and `flowlake up` build one from a `ProcessorConfig` and call `serve`. Every
step works on whole batches; `ingest` is safe to call from many transport threads at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import polars as pl
import pyarrow as pa

from flowlake.engine import schema, selfmetrics
from flowlake.engine.config import ProcessorConfig
from flowlake.engine.errors import ConfigError, FlowlakeError
from flowlake.engine.metadata.base import MetadataSource
from flowlake.engine.metadata.static import StaticMetadata
from flowlake.engine.sinks.base import Sink
from flowlake.engine.sinks.lake import LakeSink
from flowlake.engine.sinks.memory import MemorySink
from flowlake.engine.sinks.metrics import MetricsSink
from flowlake.engine.stages.base import Stage
from flowlake.engine.stages.conntrack import ConntrackStage
from flowlake.engine.stages.enrich import EnrichStage

log = logging.getLogger(__name__)

STAGES: dict[str, Callable[[ProcessorConfig, MetadataSource | None], Stage]] = {
    "conntrack": lambda cfg, md: ConntrackStage(cfg.conntrack),
    "enrich": lambda cfg, md: EnrichStage(md, cfg.cluster_name),
}
SINKS: dict[str, Callable[[ProcessorConfig], Sink]] = {
    "lake": lambda cfg: LakeSink(cfg.lake.url, flush_rows=cfg.lake.flush_rows,
                                 compression=cfg.lake.compression,
                                 compression_level=cfg.lake.compression_level,
                                 row_group_rows=cfg.lake.row_group_rows),
    "memory": lambda cfg: MemorySink(),
    "metrics": lambda cfg: MetricsSink(cfg.metrics),
}


def _pick(registry: dict[str, object], kind: str, name: str) -> None:
    if name not in registry:
        raise ConfigError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(sorted(registry))}")


class Processor:
    """A pipeline built from config; `ingest` is its one entry point for received batches."""

    def __init__(self, config: ProcessorConfig, metadata: MetadataSource | None = None) -> None:
        self.config = config
        if metadata is None and config.metadata:
            metadata = StaticMetadata(config.metadata)
        for name in config.stages:
            _pick(STAGES, "stage", name)  # type: ignore[arg-type]
        for name in config.sinks:
            _pick(SINKS, "sink", name)  # type: ignore[arg-type]
        self.stages: list[Stage] = [STAGES[n](config, metadata) for n in config.stages]
        self.sinks: list[Sink] = [SINKS[n](config) for n in config.sinks]
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    def ingest(self, batch: pa.RecordBatch, transport: str) -> None:
        """Validate one batch and run it through stages into sinks; SchemaError rejects it whole."""
        valid = schema.validate(batch)
        frame = pl.from_arrow(valid)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.with_columns(pl.col("TimeReceived").fill_null(pl.lit(int(time.time()), pl.Int64)))
        selfmetrics.INGEST_BATCHES.labels(transport=transport).inc()
        selfmetrics.INGEST_FLOWS.labels(transport=transport).inc(frame.height)
        self._run(frame, self.stages)

    def _run(self, frame: pl.DataFrame, stages: list[Stage]) -> None:
        for stage in stages:
            started = time.perf_counter()
            frame = stage.process(frame)
            selfmetrics.STAGE_SECONDS.labels(stage=stage.name).observe(time.perf_counter() - started)
        for sink in self.sinks:
            try:
                sink.write(frame)
            except FlowlakeError as exc:  # the sink kept the rows for its next flush; the sender is done
                log.error("%s", exc)

    def flush(self) -> int:
        """Drain stages that hold rows back, then publish every sink; returns rows published."""
        for i, stage in enumerate(self.stages):
            held = stage.flush()
            if held is not None and held.height:
                self._run(held, self.stages[i + 1:])
        rows = 0
        for sink in self.sinks:
            try:
                rows += sink.flush()
            except FlowlakeError as exc:  # keep serving; the sink kept its rows and counted the failure
                log.error("%s", exc)
        return rows

    def start_flusher(self) -> None:
        """Publish sink buffers every `flush_seconds` in a background thread."""
        def loop() -> None:
            while not self._stop.wait(self.config.flush_seconds):
                try:
                    self.flush()
                except Exception:  # the flusher must outlive any one failure, or publishing stops
                    log.exception("flush failed; retrying in %.0fs", self.config.flush_seconds)
        self._flusher = threading.Thread(target=loop, name="flowlake-flusher", daemon=True)
        self._flusher.start()

    def close(self) -> None:
        """Stop the flusher, publish everything buffered, close the sinks."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        self.flush()
        for sink in self.sinks:
            sink.close()
