"""Network health from the flows: NetObserv's health-rule templates evaluated over the lake.

Called by `GET /api/health`. NetObserv renders its templates (`reference/netobserv.md` §3.5, Health
rules) into Prometheus alerts; here each is computed directly from the flows of the time range (and,
for trend rules, the window of the same length just before it), per group:

| rule | value | default thresholds info / warning / critical |
|---|---|---|
| PacketDropsByKernel | % of packets dropped by the kernel: drops / (packets + drops) | 5 / 10 / 20 % |
| DNSErrors | % of DNS responses with an error code other than NXDomain | 5 / 10 / 20 % |
| DNSNxDomain | % of DNS responses with NXDomain | 10 / 20 / 40 % |
| LatencyHighTrend | % increase of the average TCP RTT over the previous window | 50 / 100 / 200 % |
| ExternalEgressHighTrend | % increase of bytes to addresses outside the cluster | 100 / 200 / 500 % |
| ExternalIngressHighTrend | % increase of bytes from addresses outside the cluster | 100 / 200 / 500 % |
| NoFlows | flows in the range (fires when there are none; global only) | critical at 0 |

Groups: global; node (K8S_HostName); namespace (K8S_Namespace); workload (namespace, owner kind,
owner name). A flow counts once for each distinct group of its two ends (source and destination); the
egress trend groups by the source, the ingress trend by the destination. A group is only evaluated with
enough volume (`low_volume`: packets, DNS responses, RTT samples or bytes), so one dropped packet out of
three is not a critical alert. Packets and bytes are deduplicated across reporters as in
`engine.query.measures`. "Outside the cluster" is an end with neither a namespace nor a node name.

Score (0-100): 100 minus, for each rule, a penalty for its worst item: critical 30, warning 15, info 5;
floored at 0. So one critical rule gives 70, all rules quiet 100.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import polars as pl

from flowlake.engine.query import measures, tenancy
from flowlake.engine.query.flows import QueryError, QueryStats, row_predicate
from flowlake.engine.query.tenancy import Scope
from flowlake.engine.store import lake

SEVERITIES = ("info", "warning", "critical")
PENALTY = {"critical": 30, "warning": 15, "info": 5}
GROUP_BY: dict[str, tuple[str, ...]] = {
    "global": (),
    "node": ("K8S_HostName",),
    "namespace": ("K8S_Namespace",),
    "workload": ("K8S_Namespace", "K8S_OwnerType", "K8S_OwnerName"),
}


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    unit: str
    info: float
    warning: float
    critical: float
    low_volume: float  # minimum of the rule's denominator in a group before it is evaluated
    below: bool = False  # fires when the value is at or below the thresholds (NoFlows)

    def thresholds(self) -> dict[str, float]:
        return {"info": self.info, "warning": self.warning, "critical": self.critical}

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "unit": self.unit,
                "thresholds": self.thresholds(), "lowVolumeThreshold": self.low_volume,
                "direction": "below" if self.below else "above"}


RULES: tuple[Rule, ...] = (
    Rule("PacketDropsByKernel", "share of packets dropped by the kernel", "%", 5, 10, 20, 100),
    Rule("DNSErrors", "share of DNS responses with an error code other than NXDomain", "%", 5, 10, 20, 10),
    Rule("DNSNxDomain", "share of DNS responses with NXDomain (name not found)", "%", 10, 20, 40, 10),
    Rule("LatencyHighTrend", "increase of the average TCP round-trip time over the previous window", "%",
         50, 100, 200, 10),
    Rule("ExternalEgressHighTrend", "increase of bytes sent outside the cluster over the previous window",
         "%", 100, 200, 500, 100_000),
    Rule("ExternalIngressHighTrend", "increase of bytes received from outside the cluster over the previous "
         "window", "%", 100, 200, 500, 100_000),
    Rule("NoFlows", "flows in the time range: none means the capture pipeline is broken", "flows", 0, 0, 0, 0,
         below=True),
)

_BOTH = ("packets", "drops", "dns", "dns_err", "nx", "rtt_sum", "rtt_n", "rtt_sum_prev", "rtt_n_prev", "flows")


@dataclass(frozen=True)
class HealthQuery:
    start_ms: int
    end_ms: int
    group_by: str = "global"
    filters: str = ""
    packet_loss: str = "all"
    record_type: str = "flowLog"

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise QueryError("the health range is empty: end must be after start", "end_ms")
        if self.group_by not in GROUP_BY:
            raise QueryError(f"groupBy {self.group_by!r} is not one of {', '.join(GROUP_BY)}", "group_by")
        row_predicate(self.filters, self.packet_loss, self.record_type)


def _measures(start_ms: int) -> list[pl.Expr]:
    cur = pl.col("TimeFlowEndMs") >= start_ms
    prev = ~cur
    rcode = pl.col("DnsFlagsResponseCode")
    rtt = pl.col("TimeFlowRttNs").cast(pl.Float64) / 1e6
    dedup = measures.dedup_reporters()
    counted_packets = pl.col("Packets").fill_null(0).cast(pl.Float64)
    drops = pl.col("PktDropPackets").fill_null(0).cast(pl.Float64)

    def when(cond: pl.Expr, value: pl.Expr | float) -> pl.Expr:
        v = value if isinstance(value, pl.Expr) else pl.lit(value)
        return pl.when(cond).then(v).otherwise(0.0).cast(pl.Float64)

    internal = {s: pl.col(f"{s}K8S_Namespace").is_not_null() | pl.col(f"{s}K8S_HostName").is_not_null()
                for s in ("Src", "Dst")}
    byts = pl.col("Bytes").fill_null(0).cast(pl.Float64)
    egress = dedup & internal["Src"] & ~internal["Dst"]
    ingress = dedup & ~internal["Src"] & internal["Dst"]
    return [
        when(cur & dedup, counted_packets).alias("packets"),
        when(cur, drops).alias("drops"),
        when(cur & rcode.is_not_null(), 1.0).alias("dns"),
        when(cur & ~rcode.is_in(["NoError", "NXDomain"]).fill_null(True), 1.0).alias("dns_err"),
        when(cur & (rcode == "NXDomain").fill_null(False), 1.0).alias("nx"),
        when(cur & rtt.is_not_null(), rtt).alias("rtt_sum"),
        when(cur & rtt.is_not_null(), 1.0).alias("rtt_n"),
        when(prev & rtt.is_not_null(), rtt).alias("rtt_sum_prev"),
        when(prev & rtt.is_not_null(), 1.0).alias("rtt_n_prev"),
        when(cur, 1.0).alias("flows"),
        when(cur & egress, byts).alias("egress"),
        when(prev & egress, byts).alias("egress_prev"),
        when(cur & ingress, byts).alias("ingress"),
        when(prev & ingress, byts).alias("ingress_prev"),
    ]


def _side(side: str, fields: tuple[str, ...]) -> list[pl.Expr]:
    return [pl.col(f"{side}{f}").cast(pl.String).alias(f) for f in fields]


def _aggregate(frame: pl.LazyFrame, fields: tuple[str, ...]) -> pl.DataFrame:
    """Sums of every measure per group (columns: the group fields, then the measures)."""
    sums = [pl.col(c).sum() for c in (*_BOTH, "egress", "egress_prev", "ingress", "ingress_prev")]
    if not fields:
        return frame.select(sums).collect()
    keys = list(fields)
    src = frame.select(*_side("Src", fields), *_BOTH, "egress", "egress_prev")
    same = pl.all_horizontal([pl.col(f"Src{f}").cast(pl.String).eq_missing(pl.col(f"Dst{f}").cast(pl.String))
                              for f in fields])
    dst = frame.filter(~same).select(*_side("Dst", fields), *_BOTH)
    ingress = frame.select(*_side("Dst", fields), "ingress", "ingress_prev")
    a, b, c = pl.collect_all([
        src.group_by(keys).agg(pl.col(m).sum() for m in (*_BOTH, "egress", "egress_prev")),
        dst.group_by(keys).agg(pl.col(m).sum() for m in _BOTH),
        ingress.group_by(keys).agg(pl.col("ingress").sum(), pl.col("ingress_prev").sum()),
    ])
    both = pl.concat([a, b], how="diagonal").group_by(keys).agg(pl.all().sum())
    out = both.join(c, on=keys, how="full", coalesce=True, nulls_equal=True).fill_null(0.0)
    # an end without the grouping fields (an external address) is no group: the global view covers it
    return out.filter(pl.any_horizontal(pl.col(k).is_not_null() for k in keys)).sort(keys)


def _value_and_volume(rule: str) -> tuple[pl.Expr, pl.Expr]:
    c = pl.col

    def pct(num: pl.Expr, den: pl.Expr) -> pl.Expr:
        return pl.when(den > 0).then(100.0 * num / den)

    def trend(cur: pl.Expr, prev: pl.Expr) -> pl.Expr:
        return pl.when(prev > 0).then(100.0 * (cur / prev - 1.0))

    if rule == "PacketDropsByKernel":
        return pct(c("drops"), c("packets") + c("drops")), c("packets") + c("drops")
    if rule == "DNSErrors":
        return pct(c("dns_err"), c("dns")), c("dns")
    if rule == "DNSNxDomain":
        return pct(c("nx"), c("dns")), c("dns")
    if rule == "LatencyHighTrend":
        return (trend(c("rtt_sum") / c("rtt_n"), c("rtt_sum_prev") / c("rtt_n_prev")),
                pl.min_horizontal(c("rtt_n"), c("rtt_n_prev")))
    if rule == "ExternalEgressHighTrend":
        return trend(c("egress"), c("egress_prev")), c("egress")
    if rule == "ExternalIngressHighTrend":
        return trend(c("ingress"), c("ingress_prev")), c("ingress")
    return c("flows"), pl.lit(0.0)


def _severity(rule: Rule, value: float) -> str | None:
    for sev in reversed(SEVERITIES):
        threshold = getattr(rule, sev)
        if (value <= threshold) if rule.below else (value >= threshold):
            return sev
    return None


def _message(rule: Rule, value: float, severity: str, group: dict[str, str | None]) -> str:
    where = ", ".join(f"{k}={v}" for k, v in group.items()) or "the whole cluster"
    if rule.name == "NoFlows":
        return "no flow in the time range: check the agents and the processor"
    direction = "at or below" if rule.below else "at or above"
    return (f"{rule.name}: {value:.1f}{rule.unit} for {where} ({rule.description}; {severity} "
            f"{direction} {getattr(rule, severity):g}{rule.unit})")


def run_health(lake_url: str, q: HealthQuery,
               scope: Scope = None) -> tuple[dict[str, Any], QueryStats]:
    """{"score", "rules", "items"} (see the module docstring) and what the query cost."""
    t0 = time.perf_counter()
    length = q.end_ms - q.start_ms
    scan = lake.open_scan(lake_url, q.start_ms - length, q.end_ms)  # the previous window too, for trends
    frame = (tenancy.restrict(scan.frame, scope)
             .filter(row_predicate(q.filters, q.packet_loss, q.record_type))
             .with_columns(_measures(q.start_ms)))
    fields = GROUP_BY[q.group_by]
    grouped = _aggregate(frame, fields)
    glob = grouped if not fields else _aggregate(frame, ())
    if scope is not None and "K8S_Namespace" in fields:  # a tenant's groups are its own namespaces
        grouped = grouped.filter(pl.col("K8S_Namespace").is_in(sorted(scope)))
    items: list[dict[str, Any]] = []
    for rule in RULES:
        source = glob if rule.name == "NoFlows" else grouped
        value, volume = _value_and_volume(rule.name)
        evaluated = (source.with_columns(value.alias("_value"), volume.alias("_volume"))
                     .filter(pl.col("_value").is_not_null() & (pl.col("_volume") >= rule.low_volume)))
        for row in evaluated.select(*([] if rule.name == "NoFlows" else fields), "_value").to_dicts():
            v = float(row.pop("_value"))
            sev = _severity(rule, v)
            if sev is not None:
                items.append({"rule": rule.name, "severity": sev, "group": row, "value": round(v, 6),
                              "threshold": getattr(rule, sev), "message": _message(rule, v, sev, row)})
    worst: dict[str, int] = {}
    for it in items:
        worst[it["rule"]] = max(worst.get(it["rule"], 0), PENALTY[it["severity"]])
    items.sort(key=lambda it: (-PENALTY[it["severity"]], it["rule"], -it["value"]))
    body = {"score": max(0, 100 - sum(worst.values())), "groupBy": q.group_by,
            "rules": [r.as_json() for r in RULES], "items": items}
    stats = QueryStats(files_scanned=len(scan.files), rows_scanned=scan.rows_in_files(), num_rows=len(items),
                       limit_reached=False, query_time_ms=round((time.perf_counter() - t0) * 1000, 3))
    return body, stats
