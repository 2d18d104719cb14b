"""Status conditions from workload status (pure functions of operator/status.py) and FlowMetric verdicts
(operator/flowmetrics.py), on hand-made objects with known answers."""

from __future__ import annotations

from typing import Any

from flowlake.engine.metrics.predefined import DEFAULT_INCLUDE
from flowlake.operator import flowmetrics, status

Obj = dict[str, Any]


def ds(gen: int, seen: int, desired: int, ready: int, updated: int) -> Obj:
    return {"kind": "DaemonSet", "metadata": {"generation": gen}, "status": {
        "observedGeneration": seen, "desiredNumberScheduled": desired, "numberReady": ready,
        "updatedNumberScheduled": updated}}


def dep(replicas: int, ready: int, updated: int, conditions: list[Obj] | None = None) -> Obj:
    return {"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": replicas}, "status": {
        "observedGeneration": 2, "readyReplicas": ready, "updatedReplicas": updated, "conditions": conditions or []}}


def test_daemonset_states() -> None:
    assert status.daemonset(ds(3, 2, 4, 4, 4)) == status.State(
        "InProgress", "the DaemonSet controller has not processed generation 3 yet (observed 2)")
    assert status.daemonset(ds(3, 3, 0, 0, 0)).message.startswith("no node runs it")
    assert status.daemonset(ds(3, 3, 4, 3, 4)) == status.State("InProgress", "3/4 pods ready, 4 updated")
    assert status.daemonset(ds(3, 3, 4, 4, 4)) == status.State("Ready", "4/4 pods ready")


def test_deployment_states() -> None:
    assert status.deployment(dep(3, 3, 2)) == status.State("InProgress", "3/3 replicas ready, 2 updated")
    assert status.deployment(dep(3, 3, 3)).ok
    stuck = dep(3, 1, 3, [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                           "message": "ReplicaSet has timed out progressing."}])
    assert status.deployment(stuck) == status.State(
        "Failure", "ProgressDeadlineExceeded: ReplicaSet has timed out progressing.")
    assert status.workload(None, "the API Deployment") == status.State(
        "InProgress", "the API Deployment not created yet")


def test_conditions_aggregate_and_keep_transition_times() -> None:
    valid = status.State(status.VALID, "ok")
    comps = {"Agent": status.State("Ready", "2/2 pods ready"), "Processor": status.State("InProgress", "1/3"),
             "API": status.State("Unused", "api.enable is false")}
    first = status.conditions(comps, valid, 4, [])
    assert [(c["type"], c["status"], c["reason"]) for c in first] == [
        ("Ready", "False", "InProgress"), ("ConfigurationValid", "True", "Valid"), ("AgentReady", "True", "Ready"),
        ("ProcessorReady", "False", "InProgress"), ("APIReady", "True", "Unused")]
    assert first[0]["message"] == "Processor: 1/3" and all(c["observedGeneration"] == 4 for c in first)
    old = [{**c, "lastTransitionTime": "2020-01-01T00:00:00Z"} for c in first]
    comps["Processor"] = status.State("Ready", "3/3")
    again = {c["type"]: c for c in status.conditions(comps, valid, 5, old)}
    assert again["AgentReady"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"  # unchanged status keeps it
    assert again["ProcessorReady"]["lastTransitionTime"] != "2020-01-01T00:00:00Z"  # it flipped
    assert (again["Ready"]["status"], again["Ready"]["message"]) == ("True", "3 components ready")
    bad = status.conditions(comps, status.State("InvalidConfiguration", "filters.0.query: bad"), 5, [])
    assert (bad[0]["status"], bad[0]["reason"], bad[0]["message"]) == (
        "False", "Failure", "configuration: filters.0.query: bad")


def fm(ns: str, name: str, spec: Obj) -> Obj:
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


def test_flowmetric_verdicts() -> None:
    metrics = [
        fm("flowlake", "tcp-flows-total", {"type": "Counter", "filters": [{"field": "Proto", "value": "6"}]}),
        fm("flowlake", "dup", {"metricName": "namespace_flows_total", "type": "Counter"}),
        fm("flowlake", "no-suffix", {"type": "Counter"}),
        fm("other", "x-total", {"type": "Counter"}),
    ]
    defs, verdicts = flowmetrics.collect(metrics, "flowlake", list(DEFAULT_INCLUDE), "netobserv_")
    assert [d["metricName"] for d in defs] == ["tcp_flows_total"]
    by_name = {v.name: v for v in verdicts}
    assert by_name["tcp-flows-total"].ok and by_name["tcp-flows-total"].prometheus_name == "netobserv_tcp_flows_total"
    assert by_name["dup"].message == (
        "metrics: ['netobserv_namespace_flows_total'] defined more than once (metrics.include and "
        "metrics.definitions); rename the custom definition or drop it from include")
    assert by_name["no-suffix"].message.startswith("metric 'no_suffix': metricName: Counter names end in _total")
    assert not by_name["x-total"].ok and "FlowCollector namespace 'flowlake'" in by_name["x-total"].message


def test_specs_the_agent_or_processor_would_refuse() -> None:
    from flowlake.operator import reconcile
    from flowlake.operator.render import processor_config, spec_of
    from tests.operator.specs import collector

    def problem(spec: Obj) -> str:
        s = spec_of(collector(spec))
        return reconcile.check_config(s, processor_config(s, []))

    # two spellings of one network pass CEL (different strings) but not the agent's one-rule-per-CIDR map
    rules = [{"cidr": "10.0.0.0/8"}, {"cidr": "10.1.0.0/8"}]
    assert problem({"agent": {"flowFilter": {"enable": True, "rules": rules}}}) == (
        "agent.flowFilter: filter rule 1: a rule for 10.0.0.0/8 already exists (one rule per CIDR)")
    assert problem({"processor": {"filters": [{"query": "Proto="}]}}).startswith("filters.0.query: ")
    assert problem({"processor": {"metrics": {"includeList": ["namespace_flows_total"], "prefix": "fl_"}}}) == ""
    assert reconcile.warnings(spec_of(collector({}))) == [
        "lake.url /data/lake is on each pod's own emptyDir: the API cannot read what the processors write; set "
        "lake.persistentVolumeClaim or an object-store URL (s3://...)"]
    assert reconcile.warnings(spec_of(collector({"lake": {"persistentVolumeClaim": "lake"}}))) == []
    assert reconcile.warnings(spec_of(collector({"lake": {"url": "s3://b/lake"}}))) == []
