"""`GET /api/flows`: the console's flow table, answered from the Parquet lake; mounted by `api.app`.

Parameters follow the NetObserv console backend (`reference/netobserv.md` §5.2). The JSON body is
`{"flows": [...], "stats": {...}, "unixTimestamp": ...}`; a field that is null in every returned
flow is left out of all of them (it keeps bodies small), any other missing value is `null`. `Flags`
is returned as a list of names (["SYN", "ACK"]), as NetObserv does after its decode stage.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from flowlake.api import errors
from flowlake.engine import selfmetrics
from flowlake.engine.query import flags, flows

router = APIRouter(tags=["flows"])
DEFAULT_TIME_RANGE_S = 300
MAX_UNIX_S = 4_102_444_800  # 2100-01-01: the lake holds no later flow, and ms values stay in int64

# FlowQuery names its fields; the API names its query parameters.
_PARAMETER = {"start_ms": "startTime", "end_ms": "endTime", "packet_loss": "packetLoss",
              "record_type": "recordType", "sort_by": "sortBy"}

FILTERS_DOC = """Console filter string. `|` separates OR groups, `&` ANDs filters within a group, `,`
ORs values of one key. Operators: `k=v`, `k!=v`, `k~regex`, `k!~regex`, `k>=n` (also `<=`, `>`, `<`).
A `"quoted"` value is an exact match, an unquoted one a substring match on text fields (exact on
numbers); `k=""` matches empty or missing values. Keys are field names (`SrcK8S_Namespace`), filter
ids (`src_namespace`) or common keys matching either side (`namespace`, `port`, `address`, ...).
Address keys take a CIDR (`address=10.128.0.0/14`); `tcp_flags` takes flag names (`SYN`). Example:
`src_namespace="default"&dst_port=443,8443|namespace~^kube-`."""


class Stats(BaseModel):
    filesScanned: int = Field(description="lake files opened (hour partitions outside the range are skipped)")
    rowsScanned: int = Field(description="rows in the files opened (from Parquet footers; an upper bound)")
    limitReached: bool = Field(description="more flows matched than `limit`; the first `limit` are returned")
    queryTimeMs: float = Field(description="time spent in the lake query")
    numRows: int = Field(description="flows in this answer")


class FlowsResponse(BaseModel):
    flows: list[dict[str, Any]] = Field(description="flow records, newest first (fields as in "
                                        "docs/flows-format.md; all-null fields left out)")
    stats: Stats
    unixTimestamp: int = Field(description="server time of the answer, unix seconds")


def _time_range(start: float | None, end: float | None, time_range: float | None,
                now_ms: int) -> tuple[int | None, int | None]:
    """[start_ms, end_ms) from the console's parameters; end is rounded up by 1 s as the console does."""
    if time_range is not None and (start is not None or end is not None):
        raise errors.BadRequest("give either timeRange or startTime/endTime, not both", "timeRange")
    if start is None and end is None:
        return now_ms - int((time_range or DEFAULT_TIME_RANGE_S) * 1000), None
    if start is not None and end is not None and end < start:
        raise errors.BadRequest(f"endTime {end:g} is before startTime {start:g}; swap them or widen "
                                "the range", "endTime")
    start_ms = None if start is None else int(start * 1000)
    end_ms = None if end is None else int(end * 1000) + 1000
    return start_ms, end_ms


_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def _decode_filters(raw: str) -> str:
    # The console URL-encodes the filter string (encodeURIComponent) before putting it in the query
    # string, so it arrives here still encoded once. encodeURIComponent always encodes = < > and ",
    # never ~ or !, so a string with a %XX escape and none of those four is still encoded.
    if _ESCAPE.search(raw) and not any(c in raw for c in '=<>"'):
        return urllib.parse.unquote(raw)
    return raw


def flows_json(frame: pl.DataFrame) -> bytes:
    """The flows array, written by Polars (no per-row Python); see the module docstring for nulls."""
    keep = [s.name for s in frame.iter_columns() if s.null_count() < frame.height]
    out = frame.select(keep)
    if "Flags" in keep:
        out = out.with_columns(flags.decode(pl.col("Flags")).alias("Flags"))
    return out.write_json().encode()


@router.get("/api/flows", response_model=None, summary="Flow records from the lake",
            responses={200: {"model": FlowsResponse}, 400: {"model": errors.ErrorBody}})
def get_flows(
    request: Request,
    start_time: Annotated[float | None, Query(
        alias="startTime", allow_inf_nan=False, ge=0, le=MAX_UNIX_S,
        description="range start, unix seconds (inclusive)")] = None,
    end_time: Annotated[float | None, Query(
        alias="endTime", allow_inf_nan=False, ge=0, le=MAX_UNIX_S,
        description="range end, unix seconds; flows up to endTime+1s are included")] = None,
    time_range: Annotated[float | None, Query(
        alias="timeRange", gt=0, le=MAX_UNIX_S, allow_inf_nan=False,
        description=f"seconds back from now (default {DEFAULT_TIME_RANGE_S} when no time is given)")] = None,
    limit: Annotated[int, Query(ge=1, le=flows.MAX_LIMIT, description="maximum flows returned")] = 100,
    filters: Annotated[str, Query(description=FILTERS_DOC)] = "",
    packet_loss: Annotated[flows.PacketLoss, Query(
        alias="packetLoss", description="all; dropped (only dropped packets); hasDrops (some "
        "packets dropped); sent (no drops)")] = "all",
    record_type: Annotated[flows.RecordType, Query(
        alias="recordType", description="flowLog (records without a type count as flowLog), a "
        "conversation record type, or allConnections")] = "flowLog",
) -> Response:
    now_ms = int(time.time() * 1000)
    start_ms, end_ms = _time_range(start_time, end_time, time_range, now_ms)
    try:
        q = flows.FlowQuery(start_ms=start_ms, end_ms=end_ms, filters=_decode_filters(filters),
                            limit=limit, packet_loss=packet_loss, record_type=record_type)
        frame, stats = flows.run_flows(request.app.state.lake_url, q)
    except flows.QueryError as exc:
        raise errors.BadRequest(str(exc), _PARAMETER.get(exc.parameter, exc.parameter), exc.position) from exc
    selfmetrics.API_ROWS_SCANNED.labels(route="/api/flows").inc(stats.rows_scanned)
    body_stats = {"filesScanned": stats.files_scanned, "rowsScanned": stats.rows_scanned,
                  "limitReached": stats.limit_reached, "queryTimeMs": stats.query_time_ms,
                  "numRows": stats.num_rows}
    tail = json.dumps({"stats": body_stats, "unixTimestamp": now_ms // 1000}, separators=(",", ":"))
    # The flows array is spliced in as bytes from Polars: no dict per flow on the way out.
    body = b'{"flows":' + flows_json(frame) + b"," + tail[1:].encode()
    return Response(body, media_type="application/json")
