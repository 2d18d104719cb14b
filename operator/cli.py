"""`flowlake operator`: `manifests` writes deploy/ and docs/operator.md, `render` prints what a FlowCollector
becomes, `run` starts the Kopf operator; registered in `flowlake.engine.cli.COMMANDS`.

Only argparse loads at import, so `flowlake --help` stays fast; kopf and the kubernetes client load in `run`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

EPILOG = """examples:
  flowlake operator manifests                 # write deploy/ and docs/operator.md
  flowlake operator manifests --check         # exit 1 when they are stale
  flowlake operator render -f deploy/samples/flowcollector-service.yaml
  flowlake operator run --kubeconfig ~/.kube/config"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("operator", help="Kubernetes operator: FlowCollector/FlowMetric CRDs, install manifests, run",
                       description="Deploy flowlake on Kubernetes from one FlowCollector resource (docs/operator.md).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    m = actions.add_parser("manifests", help="write the CRDs, the operator's RBAC and Deployment, samples, docs")
    m.add_argument("--dir", default="deploy", help="output directory (default deploy)")
    m.add_argument("--docs", default="docs/operator.md", help="reference page to write (default docs/operator.md)")
    m.add_argument("--image", default="", help="operator image (default: the FlowCollector's default image)")
    m.add_argument("--check", action="store_true", help="write nothing; exit 1 if a committed file is stale")
    r = actions.add_parser("render", help="print the objects a FlowCollector YAML file renders to")
    r.add_argument("-f", "--file", required=True, help="FlowCollector YAML file")
    r.add_argument("--service-monitor", action="store_true", help="as if the ServiceMonitor CRD existed")
    run_p = actions.add_parser("run", help="run the operator (Kopf) against the cluster")
    run_p.add_argument("--kubeconfig", default="", help="kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    run_p.add_argument("--interval", type=float, help="seconds between drift checks (default 30, "
                       "FLOWLAKE_OPERATOR_INTERVAL)")
    run_p.add_argument("--liveness", default=None, help="serve Kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz")


def expected_files(image: str = "") -> dict[str, str]:
    """Path (relative to the repository root) -> content of every generated file."""
    from flowlake.operator import crd_flowcollector, docs, manifests

    image = image or str(crd_flowcollector.spec_schema()["properties"]["image"]["default"])
    out = {f"deploy/{k}": v for k, v in manifests.files(image).items()}
    out["docs/operator.md"] = docs.render_markdown()
    return out


def _manifests(args: argparse.Namespace) -> int:
    stale = []
    for rel, text in expected_files(args.image).items():
        path = Path(args.docs) if rel == "docs/operator.md" else Path(args.dir) / rel.removeprefix("deploy/")
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr)
    if stale:
        print(f"stale generated files: {', '.join(stale)}; run `flowlake operator manifests`", file=sys.stderr)
        return 1
    return 0


def _render(args: argparse.Namespace) -> int:
    import yaml

    from flowlake.engine.errors import ConfigError
    from flowlake.operator import manifests
    from flowlake.operator.render import render_all

    try:
        collector = yaml.safe_load(Path(args.file).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {args.file}: {exc}") from exc
    if not isinstance(collector, dict) or collector.get("kind") != "FlowCollector":
        raise ConfigError(f"{args.file}: expected a FlowCollector (kind: FlowCollector)")
    collector.setdefault("metadata", {}).setdefault("uid", "")
    sys.stdout.write(manifests.dump(render_all(collector, service_monitor=args.service_monitor)))
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig  # for Kopf's login and for our client alike
    if args.interval is not None:
        os.environ["FLOWLAKE_OPERATOR_INTERVAL"] = str(args.interval)
    import kopf

    from flowlake.operator import handlers  # noqa: F401 - registers the handlers

    kopf.run(clusterwide=True, standalone=True, liveness_endpoint=args.liveness)
    return 0


def run(args: argparse.Namespace) -> int:
    return {"manifests": _manifests, "render": _render, "run": _run}[args.action](args)
