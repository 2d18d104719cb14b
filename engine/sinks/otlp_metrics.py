"""The flow metric set as OTLP metrics: the SeriesStore's frames as the SDK's MetricsData; used by `sinks.otlp`.

The same definitions as the Prometheus metrics sink (section `metrics`: predefined names, custom
FlowMetric-shaped definitions, prefix) aggregated by the same code (`engine.metrics.aggregate` and
`store`), pushed as the reference's otlpmetrics encoder does (prefix netobserv_, every pushTimeInterval).
Counters become cumulative monotonic Sums, gauges Gauges, histograms explicit-bucket Histograms (OTLP
buckets count each interval, Prometheus' are cumulative: differences of the `le` columns). Label names
take the OTel names of `otlp_fields`. One data point object per series, built at push time like a scrape.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from flowlake.engine.metrics.aggregate import COUNT, SUM, VALUE, CompiledMetric, bucket_column
from flowlake.engine.sinks import otlp_fields

SCOPE = InstrumentationScope("flowlake.flowmetrics")


def _labels(m: CompiledMetric, frame: pl.DataFrame, names: otlp_fields.Mapping) -> list[dict[str, Any]]:
    """Attributes of every series; empty label values are left out (absent, as in the Prometheus exposition)."""
    if not m.labels:
        return [{} for _ in range(frame.height)]
    renamed = frame.select([pl.col(x).alias(names.name(x)) for x in m.labels])
    return [{k: v for k, v in row.items() if v} for row in renamed.to_dicts()]


def _metric(m: CompiledMetric, frame: pl.DataFrame, names: otlp_fields.Mapping, start_ns: int,
            now_ns: int) -> Metric:
    attrs = _labels(m, frame, names)
    if m.kind != "histogram":
        points = [NumberDataPoint(a, start_ns, now_ns, v) for a, v in zip(attrs, frame.get_column(VALUE).to_list(),
                                                                         strict=True)]
        data: Sum | Gauge = (Sum(points, AggregationTemporality.CUMULATIVE, is_monotonic=True)
                             if m.kind == "counter" else Gauge(points))
        return Metric(m.name, m.spec.help, None, data)
    cumulative = frame.select([*(bucket_column(i) for i in range(len(m.buckets))), COUNT]).to_numpy()
    per_bucket = np.diff(cumulative, axis=1, prepend=0).round().astype(np.int64)  # the le buckets, then +Inf
    hist = [HistogramDataPoint(a, start_ns, now_ns, int(count), total, counts.tolist(), list(m.buckets),
                               None, None)  # type: ignore[arg-type]  # min, max: unknown, optional in OTLP
            for a, count, total, counts in zip(attrs, frame.get_column(COUNT).to_list(),
                                               frame.get_column(SUM).to_list(), per_bucket, strict=True)]
    return Metric(m.name, m.spec.help, None, Histogram(hist, AggregationTemporality.CUMULATIVE))


def metrics_data(metrics: list[CompiledMetric], frames: dict[str, pl.DataFrame], names: otlp_fields.Mapping,
                 resource: Resource, start_ns: int, now_ns: int) -> MetricsData | None:
    """Every metric with at least one series, or None when there is nothing to push."""
    out = [_metric(m, frames[m.name], names, start_ns, now_ns) for m in metrics if frames[m.name].height]
    if not out:
        return None
    return MetricsData([ResourceMetrics(resource, [ScopeMetrics(SCOPE, out, "")], "")])
