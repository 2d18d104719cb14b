"""`GET /api/topology`: nodes and edges at a scope, with groups and step-into; mounted by `api.app`.

The graph is computed by `engine.query.topology.run_topology`; this module maps parameters and turns
its frames into `{"nodes": [...], "edges": [...], "stepInto", "stats", "unixTimestamp"}`.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from flowlake.api import errors, params
from flowlake.api.routes_metrics import FunctionQ, MetricTypeQ, TopQ, default_function
from flowlake.engine.query.flows import QueryError
from flowlake.engine.query.topology import SCOPE_FIELDS, STEP_INTO, TopologyQuery, run_topology

router = APIRouter(tags=["topology"])
ROUTE = "/api/topology"


@router.get(ROUTE, summary="Topology nodes and edges over the lake",
            responses={400: {"model": errors.ErrorBody}, 401: {"model": errors.ErrorBody}})
def get_topology(
    request: Request,
    who: params.Caller,
    rows: params.Selected,
    scope: Annotated[Literal["cluster", "zone", "host", "namespace", "owner", "resource"], Query(
        description="node level: cluster > zone > host > namespace (default) > owner > resource")] = "namespace",
    groups: Annotated[Literal["none", "clusters", "zones", "hosts", "namespaces", "owners"], Query(
        description="draw nodes inside a coarser scope (only coarser than `scope`)")] = "none",
    type_: MetricTypeQ = "Bytes",
    function: FunctionQ = None,
    top: TopQ = 100,
) -> dict[str, Any]:
    fn = default_function(function, type_, "sum")
    try:
        q = TopologyQuery(start_ms=rows.start_ms, end_ms=rows.end_ms, filters=rows.filters,
                          scope_level=scope, groups=groups, type=type_, function=fn, top=top,
                          packet_loss=rows.packet_loss, record_type=rows.record_type)
        nodes, edges, stats = run_topology(request.app.state.lake_url, q, who.scope)
    except QueryError as exc:
        raise params.bad_query(exc) from exc
    fields = list(SCOPE_FIELDS[scope])
    node_list = [
        {"id": n["id"], "label": n["label"], "scope": n["scope"], "group": n["group"],
         "fields": {f: n[f] for f in fields}, "in": n["in"], "out": n["out"]}
        for n in nodes.iter_rows(named=True)  # aggregated nodes (bounded by 2 x top), not flows
    ]
    return {"nodes": node_list, "edges": edges.to_dicts(), "scope": scope, "groups": groups,
            "stepInto": STEP_INTO[scope], "stats": params.stats_json(stats, who, ROUTE),
            "unixTimestamp": int(time.time())}
