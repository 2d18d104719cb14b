"""KubeMetadata against the real kube-apiserver of tests/k8s: first sync time and event latency at N pods.

Usage: .venv/bin/python -P benchmarks/kube_apiserver.py [--pods 20000]
Starts etcd + kube-apiserver (built by tests/k8s/build.sh) in a temporary directory, creates the pods
through the API (8 threads, with status), then times `KubeMetadata.start()` (first LIST of every kind and
the table) and how long a newly created pod takes to reach the table. Run by hand for docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from flowlake.engine import config
from flowlake.engine.metadata.kube import KubeMetadata

sys.path.append(str(Path(__file__).resolve().parents[1]))  # appended: the repo root's operator/ must not shadow
from tests.k8s.conftest import BIN, Cluster, _grant_reader
from tests.k8s.objects import Objects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=20_000)
    args = parser.parse_args()
    if not (BIN / "kube-apiserver").is_file():
        raise SystemExit(f"no kube-apiserver in {BIN}: run tests/k8s/build.sh first")
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="flowlake-kube-bench-")))
    cluster.start_etcd()
    cluster.start_apiserver()
    try:
        _grant_reader(cluster)
        o = Objects(cluster)
        o.namespace("bulk")
        o.node("bulk-n", "192.168.1.1", zone="z")
        started = time.perf_counter()

        def make(i: int) -> None:
            o.pod("bulk", f"p-{i}", "bulk-n", "192.168.1.1", [f"10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}"])

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(make, range(args.pods)))
        print(f"created {args.pods} pods in {time.perf_counter() - started:.0f} s")
        src = KubeMetadata(config.KubernetesConfig.model_validate(
            {"enabled": True, "kubeconfig": str(cluster.kubeconfigs["reader"])}))
        started = time.perf_counter()
        synced = src.start(wait=120)
        print(f"first sync + table: {time.perf_counter() - started:.2f} s, synced={synced}, rows={src.table().height}")
        o.pod("bulk", "late", "bulk-n", "192.168.1.1", ["10.99.0.1"])
        started = time.perf_counter()
        while src.refresh().filter(pl.col("ip") == "10.99.0.1").is_empty():
            time.sleep(0.005)
        print(f"new pod in the table {time.perf_counter() - started:.3f} s after its status was set")
        src.close()
        o.close()
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
