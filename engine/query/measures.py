"""What a metric or topology query measures: the `type` (a flow column) and the `function` over it.

Shared by `engine.query.timeseries` (`run_metrics`) and `engine.query.topology` (`run_topology`),
which call `rows` to keep the rows a type counts, `value` for the per-row value, and `aggregate` for
the per-group statistic. Semantics follow the NetObserv console backend (`reference/netobserv.md`
§5.2-5.3):

- Bytes, Packets, PktDropBytes, PktDropPackets: counters summed per group; `rate` is the sum divided
  by the seconds it covers. Drop types only count flows that dropped something (a zero or missing
  counter is absent, as NetObserv's decoder omits zero counters).
- DnsLatencyMs, TimeFlowRttNs: per-flow gauges (avg, min, max, p90, p99, count); only flows carrying
  the value count. RTT is returned in milliseconds (nanoseconds / 1e6), as the console's RTT queries do.
- Flows: records; DnsFlows: records with a DNS transaction (DnsId present). They take count, sum or rate.
- Duplicate reporters (a flow between two nodes is reported by both): for Bytes and Packets only, rows
  are kept when FlowDirection is 0 (ingress) or 2 (inner), or when it is 1 (egress) and the destination
  is not a Kubernetes workload (DstK8S_Type empty or Service: cluster-external egress). That is the
  reference's two merged sub-queries. Rows without FlowDirection (lakes written without the direction
  stage) are all kept: nothing says which reporter they came from.
"""

from __future__ import annotations

from typing import Literal, get_args

import polars as pl

MetricType = Literal["Bytes", "Packets", "PktDropBytes", "PktDropPackets", "DnsLatencyMs", "TimeFlowRttNs",
                     "Flows", "DnsFlows"]
MetricFunction = Literal["rate", "count", "sum", "avg", "min", "max", "p90", "p99"]
METRIC_TYPES: tuple[str, ...] = get_args(MetricType)
FUNCTIONS: tuple[str, ...] = get_args(MetricFunction)

GAUGES = frozenset({"DnsLatencyMs", "TimeFlowRttNs"})
RECORD_COUNTS = frozenset({"Flows", "DnsFlows"})
DEDUP_TYPES = frozenset({"Bytes", "Packets"})


def allowed_functions(kind: str) -> tuple[str, ...]:
    """Functions that make sense for a type (a rate of latencies, or a p99 of a record count, do not)."""
    if kind in GAUGES:
        return ("count", "avg", "min", "max", "p90", "p99")
    if kind in RECORD_COUNTS:
        return ("rate", "count", "sum")
    return FUNCTIONS


def check(kind: str, function: str) -> str | None:
    """None when the type/function pair is valid, else a message naming the fix."""
    if kind not in METRIC_TYPES:
        return f"type {kind!r} is not one of {', '.join(METRIC_TYPES)}"
    if function not in FUNCTIONS:
        return f"function {function!r} is not one of {', '.join(FUNCTIONS)}"
    if function not in allowed_functions(kind):
        return (f"function {function!r} does not apply to type {kind}; use one of "
                f"{', '.join(allowed_functions(kind))}")
    return None


def dedup_reporters() -> pl.Expr:
    """The reference's reporter merge for Bytes/Packets (see the module docstring)."""
    fd = pl.col("FlowDirection")
    external = pl.col("DstK8S_Type").fill_null("").is_in(["", "Service"])
    return (fd.is_in([0, 2]) | ((fd == 1) & external)).fill_null(True)


def rows(kind: str) -> pl.Expr:
    """Rows this type counts (dedup and presence of the measured value)."""
    if kind in DEDUP_TYPES:
        return dedup_reporters()
    if kind in ("PktDropBytes", "PktDropPackets"):
        return (pl.col(kind) > 0).fill_null(False)
    if kind in GAUGES:
        return pl.col(kind).is_not_null()
    if kind == "DnsFlows":
        return pl.col("DnsId").is_not_null()
    return pl.lit(True)


def value(kind: str) -> pl.Expr:
    """The per-row value as Float64 (1 per record for Flows/DnsFlows, ms for RTT)."""
    if kind in RECORD_COUNTS:
        return pl.lit(1.0, dtype=pl.Float64)
    if kind == "TimeFlowRttNs":
        return pl.col(kind).cast(pl.Float64) / 1e6
    return pl.col(kind).cast(pl.Float64)


def aggregate(function: str, v: pl.Expr, seconds: float) -> pl.Expr:
    """The group statistic of `v`; `seconds` is the span a rate divides by (a step, or the range)."""
    if function == "rate":
        return v.sum() / seconds
    if function == "sum":
        return v.sum()
    if function == "count":
        return v.count().cast(pl.Float64)
    if function == "avg":
        return v.mean()
    if function == "min":
        return v.min()
    if function == "max":
        return v.max()
    return v.quantile(0.9 if function == "p90" else 0.99, interpolation="linear")
