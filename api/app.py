"""The FastAPI application behind `flowlake api` and `flowlake up`: routes, error shape, metrics.

`create_app(lake_url)` is the only entry point; the CLI (`api.cli`) serves it with uvicorn and tests
drive it with `TestClient`. Routes live in `routes_*` modules, the 400 error shape in `errors`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response

from flowlake.api import (
    errors,
    routes_console,
    routes_export,
    routes_flows,
    routes_health,
    routes_metrics,
    routes_ops,
    routes_resources,
    routes_topology,
)
from flowlake.api.auth import Authenticator
from flowlake.engine import selfmetrics


def create_app(lake_url: str, *, status_info: dict[str, Any] | None = None,
               authenticator: Authenticator | None = None) -> FastAPI:
    """An app answering from the lake at `lake_url`; `status_info` is echoed by `/api/status`
    (e.g. `{"feed": "synthetic"}` from `flowlake up`); `authenticator` (api.auth) turns bearer tokens
    into principals, None = auth off (every caller is an admin)."""
    app = FastAPI(title="flowlake", version=routes_ops.version(),
                  description="Network flows from the flowlake Parquet lake, with the NetObserv "
                              "console backend's query parameters and filter syntax.")
    app.state.lake_url = lake_url
    app.state.status_info = dict(status_info or {})
    app.state.authenticator = authenticator
    errors.install(app)
    app.include_router(routes_flows.router)
    for module in (routes_metrics, routes_topology, routes_export, routes_resources, routes_health):
        app.include_router(module.router)
    app.include_router(routes_ops.router)
    app.include_router(routes_console.router)
    for path, files, name in routes_console.mounts():
        app.mount(path, files, name=name)

    @app.middleware("http")
    async def count_requests(request: Request,
                             call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        t0 = time.perf_counter()
        status = "500"  # an exception escaping call_next becomes a 500 in the outer error handler
        try:
            response = await call_next(request)
            status = str(response.status_code)
            return response
        finally:
            route = errors.route_label(request)  # known only after routing, hence after call_next
            selfmetrics.API_REQUESTS.labels(route=route, status=status).inc()
            selfmetrics.API_SECONDS.labels(route=route).observe(time.perf_counter() - t0)

    return app
