"""`GET /api/resources/...`: distinct values for filter autocomplete; mounted by `api.app`.

Each answers a sorted JSON array of strings from the flows the caller may see in the time range
(default: the last hour), computed by `engine.query.resources`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from flowlake.api import errors, params
from flowlake.engine.query import resources
from flowlake.engine.query.flows import QueryError

router = APIRouter(tags=["resources"])
DEFAULT_RANGE_S = 3600
_RESPONSES: dict[int | str, dict[str, Any]] = {400: {"model": errors.ErrorBody}, 401: {"model": errors.ErrorBody}}
_DOC = f"Sorted distinct values seen in the flows of the time range (default: the last {DEFAULT_RANGE_S} s)."


def _values(request: Request, who: params.Caller, resource: str, start: float | None, end: float | None,
            time_range: float | None) -> list[str]:
    start_ms, end_ms = params.time_range(start, end, time_range, DEFAULT_RANGE_S)
    try:
        return resources.values(request.app.state.lake_url, resource, start_ms, end_ms, who.scope)
    except QueryError as exc:
        raise params.bad_query(exc) from exc


@router.get("/api/resources/namespaces", summary="Namespaces (source or destination)", description=_DOC,
            responses=_RESPONSES)
def namespaces(request: Request, who: params.Caller, start_time: params.StartTime = None,
               end_time: params.EndTime = None, time_range: params.TimeRange = None) -> list[str]:
    return _values(request, who, "namespaces", start_time, end_time, time_range)


@router.get("/api/resources/clusters", summary="Cluster names", description=_DOC, responses=_RESPONSES)
def clusters(request: Request, who: params.Caller, start_time: params.StartTime = None,
             end_time: params.EndTime = None, time_range: params.TimeRange = None) -> list[str]:
    return _values(request, who, "clusters", start_time, end_time, time_range)


@router.get("/api/resources/zones", summary="Availability zones", description=_DOC, responses=_RESPONSES)
def zones(request: Request, who: params.Caller, start_time: params.StartTime = None,
          end_time: params.EndTime = None, time_range: params.TimeRange = None) -> list[str]:
    return _values(request, who, "zones", start_time, end_time, time_range)


@router.get("/api/resources/hosts", summary="Node names", description=_DOC, responses=_RESPONSES)
def hosts(request: Request, who: params.Caller, start_time: params.StartTime = None,
          end_time: params.EndTime = None, time_range: params.TimeRange = None) -> list[str]:
    return _values(request, who, "hosts", start_time, end_time, time_range)


@router.get("/api/resources/kinds/{kind}/names", summary="Names of resources of a kind",
            description="Pod, Service and Node give K8S_Name values; owner kinds (Deployment, StatefulSet, "
            "DaemonSet, ...) give K8S_OwnerName values. " + _DOC, responses=_RESPONSES)
def names(request: Request, who: params.Caller,
          kind: Annotated[str, Path(min_length=1, max_length=253, description="a Kubernetes kind, e.g. Pod")],
          namespace: Annotated[str | None, Query(max_length=253, description="only in this namespace")] = None,
          start_time: params.StartTime = None, end_time: params.EndTime = None,
          time_range: params.TimeRange = None) -> list[str]:
    start_ms, end_ms = params.time_range(start_time, end_time, time_range, DEFAULT_RANGE_S)
    try:
        return resources.names(request.app.state.lake_url, kind, namespace, start_ms, end_ms, who.scope)
    except QueryError as exc:
        raise params.bad_query(exc) from exc
