"""KubeMetadata against a real kube-apiserver: identities, updates, deletions, watch expiry, restarts,
RBAC, and the processor enriching flows from it."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

from flowlake.engine import config, selfmetrics
from flowlake.engine.metadata.base import IDENTITY_COLUMNS
from flowlake.engine.metadata.kube import KubeMetadata
from flowlake.engine.metadata.kube_watch import Watcher
from flowlake.engine.processor import Processor
from flowlake.engine.sinks.memory import MemorySink
from tests.conftest import make_batch
from tests.k8s.conftest import Cluster, wait_until
from tests.k8s.objects import Objects

pytestmark = pytest.mark.slow
Row = tuple[str | None, ...]


class Clock:
    """An injectable clock for the deleted-object grace period."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def objects(cluster: Cluster) -> Iterator[Objects]:
    o = Objects(cluster)
    yield o
    o.close()


def kube_config(cluster: Cluster, user: str = "reader", **settings: object) -> config.KubernetesConfig:
    return config.KubernetesConfig.model_validate({"enabled": True, "kubeconfig": str(cluster.kubeconfigs[user]),
                                                   "sync_timeout_seconds": 20, **settings})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source(cluster: Cluster, clock: Clock) -> Iterator[KubeMetadata]:
    src = KubeMetadata(kube_config(cluster), clock=clock)
    assert src.start(), "the first list of every kind did not complete"
    yield src
    src.close()


def rows(table: pl.DataFrame, ips: set[str]) -> list[Row]:
    return sorted(table.filter(pl.col("ip").is_in(sorted(ips))).select("ip", *IDENTITY_COLUMNS).rows())


def identity(src: KubeMetadata, ip: str) -> Row | None:
    found = rows(src.refresh(), {ip})
    return found[0][1:] if found else None


def settle(src: KubeMetadata, ip: str, expected: Row | None, what: str) -> None:
    """Wait until the watches delivered what makes `ip` resolve to `expected`."""
    wait_until(lambda: identity(src, ip) == expected, 15, f"{what}: {ip} -> {expected}")


def counter(metric: object, **labels: str) -> float:
    value = selfmetrics.REGISTRY.get_sample_value(metric, labels)  # type: ignore[arg-type]
    return value or 0.0


def test_identities_of_pods_nodes_services(cluster: Cluster, objects: Objects) -> None:
    o, ns = objects, "shop"
    o.namespace(ns)
    o.node("idn-a", "192.168.50.1", zone="zone-a", external="203.0.113.1")
    o.node("idn-b", "192.168.50.2", zone="zone-b")
    o.node("idn-c", "192.168.50.3")
    rs = o.replicaset(ns, "web-5d8f", owner=o.deployment(ns, "web"), replicas=2)
    o.pod(ns, "web-5d8f-aaaaa", "idn-a", "192.168.50.1", ["10.244.1.10", "fd00:10:244:1:0::a"], owner=rs)
    o.pod(ns, "web-5d8f-bbbbb", "idn-b", "192.168.50.2", ["10.244.2.10"], owner=rs)
    o.pod(ns, "lone-x", "idn-c", "192.168.50.3", ["10.244.3.10"], owner=o.replicaset(ns, "lone"))
    o.pod(ns, "db-0", "idn-b", "192.168.50.2", ["10.244.2.11"], owner=o.statefulset(ns, "db"))
    o.pod(ns, "nightly-2900-abcde", "idn-a", "192.168.50.1", ["10.244.1.11"],
          owner=o.cronjob_job(ns, "nightly", "nightly-2900"))
    o.pod(ns, "agent-q7x", "idn-a", "192.168.50.1", ["10.244.1.12"], owner=o.daemonset(ns, "agent"))
    o.pod(ns, "debug", "idn-c", "192.168.50.3", ["10.244.3.11"])
    o.pod(ns, "proxy-a", "idn-a", "192.168.50.1", ["192.168.50.1"], host_network=True)
    o.pod(ns, "proxy-c", "idn-c", "192.168.50.3", ["192.168.50.33"], host_network=True)
    o.pod(ns, "done", "idn-c", "192.168.50.3", ["10.244.3.12"], phase="Succeeded")
    o.service(ns, "web", "10.96.100.10")
    o.service(ns, "db", "None")  # headless: no address of its own
    node_a = ("idn-a", "Node", None, "idn-a", "Node", "192.168.50.1", "idn-a", "zone-a")
    web = ("shop", "web", "Deployment")
    expected = sorted([
        ("10.244.1.10", "web-5d8f-aaaaa", "Pod", *web, "192.168.50.1", "idn-a", "zone-a"),
        ("fd00:10:244:1::a", "web-5d8f-aaaaa", "Pod", *web, "192.168.50.1", "idn-a", "zone-a"),
        ("10.244.2.10", "web-5d8f-bbbbb", "Pod", *web, "192.168.50.2", "idn-b", "zone-b"),
        ("10.244.3.10", "lone-x", "Pod", "shop", "lone", "ReplicaSet", "192.168.50.3", "idn-c", None),
        ("10.244.2.11", "db-0", "Pod", "shop", "db", "StatefulSet", "192.168.50.2", "idn-b", "zone-b"),
        ("10.244.1.11", "nightly-2900-abcde", "Pod", "shop", "nightly", "CronJob", "192.168.50.1", "idn-a", "zone-a"),
        ("10.244.1.12", "agent-q7x", "Pod", "shop", "agent", "DaemonSet", "192.168.50.1", "idn-a", "zone-a"),
        ("10.244.3.11", "debug", "Pod", "shop", "debug", "Pod", "192.168.50.3", "idn-c", None),
        ("192.168.50.1", *node_a),
        ("203.0.113.1", *node_a),
        ("192.168.50.2", "idn-b", "Node", None, "idn-b", "Node", "192.168.50.2", "idn-b", "zone-b"),
        ("192.168.50.3", "idn-c", "Node", None, "idn-c", "Node", "192.168.50.3", "idn-c", None),
        ("192.168.50.33", "idn-c", "Node", None, "idn-c", "Node", "192.168.50.3", "idn-c", None),
        ("10.96.100.10", "web", "Service", "shop", "web", "Service", None, None, None),
    ])
    src = KubeMetadata(kube_config(cluster))  # started after the objects exist: the first LIST has them all
    try:
        assert src.start()
        ips = {r[0] for r in expected if r[0]} | {"10.244.3.12"}
        assert rows(src.table(), ips) == expected
        objects_held = selfmetrics.REGISTRY.get_sample_value("flowlake_kube_objects", {"kind": "pods",
                                                                                       "state": "live"})
        assert objects_held is not None and objects_held >= 9  # the Succeeded pod is not held
    finally:
        src.close()


def test_ip_change_delete_grace_and_reuse(objects: Objects, source: KubeMetadata, clock: Clock) -> None:
    o, ns = objects, "life"
    o.namespace(ns)
    o.node("life-n", "192.168.60.1", zone="zone-l")
    on_node = ("192.168.60.1", "life-n", "zone-l")
    o.pod(ns, "p1", "life-n", "192.168.60.1", ["10.245.0.1"])
    settle(source, "10.245.0.1", ("p1", "Pod", ns, "p1", "Pod", *on_node), "a new pod")

    o.set_pod_status(ns, "p1", ["10.245.0.2"])  # an IP change: the old address is released at once
    settle(source, "10.245.0.2", ("p1", "Pod", ns, "p1", "Pod", *on_node), "the pod's new IP")
    assert identity(source, "10.245.0.1") is None

    o.delete_pod(ns, "p1")
    wait_until(lambda: source.store.counts()[("pods", "deleted")] >= 1, 15, "the DELETED event")
    clock.now += 119  # within the grace period the deleted pod still enriches late flows
    assert identity(source, "10.245.0.2") == ("p1", "Pod", ns, "p1", "Pod", *on_node)
    clock.now += 2
    assert identity(source, "10.245.0.2") is None

    o.pod(ns, "p2", "life-n", "192.168.60.1", ["10.245.0.3"])
    settle(source, "10.245.0.3", ("p2", "Pod", ns, "p2", "Pod", *on_node), "p2")
    o.delete_pod(ns, "p2")
    o.pod(ns, "p3", "life-n", "192.168.60.1", ["10.245.0.3"])  # reuses the IP of p2, in its grace period
    settle(source, "10.245.0.3", ("p3", "Pod", ns, "p3", "Pod", *on_node), "the IP's new owner")

    o.set_pod_status(ns, "p3", ["10.245.0.3"], phase="Succeeded")  # finished: its IP is free, after grace
    wait_until(lambda: source.store.counts()[("pods", "deleted")] >= 2, 15, "p3 counted as gone")
    assert identity(source, "10.245.0.3") == ("p3", "Pod", ns, "p3", "Pod", *on_node)
    clock.now += 121
    assert identity(source, "10.245.0.3") is None


def _compact_etcd(cluster: Cluster) -> None:
    """Compact etcd at its current revision, as kube-apiserver does every 5 minutes."""
    def post(path: str, body: dict[str, object]) -> dict[str, Any]:
        req = urllib.request.Request(f"http://127.0.0.1:{cluster.etcd_port}/v3/kv/{path}",
                                     data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            return dict(json.loads(resp.read()))

    revision = post("range", {"key": "AA=="})["header"]["revision"]
    post("compaction", {"revision": revision, "physical": True})


def test_expired_watch_relists_and_sees_missed_changes(cluster: Cluster, objects: Objects,
                                                       source: KubeMetadata, clock: Clock) -> None:
    o, ns = objects, "expiry"
    o.namespace(ns)
    o.node("exp-n", "192.168.70.1")
    on_node = ("192.168.70.1", "exp-n", None)
    o.pod(ns, "gone", "exp-n", "192.168.70.1", ["10.246.0.1"])
    settle(source, "10.246.0.1", ("gone", "Pod", ns, "gone", "Pod", *on_node), "the pod to delete")

    pods = source.watchers["pods"]
    pods.stop()  # the processor is away: what happens now is not seen as events
    old_version = pods.resource_version
    o.delete_pod(ns, "gone")
    o.pod(ns, "new", "exp-n", "192.168.70.1", ["10.246.0.2"])
    _compact_etcd(cluster)
    cluster.restart_apiserver()  # a fresh watch cache starts after old_version: that version is gone (410)

    expired = counter("flowlake_kube_relists_total", kind="pods", reason="expired")
    resumed = Watcher(pods.api, pods.resource, source.store)
    resumed.resource_version = old_version  # resume where the stopped watch was, as client-go would
    source.watchers["pods"] = resumed
    resumed.start()
    wait_until(lambda: counter("flowlake_kube_relists_total", kind="pods", reason="expired") > expired, 30,
               "a relist after 410 Gone")
    settle(source, "10.246.0.2", ("new", "Pod", ns, "new", "Pod", *on_node), "the pod created while away")
    # Deleted while away: the relist marks it deleted, so it still enriches for the grace period.
    assert identity(source, "10.246.0.1") == ("gone", "Pod", ns, "gone", "Pod", *on_node)
    clock.now += 121
    assert identity(source, "10.246.0.1") is None


def test_api_server_restart(cluster: Cluster, objects: Objects, source: KubeMetadata) -> None:
    o, ns = objects, "restart"
    o.namespace(ns)
    o.node("rst-n", "192.168.80.1")
    on_node = ("192.168.80.1", "rst-n", None)
    o.pod(ns, "before", "rst-n", "192.168.80.1", ["10.247.0.1"])
    settle(source, "10.247.0.1", ("before", "Pod", ns, "before", "Pod", *on_node), "a pod")

    errors = counter("flowlake_kube_watch_errors_total", kind="pods")
    cluster.stop_apiserver()
    try:
        wait_until(lambda: counter("flowlake_kube_watch_errors_total", kind="pods") > errors, 30,
                   "the watch noticing the API server is gone")
        # Meanwhile flows keep being enriched from the last table.
        assert identity(source, "10.247.0.1") == ("before", "Pod", ns, "before", "Pod", *on_node)
    finally:
        cluster.start_apiserver()
    o.pod(ns, "after", "rst-n", "192.168.80.1", ["10.247.0.2"])
    settle(source, "10.247.0.2", ("after", "Pod", ns, "after", "Pod", *on_node), "a pod created after the restart")


def test_node_name_restricts_pods(cluster: Cluster, objects: Objects, monkeypatch: pytest.MonkeyPatch) -> None:
    o, ns = objects, "direct"
    o.namespace(ns)
    o.node("dir-a", "192.168.90.1")
    o.node("dir-b", "192.168.90.2")
    o.pod(ns, "here", "dir-a", "192.168.90.1", ["10.248.0.1"])
    o.pod(ns, "there", "dir-b", "192.168.90.2", ["10.248.0.2"])
    o.service(ns, "svc", "10.96.90.1")
    monkeypatch.setenv("FLOWLAKE_TEST_NODE", "dir-a")
    src = KubeMetadata(kube_config(cluster, node_name="$FLOWLAKE_TEST_NODE"))
    try:
        assert src.start()
        found = {r[0]: r[2] for r in rows(src.table(), {"10.248.0.1", "10.248.0.2", "192.168.90.2", "10.96.90.1"})}
        assert found == {"10.248.0.1": "Pod", "192.168.90.2": "Node", "10.96.90.1": "Service"}
    finally:
        src.close()


def test_forbidden_says_which_grant_is_missing(cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "flowlake.engine.metadata")
    errors = counter("flowlake_kube_watch_errors_total", kind="services")
    src = KubeMetadata(kube_config(cluster, user="nobody"))
    try:
        assert not src.start(wait=1.0)
        assert src.table().height == 0
    finally:
        src.close()
    assert counter("flowlake_kube_watch_errors_total", kind="services") > errors
    assert "HTTP 403" in caplog.text and "grant get, list and watch on services" in caplog.text


def test_processor_enriches_flows(cluster: Cluster, objects: Objects) -> None:
    o, ns = objects, "e2e"
    o.namespace(ns)
    o.node("e2e-n", "192.168.100.1", zone="zone-e")
    rs = o.replicaset(ns, "front-6c9d", owner=o.deployment(ns, "front"))
    o.pod(ns, "front-6c9d-zz9", "e2e-n", "192.168.100.1", ["10.249.0.1"], owner=rs)
    o.service(ns, "backend", "10.96.200.2")
    cfg = config.load(None, stages=["enrich"], sinks=["memory"], cluster_name="test-cluster",
                      kubernetes={"enabled": True, "kubeconfig": str(cluster.kubeconfigs["reader"])})
    proc = Processor(cfg)
    try:
        sink = proc.sinks[0]
        assert isinstance(sink, MemorySink)
        src = ["10.249.0.1", "192.168.100.1", "10.249.0.1", "8.8.8.8"]
        dst = ["10.96.200.2", "10.249.0.1", "8.8.8.8", "10.96.200.2"]
        proc.ingest(make_batch(4, SrcAddr=src, DstAddr=dst), "test")
        proc.flush()
        out = sink.frame()
    finally:
        proc.close()
    pod = ("front-6c9d-zz9", "Pod", ns, "front", "Deployment", "192.168.100.1", "e2e-n", "zone-e")
    node = ("e2e-n", "Node", None, "e2e-n", "Node", "192.168.100.1", "e2e-n", "zone-e")
    service = ("backend", "Service", ns, "backend", "Service", None, None, None)
    none = (None,) * len(IDENTITY_COLUMNS)
    for side, expected in (("Src", [pod, node, pod, none]), ("Dst", [service, pod, none, service])):
        got = out.select(f"{side}K8S_{c}" for c in IDENTITY_COLUMNS).rows()
        assert got == expected, side
    assert out.get_column("K8S_ClusterName").to_list() == ["test-cluster"] * 4
