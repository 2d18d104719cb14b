"""The web console: `/` (the page), `/console/*` (its files) and `/api/frontend-config`; mounted by `api.app`.

The console is a static app of plain ES modules in `api/console/web/`; its two npm dependencies (uPlot,
cytoscape) are copied by `make console` (npm ci from the committed package-lock.json) into
`api/console/vendor/`, never fetched from a CDN, so the page works offline. When `vendor/` is missing
the page answers 503 with a message to run `make console` instead of a broken page.

`/api/frontend-config` is the reference console backend's route of the same name (netobserv.md §5.1):
the flow fields (columns and filter keys, from `engine.schema`), default columns, topology scopes and the
quick filters, which an operator overrides with a YAML file named by `FLOWLAKE_CONSOLE_CONFIG`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from flowlake.engine import schema
from flowlake.engine.query import keys

log = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).parent / "console"
WEB_DIR = CONSOLE_DIR / "web"
VENDOR_DIR = CONSOLE_DIR / "vendor"
VENDOR_FILES = ("uplot.js", "uplot.css", "cytoscape.js")  # what `make console` copies and the page loads
CONFIG_ENV = "FLOWLAKE_CONSOLE_CONFIG"

MISSING_VENDOR = (
    "The flowlake web console's front-end libraries (uPlot, cytoscape) are not installed in "
    f"{VENDOR_DIR}. Run `make console` in the flowlake source tree (it runs `npm ci` from the committed "
    "package-lock.json and copies the browser builds there), then reload this page. The HTTP API "
    "(/api/flows, /docs) works without them.")

router = APIRouter(tags=["console"])


class QuickFilter(BaseModel):
    """One quick filter, as the reference's FlowCollector `consolePlugin.quickFilters[]`."""

    name: str = Field(description="label shown in the console")
    filter: dict[str, str] = Field(description="filter id -> comma-separated values; a \"quoted\" value "
                                   "is an exact match; a trailing `!` on the key negates")
    default: bool = Field(default=False, description="active when the console opens")


class ConsoleConfig(BaseModel):
    """The file named by FLOWLAKE_CONSOLE_CONFIG (YAML); every key is optional."""

    model_config = {"extra": "forbid"}
    quickFilters: list[QuickFilter] | None = None
    columns: list[str] | None = Field(default=None, description="flow table columns shown by default")


# The reference operator's default quick filters (netobserv.md §4.1 consolePlugin.quickFilters).
DEFAULT_QUICK_FILTERS = [
    QuickFilter(name="Applications", filter={"flow_layer": '"app"'}, default=True),
    QuickFilter(name="Infrastructure", filter={"flow_layer": '"infra"'}),
    QuickFilter(name="Pods network", filter={"src_kind": '"Pod"', "dst_kind": '"Pod"'}, default=True),
    QuickFilter(name="Services network", filter={"dst_kind": '"Service"'}),
    QuickFilter(name="External ingress", filter={"src_subnet_label": '"",EXT:'}),
    QuickFilter(name="External egress", filter={"dst_subnet_label": '"",EXT:'}),
]

# The reference's columns marked "shown by default" (netobserv.md §5.4) that the flow record has.
DEFAULT_COLUMNS = ["TimeFlowEndMs", "SrcK8S_Name", "SrcK8S_Namespace", "SrcAddr", "SrcPort", "DstK8S_Name",
                   "DstK8S_Namespace", "DstAddr", "DstPort", "Proto", "Bytes", "Packets", "DnsLatencyMs",
                   "DnsFlagsResponseCode", "TimeFlowRttNs"]

# Topology scopes, their groups and step-into order (netobserv.md §5.4 "Topology scopes").
SCOPES = [
    {"id": "cluster", "name": "Cluster", "groups": ["none"], "stepInto": "zone"},
    {"id": "zone", "name": "Zone", "groups": ["none", "clusters"], "stepInto": "host"},
    {"id": "host", "name": "Node", "groups": ["none", "clusters", "zones"], "stepInto": "namespace"},
    {"id": "namespace", "name": "Namespace", "groups": ["none", "clusters", "zones", "hosts"],
     "stepInto": "owner"},
    {"id": "owner", "name": "Owner", "groups": ["none", "clusters", "zones", "hosts", "namespaces"],
     "stepInto": "resource"},
    {"id": "resource", "name": "Resource", "groups": ["none", "clusters", "zones", "hosts", "namespaces",
                                                      "owners"], "stepInto": None},
]


def _kind(f: schema.Field) -> str:
    return keys.KINDS[f.name].value


def _fields() -> list[dict[str, Any]]:
    return [{"name": f.name, "kind": _kind(f), "description": f.meaning, "unit": f.unit,
             "filterId": f.filter_id, "group": f.group} for f in schema.FIELDS]


def _load_config() -> tuple[ConsoleConfig, str | None]:
    """The operator's console config, or the defaults and a message saying why it was not used."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        return ConsoleConfig(), None
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return ConsoleConfig.model_validate(data), None
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        # An operator's mistake must not take the console down: serve the defaults and say why.
        msg = f"{CONFIG_ENV}={path} was not used ({type(exc).__name__}: {exc}); using the defaults"
        log.warning("%s", msg)
        return ConsoleConfig(), msg


@router.get("/api/frontend-config", summary="Console configuration: fields, columns, scopes, quick filters")
def frontend_config() -> dict[str, Any]:
    config, problem = _load_config()
    quick = config.quickFilters if config.quickFilters is not None else DEFAULT_QUICK_FILTERS
    return {"fields": _fields(), "commonKeys": {k: list(v) for k, v in keys.COMMON_KEYS.items()},
            "columns": config.columns or DEFAULT_COLUMNS, "scopes": SCOPES,
            "quickFilters": [q.model_dump() for q in quick],
            "recordTypes": ["flowLog", "newConnection", "heartbeat", "endConnection", "allConnections"],
            "configError": problem}


def vendored() -> bool:
    """True when `make console` has put the front-end libraries in place."""
    return all((VENDOR_DIR / name).is_file() for name in VENDOR_FILES)


@router.get("/", include_in_schema=False, response_model=None)
def index() -> Response:
    if not vendored():
        return HTMLResponse(f"<!doctype html><title>flowlake console: run make console</title>"
                            f"<h1>flowlake console not installed</h1><p>{MISSING_VENDOR}</p>", status_code=503)
    # The page is tiny and names its modules by path: never let a browser keep a stale one.
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


class ConsoleFiles(StaticFiles):
    """StaticFiles whose answers a browser revalidates (ETag) before use, so an upgrade shows at once."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        return response


class VendorFiles(StaticFiles):
    """StaticFiles that answers 503 with the `make console` message while vendor/ is missing."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not vendored():
            await Response(MISSING_VENDOR, status_code=503, media_type="text/plain")(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def mounts() -> list[tuple[str, ASGIApp, str]]:
    """(path, app, name) for `app.mount`: the vendored libraries first, they sit inside /console.

    Compressed for browsers that ask (cytoscape is 441 kB, 140 kB gzipped); the API's JSON routes are
    left alone.
    """
    return [("/console/vendor", GZipMiddleware(VendorFiles(directory=VENDOR_DIR, check_dir=False)), "console-vendor"),
            ("/console", GZipMiddleware(ConsoleFiles(directory=WEB_DIR)), "console")]
