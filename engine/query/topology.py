"""Topology graphs over the lake: `run_topology` answers `GET /api/topology` and Flight `topology`.

A node is one endpoint identity at a scope (cluster > zone > host > namespace > owner > resource, the
console's scopes, `reference/netobserv.md` §5.4), optionally inside a group (a coarser scope). An edge
is the chosen statistic (`engine.query.measures`) of the flows from its source node to its target
node. Node ids are `<scope>:<value>` with `/` joining multi-part values (`owner:shop/Deployment/cart`,
`resource:shop/Pod/cart-1`, `resource:Node/worker-1` without a namespace, `resource:10.0.0.9` for an
address without Kubernetes identity); endpoints without a value at the scope (an external address at
namespace scope) form one node with an empty value (`namespace:`, label `unknown`). Grouped node ids
are prefixed by their group's id and `|` (`host:worker-1|namespace:shop`) since one namespace appears
in several hosts.

The `top` edges by value are returned, with the nodes they touch; a node's `in` and `out` are the
statistic over every flow into / out of it in range (not only the returned edges): 0 when there is
none for sum/rate/count, null for the other functions. All aggregation is
three lazy group-bys (edges, by target, by source) over one shared scan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import polars as pl

from flowlake.engine.query import measures, tenancy
from flowlake.engine.query.flows import QueryError, QueryStats, row_predicate
from flowlake.engine.query.tenancy import Scope
from flowlake.engine.query.timeseries import DEFAULT_RANGE_MS, MAX_TOP
from flowlake.engine.store import lake

SCOPES: tuple[str, ...] = ("cluster", "zone", "host", "namespace", "owner", "resource")
# The per-side fields (without Src/Dst) that identify a node at each scope.
SCOPE_FIELDS: dict[str, tuple[str, ...]] = {
    "cluster": ("K8S_ClusterName",),
    "zone": ("K8S_Zone",),
    "host": ("K8S_HostName",),
    "namespace": ("K8S_Namespace",),
    "owner": ("K8S_Namespace", "K8S_OwnerType", "K8S_OwnerName"),
    "resource": ("K8S_Namespace", "K8S_Type", "K8S_Name", "Addr"),
}
GROUP_SCOPE: dict[str, str] = {"clusters": "cluster", "zones": "zone", "hosts": "host",
                               "namespaces": "namespace", "owners": "owner"}
# Groups a scope may use: only coarser scopes (the reference's allowed groups, networks aside).
ALLOWED_GROUPS: dict[str, tuple[str, ...]] = {
    s: ("none", *(g for g, gs in GROUP_SCOPE.items() if SCOPES.index(gs) < SCOPES.index(s)))
    for s in SCOPES
}
STEP_INTO: dict[str, str | None] = {"cluster": "zone", "zone": "host", "host": "namespace",
                                    "namespace": "owner", "owner": "resource", "resource": None}
ADDITIVE = frozenset({"sum", "rate", "count"})


@dataclass(frozen=True)
class TopologyQuery:
    """A topology query; the range is start_ms <= TimeFlowEndMs < end_ms (None: now / an hour before)."""

    start_ms: int | None = None
    end_ms: int | None = None
    filters: str = ""
    scope_level: str = "namespace"
    groups: str = "none"
    type: str = "Bytes"
    function: str = "sum"
    top: int = 100
    packet_loss: str = "all"
    record_type: str = "flowLog"

    def __post_init__(self) -> None:
        if self.start_ms is not None and self.end_ms is not None and self.end_ms <= self.start_ms:
            raise QueryError(f"end ({self.end_ms} ms) is not after start ({self.start_ms} ms); "
                             "swap them or widen the range", "end_ms")
        if self.scope_level not in SCOPES:
            raise QueryError(f"scope {self.scope_level!r} is not one of {', '.join(SCOPES)}", "scope_level")
        if self.groups not in ALLOWED_GROUPS[self.scope_level]:
            raise QueryError(f"groups {self.groups!r} does not apply to scope {self.scope_level}; use one of "
                             f"{', '.join(ALLOWED_GROUPS[self.scope_level])}", "groups")
        problem = measures.check(self.type, self.function)
        if problem:
            raise QueryError(problem, "type" if self.type not in measures.METRIC_TYPES else "function")
        if not 1 <= self.top <= MAX_TOP:
            raise QueryError(f"top must be between 1 and {MAX_TOP}, got {self.top}", "top")
        self.predicate()

    def span(self) -> tuple[int, int]:
        end = self.end_ms if self.end_ms is not None else int(time.time() * 1000)
        return (self.start_ms if self.start_ms is not None else end - DEFAULT_RANGE_MS), end

    def predicate(self) -> pl.Expr:
        return row_predicate(self.filters, self.packet_loss, self.record_type) & measures.rows(self.type)


def _side_fields(side: str, level: str) -> list[pl.Expr]:
    """The fields identifying one side's node at `level`, as `<field>` columns (String).

    At resource scope the address only identifies endpoints without a name (a pod keeps its node
    when its IP changes); cluster is one column for both sides.
    """
    out = []
    for f in SCOPE_FIELDS[level]:
        raw = pl.col(f if f == "K8S_ClusterName" else f"{side}{f}").cast(pl.String)
        col: pl.Expr = pl.when(raw != "").then(raw)  # "" and null are both "no value": one node, not two with one id
        if level == "resource" and f == "Addr":
            col = pl.when(pl.col(f"{side}K8S_Name").is_null()).then(col).otherwise(None)
        out.append(col.alias(f"{side}:{f}"))
    return out


def _value_id(prefix: str, level: str) -> pl.Expr:
    """`<level>:<value>` from the `<prefix>:<field>` columns (see the module docstring)."""
    fields = [pl.col(f"{prefix}:{f}") for f in SCOPE_FIELDS[level]]
    if level == "resource":
        ns, kind, name, addr = fields
        named = pl.concat_str([ns, kind, name], separator="/", ignore_nulls=True)
        value = pl.when(name.is_not_null()).then(named).otherwise(addr.fill_null(""))
    elif len(fields) > 1:
        value = pl.when(pl.any_horizontal(f.is_not_null() for f in fields)).then(
            pl.concat_str([f.fill_null("") for f in fields], separator="/")).otherwise(pl.lit(""))
    else:
        value = fields[0].fill_null("")
    return pl.lit(f"{level}:") + value


def _label(prefix: str, level: str) -> pl.Expr:
    last = {"owner": "K8S_OwnerName", "resource": "K8S_Name"}.get(level, SCOPE_FIELDS[level][0])
    label = pl.col(f"{prefix}:{last}")
    if level == "resource":
        label = label.fill_null(pl.col(f"{prefix}:Addr"))
    return label.fill_null("unknown")


def run_topology(lake_url: str, q: TopologyQuery,
                 scope: Scope = None) -> tuple[pl.DataFrame, pl.DataFrame, QueryStats]:
    """(nodes, edges, stats) over what `scope` may see.

    nodes: id, label, scope, group, in, out, then one column per identifying field (`K8S_Namespace`,
    ...; null where unknown). edges: source, target, value; sorted by value descending.
    """
    t0 = time.perf_counter()
    start, end = q.span()
    level = q.scope_level
    group_level = GROUP_SCOPE.get(q.groups)
    scan = lake.open_scan(lake_url, start, end)
    sides = {}
    for side in ("Src", "Dst"):
        cols = _side_fields(side, level)
        if group_level:
            cols += [c.alias(f"{side}-group:{c.meta.output_name().split(':', 1)[1]}")
                     for c in _side_fields(side, group_level)]
        sides[side] = cols
    pre = (
        tenancy.restrict(scan.frame, scope)
        .filter(q.predicate())
        .select(*sides["Src"], *sides["Dst"], measures.value(q.type).alias("_v"))
    )
    names = {side: [c.meta.output_name() for c in cols] for side, cols in sides.items()}
    seconds = (end - start) / 1000
    stat = measures.aggregate(q.function, pl.col("_v"), seconds)
    edges_lf = pre.group_by([*names["Src"], *names["Dst"]]).agg(stat.alias("value"))
    out_lf = pre.group_by(names["Src"]).agg(stat.alias("out"))
    in_lf = pre.group_by(names["Dst"]).agg(stat.alias("in"))
    edges_all, outs, ins = pl.collect_all([edges_lf, out_lf, in_lf])

    def node_id(side: str) -> pl.Expr:
        nid = _value_id(side, level)
        if group_level:
            nid = _value_id(f"{side}-group", group_level) + pl.lit("|") + nid
        return nid

    edges = (
        edges_all.with_columns(node_id("Src").alias("source"), node_id("Dst").alias("target"))
        .select("source", "target", pl.col("value").cast(pl.Float64))
        .sort(["value", "source", "target"], descending=[True, False, False], nulls_last=True)
    )
    top_edges = edges.head(q.top)
    wanted = pl.concat([top_edges["source"], top_edges["target"]]).unique()

    def nodes_of(frame: pl.DataFrame, side: str, stat_col: str) -> pl.DataFrame:
        renames = {n: n.split(":", 1)[1] for n in names[side] if n.startswith(f"{side}:")}
        group_renames = {n: f"group:{n.split(':', 1)[1]}" for n in names[side] if n.startswith(f"{side}-group")}
        return (
            frame.with_columns(node_id(side).alias("id"), _label(side, level).alias("label"),
                               (_value_id(f"{side}-group", group_level) if group_level
                                else pl.lit(None, dtype=pl.String)).alias("group"))
            .rename({**renames, **group_renames})
            .select("id", "label", "group", *renames.values(), pl.col(stat_col).cast(pl.Float64))
        )

    out_nodes = nodes_of(outs, "Src", "out")
    in_nodes = nodes_of(ins, "Dst", "in")
    field_cols = list(SCOPE_FIELDS[level])
    nodes = (
        out_nodes.join(in_nodes, on=["id", "label", "group", *field_cols], how="full", coalesce=True,
                       nulls_equal=True)
        .filter(pl.col("id").is_in(wanted.implode()))
        .with_columns(pl.lit(level).alias("scope"), *(
            # no flow in (or out): 0 for an additive statistic, null (unknown) for an average or a percentile
            [pl.col("in").fill_null(0.0), pl.col("out").fill_null(0.0)] if q.function in ADDITIVE else []))
        .select("id", "label", "scope", "group", "in", "out", *field_cols)
        .sort("id")
    )
    stats = QueryStats(files_scanned=len(scan.files), rows_scanned=scan.rows_in_files(),
                       num_rows=top_edges.height, limit_reached=edges.height > q.top,
                       query_time_ms=round((time.perf_counter() - t0) * 1000, 3))
    return nodes, top_edges, stats
