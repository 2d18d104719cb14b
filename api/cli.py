"""The `flowlake api` subcommand: serve the query API over a lake; `engine.cli` registers it.

Only argparse is imported at module level, so `flowlake --help` stays fast; FastAPI, uvicorn and
Polars load inside `run`.
"""

from __future__ import annotations

import argparse
import signal
from typing import Any

DEFAULT_LAKE = "./flowlake-data/lake"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `api` to the main CLI's subparsers (the `add_subparsers()` result); returns the parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "api", help="serve the web console, the flow query API and Arrow Flight queries over a Parquet lake",
        description="Serve the web console at /, the query API (/api/flows, /api/flows/metrics, /api/topology, "
                    "/api/export, /api/resources/..., /api/health), /healthz, /readyz, /api/status, /metrics and "
                    "the OpenAPI docs at /docs over a lake, and Arrow Flight queries (flows, metrics, topology, "
                    "SQL) on --flight-port. Without --tokens or --kube-auth every caller sees every flow.")
    p.add_argument("--lake", default=DEFAULT_LAKE,
                   help=f"lake URL or path: a directory, file://, s3://, ... (default {DEFAULT_LAKE})")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    p.add_argument("--feed", default=None, metavar="NAME",
                   help="what feeds the lake, reported by /api/status (`flowlake up` passes synthetic)")
    p.add_argument("--flight-port", type=int, default=None, metavar="PORT",
                   help="Arrow Flight query service port (flows, metrics, topology, SQL for notebooks and the "
                        "Python client; docs/flight.md); default 8815, 0 disables it")
    auth = p.add_argument_group("authentication (default: off, every caller is an admin)")
    who = auth.add_mutually_exclusive_group()
    who.add_argument("--tokens", metavar="FILE",
                     help="YAML file of bearer tokens mapped to roles (admin, or tenant with namespaces); in a "
                          "cluster mount it from a Secret (docs/api.md)")
    who.add_argument("--kube-auth", action="store_true",
                     help="check bearer tokens with the Kubernetes API server (TokenReview) and roles with "
                          "SubjectAccessReview on flows.flowlake.io/flows (docs/api.md)")
    auth.add_argument("--kubeconfig", default="", metavar="PATH",
                      help="with --kube-auth: kubeconfig to reach the API server (default: $KUBECONFIG, the "
                           "in-cluster service account, ~/.kube/config)")
    auth.add_argument("--kube-auth-ttl", type=float, default=60.0, metavar="SECONDS",
                      help="with --kube-auth: how long an answer is cached per token (default 60)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level (default info)")
    return p


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the process exit code."""
    import uvicorn

    from flowlake.api.app import create_app

    status_info: dict[str, Any] = {"feed": args.feed} if args.feed else {}
    authenticator = make_authenticator(args)
    status_info["auth"] = "tokens" if args.tokens else "kubernetes" if args.kube_auth else "off"
    flight = _start_flight(args, status_info, authenticator)
    app = create_app(args.lake, status_info=status_info, authenticator=authenticator)
    # uvicorn re-raises SIGTERM once its graceful shutdown is done; as SystemExit(0) it unwinds through
    # the `finally` below, so the Flight server stops too and the process exits 0, as the processor does.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    finally:
        if flight is not None:
            flight.shutdown()  # uvicorn returned on SIGTERM/Ctrl-C: stop the gRPC server with it
    return 0


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def make_authenticator(args: argparse.Namespace) -> Any:
    """The `api.auth` authenticator the flags ask for, or None (auth off)."""
    if getattr(args, "tokens", None):
        from flowlake.api.auth import TokenStore

        return TokenStore.from_file(args.tokens)
    if getattr(args, "kube_auth", False):
        from flowlake.api.auth import KubeAuthenticator
        from flowlake.engine.metadata.kube import client_configuration

        return KubeAuthenticator(client_configuration(args.kubeconfig), ttl=args.kube_auth_ttl)
    return None


def _start_flight(args: argparse.Namespace, status_info: dict[str, Any], authenticator: Any) -> Any:
    """The Flight query service beside the HTTP API, or None when disabled.

    A port given with --flight-port must bind (else the command fails); the default 8815 being taken
    only logs an error, so a second `flowlake api` on one machine still serves HTTP.
    """
    import logging

    from flowlake.api import flight_service
    from flowlake.engine.errors import FlowlakeError

    port = flight_service.DEFAULT_PORT if args.flight_port is None else args.flight_port
    if port == 0:
        status_info["flight"] = "disabled (--flight-port 0)"
        return None
    try:  # the same authenticator as the HTTP API (--tokens FILE or --kube-auth)
        server = flight_service.start(args.host, port, args.lake, authenticator)
    except FlowlakeError as exc:
        if args.flight_port is not None:
            raise
        logging.getLogger("flowlake.api").error("%s", exc)
        status_info["flight"] = f"not running: {exc}"
        return None
    status_info["flight"] = f"grpc://{args.host}:{server.port}"
    return server
