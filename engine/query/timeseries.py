"""Metric time series over the lake: `run_metrics` answers `GET /api/flows/metrics` and Flight `metrics`.

One lazy Polars plan: hour partitions outside the range are never opened, the tenant scope and the
filters are pushed into the scan, rows are bucketed by `step` and grouped by the labels of
`aggregate_by` (plus `groups`), and only the `top` series (by their total over the whole range) are
returned. The result is long format, one row per (series, step): the label columns (String, "" where
the flow has no value), `t` (unix seconds, start of the step bucket; buckets are aligned on multiples
of the step since the epoch), `value` (Float64) and `total` (Float64, the series' statistic over the
whole range: the sum for `sum`, sum / range seconds for `rate`, the count for `count`, the average,
minimum, maximum or percentile of every flow in range for the others). Buckets without a flow are
absent, as in a Prometheus matrix. What each `type` and `function` measure: `engine.query.measures`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import polars as pl

from flowlake.engine import schema
from flowlake.engine.query import keys, measures, tenancy
from flowlake.engine.query.flows import QueryError, QueryStats, row_predicate
from flowlake.engine.query.keys import Kind
from flowlake.engine.query.tenancy import Scope
from flowlake.engine.store import lake

MAX_TOP = 1000
MAX_POINTS = 11_000  # steps per series, Prometheus' own cap on a range query
DEFAULT_RANGE_MS = 3_600_000  # when no start is given: the hour before the end
_TARGET_POINTS = 240
NICE_STEPS_S = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _sides(suffix: str) -> tuple[str, ...]:
    return (f"Src{suffix}", f"Dst{suffix}")


# The console's aggregation scopes (reference §5.4 scopes table) and their labels.
AGGREGATIONS: dict[str, tuple[str, ...]] = {
    "app": (),
    "cluster": ("K8S_ClusterName",),
    "zone": _sides("K8S_Zone"),
    "host": _sides("K8S_HostName"),
    "namespace": _sides("K8S_Namespace"),
    "owner": (*_sides("K8S_Namespace"), *_sides("K8S_OwnerName"), *_sides("K8S_OwnerType")),
    "resource": (*_sides("K8S_Namespace"), *_sides("K8S_Name"), *_sides("K8S_Type"), "SrcAddr", "DstAddr"),
}
GROUPS: dict[str, tuple[str, ...]] = {
    "clusters": ("K8S_ClusterName",),
    "zones": _sides("K8S_Zone"),
    "hosts": _sides("K8S_HostName"),
    "namespaces": _sides("K8S_Namespace"),
    "owners": (*_sides("K8S_Namespace"), *_sides("K8S_OwnerName"), *_sides("K8S_OwnerType")),
}
_LABEL_KINDS = (Kind.TEXT, Kind.INTEGER, Kind.BOOLEAN)


def auto_step_s(range_ms: int) -> int:
    """The smallest nice step giving at most ~240 points over the range (30 s minimum, as the console)."""
    for step in NICE_STEPS_S:
        if range_ms / 1000 / step <= _TARGET_POINTS:
            return step
    return max(NICE_STEPS_S[-1], math.ceil(range_ms / 1000 / _TARGET_POINTS))


def group_labels(groups: str, parameter: str = "groups") -> tuple[str, ...]:
    """Labels of a `groups` value: none, one of GROUPS, or several joined by `+` (hosts+namespaces)."""
    if groups in ("", "none"):
        return ()
    out: list[str] = []
    for g in groups.split("+"):
        if g not in GROUPS:
            raise QueryError(f"unknown group {g!r} in {groups!r}: use none or one or more of "
                             f"{', '.join(GROUPS)} joined by '+'", parameter)
        out += GROUPS[g]
    return tuple(out)


@dataclass(frozen=True)
class MetricQuery:
    """A time-series query; the range is start_ms <= TimeFlowEndMs < end_ms.

    end_ms None means now, start_ms None the hour before the end; step_s None picks `auto_step_s`.
    """

    start_ms: int | None = None
    end_ms: int | None = None
    filters: str = ""
    aggregate_by: str = "namespace"
    type: str = "Bytes"
    function: str = "rate"
    step_s: int | None = None
    top: int = 50
    packet_loss: str = "all"
    record_type: str = "flowLog"
    groups: str = "none"

    def __post_init__(self) -> None:
        if self.start_ms is not None and self.end_ms is not None and self.end_ms <= self.start_ms:
            raise QueryError(f"end ({self.end_ms} ms) is not after start ({self.start_ms} ms); "
                             "swap them or widen the range", "end_ms")
        problem = measures.check(self.type, self.function)
        if problem:
            raise QueryError(problem, "type" if self.type not in measures.METRIC_TYPES else "function")
        if not 1 <= self.top <= MAX_TOP:
            raise QueryError(f"top must be between 1 and {MAX_TOP}, got {self.top}", "top")
        if self.step_s is not None and self.step_s < 1:
            raise QueryError(f"step must be a whole number of seconds >= 1, got {self.step_s}", "step_s")
        start, end = self.span()
        if self.step_s is not None and (end - start) / 1000 / self.step_s > MAX_POINTS:
            raise QueryError(f"step {self.step_s} s gives more than {MAX_POINTS} points over the range; "
                             f"use step >= {math.ceil((end - start) / 1000 / MAX_POINTS)}", "step_s")
        self.labels()
        self.predicate()

    def span(self) -> tuple[int, int]:
        """The concrete [start, end) in ms."""
        end = self.end_ms if self.end_ms is not None else int(time.time() * 1000)
        start = self.start_ms if self.start_ms is not None else end - DEFAULT_RANGE_MS
        return start, end

    def step(self) -> int:
        start, end = self.span()
        return self.step_s if self.step_s is not None else auto_step_s(end - start)

    def labels(self) -> tuple[str, ...]:
        """The label columns of each series: the aggregation's, then the groups' (no repeats)."""
        if self.aggregate_by in AGGREGATIONS:
            base = AGGREGATIONS[self.aggregate_by]
        elif self.aggregate_by in schema.BY_NAME:
            if keys.KINDS[self.aggregate_by] not in _LABEL_KINDS:
                raise QueryError(f"cannot aggregate by {self.aggregate_by}: a list or map field; choose a "
                                 "text or number field", "aggregate_by")
            base = (self.aggregate_by,)
        else:
            raise QueryError(f"aggregateBy {self.aggregate_by!r} is neither a scope "
                             f"({', '.join(AGGREGATIONS)}) nor a flow field (see docs/flows-format.md)",
                             "aggregate_by")
        return tuple(dict.fromkeys((*base, *group_labels(self.groups))))

    def predicate(self) -> pl.Expr:
        return row_predicate(self.filters, self.packet_loss, self.record_type) & measures.rows(self.type)


def label_expr(name: str) -> pl.Expr:
    """A label column as text, "" where the flow has none (Prometheus: an absent label is empty)."""
    return pl.col(name).cast(pl.String).fill_null("").alias(name)


def _partials(function: str, v: pl.Expr) -> list[pl.Expr]:
    """Per-bucket partial aggregates from which both the bucket value and the series total follow."""
    if function in ("sum", "rate"):
        return [v.sum().alias("_s")]
    if function == "count":
        return [v.count().alias("_n")]
    if function == "avg":
        return [v.sum().alias("_s"), v.count().alias("_n")]
    if function == "min":
        return [v.min().alias("_m")]
    return [v.max().alias("_m")]


def _from_partials(function: str, seconds: float, total: bool) -> pl.Expr:
    """The bucket value (total=False, over bucket partials) or the series total (total=True, summing them)."""
    def agg(name: str) -> pl.Expr:
        col = pl.col(name).cast(pl.Float64)
        if not total:
            return col
        return col.min() if function == "min" else col.max() if function == "max" else col.sum()

    if function == "rate":
        return agg("_s") / seconds
    if function == "sum":
        return agg("_s")
    if function == "count":
        return agg("_n")
    if function == "avg":
        return agg("_s") / agg("_n")
    return agg("_m")


def run_metrics(lake_url: str, q: MetricQuery, scope: Scope = None) -> tuple[pl.DataFrame, QueryStats]:
    """The top `q.top` series of the query over what `scope` may see, long format (module docstring).

    One group-by over the flows (by labels and step) computes partial aggregates, and the series
    totals follow from those small partials; only percentiles, which do not combine, group the flows
    a second time (by labels), sharing the scan. Labels are grouped as stored and turned into text on
    the aggregated result (percentiles: before, so a null and an empty label are one series).
    """
    t0 = time.perf_counter()
    start, end = q.span()
    step = q.step()
    labels = list(q.labels())
    scan = lake.open_scan(lake_url, start, end)
    keys_ = labels or ["_series"]  # `app`: one series without labels
    pre = (
        tenancy.restrict(scan.frame, scope)
        .filter(q.predicate())
        .select(*labels, pl.lit(0).alias("_series"),
                (pl.col("TimeFlowEndMs") // (step * 1000) * step).cast(pl.Int64).alias("t"),
                measures.value(q.type).alias("_v"))
    )
    v = pl.col("_v")
    range_s = (end - start) / 1000
    if q.function in ("p90", "p99"):
        pre = pre.with_columns(label_expr(n) for n in labels)  # null and "" are one label: merge first
        buckets, totals = pl.collect_all([
            pre.group_by([*keys_, "t"]).agg(measures.aggregate(q.function, v, step).alias("value")),
            pre.group_by(keys_).agg(measures.aggregate(q.function, v, range_s).alias("total"))])
    else:
        partial = pre.group_by([*keys_, "t"]).agg(_partials(q.function, v)).collect()
        # text labels, "" for none, on the small aggregated frame; null and "" groups merge here
        combine = {"_s": pl.col("_s").sum(), "_n": pl.col("_n").sum(),
                   "_m": pl.col("_m").min() if q.function == "min" else pl.col("_m").max()}
        partial = (partial.with_columns(label_expr(n) for n in labels)
                   .group_by([*keys_, "t"]).agg(e for c, e in combine.items() if c in partial.columns))
        buckets = partial.select(*keys_, "t", _from_partials(q.function, step, total=False).alias("value"))
        totals = partial.group_by(keys_).agg(_from_partials(q.function, range_s, total=True).alias("total"))
    totals = totals.sort(["total", *keys_], descending=[True, *([False] * len(keys_))], nulls_last=True)
    top = totals.head(q.top).with_row_index("_rank")
    frame = (
        buckets.join(top, on=keys_, how="inner")
        .sort(["_rank", "t"])
        .select(*labels, "t", pl.col("value").cast(pl.Float64), pl.col("total").cast(pl.Float64))
    )
    stats = QueryStats(files_scanned=len(scan.files), rows_scanned=scan.rows_in_files(),
                       num_rows=frame.height, limit_reached=totals.height > q.top,
                       query_time_ms=round((time.perf_counter() - t0) * 1000, 3))
    return frame, stats
