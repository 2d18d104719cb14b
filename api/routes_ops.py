"""Operational routes: `/healthz`, `/readyz`, `/api/status` and `/metrics`; mounted by `api.app`.

Only `/api/status` needs a bearer token when auth is on: probes and Prometheus scrape the others.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from flowlake.api import errors, params
from flowlake.engine import selfmetrics
from flowlake.engine.metrics import exposition
from flowlake.engine.store import layout

router = APIRouter(tags=["operations"])


def version() -> str:
    try:
        return importlib.metadata.version("flowlake")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree without install
        return "unknown"


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the lake URL is reachable",
            responses={503: {"description": "the lake cannot be reached; `reason` says why"}})
def readyz(request: Request) -> JSONResponse:
    url: str = request.app.state.lake_url
    try:
        fs, root = layout.open_root(url)
        exists = bool(fs.exists(root))
        # A lake nobody has written to yet is fine, as long as the place it will be created exists.
        parent = root.rsplit("/", 1)[0] if "/" in root else ""
        reachable = exists or not parent or bool(fs.exists(parent))
    except Exception as exc:  # any fsspec backend error (credentials, DNS, missing driver) = not ready
        return JSONResponse({"ready": False, "lake": url, "reason": f"{type(exc).__name__}: {exc}"},
                            status_code=503)
    if not reachable:
        return JSONResponse({"ready": False, "lake": url,
                             "reason": f"neither {root} nor its parent directory exists; check --lake"},
                            status_code=503)
    return JSONResponse({"ready": True, "lake": url, "lakeExists": exists})


@router.get("/api/status", summary="Version, lake URL, deployment facts and the caller's role",
            responses={401: {"model": errors.ErrorBody}})
def status(request: Request, who: params.Caller) -> dict[str, Any]:
    return {"version": version(), "lakeUrl": request.app.state.lake_url,
            "info": request.app.state.status_info,
            "user": {"name": who.name, "role": who.role, "namespaces": sorted(who.namespaces)}}


@router.get("/metrics", summary="Prometheus self-metrics", response_class=Response)
def metrics() -> Response:
    return Response(exposition.generate(selfmetrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
