"""Distinct values for filter autocomplete: namespaces, clusters, zones, hosts, names of a kind.

Called by `GET /api/resources/...`. Values come from the flows the caller may see in the time range
(tenant scope first), both sides (Src/Dst) unioned, nulls and empty strings dropped, sorted.
"""

from __future__ import annotations

import polars as pl

from flowlake.engine.query import tenancy
from flowlake.engine.query.flows import QueryError
from flowlake.engine.query.tenancy import Scope
from flowlake.engine.store import lake

# resource -> the columns holding its values
COLUMNS: dict[str, tuple[str, ...]] = {
    "namespaces": ("SrcK8S_Namespace", "DstK8S_Namespace"),
    "clusters": ("K8S_ClusterName",),
    "zones": ("SrcK8S_Zone", "DstK8S_Zone"),
    "hosts": ("SrcK8S_HostName", "DstK8S_HostName"),
}
MAX_VALUES = 10_000


def _distinct(frame: pl.LazyFrame, exprs: list[pl.Expr]) -> list[str]:
    values = pl.concat([frame.select(e.cast(pl.String).alias("v")) for e in exprs], how="vertical")
    out = (values.filter(pl.col("v").is_not_null() & (pl.col("v") != "")).unique().sort("v")
           .head(MAX_VALUES).collect())
    return [str(v) for v in out["v"].to_list()]


def values(lake_url: str, resource: str, start_ms: int | None, end_ms: int | None,
           scope: Scope = None) -> list[str]:
    """Sorted distinct values of `resource` (a key of COLUMNS); at most MAX_VALUES."""
    if resource not in COLUMNS:
        raise QueryError(f"unknown resource {resource!r}: use one of {', '.join(COLUMNS)}", "resource")
    frame = tenancy.restrict(lake.open_scan(lake_url, start_ms, end_ms).frame, scope)
    return _distinct(frame, [pl.col(c) for c in COLUMNS[resource]])


def names(lake_url: str, kind: str, namespace: str | None, start_ms: int | None, end_ms: int | None,
          scope: Scope = None) -> list[str]:
    """Names of resources of `kind`: a K8S_Type (Pod, Service, Node) gives K8S_Name values, an owner
    kind (Deployment, StatefulSet, ...) K8S_OwnerName values; only in `namespace` when given."""
    if not kind or len(kind) > 253:
        raise QueryError("kind must be a Kubernetes kind such as Pod, Service, Node or Deployment", "kind")
    frame = tenancy.restrict(lake.open_scan(lake_url, start_ms, end_ms).frame, scope)
    exprs: list[pl.Expr] = []
    for side in ("Src", "Dst"):
        in_ns = pl.lit(True) if namespace is None else (pl.col(f"{side}K8S_Namespace") == namespace)
        exprs.append(pl.when((pl.col(f"{side}K8S_Type") == kind) & in_ns).then(pl.col(f"{side}K8S_Name")))
        exprs.append(pl.when((pl.col(f"{side}K8S_OwnerType") == kind) & in_ns)
                     .then(pl.col(f"{side}K8S_OwnerName")))
    return _distinct(frame, exprs)
