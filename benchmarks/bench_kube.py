"""Kubernetes metadata: LIST of 20k pods into the store, IP-table rebuild, a burst of watch events, memory.

The objects are generated here as the JSON a real API server sends (a Deployment pod with managedFields,
~3 KB each), then fed through the same code the watch threads run (`json.loads`, `KubeStore.replace`,
`Watcher._event`), without an API server (benchmarks/kube_apiserver.py times a real one). Run with timing:
`pytest benchmarks/bench_kube.py --benchmark-enable -s` (numbers in docs/performance.md). In CI it runs
once with timing disabled, on 2k pods.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowlake.engine.metadata import kube_table
from flowlake.engine.metadata.kube_store import KubeStore
from flowlake.engine.metadata.kube_watch import Watcher, resources

pytestmark = pytest.mark.benchmark(group="kube")
NODES, PODS_PER_RS, NAMESPACES = 200, 4, 50


@pytest.fixture(scope="module")
def pods(request: pytest.FixtureRequest) -> int:
    timed = request.config.getoption("benchmark_enable") or not request.config.getoption("benchmark_disable")
    return 20_000 if timed else 2_000


def pod(i: int) -> dict[str, Any]:
    ns, rs = f"ns-{i // PODS_PER_RS % NAMESPACES}", f"app-{i // PODS_PER_RS}-7d9f8c6b5"
    ip, node = f"10.{128 + i // 65536}.{i // 256 % 256}.{i % 256}", i % NODES
    fields = {"f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}}},
              "f:spec": {"f:containers": {'k:{"name":"app"}': {".": {}, "f:image": {}, "f:ports": {}}}}}
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": f"{rs}-{i:05x}", "generateName": f"{rs}-", "namespace": ns,
                     "uid": f"00000000-0000-4000-8000-{i:012d}", "resourceVersion": str(1000 + i),
                     "creationTimestamp": "2026-11-26T08:00:00Z",
                     "labels": {"app": f"app-{i // PODS_PER_RS}", "pod-template-hash": "7d9f8c6b5", "tier": "web"},
                     "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-20T10:00:00Z"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                          "uid": f"11111111-0000-4000-8000-{i // PODS_PER_RS:012d}",
                                          "controller": True, "blockOwnerDeletion": True}],
                     "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                                        "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": fields},
                                       {"manager": "kubelet", "operation": "Update", "subresource": "status",
                                        "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}]},
        "spec": {"nodeName": f"node-{node}", "serviceAccountName": "default", "restartPolicy": "Always",
                 "containers": [{"name": "app", "image": "registry.example.com/shop/app:1.42.0",
                                 "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                 "env": [{"name": f"VAR_{k}", "value": "x" * 20} for k in range(3)],
                                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                                 "volumeMounts": [{"name": "kube-api-access", "readOnly": True,
                                                   "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
                 "volumes": [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {
                     "expirationSeconds": 3607, "path": "token"}}]}}],
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                  "effect": "NoExecute", "tolerationSeconds": 300}]},
        "status": {"phase": "Running", "hostIP": f"192.168.{node // 256}.{node % 256}",
                   "hostIPs": [{"ip": f"192.168.{node // 256}.{node % 256}"}], "podIP": ip, "podIPs": [{"ip": ip}],
                   "startTime": "2026-11-26T08:00:01Z",
                   "conditions": [{"type": t, "status": "True", "lastTransitionTime": "2026-11-26T08:00:05Z"}
                                  for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                            "PodScheduled")],
                   "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0, "started": True,
                                          "image": "registry.example.com/shop/app:1.42.0",
                                          "imageID": "registry.example.com/shop/app@sha256:" + "a" * 64,
                                          "containerID": "containerd://" + "b" * 64,
                                          "state": {"running": {"startedAt": "2026-11-26T08:00:04Z"}}}]}}


def others(pods: int) -> dict[str, list[dict[str, Any]]]:
    """Nodes, a Service per 10 pods, the ReplicaSets (metadata only) of the pods."""
    nodes = [{"metadata": {"name": f"node-{n}", "labels": {"topology.kubernetes.io/zone": f"zone-{n % 3}"}},
              "status": {"addresses": [{"type": "InternalIP", "address": f"192.168.{n // 256}.{n % 256}"},
                                       {"type": "Hostname", "address": f"node-{n}"}]}} for n in range(NODES)]
    services = [{"metadata": {"name": f"svc-{s}", "namespace": f"ns-{s % NAMESPACES}", "uid": f"svc-{s}"},
                 "spec": {"clusterIP": f"172.30.{s // 256}.{s % 256}",
                          "clusterIPs": [f"172.30.{s // 256}.{s % 256}"]}} for s in range(pods // 10)]
    replicasets = [{"metadata": {"name": f"app-{r}-7d9f8c6b5", "namespace": f"ns-{r % NAMESPACES}",
                                 "ownerReferences": [{"kind": "Deployment", "name": f"app-{r}", "controller": True}]}}
                   for r in range(pods // PODS_PER_RS)]
    return {"nodes": nodes, "services": services, "replicasets": replicasets}


def iter_pages(pods: int, page: int = 500) -> Iterator[bytes]:
    """The pod LIST as the API server pages it (JSON bytes), one page at a time as the watcher gets it."""
    for start in range(0, pods, page):
        yield json.dumps({"kind": "PodList", "metadata": {"resourceVersion": "99999"},
                          "items": [pod(i) for i in range(start, min(pods, start + page))]}).encode()


def loaded(pods: int) -> KubeStore:
    store = KubeStore(120.0)
    for kind, objs in others(pods).items():
        store.replace(kind, objs)
    store.replace("pods", (o for page in iter_pages(pods) for o in json.loads(page)["items"]))
    return store


def test_list_into_store(benchmark: Any, pods: int) -> None:
    pages = list(iter_pages(pods))

    def relist() -> KubeStore:
        store = KubeStore(120.0)
        store.replace("pods", (o for p in pages for o in json.loads(p)["items"]))  # what Watcher._pages yields
        return store

    store = benchmark(relist)
    assert store.counts()[("pods", "live")] == pods
    print(f"\nLIST {pods} pods ({sum(map(len, pages)) / 1e6:.0f} MB of JSON) -> store")


def test_table_build(benchmark: Any, pods: int) -> None:
    store = loaded(pods)
    table = benchmark(kube_table.build, store.snapshot())
    assert table.height == pods + NODES + pods // 10
    first = table.row(0, named=True)
    assert first["OwnerType"] == "Deployment" and first["Zone"] is not None
    print(f"\ntable of {table.height} rows from {pods} pods")


def test_watch_burst_then_rebuild(benchmark: Any, pods: int) -> None:
    """1000 MODIFIED events as JSON lines through the watch code, then the one rebuild they cause."""
    store = loaded(pods)
    watcher = Watcher(None, resources()["pods"], store)
    lines = [json.dumps({"type": "MODIFIED", "object": pod(i)}).encode() for i in range(0, pods, max(1, pods // 1000))]

    def burst() -> int:
        for line in lines:
            watcher._event(json.loads(line))
        return kube_table.build(store.snapshot()).height

    assert benchmark(burst) == pods + NODES + pods // 10


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def test_memory(pods: int) -> None:
    """Process RSS growth for a LIST of `pods` (untraced), then the bytes the store holds (tracemalloc)."""
    gc.collect()
    rss_before = _rss_mb()
    table = kube_table.build(loaded(pods).snapshot())
    gc.collect()
    rss_after = _rss_mb()
    tracemalloc.start()
    store = loaded(pods)
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_pod = held / pods
    print(f"\nstore for {pods} pods (+{NODES} nodes, {pods // 10} services, {pods // PODS_PER_RS} replicasets): "
          f"{held / 2**20:.1f} MB = {per_pod:.0f} B/pod (peak while listing {peak / 2**20:.0f} MB); "
          f"table {table.estimated_size() / 2**20:.1f} MB; process RSS {rss_before:.0f} -> {rss_after:.0f} MB")
    assert store.counts()[("pods", "live")] == pods
    assert per_pod < 1500, "the store keeps more than the fields it needs"
