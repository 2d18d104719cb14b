"""Series lifetime: expiry on an injected clock, the max-series guard and its self-metrics."""

from __future__ import annotations

import collections

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from flowlake.engine import selfmetrics
from flowlake.engine.metrics import store
from tests.engine.metrics.conftest import Harness, by_label, frame, scrape


def sample(name: str, metric: str) -> float:
    return selfmetrics.REGISTRY.get_sample_value(name, {"sink": "metrics", "metric": metric}) or 0.0


def per_port_counter(name: str = "flows_total") -> dict[str, object]:
    return {"metricName": name, "type": "Counter", "labels": ["DstPort"]}


def ports(*values: int) -> pa.Array:
    return pa.array(values, pa.uint16())


def test_series_expire_after_expiry_without_updates(harness: type[Harness]) -> None:
    h = harness(prefix="exp_", expiry=120, definitions=[per_port_counter()])
    h.write(frame(2, DstPort=ports(80, 443)))
    h.clock.now += 100
    h.write(frame(1, DstPort=ports(443)))  # 443 refreshed at +100, 80 not
    h.clock.now += 30  # 80 is 130 s old, 443 30 s
    expired_before = sample("flowlake_metrics_expired_series_total", "exp_flows_total")
    assert by_label(h.write(), "exp_flows_total", "DstPort") == {"443": 2}
    assert sample("flowlake_metrics_expired_series_total", "exp_flows_total") == expired_before + 1
    assert sample("flowlake_metrics_series", "exp_flows_total") == 1
    h.write(frame(1, DstPort=ports(80)))  # back after expiry: a new series, counted from zero
    assert by_label(h.write(), "exp_flows_total", "DstPort") == {"443": 2, "80": 1}
    h.clock.now += 121
    h.sink.flush()  # the processor's flusher expires too
    assert h.sink.store.snapshot()["exp_flows_total"].height == 0


def test_max_series_refuses_new_series_but_updates_existing_ones(harness: type[Harness]) -> None:
    h = harness(prefix="cap_", max_series=3, definitions=[per_port_counter("a_total"), per_port_counter("b_total")])
    refused = [sample("flowlake_metrics_refused_series_total", f"cap_{m}_total") for m in "ab"]
    h.write(frame(2, DstPort=ports(1, 2)))  # a: 1, 2; b: 1 (the 4th series is refused)
    got = h.write(frame(3, DstPort=ports(1, 2, 3)))  # existing ones grow, new ones (a:3, b:2, b:3) refused
    assert by_label(got, "cap_a_total", "DstPort") == {"1": 2, "2": 2}
    assert by_label(got, "cap_b_total", "DstPort") == {"1": 2}
    assert sample("flowlake_metrics_refused_series_total", "cap_a_total") == refused[0] + 1
    assert sample("flowlake_metrics_refused_series_total", "cap_b_total") == refused[1] + 1 + 2
    h.clock.now += 1000  # everything expires: room again
    assert by_label(h.write(frame(1, DstPort=ports(9))), "cap_b_total", "DstPort") == {"9": 1}


def test_label_less_metric_is_one_series(harness: type[Harness]) -> None:
    h = harness(prefix="one_", max_series=1, definitions=[{"metricName": "all_total", "type": "Counter"},
                                                          {"metricName": "b_total", "type": "Counter"}])
    h.write(frame(2))
    got = h.write(frame(3))
    assert by_label(got, "one_all_total", "") == {"": 5}
    assert by_label(got, "one_b_total", "") == {}  # no room for its series


def test_deferred_merges_give_the_same_series_as_merging_every_batch(
        harness: type[Harness], monkeypatch: pytest.MonkeyPatch) -> None:
    """Updates wait unmerged between scrapes; sums and the series cap stay exact (first 40 ports admitted)."""
    monkeypatch.setattr(store, "MIN_PENDING_ROWS", 30)  # merges happen mid-way, and some rows still wait
    h = harness(prefix="defer_", max_series=40, definitions=[per_port_counter()])
    rng = np.random.default_rng(7)
    sent = [rng.integers(0, 100, size=int(rng.integers(1, 20))) for _ in range(200)]
    for batch in sent:
        h.sink.write(frame(len(batch), DstPort=ports(*batch.tolist())))
    order = list(dict.fromkeys(np.concatenate(sent).tolist()))  # distinct ports in arrival order
    admitted = set(order[:40])
    counts = collections.Counter(p for p in np.concatenate(sent).tolist() if p in admitted)
    got = by_label(scrape(h.registry), "defer_flows_total", "DstPort")
    assert got == {str(p): float(n) for p, n in counts.items()}
    assert sample("flowlake_metrics_series", "defer_flows_total") == 40


def test_two_stores_of_the_same_metrics_report_apart(harness: type[Harness]) -> None:
    """The metrics and otlp sinks each keep a store of the same metric names: the gauge tells them apart."""
    h = harness(prefix="two_", definitions=[per_port_counter()])
    other = store.SeriesStore(h.sink.metrics, max_series=100, expiry=1e9, sink="otlp")
    h.write(frame(3, DstPort=ports(1, 2, 3)))
    other.add({"two_flows_total": by_port_frame(7)})
    other.expire()
    assert sample("flowlake_metrics_series", "two_flows_total") == 3
    assert selfmetrics.REGISTRY.get_sample_value("flowlake_metrics_series",
                                                 {"sink": "otlp", "metric": "two_flows_total"}) == 1


def by_port_frame(port: int) -> pl.DataFrame:
    return pl.DataFrame({"DstPort": [str(port)], "__value": [1.0]})
