"""`GET /api/flows/metrics`: Prometheus-style matrices (overview charts), computed from the lake.

Mounted by `api.app`; the query is `engine.query.timeseries.run_metrics` (one lazy Polars plan), this
module only maps parameters and shapes the JSON: `{"metrics": [{"metric": {labels}, "values": [[t, v],
...], "total": x}], "stats", "unixTimestamp"}`, series ordered by total, descending.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Query, Request

from flowlake.api import errors, params
from flowlake.engine.query import measures
from flowlake.engine.query.flows import QueryError
from flowlake.engine.query.timeseries import MAX_TOP, MetricQuery, run_metrics

router = APIRouter(tags=["metrics"])
ROUTE = "/api/flows/metrics"

MetricTypeQ = Annotated[measures.MetricType, Query(
    alias="type", description="what to measure: Bytes (default), Packets, PktDropBytes, PktDropPackets, DnsLatencyMs, "
    "TimeFlowRttNs (returned in ms), Flows (records), DnsFlows (records with DNS)")]
FunctionQ = Annotated[measures.MetricFunction | None, Query(
    description="rate (per second), count, sum, avg, min, max, p90, p99; latency types take count/avg/min/"
    "max/p90/p99, Flows/DnsFlows take rate/count/sum. Default: rate (topology: sum), avg for latency types")]


def default_function(function: str | None, kind: str, counters: str) -> str:
    """The function to use when none is given: `counters` (rate or sum), or avg for a latency type."""
    if function is not None:
        return function
    return "avg" if kind in measures.GAUGES else counters
TopQ = Annotated[int, Query(ge=1, le=MAX_TOP, description="series (metrics) or edges (topology) kept, "
                            "largest first")]


def series_json(frame: pl.DataFrame, labels: list[str]) -> list[dict[str, Any]]:
    """One object per series from the long frame (rows are already in series order, then time).

    Loops run over the aggregated answer (at most top x points), never over flows.
    """
    if frame.is_empty():
        return []
    grouped = frame.group_by([*labels, "total"], maintain_order=True).agg("t", "value")
    out = []
    for row in grouped.iter_rows(named=True):
        out.append({"metric": {n: row[n] for n in labels},
                    "values": [[t, v] for t, v in zip(row["t"], row["value"], strict=True)],
                    "total": row["total"]})
    return out


@router.get(ROUTE, summary="Metric time series (Prometheus matrix) over the lake",
            responses={400: {"model": errors.ErrorBody}, 401: {"model": errors.ErrorBody}})
def get_metrics(
    request: Request,
    who: params.Caller,
    rows: params.Selected,
    aggregate_by: Annotated[str, Query(
        alias="aggregateBy", max_length=64,
        description="app (one series), cluster, zone, host, namespace (default), owner, resource, or any "
        "text/number flow field")] = "namespace",
    groups: Annotated[str, Query(max_length=64, description="extra labels: none, clusters, zones, hosts, "
                                 "namespaces, owners, or several joined by + (hosts+namespaces)")] = "none",
    type_: MetricTypeQ = "Bytes",
    function: FunctionQ = None,
    step: Annotated[int | None, Query(ge=1, le=86_400 * 366, description="seconds per point (default: "
                                      "automatic, about 240 points, at least 30 s)")] = None,
    top: TopQ = 50,
) -> dict[str, Any]:
    fn = default_function(function, type_, "rate")
    try:
        q = MetricQuery(start_ms=rows.start_ms, end_ms=rows.end_ms, filters=rows.filters,
                        aggregate_by=aggregate_by, type=type_, function=fn, step_s=step, top=top,
                        packet_loss=rows.packet_loss, record_type=rows.record_type, groups=groups)
        frame, stats = run_metrics(request.app.state.lake_url, q, who.scope)
    except QueryError as exc:
        raise params.bad_query(exc) from exc
    labels = list(q.labels())
    return {"metrics": series_json(frame, labels), "aggregateBy": aggregate_by, "type": type_,
            "function": fn, "step": q.step(), "stats": params.stats_json(stats, who, ROUTE),
            "unixTimestamp": int(time.time())}
