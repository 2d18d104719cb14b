"""KubeStore, the table rules and the kubernetes config errors, without an API server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flowlake.engine.config import KubernetesConfig
from flowlake.engine.errors import ConfigError
from flowlake.engine.metadata import kube, kube_objects, kube_table
from flowlake.engine.metadata.base import TABLE_SCHEMA
from flowlake.engine.metadata.kube_store import KubeStore


def pod(uid: str, ips: list[str], *, node: str = "n1", host_ip: str = "192.168.0.1", owner: tuple[str, str] = ("", ""),
        host_network: bool = False, phase: str = "Running", ns: str = "app") -> dict[str, Any]:
    meta: dict[str, Any] = {"uid": uid, "name": f"pod-{uid}", "namespace": ns}
    if owner[0]:
        meta["ownerReferences"] = [{"kind": "Other", "name": "not-the-controller"},
                                   {"kind": owner[0], "name": owner[1], "controller": True}]
    return {"metadata": meta, "spec": {"nodeName": node, "hostNetwork": host_network},
            "status": {"phase": phase, "hostIP": host_ip, "podIPs": [{"ip": ip} for ip in ips]}}


def node(name: str, *addresses: tuple[str, str], zone: str = "") -> dict[str, Any]:
    labels = {kube_objects.ZONE_LABEL: zone} if zone else {}
    return {"metadata": {"name": name, "labels": labels},
            "status": {"addresses": [{"type": t, "address": a} for t, a in addresses]}}


def table(store: KubeStore) -> dict[str, tuple[Any, ...]]:
    return {r[0]: r[1:] for r in kube_table.build(store.snapshot()).rows()}


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> KubeStore:
    s = KubeStore(120.0, clock)
    s.replace("nodes", [node("n1", ("Hostname", "n1"), ("ExternalIP", "1.2.3.4"), ("InternalIP", "192.168.0.1"),
                             zone="z1")])
    return s


def test_node_addresses_internal_first_hostname_ignored(store: KubeStore) -> None:
    rows = table(store)
    assert set(rows) == {"192.168.0.1", "1.2.3.4"}
    assert rows["1.2.3.4"] == ("n1", "Node", None, "n1", "Node", "192.168.0.1", "n1", "z1")


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({"owner": ("ReplicaSet", "web-1")}, ("web", "Deployment"), id="replicaset-of-deployment"),
    pytest.param({"owner": ("ReplicaSet", "lone-1")}, ("lone-1", "ReplicaSet"), id="unowned-replicaset"),
    pytest.param({"owner": ("Job", "nightly-1")}, ("nightly", "CronJob"), id="job-of-cronjob"),
    pytest.param({"owner": ("StatefulSet", "db")}, ("db", "StatefulSet"), id="statefulset"),
    pytest.param({}, ("pod-p", "Pod"), id="no-owner"),
    pytest.param({"owner": ("ReplicaSet", "web-1"), "ns": "elsewhere"}, ("web-1", "ReplicaSet"),
                 id="owner-in-another-namespace-is-not-used"),
])
def test_owner_resolution(store: KubeStore, spec: dict[str, Any], expected: tuple[str, str]) -> None:
    store.replace("replicasets", [
        {"metadata": {"namespace": "app", "name": "web-1", "ownerReferences": [{"kind": "Deployment", "name": "web"}]}},
        {"metadata": {"namespace": "app", "name": "lone-1"}}])
    store.replace("jobs", [{"metadata": {"namespace": "app", "name": "nightly-1",
                                         "ownerReferences": [{"kind": "CronJob", "name": "nightly"}]}}])
    store.apply("pods", "ADDED", pod("p", ["10.0.0.1"], **spec))
    assert table(store)["10.0.0.1"][3:5] == expected


def test_host_network_pod_is_its_node(store: KubeStore) -> None:
    store.apply("pods", "ADDED", pod("h", ["192.168.0.1", "192.168.0.77"], host_network=True))
    store.apply("pods", "ADDED", pod("i", ["192.168.0.1"]))  # not flagged, but on the node's own address
    rows = table(store)
    assert rows["192.168.0.1"][:2] == ("n1", "Node")
    assert rows["192.168.0.77"] == ("n1", "Node", None, "n1", "Node", "192.168.0.1", "n1", "z1")


def test_ipv6_is_canonical_and_garbage_dropped(store: KubeStore) -> None:
    store.apply("pods", "ADDED", pod("v6", ["FD00:0:0::0A", "not-an-ip"]))
    assert "fd00::a" in table(store)
    assert "not-an-ip" not in table(store)


def test_terminal_and_deleted_pods_keep_their_ip_for_the_grace_period(store: KubeStore, clock: Clock) -> None:
    store.apply("pods", "ADDED", pod("a", ["10.0.0.1"]))
    store.apply("pods", "ADDED", pod("b", ["10.0.0.2"]))
    store.apply("pods", "DELETED", pod("a", ["10.0.0.1"]))
    store.apply("pods", "MODIFIED", pod("b", ["10.0.0.2"], phase="Failed"))
    assert store.counts()[("pods", "deleted")] == 2
    clock.now = 119.0
    assert store.expire() == 0 and {"10.0.0.1", "10.0.0.2"} <= set(table(store))
    clock.now = 121.0
    assert store.expire() == 2 and not {"10.0.0.1", "10.0.0.2"} & set(table(store))


def test_never_seen_finished_pod_is_ignored(store: KubeStore) -> None:
    store.replace("pods", [pod("done", ["10.0.0.9"], phase="Succeeded")])
    assert "10.0.0.9" not in table(store) and store.counts()[("pods", "deleted")] == 0


def test_live_owner_of_an_ip_beats_tombstones_and_newest_live_wins(store: KubeStore) -> None:
    store.apply("pods", "ADDED", pod("old", ["10.0.0.1"]))
    store.apply("pods", "DELETED", pod("old", ["10.0.0.1"]))
    store.apply("pods", "ADDED", pod("new", ["10.0.0.1"]))
    assert table(store)["10.0.0.1"][0] == "pod-new"
    store.apply("pods", "ADDED", pod("newer", ["10.0.0.1"]))  # two live pods: the later address change wins
    assert table(store)["10.0.0.1"][0] == "pod-newer"
    store.apply("pods", "MODIFIED", pod("new", ["10.0.0.1"], owner=("StatefulSet", "x")))  # no address change
    assert table(store)["10.0.0.1"][0] == "pod-newer"


def test_pod_beats_node_beats_service(store: KubeStore) -> None:
    store.replace("services", [{"metadata": {"uid": "s", "namespace": "app", "name": "svc"},
                                "spec": {"clusterIPs": ["192.168.0.1", "10.0.0.5"]}}])
    store.apply("pods", "ADDED", pod("p", ["10.0.0.5"]))
    rows = table(store)
    assert rows["192.168.0.1"][1] == "Node" and rows["10.0.0.5"][1] == "Pod"


def test_relist_marks_vanished_objects_deleted(store: KubeStore, clock: Clock) -> None:
    store.replace("pods", [pod("a", ["10.0.0.1"]), pod("b", ["10.0.0.2"])])
    store.replace("pods", [pod("b", ["10.0.0.2"]), pod("c", ["10.0.0.3"])])
    assert store.counts()[("pods", "live")] == 2 and store.counts()[("pods", "deleted")] == 1
    assert {"10.0.0.1", "10.0.0.2", "10.0.0.3"} <= set(table(store))
    clock.now = 200.0
    store.expire()
    assert "10.0.0.1" not in table(store)


def test_unchanged_event_does_not_dirty_the_table(store: KubeStore) -> None:
    store.apply("pods", "ADDED", pod("a", ["10.0.0.1"]))
    version = store.version
    store.apply("pods", "MODIFIED", pod("a", ["10.0.0.1"]))
    assert store.version == version


def test_empty_store_gives_the_table_schema() -> None:
    built = kube_table.build(KubeStore(1.0).snapshot())
    assert built.height == 0 and built.schema == pl.Schema(TABLE_SCHEMA)
    assert kube.empty_table().schema == built.schema


def test_kubeconfig_not_found_names_path_and_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope.kubeconfig"
    with pytest.raises(ConfigError, match=rf"kubernetes.kubeconfig is {missing}, which is not a file"):
        kube.client_configuration(str(missing))


def test_bad_kubeconfig_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    with pytest.raises(ConfigError, match=r"cannot use kubernetes.kubeconfig .*bad.kubeconfig"):
        kube.client_configuration(str(bad))


def test_no_api_at_all(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kube, "DEFAULT_KUBECONFIG", tmp_path / "absent")
    with pytest.raises(ConfigError, match=r"set kubernetes\.kubeconfig or \$KUBECONFIG"):
        kube.client_configuration("")


def test_node_name_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_NODE", "worker-3")
    assert kube.node_name("$MY_NODE") == "worker-3" and kube.node_name("worker-1") == "worker-1"
    monkeypatch.delenv("MY_NODE")
    with pytest.raises(ConfigError, match="MY_NODE is not set"):
        kube.node_name("$MY_NODE")


def test_config_rejects_typos() -> None:
    with pytest.raises(ValueError, match="grace"):
        KubernetesConfig.model_validate({"enabled": True, "grace": 3})
