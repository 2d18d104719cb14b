"""What one reconciliation costs the operator: render only, the first pass (creates every object) and a
steady-state drift check (server-side apply of unchanged objects, prune listing, status), against the real
kube-apiserver of tests/k8s.

Usage: .venv/bin/python -P benchmarks/operator_reconcile.py [--passes 50]
Starts etcd + kube-apiserver (built by tests/k8s/build.sh) in a temporary directory, installs the CRDs,
creates a FlowCollector, then times `Reconciler.reconcile` in this process (wall and this process's CPU;
the API server's own CPU is not counted). Run by hand for docs/performance.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from flowlake.operator import crd_flowcollector as fc
from flowlake.operator.kube import Kube
from flowlake.operator.reconcile import Reconciler
from flowlake.operator.render import render_all

sys.path.append(str(Path(__file__).resolve().parents[1]))  # appended: the repo root's operator/ must not shadow
from tests.k8s.apiserver import BIN, Cluster, admin_client
from tests.operator.conftest import install_crds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=50)
    args = parser.parse_args()
    if not (BIN / "kube-apiserver").is_file():
        raise SystemExit(f"no kube-apiserver in {BIN}: run tests/k8s/build.sh first")
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="flowlake-operator-bench-")))
    cluster.start_etcd()
    cluster.start_apiserver()
    api = admin_client(cluster)
    try:
        kube = Kube(api, "flowlake-operator")
        install_crds(kube)
        kube.request("POST", "/apis/flows.flowlake.io/v1alpha1/flowcollectors", body={
            "apiVersion": "flows.flowlake.io/v1alpha1", "kind": "FlowCollector",
            "metadata": {"name": fc.SINGLETON}, "spec": {"namespace": "bench"}})
        collector = kube.get("FlowCollector", fc.SINGLETON)
        assert collector is not None
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.passes):
            render_all(collector)
        render_ms = (time.perf_counter() - t0) / args.passes * 1e3
        render_cpu = (time.process_time() - c0) / args.passes * 1e3
        r = Reconciler(kube)
        t0, c0 = time.perf_counter(), time.process_time()
        first = r.reconcile(collector)
        first_ms, first_cpu = (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3
        walls, cpus = [], []
        for _ in range(args.passes):
            collector = kube.get("FlowCollector", fc.SINGLETON) or collector
            t0, c0 = time.perf_counter(), time.process_time()
            r.reconcile(collector)
            walls.append((time.perf_counter() - t0) * 1e3)
            cpus.append((time.process_time() - c0) * 1e3)
        print(f"objects: {len(first.applied)}")
        print(f"render_all: {render_ms:.2f} ms wall, {render_cpu:.2f} ms CPU per pass")
        print(f"first reconcile (creates): {first_ms:.0f} ms wall, {first_cpu:.0f} ms CPU")
        print(f"drift check ({args.passes} passes): median {statistics.median(walls):.0f} ms wall, "
              f"median {statistics.median(cpus):.0f} ms CPU of the operator process")
    finally:
        api.close()
        cluster.stop()


if __name__ == "__main__":
    main()
