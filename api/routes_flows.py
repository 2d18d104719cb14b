"""`GET /api/flows`: the console's flow table, answered from the Parquet lake; mounted by `api.app`.

Parameters follow the NetObserv console backend (`reference/netobserv.md` §5.2). The JSON body is
`{"flows": [...], "stats": {...}, "unixTimestamp": ...}`; a field that is null in every returned
flow is left out of all of them (it keeps bodies small), any other missing value is `null`. `Flags`
is returned as a list of names (["SYN", "ACK"]), as NetObserv does after its decode stage.
A tenant (api.auth) only gets flows whose source or destination namespace it owns.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from flowlake.api import errors, params
from flowlake.engine import selfmetrics
from flowlake.engine.query import flags, flows

router = APIRouter(tags=["flows"])
ROUTE = "/api/flows"


class Stats(BaseModel):
    filesScanned: int | None = Field(description="lake files opened (hour partitions outside the range are "
                                     "skipped); null for a tenant")
    rowsScanned: int | None = Field(description="rows in the files opened (from Parquet footers; an upper "
                                    "bound); null for a tenant, since it counts other tenants' rows")
    limitReached: bool = Field(description="more flows matched than `limit`; the first `limit` are returned")
    queryTimeMs: float = Field(description="time spent in the lake query")
    numRows: int = Field(description="flows in this answer")


class FlowsResponse(BaseModel):
    flows: list[dict[str, Any]] = Field(description="flow records in `sortBy` order, newest first by default "
                                        "(fields as in docs/flows-format.md; all-null fields left out)")
    stats: Stats
    unixTimestamp: int = Field(description="server time of the answer, unix seconds")


def flows_json(frame: pl.DataFrame) -> bytes:
    """The flows array, written by Polars (no per-row Python); see the module docstring for nulls."""
    keep = [s.name for s in frame.iter_columns() if s.null_count() < frame.height]
    out = frame.select(keep)
    if "Flags" in keep:
        out = out.with_columns(flags.decode(pl.col("Flags")).alias("Flags"))
    return out.write_json().encode()


@router.get(ROUTE, response_model=None, summary="Flow records from the lake",
            responses={200: {"model": FlowsResponse}, 400: {"model": errors.ErrorBody},
                       401: {"model": errors.ErrorBody}})
def get_flows(
    request: Request,
    who: params.Caller,
    rows: params.Selected,
    limit: Annotated[int, Query(ge=1, le=flows.MAX_LIMIT, description="maximum flows returned")] = 100,
    sort_by: Annotated[str, Query(alias="sortBy", max_length=64,
                                  description="flow field to sort by (default TimeFlowEndMs)")] = "TimeFlowEndMs",
    sort_order: Annotated[Literal["asc", "desc"], Query(alias="sortOrder",
                                                        description="asc or desc (default desc)")] = "desc",
) -> Response:
    now_ms = int(time.time() * 1000)
    try:
        q = flows.FlowQuery(start_ms=rows.start_ms, end_ms=rows.end_ms, filters=rows.filters,
                            limit=limit, packet_loss=rows.packet_loss, record_type=rows.record_type,
                            sort_by=sort_by, descending=sort_order == "desc")
        frame, stats = flows.run_flows(request.app.state.lake_url, q, who.scope)
    except flows.QueryError as exc:
        raise params.bad_query(exc) from exc
    selfmetrics.API_ROWS_RETURNED.labels(route=ROUTE).inc(stats.num_rows)
    tail = json.dumps({"stats": params.stats_json(stats, who, ROUTE), "unixTimestamp": now_ms // 1000},
                      separators=(",", ":"))
    # The flows array is spliced in as bytes from Polars: no dict per flow on the way out.
    body = b'{"flows":' + flows_json(frame) + b"," + tail[1:].encode()
    return Response(body, media_type="application/json")
