"""The `flowlake api` subcommand: serve the query API over a lake; `engine.cli` registers it.

Only argparse is imported at module level, so `flowlake --help` stays fast; FastAPI, uvicorn and
Polars load inside `run`.
"""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_LAKE = "./flowlake-data/lake"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `api` to the main CLI's subparsers (the `add_subparsers()` result); returns the parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "api", help="serve the flow query API (console backend) over a Parquet lake",
        description="Serve /api/flows, /healthz, /readyz, /api/status, /metrics and /docs over a lake.")
    p.add_argument("--lake", default=DEFAULT_LAKE,
                   help=f"lake URL or path: a directory, file://, s3://, ... (default {DEFAULT_LAKE})")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    p.add_argument("--feed", default=None, metavar="NAME",
                   help="what feeds the lake, reported by /api/status (`flowlake up` passes synthetic)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level (default info)")
    return p


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the process exit code."""
    import uvicorn

    from flowlake.api.app import create_app

    app = create_app(args.lake, status_info={"feed": args.feed} if args.feed else None)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
