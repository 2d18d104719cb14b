"""Query parameters, caller identity and stats shared by the `routes_*` modules.

Every data route takes the console's common parameters (time range, `filters`, `packetLoss`,
`recordType`) declared here once, gets the caller's `Principal` from `current_principal` (the
`Authorization: Bearer` header checked by `api.auth`), and turns engine `QueryError`s into 400s naming
the API's parameter (`startTime`, not `start_ms`).
"""

from __future__ import annotations

import re
import time
import urllib.parse
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flowlake.api import auth, errors
from flowlake.engine import selfmetrics
from flowlake.engine.query import flows
from flowlake.engine.query.flows import QueryError, QueryStats

DEFAULT_TIME_RANGE_S = 300
MAX_UNIX_S = 4_102_444_800  # 2100-01-01: the lake holds no later flow, and ms values stay in int64

# engine field names -> API parameter names
PARAMETER = {"start_ms": "startTime", "end_ms": "endTime", "packet_loss": "packetLoss",
             "record_type": "recordType", "sort_by": "sortBy", "aggregate_by": "aggregateBy",
             "step_s": "step", "scope_level": "scope"}

FILTERS_DOC = """Console filter string. `|` separates OR groups, `&` ANDs filters within a group, `,`
ORs values of one key. Operators: `k=v`, `k!=v`, `k~regex`, `k!~regex`, `k>=n` (also `<=`, `>`, `<`).
A `"quoted"` value is an exact match, an unquoted one a substring match on text fields (exact on
numbers); `k=""` matches empty or missing values. Keys are field names (`SrcK8S_Namespace`), filter
ids (`src_namespace`) or common keys matching either side (`namespace`, `port`, `address`, ...).
Address keys take a CIDR (`address=10.128.0.0/14`); `tcp_flags` takes flag names (`SYN`). Example:
`src_namespace="default"&dst_port=443,8443|namespace~^kube-`."""

StartTime = Annotated[float | None, Query(
    alias="startTime", allow_inf_nan=False, ge=0, le=MAX_UNIX_S, description="range start, unix seconds (inclusive)")]
EndTime = Annotated[float | None, Query(
    alias="endTime", allow_inf_nan=False, ge=0, le=MAX_UNIX_S,
    description="range end, unix seconds; flows up to endTime+1s are included")]
TimeRange = Annotated[float | None, Query(
    alias="timeRange", gt=0, le=MAX_UNIX_S, allow_inf_nan=False,
    description=f"seconds back from now (default {DEFAULT_TIME_RANGE_S} when no time is given)")]
Filters = Annotated[str, Query(description=FILTERS_DOC)]
PacketLoss = Annotated[flows.PacketLoss, Query(
    alias="packetLoss", description="all; dropped (only dropped packets); hasDrops (some packets dropped); "
    "sent (no drops)")]
RecordType = Annotated[flows.RecordType, Query(
    alias="recordType", description="flowLog (records without a type count as flowLog), a conversation "
    "record type, or allConnections")]

_bearer = HTTPBearer(auto_error=False, description="a token from the --tokens file, or a Kubernetes token "
                     "with --kube-auth; not needed when the API runs without either")


def current_principal(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None,
                                                         Depends(_bearer)]) -> auth.Principal:
    """The caller, or a 401 naming the Authorization header; everyone is an admin when auth is off."""
    authenticator: auth.Authenticator | None = request.app.state.authenticator
    if authenticator is None:
        return auth.ANONYMOUS_ADMIN
    try:
        return authenticator.authenticate(creds.credentials if creds else None)
    except auth.AuthError as exc:
        raise errors.Unauthorized(str(exc)) from exc


Caller = Annotated[auth.Principal, Depends(current_principal)]


class Window:
    """Time range and console filters: the query parameters every data route shares, declared once
    (FastAPI reads them from this signature). Bad ranges are 400s naming the parameter."""

    def __init__(self, start_time: StartTime = None, end_time: EndTime = None, time_range_s: TimeRange = None,
                 filters: Filters = "") -> None:
        self.start_ms, self.end_ms = time_range(start_time, end_time, time_range_s)
        self.filters = decode_filters(filters)


class Selection(Window):
    """`Window` plus which records: packetLoss and recordType (flows, metrics, topology, export)."""

    def __init__(self, start_time: StartTime = None, end_time: EndTime = None, time_range_s: TimeRange = None,
                 filters: Filters = "", packet_loss: PacketLoss = "all", record_type: RecordType = "flowLog") -> None:
        super().__init__(start_time, end_time, time_range_s, filters)
        self.packet_loss: flows.PacketLoss = packet_loss
        self.record_type: flows.RecordType = record_type


Windowed = Annotated[Window, Depends()]
Selected = Annotated[Selection, Depends()]


def time_range(start: float | None, end: float | None, time_range: float | None,
               default_s: float = DEFAULT_TIME_RANGE_S) -> tuple[int | None, int | None]:
    """[start_ms, end_ms) from the console's parameters; end is rounded up by 1 s as the console does."""
    if time_range is not None and (start is not None or end is not None):
        raise errors.BadRequest("give either timeRange or startTime/endTime, not both", "timeRange")
    if start is None and end is None:
        return int(time.time() * 1000) - int((time_range or default_s) * 1000), None
    if start is not None and end is not None and end < start:
        raise errors.BadRequest(f"endTime {end:g} is before startTime {start:g}; swap them or widen "
                                "the range", "endTime")
    start_ms = None if start is None else int(start * 1000)
    end_ms = None if end is None else int(end * 1000) + 1000
    return start_ms, end_ms


_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def decode_filters(raw: str) -> str:
    # The console URL-encodes the filter string (encodeURIComponent) before putting it in the query
    # string, so it arrives here still encoded once. encodeURIComponent always encodes = < > and ",
    # never ~ or !, so a string with a %XX escape and none of those four is still encoded.
    if _ESCAPE.search(raw) and not any(c in raw for c in '=<>"'):
        return urllib.parse.unquote(raw)
    return raw


def bad_query(exc: QueryError) -> errors.BadRequest:
    """The 400 for an engine QueryError, naming the API's parameter."""
    return errors.BadRequest(str(exc), PARAMETER.get(exc.parameter, exc.parameter), exc.position)


def stats_json(stats: QueryStats, who: auth.Principal, route: str) -> dict[str, Any]:
    """The `stats` object; counts rows scanned in the self-metrics.

    filesScanned/rowsScanned describe the whole lake files opened, other tenants' rows included, so a
    tenant gets null there, and its queries are not added to the rows-scanned self-metric either (the
    open /metrics would otherwise tell, by difference, how many flows other tenants have).
    """
    tenant = who.scope is not None
    if not tenant:
        selfmetrics.API_ROWS_SCANNED.labels(route=route).inc(stats.rows_scanned)
    return {"filesScanned": None if tenant else stats.files_scanned,
            "rowsScanned": None if tenant else stats.rows_scanned,
            "limitReached": stats.limit_reached, "queryTimeMs": stats.query_time_ms, "numRows": stats.num_rows}
