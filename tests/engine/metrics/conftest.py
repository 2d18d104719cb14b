"""Helpers for the metrics tests: a sink on a private registry with a hand-driven clock, and a scraper."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from flowlake.engine.config import MetricsConfig
from flowlake.engine.metrics import exposition
from flowlake.engine.sinks.metrics import MetricsSink
from tests.conftest import make_batch

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Clock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def frame(n: int, **columns: Any) -> pl.DataFrame:
    """`n` valid flows (see tests.conftest.make_batch) with some columns replaced."""
    out = pl.from_arrow(make_batch(n, **columns))
    assert isinstance(out, pl.DataFrame)
    return out


def parse(text: str) -> tuple[Series, set[tuple[str, str, str]]]:
    """(samples: (sample name, labels) -> value, families: (name, type, help)) of a text exposition."""
    families = list(text_string_to_metric_families(text))
    return ({(s.name, frozenset(s.labels.items())): s.value for fam in families for s in fam.samples},
            {(fam.name, fam.type, fam.documentation) for fam in families})


def scrape(registry: CollectorRegistry) -> Series:
    """Every sample of the text exposition: (sample name, labels) -> value.

    Scraped both ways, and both must say the same: prometheus_client's per-sample text (the Collector)
    and the column-wise text the processor's /metrics serves (`exposition.generate`). A first scrape
    merges waiting updates, which self-metrics (flowlake_metrics_series) report from then on."""
    generate_latest(registry)
    slow = parse(generate_latest(registry).decode())
    fast = parse(exposition.generate(registry).decode())
    assert fast == slow
    return slow[0]


def by_label(series: Series, name: str, label: str) -> dict[str, float]:
    """`sum by (label)` of sample `name` ("" when the label is absent)."""
    out: dict[str, float] = {}
    for (sample, labels), value in series.items():
        if sample == name:
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
    return out


class Harness:
    def __init__(self, **config: Any) -> None:
        self.clock = Clock()
        self.registry = CollectorRegistry()
        config.setdefault("include", [])
        self.config = MetricsConfig.model_validate(config)
        self.sink = MetricsSink(self.config, registry=self.registry, clock=self.clock)

    def write(self, *frames: pl.DataFrame) -> Series:
        for f in frames:
            self.sink.write(f)
        return scrape(self.registry)


@pytest.fixture
def harness() -> Iterator[type[Harness]]:
    made: list[Harness] = []

    class Tracked(Harness):
        def __init__(self, **config: Any) -> None:
            super().__init__(**config)
            made.append(self)

    yield Tracked
    for h in made:
        h.sink.close()
