"""`flowlake docs`: renders the generated reference pages (flow format, metrics, config) into docs/."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def pages() -> dict[str, Callable[[], str]]:
    """Generated page name -> renderer; the docs test checks the committed files against these."""
    from flowlake.engine import config, schema, selfmetrics

    def metrics_page() -> str:
        # The agent's table lives with the agent (the engine never imports it at run time); this
        # build-time page joins the two.
        agent_metrics = importlib.import_module("flowlake.agent.metrics")
        return selfmetrics.render_markdown() + str(agent_metrics.render_markdown())

    return {"flows-format.md": schema.render_markdown, "metrics.md": metrics_page,
            "config.md": config.render_markdown}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("docs", help="regenerate docs/ pages from the code (flow format, metrics, config)",
                       description="Render the generated documentation pages.")
    p.add_argument("--dir", default="docs", help="output directory (default docs)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the pages (default: print to stdout)")
    mode.add_argument("--check", action="store_true", help="exit 1 if a committed page is stale")


def run(args: argparse.Namespace) -> int:
    stale = []
    for name, render in pages().items():
        text, path = render(), Path(args.dir) / name
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}", file=sys.stderr)
        elif args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            sys.stdout.write(text)
    if stale:
        print(f"stale generated docs: {', '.join(stale)}; run `flowlake docs --write`", file=sys.stderr)
        return 1
    return 0
