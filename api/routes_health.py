"""`GET /api/health`: network health (rules, items, score) computed from the lake; mounted by `api.app`.

The rules, thresholds, grouping and score are those of `engine.query.health` (its docstring and
docs/api.md explain them).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from flowlake.api import errors, params
from flowlake.engine.query.flows import QueryError
from flowlake.engine.query.health import HealthQuery, run_health

router = APIRouter(tags=["health"])
ROUTE = "/api/health"


@router.get(ROUTE, summary="Network health from the flows: rule items and a 0-100 score",
            responses={400: {"model": errors.ErrorBody}, 401: {"model": errors.ErrorBody}})
def get_health(
    request: Request,
    who: params.Caller,
    window: params.Windowed,
    group_by: Annotated[Literal["global", "node", "namespace", "workload"], Query(
        alias="groupBy", description="global (default), node, namespace or workload")] = "global",
) -> dict[str, Any]:
    start_ms, end_ms = window.start_ms, window.end_ms
    now_ms = int(time.time() * 1000)
    try:
        end = end_ms if end_ms is not None else now_ms
        # only endTime given: the default range before it (not since the epoch: trends double the range)
        start = start_ms if start_ms is not None else end - params.DEFAULT_TIME_RANGE_S * 1000
        q = HealthQuery(start_ms=start, end_ms=end, group_by=group_by, filters=window.filters)
        body, stats = run_health(request.app.state.lake_url, q, who.scope)
    except QueryError as exc:
        raise params.bad_query(exc) from exc
    return {**body, "stats": params.stats_json(stats, who, ROUTE), "unixTimestamp": now_ms // 1000}
