"""The API's one error shape: `{"error", "parameter", "position"}` with HTTP 400 for bad input.

401 (missing or invalid bearer token) uses the same shape with `parameter: "Authorization"`.
`api.app` installs these handlers. FastAPI's own 422 validation errors are reshaped into the same
400 body, so a client handles a single shape, and nothing user-caused ever becomes a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from flowlake.engine import selfmetrics
from flowlake.engine.query import flows

log = logging.getLogger(__name__)

# What a valid value looks like, appended to validation messages so the fix is in the error.
HINTS: dict[str, str] = {
    "startTime": "give unix seconds, e.g. startTime=1700000000",
    "endTime": "give unix seconds not before startTime, e.g. endTime=1700000300",
    "timeRange": "give a number of seconds back from now, e.g. timeRange=300",
    "limit": f"give an integer from 1 to {flows.MAX_LIMIT}",
    "packetLoss": f"use one of {', '.join(flows.PACKET_LOSS)}",
    "recordType": f"use one of {', '.join(flows.RECORD_TYPES)}",
    "filters": "see the filter syntax in the /docs description of this parameter",
    "sortBy": "give a flow field name, e.g. sortBy=Bytes",
    "sortOrder": "use asc or desc",
    "aggregateBy": "use app, cluster, zone, host, namespace, owner, resource or a flow field name",
    "type": "use Bytes, Packets, PktDropBytes, PktDropPackets, DnsLatencyMs, TimeFlowRttNs, Flows or DnsFlows",
    "function": "use rate, count, sum, avg, min, max, p90 or p99",
    "step": "give whole seconds >= 1, e.g. step=60",
    "top": "give an integer from 1 to 1000",
    "scope": "use cluster, zone, host, namespace, owner or resource",
    "format": "use csv, ndjson, parquet or arrow",
    "groupBy": "use global, node, namespace or workload",
}


class ErrorBody(BaseModel):
    """Body of every 400 answer."""

    error: str = Field(description="what is wrong and how to fix it")
    parameter: str | None = Field(None, description="the query parameter at fault")
    position: int | None = Field(None, description="0-based offset of the problem inside `filters`")


class BadRequest(Exception):
    """Raised by route code for invalid user input; rendered as a 400 `ErrorBody`."""

    def __init__(self, message: str, parameter: str | None, position: int | None = None) -> None:
        self.body = ErrorBody(error=message, parameter=parameter, position=position)
        super().__init__(message)


class Unauthorized(Exception):
    """No or a bad bearer token: rendered as a 401 `ErrorBody` naming the Authorization header."""

    def __init__(self, message: str) -> None:
        self.body = ErrorBody(error=message, parameter="Authorization", position=None)
        super().__init__(message)


def route_label(request: Request) -> str:
    """The route template (`/api/flows`), never the raw path, so metric labels stay few."""
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def _bad_request(request: Request, body: ErrorBody) -> JSONResponse:
    selfmetrics.API_BAD_REQUESTS.labels(route=route_label(request), parameter=body.parameter or "").inc()
    return JSONResponse(body.model_dump(), status_code=400)


async def _on_bad_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadRequest)
    return _bad_request(request, exc.body)


async def _on_unauthorized(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Unauthorized)
    selfmetrics.API_BAD_REQUESTS.labels(route=route_label(request), parameter="Authorization").inc()
    return JSONResponse(exc.body.model_dump(), status_code=401, headers={"WWW-Authenticate": "Bearer"})


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first: dict[str, Any] = dict(exc.errors()[0]) if exc.errors() else {}
    loc = [str(x) for x in first.get("loc", ())]
    parameter = loc[-1] if len(loc) > 1 else None
    got = f" (got {first['input']!r})" if first.get("input") is not None else ""
    hint = f"; {HINTS[parameter]}" if parameter in HINTS else ""
    msg = f"bad value for parameter {parameter}{got}: {first.get('msg', 'invalid')}{hint}"
    return _bad_request(request, ErrorBody(error=msg, parameter=parameter, position=None))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A bug or an unreadable lake, not the user's input: log the traceback, answer without it.
    log.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the flowlake api log",
                         "parameter": None, "position": None}, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(BadRequest, _on_bad_request)
    app.add_exception_handler(Unauthorized, _on_unauthorized)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(Exception, _on_unexpected)
