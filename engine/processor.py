"""The flow processor: ingest -> validate -> stages -> sinks, fed by a transport server.

`flowlake processor` and `flowlake up` build one from a `ProcessorConfig` and call `serve`. Every
step works on whole batches; `ingest` is safe to call from many transport threads at once.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from flowlake.engine import schema, selfmetrics
from flowlake.engine.config import ProcessorConfig
from flowlake.engine.errors import ConfigError, FlowlakeError
from flowlake.engine.metadata.base import MetadataSource
from flowlake.engine.metadata.static import StaticMetadata
from flowlake.engine.query import flpexpr
from flowlake.engine.sinks.base import Sink
from flowlake.engine.sinks.ipfix import IpfixSink
from flowlake.engine.sinks.kafka import KafkaExportSink
from flowlake.engine.sinks.lake import LakeSink
from flowlake.engine.sinks.loki import LokiSink
from flowlake.engine.sinks.memory import MemorySink
from flowlake.engine.sinks.metrics import MetricsSink
from flowlake.engine.sinks.queued import QueuedSink
from flowlake.engine.stages import filter as flt
from flowlake.engine.stages.base import Stage
from flowlake.engine.stages.conntrack import ConntrackStage
from flowlake.engine.stages.decode import DecodeStage
from flowlake.engine.stages.dedup import DedupStage
from flowlake.engine.stages.direction import DirectionStage
from flowlake.engine.stages.enrich import EnrichStage
from flowlake.engine.stages.layer import LayerStage
from flowlake.engine.stages.subnets import SubnetsStage

if TYPE_CHECKING:
    from flowlake.engine.metadata.kube import KubeMetadata

log = logging.getLogger(__name__)

STAGES: dict[str, Callable[[ProcessorConfig, MetadataSource | None], Stage]] = {
    "conntrack": lambda cfg, md: ConntrackStage(cfg.conntrack),
    "decode": lambda cfg, md: DecodeStage(),
    "dedup": lambda cfg, md: DedupStage(cfg.dedup.mode, cfg.dedup.sampling, cfg.dedup.rule,
                                        cfg.dedup.reporter_window_seconds),
    "direction": lambda cfg, md: DirectionStage(cfg.direction.keep_interface_direction),
    "enrich": lambda cfg, md: EnrichStage(md, cfg.cluster_name),
    "filter": lambda cfg, md: flt.FilterStage(cfg.filter.query, cfg.filter.sampling),
    "layer": lambda cfg, md: LayerStage(cfg.layer.infra_prefixes, cfg.layer.infra_refs),
    "subnets": lambda cfg, md: SubnetsStage([(lb.name, lb.cidrs, lb.private) for lb in cfg.subnets.labels]),
}
SINKS: dict[str, Callable[[ProcessorConfig], Sink]] = {
    "lake": lambda cfg: LakeSink(cfg.lake.url, flush_rows=cfg.lake.flush_rows,
                                 compression=cfg.lake.compression,
                                 compression_level=cfg.lake.compression_level,
                                 row_group_rows=cfg.lake.row_group_rows,
                                 max_buffer_rows=cfg.lake.max_buffer_rows,
                                 storage_options=cfg.lake.storage_options,
                                 retention_days=cfg.lake.retention_days,
                                 maintenance_seconds=cfg.lake.maintenance_seconds,
                                 background=cfg.lake.background_publish),
    "loki": lambda cfg: LokiSink(cfg.loki),
    "ipfix": lambda cfg: IpfixSink(cfg.ipfix),
    "kafka": lambda cfg: KafkaExportSink(cfg.kafka_export),
    "memory": lambda cfg: MemorySink(),
    "metrics": lambda cfg: MetricsSink(cfg.metrics),
    "otlp": lambda cfg: _otlp_sink(cfg),
}


def _otlp_sink(config: ProcessorConfig) -> Sink:
    try:  # lazy: the OpenTelemetry SDK is an optional extra
        from flowlake.engine.sinks import otlp
    except ImportError as exc:
        raise ConfigError(f"otlp sink: {exc}; pip install 'flowlake[otel]'") from exc
    return otlp.OtlpSink(config.otlp, config.metrics)


# Per-output filters (`filters:`): a sink's `output` names its target, as the reference operator's
# processor.filters[].outputTarget (reference/netobserv.md §3.3, §4.1). The lake (and the memory sink that
# stands in for it) are the flow store, NetObserv's Loki; "" applies to every sink, before its target's.
ALL_OUTPUTS = ""


def _output_filters(config: ProcessorConfig) -> dict[str, list[tuple[pl.Expr, int]]]:
    """Target -> its compiled (query, sampling) keep rules, in config order."""
    groups: dict[str, list[tuple[pl.Expr, int]]] = {}
    for f in config.filters:
        groups.setdefault(f.output_target, []).append((flpexpr.compile_query(f.query), f.sampling))
    return groups


def _isolate(sink: Sink, config: ProcessorConfig) -> Sink:
    """A sink that may wait on a remote destination runs behind a bounded queue (docs in `sinks.queued`)."""
    if sink.capabilities.backpressure or sink.capabilities.in_process:
        return sink
    return QueuedSink(sink, max_rows=config.sink_queue_rows, timeout=config.sink_timeout_seconds,
                      flush_interval=getattr(sink, "flush_interval", config.flush_seconds))


def _pick(registry: dict[str, object], kind: str, name: str) -> None:
    if name not in registry:
        raise ConfigError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(sorted(registry))}")


class Processor:
    """A pipeline built from config; `ingest` is its one entry point for received batches."""

    def __init__(self, config: ProcessorConfig, metadata: MetadataSource | None = None) -> None:
        self.config = config
        self._kube: KubeMetadata | None = None
        if metadata is None and config.kubernetes.enabled:
            from flowlake.engine.metadata import kube  # lazy: the kubernetes client is an optional extra

            if config.metadata:
                log.warning("kubernetes.enabled: the metadata file %s is not used", config.metadata)
            metadata = self._kube = kube.KubeMetadata(config.kubernetes, config.cluster_name)
        elif metadata is None and config.metadata:
            metadata = StaticMetadata(config.metadata)
        for name in config.stages:
            _pick(STAGES, "stage", name)  # type: ignore[arg-type]
        for name in config.sinks:
            _pick(SINKS, "sink", name)  # type: ignore[arg-type]
        self.stages: list[Stage] = [STAGES[n](config, metadata) for n in config.stages]
        self.sinks: list[Sink] = [_isolate(SINKS[n](config), config) for n in config.sinks]
        self.output_filters = _output_filters(config)
        unused = set(self.output_filters) - {ALL_OUTPUTS} - {s.output for s in self.sinks}
        for target in sorted(unused):
            log.warning("filters with output_target %s apply to no configured sink (sinks: %s)", target,
                        ", ".join(config.sinks))
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if self._kube is not None:  # watches start once the pipeline is known to be valid
            self._kube.start()

    def ingest(self, batch: pa.RecordBatch | pa.Table, transport: str) -> None:
        """Validate one batch (or a table of several: Kafka's polls) and run it through stages into sinks;
        SchemaError rejects it whole."""
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
            rows_in = frame.height
            frame = stage.process(frame)
            selfmetrics.STAGE_SECONDS.labels(stage=stage.name).observe(time.perf_counter() - started)
            selfmetrics.STAGE_ROWS_IN.labels(stage=stage.name).inc(rows_in)
            selfmetrics.STAGE_ROWS_OUT.labels(stage=stage.name).inc(frame.height)
        frame = self._filter_output(frame, ALL_OUTPUTS)
        per_target: dict[str, pl.DataFrame] = {}  # sinks sharing a target share one filtering pass
        for sink in self.sinks:
            target = sink.output
            if target not in per_target:
                per_target[target] = self._filter_output(frame, target) if target else frame
            try:
                sink.write(per_target[target])
            except FlowlakeError as exc:  # the sink kept the rows for its next flush; the sender is done
                log.error("%s", exc)

    def _filter_output(self, frame: pl.DataFrame, target: str) -> pl.DataFrame:
        rules = self.output_filters.get(target)
        if not rules:
            return frame
        kept = flt.keep_rules(frame, rules, salt=zlib.crc32(target.encode()))
        selfmetrics.OUTPUT_FILTERED.labels(output=target or "all").inc(frame.height - kept.height)
        return kept

    def flush(self, *, strict: bool = False) -> int:
        """Drain stages that hold rows back, then publish every sink; returns rows published.

        With `strict`, the first sink error is raised once every sink was tried: the Kafka ingest commits
        offsets only after a strict flush returned (everything ingested before it is published).
        """
        for i, stage in enumerate(self.stages):
            held = stage.flush()
            if held is not None and held.height:
                self._run(held, self.stages[i + 1:])
        rows = 0
        failed: FlowlakeError | None = None
        for sink in self.sinks:
            try:
                rows += sink.flush()
            except FlowlakeError as exc:  # keep serving; the sink kept its rows and counted the failure
                log.error("%s", exc)
                failed = failed or exc
        if strict and failed is not None:
            raise failed
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
        if self._kube is not None:
            self._kube.close()
