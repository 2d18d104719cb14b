"""The `flowlake` console script: one front door dispatching to each component's subcommand.

Each subcommand lives in its component's own `cli` module with `add_parser(sub)` and `run(args)`;
those modules keep heavy imports inside `run`, so `flowlake --help` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType

from flowlake.engine import allocator
from flowlake.engine.errors import FlowlakeError

# subcommand -> module; order is the order `--help` lists them.
COMMANDS: dict[str, str] = {
    "up": "flowlake.engine.up",
    "demo": "flowlake.agent.demo",
    "agent": "flowlake.agent.cli",
    "processor": "flowlake.engine.processor_cli",
    "api": "flowlake.api.cli",
    "synth": "flowlake.engine.synth.cli",
    "lake": "flowlake.engine.store.cli",
    "docs": "flowlake.engine.docs",
    "operator": "flowlake.operator.cli",
}

DESCRIPTION = """flowlake: network-flow observability as a columnar analytics engine.

eBPF agents capture flows in the kernel and ship Arrow record batches over Arrow Flight to a
processor, which enriches them with Kubernetes identities and writes a Parquet flow lake that the
HTTP API, notebooks and Flight clients query with Polars."""

EPILOG = """quick start:
  flowlake up                       processor + API + a live synthetic feed on this machine
  flowlake synth --flows 1000000 --target grpc://127.0.0.1:2055
  curl 'http://127.0.0.1:8080/api/flows?timeRange=300&filters=namespace=shop'

Run `flowlake COMMAND --help` for the options of each command."""


def _load(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowlake", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # dest differs from "log_level" so a subcommand's own --log-level (uvicorn's) cannot clobber it
    parser.add_argument("--log-level", dest="global_log_level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log verbosity (default INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        _load(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(level=args.global_log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    allocator.configure()
    try:
        return int(_load(args.command).run(args) or 0)
    except FlowlakeError as exc:  # user-facing errors: one clear line, no traceback
        print(f"flowlake {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
