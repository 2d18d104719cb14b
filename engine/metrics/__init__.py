"""Flow metrics: FlowMetric-shaped definitions, Polars aggregation, scrape-time rendering; used by `sinks.metrics`.

    specs = predefined.select(["namespace_flows_total"], custom_specs, "netobserv_")
    metrics = [compile_metric(s, "netobserv_") for s in specs]
    store = SeriesStore(metrics, max_series=100_000, expiry=120)
    store.add({m.name: plan(frame, m).collect() for m in metrics})
    registry.register(FlowMetricsCollector(metrics, store))

Names load lazily so that `flowlake.engine.config` (which validates definitions) does not pay for
Polars or prometheus_client.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from flowlake.engine.metrics.aggregate import CompiledMetric, compile_metric, plan
    from flowlake.engine.metrics.collector import FlowMetricsCollector
    from flowlake.engine.metrics.definitions import FlowMetricSpec, MetricFilter
    from flowlake.engine.metrics.predefined import DEFAULT_INCLUDE, PREDEFINED, parse, select
    from flowlake.engine.metrics.store import SeriesStore

_WHERE = {"CompiledMetric": "aggregate", "compile_metric": "aggregate", "plan": "aggregate",
          "FlowMetricsCollector": "collector", "FlowMetricSpec": "definitions", "MetricFilter": "definitions",
          "DEFAULT_INCLUDE": "predefined", "PREDEFINED": "predefined", "parse": "predefined",
          "select": "predefined", "SeriesStore": "store"}

__all__ = ["CompiledMetric", "DEFAULT_INCLUDE", "FlowMetricSpec", "FlowMetricsCollector", "MetricFilter", "PREDEFINED",
           "SeriesStore", "compile_metric", "parse", "plan", "select"]


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(_importlib.import_module(f"flowlake.engine.metrics.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
