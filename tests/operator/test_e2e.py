"""The operator end to end on a real kube-apiserver + etcd (no nodes, no controllers: pods never start and
nothing garbage-collects; workload readiness is faked through the status subresource). `flowlake operator run`
runs as a subprocess under its own ServiceAccount with deploy/'s ClusterRole, drift check every second.

The tests share one FlowCollector `cluster` and run in file order, each starting from where the previous
one left it: create -> FlowMetrics -> readiness -> edit -> drift -> ServiceMonitor -> Direct model ->
Kafka model with an HPA and Kubernetes auth -> OnHold -> refused config -> delete.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowlake.operator import crd_flowcollector as fc
from flowlake.operator.kube import KINDS, Kube
from flowlake.operator.reconcile import PRUNED_KINDS, Reconciler, selector_for
from flowlake.operator.render import render_all, spec_of
from flowlake.operator.render.common import CONFIG_HASH, digest
from flowlake.operator.render.config import processor_config, to_yaml
from tests.k8s.apiserver import wait_until
from tests.operator.conftest import log_tail

pytestmark = pytest.mark.slow
Obj = dict[str, Any]
NS = "flowlake-e2e"
SPEC: Obj = {"namespace": NS, "processor": {"replicas": 2}, "agent": {"sampling": 20}}
FC_PATH = "/apis/flows.flowlake.io/v1alpha1/flowcollectors"
SM_CRD = "servicemonitors.monitoring.coreos.com"
WAIT = 60.0  # generous: CI runs this next to every other suite on 2 cores
DNS_ERRORS = {"type": "Counter", "labels": ["SrcK8S_Namespace"],
              "filters": [{"field": "DnsFlagsResponseCode", "value": "NoError", "matchType": "NotEqual"}]}


def collector(kube: Kube) -> Obj:
    out = kube.get("FlowCollector", fc.SINGLETON)
    assert out is not None
    return out


def condition(kube: Kube, ctype: str) -> Obj:
    return next((c for c in collector(kube).get("status", {}).get("conditions", []) if c["type"] == ctype), {})


def live_keys(kube: Kube) -> set[str]:
    kinds = [k for k in PRUNED_KINDS if k != "ServiceMonitor" or kube.crd_exists(SM_CRD)]
    out = set()
    for kind in kinds:
        for o in kube.list(kind, selector_for(fc.SINGLETON)):
            m = o["metadata"]
            out.add(f"{kind}/{m['namespace']}/{m['name']}" if m.get("namespace") else f"{kind}/{m['name']}")
    return out


def key(o: Obj) -> str:
    m = o["metadata"]
    return f"{o['kind']}/{m['namespace']}/{m['name']}" if m.get("namespace") else f"{o['kind']}/{m['name']}"


def desired(kube: Kube, definitions: list[Obj] | None = None) -> list[Obj]:
    return render_all(collector(kube), metric_definitions=definitions, service_monitor=kube.crd_exists(SM_CRD))


def get(kube: Kube, kind: str, name: str, ns: str | None = NS) -> Obj | None:
    return kube.get(kind, name, ns if KINDS[kind].namespaced else None)


def subset(want: Any, got: Any, where: str = "") -> list[str]:
    """Differences where `got` (the live object) does not hold `want` (the rendered one); the server adds defaults."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{where}: {got!r} is not a mapping"]
        return [d for k, v in want.items() for d in subset(v, got.get(k), f"{where}.{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{where}: {got!r} != {want!r}"]
        return [d for i, (w, g) in enumerate(zip(want, got, strict=True)) for d in subset(w, g, f"{where}[{i}]")]
    return [] if want == got else [f"{where}: {got!r} != {want!r}"]


def patch_spec(kube: Kube, patch: Obj) -> None:
    kube.request("PATCH", f"{FC_PATH}/{fc.SINGLETON}", body={"spec": patch},
                 content_type="application/merge-patch+json")


def config_text(kube: Kube) -> str:
    cm = get(kube, "ConfigMap", "flowlake-processor-config")
    return str(cm["data"]["processor.yaml"]) if cm else ""


def processor_hash(kube: Kube, kind: str = "Deployment") -> str:
    dep = get(kube, kind, "flowlake-processor")
    return str(dep["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH]) if dep else ""


def fake_status(kube: Kube, kind: str, name: str, ready: int, want: int) -> None:
    obj = get(kube, kind, name)
    assert obj is not None
    gen = obj["metadata"]["generation"]
    if kind == "DaemonSet":
        st = {"observedGeneration": gen, "desiredNumberScheduled": want, "currentNumberScheduled": want,
              "numberMisscheduled": 0, "numberReady": ready, "updatedNumberScheduled": want,
              "numberAvailable": ready}
    else:
        st = {"observedGeneration": gen, "replicas": want, "updatedReplicas": want, "readyReplicas": ready,
              "availableReplicas": ready}
    kube.patch_status(kind, name, st, NS)


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return {}


def test_apply_creates_every_object_as_rendered(operator: Path, crds_installed: Kube, state: dict[str, Any]) -> None:
    kube = crds_installed
    kube.request("POST", FC_PATH, body={"apiVersion": "flows.flowlake.io/v1alpha1", "kind": "FlowCollector",
                                        "metadata": {"name": fc.SINGLETON}, "spec": copy.deepcopy(SPEC)})
    want = {key(o) for o in desired(kube)}
    assert len(want) == 13
    wait_until(lambda: live_keys(kube) == want, WAIT, f"the 13 rendered objects (operator log: {operator})")
    live_fc = collector(kube)
    for obj in desired(kube):
        live = get(kube, obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
        assert live is not None
        assert subset(obj, live) == [], key(obj)
        assert live["metadata"]["ownerReferences"][0]["uid"] == live_fc["metadata"]["uid"]
        assert any(f["manager"] == "flowlake-operator" and f["operation"] == "Apply"
                   for f in live["metadata"]["managedFields"]), key(obj)
    assert config_text(kube) == to_yaml(processor_config(spec_of(live_fc), []))
    state["hash0"] = processor_hash(kube)


def test_flowmetrics_feed_the_processor_config(operator: Path, crds_installed: Kube, state: dict[str, Any]) -> None:
    kube = crds_installed
    base = "/apis/flows.flowlake.io/v1alpha1/namespaces/{}/flowmetrics"
    for ns, name, spec in ((NS, "dns-errors-total", DNS_ERRORS),
                           (NS, "bad", {"metricName": "bad_total", "type": "Counter", "valueField": "SrcAddr"}),
                           ("default", "elsewhere-total", DNS_ERRORS)):
        kube.request("POST", base.format(ns), body={"apiVersion": "flows.flowlake.io/v1alpha1", "kind": "FlowMetric",
                                                    "metadata": {"name": name, "namespace": ns}, "spec": spec})
    served = {**DNS_ERRORS, "metricName": "dns_errors_total", "help": "", "valueField": "", "flatten": [],
              "remap": {}, "direction": "Any", "buckets": [], "divider": "", "charts": []}
    served["filters"] = [{**DNS_ERRORS["filters"][0]}]

    def served_now() -> bool:
        return bool(yaml.safe_load(config_text(kube))["metrics"]["definitions"] == [served])

    wait_until(served_now, WAIT, "the FlowMetric in the processor config")
    new_hash = digest(processor_config(spec_of(collector(kube)), [served]))
    # the Deployment is applied just after the ConfigMap, in the same pass
    wait_until(lambda: processor_hash(kube) == new_hash, WAIT, "the processor's new config hash")
    assert new_hash != state["hash0"]

    def ready(ns: str, name: str) -> Obj:
        fm = kube.get("FlowMetric", name, ns) or {}
        return next(iter(fm.get("status", {}).get("conditions", [])), {})

    wait_until(lambda: ready("default", "elsewhere-total"), WAIT, "FlowMetric statuses")
    assert (ready(NS, "dns-errors-total")["status"], ready(NS, "dns-errors-total")["message"]) == (
        "True", "served by the processor as netobserv_dns_errors_total")
    assert ready(NS, "bad")["status"] == "False"
    assert ready(NS, "bad")["message"].startswith(
        "metric 'bad_total': valueField: 'SrcAddr' is not a numeric flow field")
    assert ready("default", "elsewhere-total")["message"] == (
        "ignored: a FlowMetric must be in the FlowCollector namespace 'flowlake-e2e'; move it there")
    kube.delete("FlowMetric", "elsewhere-total", "default")


def test_status_follows_workload_readiness(operator: Path, crds_installed: Kube) -> None:
    kube = crds_installed
    assert condition(kube, "Ready")["status"] == "False"
    assert condition(kube, "AgentReady")["message"] == (
        "the DaemonSet controller has not processed generation 1 yet (observed 0)")
    fake_status(kube, "DaemonSet", "flowlake-agent", 3, 3)
    fake_status(kube, "Deployment", "flowlake-api", 1, 1)
    fake_status(kube, "Deployment", "flowlake-processor", 1, 2)
    # what the operator's workload event handler runs: conditions from the workloads, nothing applied
    now = {c["type"]: c for c in Reconciler(kube).refresh_status(fc.SINGLETON)}
    assert (now["ProcessorReady"]["message"], now["AgentReady"]["message"], now["APIReady"]["message"]) == (
        "1/2 replicas ready, 2 updated", "3/3 pods ready", "1/1 replicas ready")
    wait_until(lambda: condition(kube, "AgentReady").get("status") == "True", WAIT, "AgentReady")
    wait_until(lambda: condition(kube, "ProcessorReady").get("message") == "1/2 replicas ready, 2 updated", WAIT,
               "ProcessorReady to count 1 of 2")
    ready = condition(kube, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False", "InProgress", "Processor: 1/2 replicas ready, 2 updated")
    assert condition(kube, "AgentReady")["message"] == "3/3 pods ready"
    fake_status(kube, "Deployment", "flowlake-processor", 2, 2)
    wait_until(lambda: condition(kube, "Ready").get("status") == "True", WAIT, "Ready")
    ready = condition(kube, "Ready")
    assert (ready["reason"], ready["message"]) == ("Ready", "3 components ready")
    fcol = collector(kube)
    assert fcol["status"]["observedGeneration"] == fcol["metadata"]["generation"]
    valid = condition(kube, "ConfigurationValid")  # True, with the default lake's warning (an emptyDir per pod)
    assert (valid["status"], valid["reason"]) == ("True", "ValidWithWarnings")
    assert valid["message"].startswith("lake.url /data/lake is on each pod's own emptyDir")


def test_edit_changes_objects_and_rolls_processor_pods(operator: Path, crds_installed: Kube,
                                                       state: dict[str, Any]) -> None:
    kube = crds_installed
    before = processor_hash(kube)
    gen_before = get(kube, "Deployment", "flowlake-processor")["metadata"]["generation"]  # type: ignore[index]
    patch_spec(kube, {"processor": {"clusterName": "east"}, "agent": {"sampling": 5}})
    wait_until(lambda: "cluster_name: east" in config_text(kube), WAIT, "the new config")
    defs = yaml.safe_load(config_text(kube))["metrics"]["definitions"]
    wait_until(lambda: processor_hash(kube) == digest(processor_config(spec_of(collector(kube)), defs)), WAIT,
               "the new config hash on the pod template")
    assert processor_hash(kube) != before
    dep = get(kube, "Deployment", "flowlake-processor")
    assert dep is not None and dep["metadata"]["generation"] == gen_before + 1  # the controller would roll pods
    agent = get(kube, "DaemonSet", "flowlake-agent")
    assert agent is not None
    args = agent["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--sampling") + 1] == "5"
    wait_until(lambda: condition(kube, "ProcessorReady").get("status") == "False", WAIT, "ProcessorReady to drop")
    assert condition(kube, "ProcessorReady")["message"] == (
        f"the Deployment controller has not processed generation {gen_before + 1} yet (observed {gen_before})")


def test_drift_is_undone(operator: Path, crds_installed: Kube) -> None:
    kube = crds_installed
    assert kube.delete("Service", "flowlake-api", NS)
    kube.request("PATCH", KINDS["Deployment"].path(NS, "flowlake-processor"), body={"spec": {"replicas": 9}},
                 params=[("fieldManager", "someone-else")], content_type="application/merge-patch+json")
    wait_until(lambda: get(kube, "Service", "flowlake-api") is not None, WAIT, "the API Service to come back")
    wait_until(lambda: get(kube, "Deployment", "flowlake-processor")["spec"]["replicas"] == 2,  # type: ignore[index]
               WAIT, "replicas back to 2")


def test_service_monitors_only_when_their_crd_exists(operator: Path, crds_installed: Kube) -> None:
    kube = crds_installed
    assert not kube.crd_exists(SM_CRD)
    kube.apply({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": SM_CRD}, "spec": {
                    "group": "monitoring.coreos.com", "scope": "Namespaced",
                    "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "listKind": "ServiceMonitorList",
                              "singular": "servicemonitor"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}})
    try:
        wait_until(lambda: {k for k in live_keys(kube) if k.startswith("ServiceMonitor/")} == {
            f"ServiceMonitor/{NS}/flowlake-processor", f"ServiceMonitor/{NS}/flowlake-agent"}, WAIT, "ServiceMonitors")
        sm = get(kube, "ServiceMonitor", "flowlake-processor")
        assert sm is not None and sm["spec"]["endpoints"] == [{"port": "metrics", "interval": "30s",
                                                              "path": "/metrics"}]
    finally:
        kube.delete("CustomResourceDefinition", SM_CRD)
        wait_until(lambda: not kube.crd_exists(SM_CRD), WAIT, "the ServiceMonitor CRD to go")


def test_model_change_swaps_the_processor_workload(operator: Path, crds_installed: Kube) -> None:
    kube = crds_installed
    patch_spec(kube, {"deploymentModel": "Direct"})
    wait_until(lambda: get(kube, "DaemonSet", "flowlake-processor") is not None
               and get(kube, "Deployment", "flowlake-processor") is None, WAIT, "the processor DaemonSet")
    ds = get(kube, "DaemonSet", "flowlake-processor")
    assert ds is not None and ds["spec"]["template"]["spec"]["hostNetwork"] is True
    svc = get(kube, "Service", "flowlake-processor")
    assert svc is not None and [p["name"] for p in svc["spec"]["ports"]] == ["metrics"]
    assert live_keys(kube) == {key(o) for o in desired(kube)}


def test_kafka_model_with_autoscaler_and_kubernetes_auth(operator: Path, crds_installed: Kube) -> None:
    """Also proves deploy/'s ClusterRole may grant what it grants (the API server's RBAC escalation check)."""
    kube = crds_installed
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop-e2e"}})
    patch_spec(kube, {"deploymentModel": "Kafka", "kafka": {"brokers": ["kafka-0.kafka:9092"]},
                      "processor": {"autoscaler": {"enable": True, "minReplicas": 2, "maxReplicas": 5}},
                      "api": {"auth": {"type": "Kubernetes", "adminGroups": ["netops"]},
                              "tenants": [{"name": "shop", "namespaces": ["shop-e2e"], "groups": ["shop-devs"]}]}})
    wait_until(lambda: get(kube, "HorizontalPodAutoscaler", "flowlake-processor") is not None
               and get(kube, "RoleBinding", "flowlake-tenant-shop", "shop-e2e") is not None, WAIT,
               f"the HPA and the tenant's RoleBinding; log: {log_tail(operator)}")
    wait_until(lambda: live_keys(kube) == {key(o) for o in desired(kube)}, WAIT, "the Kafka model's objects")
    assert condition(kube, "ConfigurationValid")["reason"] in ("Valid", "ValidWithWarnings")
    hpa = get(kube, "HorizontalPodAutoscaler", "flowlake-processor")
    assert hpa is not None and (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    binding = get(kube, "RoleBinding", "flowlake-tenant-shop", "shop-e2e")
    assert binding is not None and binding["roleRef"]["name"] == f"flowlake-flows-reader-{NS}"
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "shop-devs"}]
    api = get(kube, "Deployment", "flowlake-api")
    assert api is not None and api["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "--kube-auth"
    ingest = yaml.safe_load(config_text(kube))["ingest"]
    assert ingest == "kafka://kafka-0.kafka:9092/network-flows?compression=lz4&group=flowlake-processor"


def test_onhold_removes_workloads_and_keeps_config(operator: Path, crds_installed: Kube) -> None:
    kube = crds_installed
    cfg = config_text(kube)
    patch_spec(kube, {"execution": {"mode": "OnHold"}})
    wait_until(lambda: not any(k.split("/")[0] in ("DaemonSet", "Deployment") for k in live_keys(kube)), WAIT,
               "workloads to go")
    assert live_keys(kube) == {key(o) for o in desired(kube)}
    # 10 of the default spec without its 3 workloads, and 5 for Kubernetes auth (the API's ClusterRole and
    # binding, the flows-reader ClusterRole, the admins' binding, the tenant's RoleBinding)
    assert len(live_keys(kube)) == 15 and config_text(kube) == cfg
    wait_until(lambda: condition(kube, "Ready").get("reason") == "OnHold", WAIT, "Ready reason OnHold")
    assert condition(kube, "Ready")["message"] == "execution.mode is OnHold: workloads removed, configuration kept"
    assert condition(kube, "AgentReady")["reason"] == "OnHold"
    patch_spec(kube, {"execution": {"mode": "Running"}})
    wait_until(lambda: get(kube, "DaemonSet", "flowlake-agent") is not None, WAIT, "workloads back")


def test_refused_config_is_reported_and_not_applied(operator: Path, crds_installed: Kube) -> None:
    kube = crds_installed
    cfg = config_text(kube)
    patch_spec(kube, {"processor": {"filters": [{"query": "SrcPort >>> 3"}]}})
    wait_until(lambda: condition(kube, "ConfigurationValid").get("status") == "False", WAIT, "ConfigurationValid")
    cond = condition(kube, "ConfigurationValid")
    assert cond["reason"] == "InvalidConfiguration"
    assert cond["message"].startswith("the agent or the processor would refuse this spec: filters.0.query: ")
    assert condition(kube, "Ready")["reason"] == "Failure"
    assert config_text(kube) == cfg  # nothing applied

    def warned() -> bool:
        events = kube.request("GET", "/api/v1/namespaces/default/events",
                              params=[("fieldSelector", "involvedObject.name=cluster,type=Warning")]) or {}
        return any(e.get("reason") == "SpecRefused" and "filters.0.query" in e.get("message", "")
                   for e in events.get("items", []))

    wait_until(warned, WAIT, "a Warning event naming filters.0.query")
    patch_spec(kube, {"processor": {"filters": []}})
    wait_until(lambda: condition(kube, "ConfigurationValid").get("status") == "True", WAIT, "a valid config again")


def test_wrong_name_is_refused_by_the_reconciler(crds_installed: Kube) -> None:
    """The CRD's CEL rule refuses other names first; an operator meeting one anyway (a CRD installed without
    the rule) refuses it too, and applies nothing."""
    out = Reconciler(crds_installed).reconcile({"metadata": {"name": "other", "generation": 1}, "spec": {}})
    assert out.applied == [] and out.problem == (
        "FlowCollector 'other' is ignored: there is one FlowCollector per cluster and it must be named 'cluster'; "
        "delete this one and put its spec in 'cluster'")


def test_delete_removes_everything(operator: Path, crds_installed: Kube) -> None:
    kube = crds_installed
    uid = collector(kube)["metadata"]["uid"]
    for k in live_keys(kube):  # garbage collection would also do it, had this cluster a controller manager
        kind, *rest = k.split("/")
        obj = get(kube, kind, rest[-1], rest[0] if len(rest) == 2 else None)
        assert obj is not None and [o["uid"] for o in obj["metadata"]["ownerReferences"]] == [uid], k
    kube.request("DELETE", f"{FC_PATH}/{fc.SINGLETON}")
    wait_until(lambda: kube.get("FlowCollector", fc.SINGLETON) is None, WAIT,
               f"the FlowCollector to be gone (its finalizer removed); log: {log_tail(operator)}")
    assert live_keys(kube) == {f"Namespace/{NS}"}
    ns = kube.get("Namespace", NS)
    assert ns is not None and "deletionTimestamp" in ns["metadata"]  # Terminating: no namespace controller here
