"""Metrics sink: write rate for 1M enriched flows with the default metric set, and scrape render time.

Run with timing: `make bench` (or `pytest benchmarks/bench_metrics.py --benchmark-enable -s`); the numbers
go to docs/performance.md. In CI it runs once with timing disabled and still checks the output.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from flowlake.engine.config import MetricsConfig
from flowlake.engine.metadata import static
from flowlake.engine.metadata.static import StaticMetadata
from flowlake.engine.metrics import exposition, predefined
from flowlake.engine.sinks.metrics import MetricsSink
from flowlake.engine.stages.enrich import EnrichStage
from flowlake.engine.synth import SynthFlows

pytestmark = pytest.mark.benchmark(group="metrics")
RENDER_SERIES = 100_000


@pytest.fixture(scope="module")
def frame_1m(flows_1m: SynthFlows, tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The 1M flows enriched as the processor would (metadata file -> enrich stage)."""
    path = tmp_path_factory.mktemp("metrics") / "metadata.json"
    static.dump(str(path), flows_1m.cluster.metadata_table(), flows_1m.cluster.name)
    frame = pl.from_arrow(flows_1m.batch)
    assert isinstance(frame, pl.DataFrame)
    return EnrichStage(StaticMetadata(path)).process(frame)


def sink(**config: Any) -> Iterator[tuple[MetricsSink, CollectorRegistry]]:
    registry = CollectorRegistry()
    made = MetricsSink(MetricsConfig.model_validate(config), registry=registry)
    yield made, registry
    made.close()


def test_write_1m_default_set(benchmark: Any, frame_1m: pl.DataFrame) -> None:
    for metrics, registry in sink():
        benchmark(metrics.write, frame_1m)  # steady state: merges into the series of earlier rounds
        series = {name: f.height for name, f in metrics.store.snapshot().items()}
        rate = frame_1m.height / benchmark.stats["min"] if benchmark.stats else 0.0
        benchmark.extra_info.update(series=sum(series.values()), flows_per_s=round(rate))
        print(f"\nmetrics write: {frame_1m.height} flows x {len(series)} metrics, {sum(series.values())} series")
        assert series["netobserv_namespace_flows_total"] > 100
        assert len(generate_latest(registry)) > 100_000


def test_render_100k_series(benchmark: Any, frame_1m: pl.DataFrame) -> None:
    """A workload-style metric (17 labels) plus a unique address: 100k label sets on one scrape."""
    labels = [*predefined.GROUP_LABELS["workload"], "SrcAddr"]
    rows = frame_1m.head(RENDER_SERIES).with_columns(
        pl.format("10.{}.{}.{}", pl.int_range(pl.len()) // 65536, pl.int_range(pl.len()) // 256 % 256,
                  pl.int_range(pl.len()) % 256).alias("SrcAddr"))
    definition = {"metricName": "render_bytes_total", "type": "Counter", "valueField": "Bytes", "labels": labels}
    for metrics, registry in sink(include=[], definitions=[definition], max_series=RENDER_SERIES):
        metrics.write(rows)
        text = benchmark(exposition.generate, registry)  # what the processor's /metrics serves
        assert text.count(b"\nnetobserv_render_bytes_total{") == generate_latest(registry).count(
            b"\nnetobserv_render_bytes_total{")  # prometheus_client's own per-sample text says the same
        lines = text.count(b"\nnetobserv_render_bytes_total{")
        print(f"\nmetrics render: {lines} series, {len(text) / 1e6:.1f} MB of exposition")
        assert lines == RENDER_SERIES


def test_render_10k_histogram_series(benchmark: Any, frame_1m: pl.DataFrame) -> None:
    """Histograms cost 13 samples per series (10 buckets, +Inf, _sum, _count)."""
    rows = frame_1m.filter(pl.col("TimeFlowRttNs").is_not_null()).head(10_000).with_columns(
        pl.format("10.{}.{}", pl.int_range(pl.len()) // 256, pl.int_range(pl.len()) % 256).alias("SrcAddr"))
    spec = predefined.PREDEFINED["workload_rtt_seconds"].model_dump()
    definition = {**spec, "metricName": "render_rtt_seconds", "labels": [*spec["labels"], "SrcAddr"]}
    for metrics, registry in sink(include=[], definitions=[definition]):
        metrics.write(rows)
        text = benchmark(exposition.generate, registry)
        assert text.count(b"\nnetobserv_render_rtt_seconds_count{") == rows.height
