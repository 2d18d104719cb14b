"""prometheus-client Collector that renders the flow metrics at scrape time; registered by the metrics sink.

Like prometheus_client's own `gc_collector.py`: `collect()` builds metric families from the current
aggregate frames of the `SeriesStore`, so there is no client-side child object per series. The
per-series Python work happens here, once per scrape, bounded by `metrics.max_series`. Empty label
values are left out of the exposition: Prometheus treats an empty label as an absent one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

import polars as pl
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from flowlake.engine.metrics.aggregate import COUNT, SUM, VALUE, CompiledMetric, bucket_column
from flowlake.engine.metrics.store import SeriesStore


def _family(m: CompiledMetric) -> Metric:
    # prometheus_client appends _total to a counter family's name in HELP/TYPE lines
    name = m.name.removesuffix("_total") if m.kind == "counter" else m.name
    return Metric(name, m.spec.help, m.kind)


def _label_sets(m: CompiledMetric, frame: pl.DataFrame) -> list[dict[str, str]]:
    names = [x for x in m.labels if (frame.get_column(x) != "").any()]  # skip columns empty in every series
    if not names:
        return [{} for _ in range(frame.height)]
    return [{k: v for k, v in zip(names, row, strict=True) if v} for row in frame.select(names).rows()]


def render(m: CompiledMetric, frame: pl.DataFrame) -> Metric:
    """One metric family holding every series of `frame` (a `SeriesStore` frame of `m`)."""
    family = _family(m)
    labels = _label_sets(m, frame)
    if m.kind != "histogram":
        family.samples = [Sample(m.name, lbl, v) for lbl, v in zip(labels, frame.get_column(VALUE).to_list(),
                                                                    strict=True)]
        return family
    bounds = [*(floatToGoString(b) for b in m.buckets), "+Inf"]  # type: ignore[no-untyped-call]
    columns = [frame.get_column(c).to_list() for c in (*(bucket_column(i) for i in range(len(m.buckets))), COUNT)]
    bucket, samples = f"{m.name}_bucket", []
    for row, (lbl, count, total) in enumerate(zip(labels, columns[-1], frame.get_column(SUM).to_list(),
                                                  strict=True)):
        samples += [Sample(bucket, {**lbl, "le": le}, col[row]) for le, col in zip(bounds, columns, strict=True)]
        samples += [Sample(f"{m.name}_count", lbl, count), Sample(f"{m.name}_sum", lbl, total)]
    family.samples = samples
    return family


class FlowMetricsCollector(Collector):
    """Serves the store's series; `describe` names the families so a clash fails at registration."""

    _elsewhere = threading.local()  # .ids: collectors whose families this thread renders itself

    def __init__(self, metrics: Sequence[CompiledMetric], store: SeriesStore) -> None:
        self.metrics = list(metrics)
        self.store = store

    @classmethod
    @contextlib.contextmanager
    def rendered_elsewhere(cls, collectors: Sequence[FlowMetricsCollector]) -> Iterator[None]:
        """While this is open, `collect` of these collectors yields nothing in this thread: the caller
        (`exposition.generate`) writes their families itself, column-wise."""
        cls._elsewhere.ids = {id(c) for c in collectors}
        try:
            yield
        finally:
            cls._elsewhere.ids = set()

    def describe(self) -> Iterator[Metric]:
        for m in self.metrics:
            yield _family(m)

    def collect(self) -> Iterator[Metric]:
        if id(self) in getattr(self._elsewhere, "ids", ()):
            return
        frames = self.store.snapshot()
        for m in self.metrics:
            frame = frames[m.name]
            if frame.height:
                yield render(m, frame)
