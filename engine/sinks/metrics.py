"""Prometheus flow-metrics sink (`sinks: [metrics]`): aggregates every batch, served on the processor's /metrics.

Built by the processor from `config.metrics`. `write` runs one Polars group_by per metric (all metrics
of a batch in one `collect_all`) and merges the result into cumulative series; the processor's /metrics
writes them column-wise when Prometheus scrapes (`metrics.exposition`), and a Collector registered on
`selfmetrics.REGISTRY` gives the same samples to any other reader. See docs/flow-metrics.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import polars as pl
from prometheus_client import CollectorRegistry

from flowlake.engine import selfmetrics
from flowlake.engine.config import MetricsConfig
from flowlake.engine.errors import ConfigError
from flowlake.engine.metrics import aggregate, collector, exposition, predefined, store
from flowlake.engine.sinks.base import Capabilities


class MetricsSink:
    """Flow metrics in the shape of NetObserv's FlowMetric, rendered at scrape time."""

    name = "metrics"
    output = "Metrics"  # the per-output filter target, as the reference's `outputTarget: Metrics`
    capabilities = Capabilities(durable=False, ordered=False, atomic_publish=True, in_process=True)

    def __init__(self, config: MetricsConfig, *, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        specs = predefined.select(config.include + config.additional_include, config.definitions, config.prefix)
        self.metrics = [aggregate.compile_metric(s, config.prefix, scale_by_sampling=config.scale_by_sampling)
                        for s in specs]
        self.store = store.SeriesStore(self.metrics, max_series=config.max_series, expiry=config.expiry,
                                       clock=clock)
        self.collector = collector.FlowMetricsCollector(self.metrics, self.store)
        self.registry = registry if registry is not None else selfmetrics.REGISTRY
        try:
            exposition.attach(self.registry, self.collector)  # /metrics renders it column-wise
        except ValueError as exc:  # prometheus_client's DuplicateTimeseries
            raise ConfigError(f"metrics sink: {exc}; another metrics sink in this process, or a metric named "
                              "like a self-metric? close the other sink or change metrics.prefix") from exc
        self._registered = True

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0 or not self.metrics:
            return
        self.store.add(aggregate.evaluate(frame, self.metrics))
        selfmetrics.SINK_ROWS.labels(sink=self.name).inc(frame.height)

    def flush(self) -> int:
        """Nothing is buffered (series are live as soon as `write` returns); drops expired series."""
        self.store.expire()
        return 0

    def close(self) -> None:
        """Stop serving the series (unregister the collector); safe to call twice."""
        if self._registered:
            exposition.detach(self.registry, self.collector)
            self._registered = False
