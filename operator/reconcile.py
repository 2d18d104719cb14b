"""Reconciliation: FlowCollector (+ FlowMetrics) -> applied objects, pruned leftovers and status; called by
the Kopf handlers (create, update, resume, timer, FlowMetric changes) and the delete handler.

Every object is rendered by `render.render_all` and applied with server-side apply under one field
manager; objects carrying our labels that are no longer rendered (OnHold workloads, a model change,
a disabled API) are deleted. The processor config is loaded with the engine's own pydantic model
before anything is applied, so a spec the processor would refuse never reaches the pods.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from flowlake.agent import filters as agent_filters
from flowlake.engine import config as engine_config
from flowlake.engine.errors import ConfigError
from flowlake.engine.metrics import predefined
from flowlake.engine.transport import kafka_options
from flowlake.operator import crd_flowcollector as fc
from flowlake.operator import flowmetrics, status
from flowlake.operator.kube import Kube, KubeError
from flowlake.operator.render import MANAGED, render_all, spec_of
from flowlake.operator.render import agent as render_agent
from flowlake.operator.render import config as render_config
from flowlake.operator.render.common import AGENT, API, COLLECTOR_LABEL, PROCESSOR

Obj = dict[str, Any]
log = logging.getLogger("flowlake.operator")
SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"
# Prune and delete order: workloads first, the namespace and cluster-wide RBAC last.
PRUNED_KINDS = ("Deployment", "DaemonSet", "HorizontalPodAutoscaler", "ServiceMonitor", "NetworkPolicy", "Service",
                "ConfigMap", "ServiceAccount", "RoleBinding", "ClusterRoleBinding", "ClusterRole", "Namespace")


@dataclass
class Outcome:
    """What a reconciliation did: `problem` is set when the spec was refused (the handler reports it)."""

    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    problem: str = ""
    conditions: list[Obj] = field(default_factory=list)


def _key(obj: Obj) -> str:
    m = obj["metadata"]
    return f"{obj['kind']}/{m['namespace']}/{m['name']}" if m.get("namespace") else f"{obj['kind']}/{m['name']}"


def selector_for(name: str) -> str:
    return ",".join(f"{k}={v}" for k, v in {**MANAGED, COLLECTOR_LABEL: name}.items())


def check_agent(spec: Obj) -> str:
    """'' when the agent would accept its rendered filter rules, else its message (e.g. two CIDRs that are
    the same network, 10.0.0.0/8 and 10.1.0.0/8, which CEL cannot compare)."""
    rules = render_agent.filter_rules(spec)
    if not rules:
        return ""
    try:
        agent_filters.parse(rules)
    except ConfigError as exc:
        return f"agent.flowFilter: {exc}"
    return ""


def check_config(spec: Obj, cfg: Obj) -> str:
    """'' when the engine accepts `cfg`, else its message. The Kafka ingest URL is parsed without reading
    the SASL files it names: those are mounted in the processor pods, not here."""
    problem = check_agent(spec)
    if problem:
        return problem
    to_check = dict(cfg)
    if cfg["ingest"] != "grpc":
        try:
            kafka_options.parse_url(cfg["ingest"], ("group",))
        except ConfigError as exc:
            return f"processor ingest: {exc}"
        to_check["ingest"] = "grpc"
    try:
        engine_config.ProcessorConfig.model_validate(to_check)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return ""


def warnings(spec: Obj) -> list[str]:
    """What works but not as the user probably expects; reported in ConfigurationValid (still True)."""
    out = []
    lake = spec["lake"]
    if lake["enable"] and spec["api"]["enable"] and not lake["persistentVolumeClaim"] and "://" not in lake["url"]:
        out.append(f"lake.url {lake['url']} is on each pod's own emptyDir: the API cannot read what the processors "
                   "write; set lake.persistentVolumeClaim or an object-store URL (s3://...)")
    return out


class Reconciler:
    """One per operator process; a lock serializes reconciliations from handlers and timers."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._lock = threading.Lock()

    def reconcile(self, collector: Obj) -> Outcome:
        with self._lock:
            return self._reconcile(collector)

    def _reconcile(self, collector: Obj) -> Outcome:
        meta = collector["metadata"]
        generation = int(meta.get("generation", 0))
        previous = list(collector.get("status", {}).get("conditions", []))
        out = Outcome()
        if meta["name"] != fc.SINGLETON:
            out.problem = (f"FlowCollector {meta['name']!r} is ignored: there is one FlowCollector per cluster and it "
                           f"must be named {fc.SINGLETON!r}; delete this one and put its spec in {fc.SINGLETON!r}")
            self._write_status(collector, {}, status.State("WrongName", out.problem), generation, previous, out)
            return out
        spec = spec_of(collector)
        metrics = self.kube.list("FlowMetric")
        p = spec["processor"]["metrics"]
        include = list(p.get("includeList", predefined.DEFAULT_INCLUDE))
        definitions, verdicts = flowmetrics.collect(metrics, spec["namespace"], include, p["prefix"])
        for v in verdicts:
            self._flowmetric_status(v)
        cfg = render_config.processor_config(spec, definitions)
        problem = check_config(spec, cfg)
        if problem:
            out.problem = f"the agent or the processor would refuse this spec: {problem}"
            self._write_status(collector, {}, status.State("InvalidConfiguration", out.problem), generation,
                               previous, out)
            return out
        desired = render_all(collector, metric_definitions=definitions,
                             service_monitor=self.kube.crd_exists(SERVICE_MONITOR_CRD))
        live: dict[str, Obj] = {}
        failures = []
        for obj in desired:
            try:
                live[_key(obj)] = self.kube.apply(obj)
                out.applied.append(_key(obj))
            except KubeError as exc:
                failures.append(str(exc))
        out.deleted = self._prune(meta["name"], {_key(o) for o in desired})
        notes = warnings(spec)
        if failures:
            config_state = status.State(status.FAILURE, "; ".join(failures))
        elif notes:
            config_state = status.State(status.WARNINGS, "; ".join(notes))
        else:
            config_state = status.State(status.VALID, "the processor accepts the rendered configuration")
        components = self._components(spec, live)
        self._write_status(collector, components, config_state, generation, previous, out)
        return out

    def _components(self, spec: Obj, live: dict[str, Obj]) -> dict[str, status.State]:
        ns = spec["namespace"]
        if spec["execution"]["mode"] == "OnHold":
            hold = status.State(status.ON_HOLD, "execution.mode is OnHold")
            api = hold if spec["api"]["enable"] else status.State(status.UNUSED, "api.enable is false")
            return {"Agent": hold, "Processor": hold, "API": api}
        kind = "DaemonSet" if spec["deploymentModel"] == "Direct" else "Deployment"
        out = {"Agent": status.workload(live.get(f"DaemonSet/{ns}/{AGENT}"), "the agent DaemonSet"),
               "Processor": status.workload(live.get(f"{kind}/{ns}/{PROCESSOR}"), f"the processor {kind}")}
        out["API"] = status.workload(live.get(f"Deployment/{ns}/{API}"), "the API Deployment") \
            if spec["api"]["enable"] else status.State(status.UNUSED, "api.enable is false")
        return out

    def _prune(self, name: str, keep: set[str]) -> list[str]:
        deleted = []
        for kind in PRUNED_KINDS:
            if kind == "ServiceMonitor" and not self.kube.crd_exists(SERVICE_MONITOR_CRD):
                continue
            for obj in self.kube.list(kind, selector_for(name)):
                obj.setdefault("kind", kind)
                if _key(obj) not in keep and "deletionTimestamp" not in obj["metadata"]:
                    self.kube.delete(kind, obj["metadata"]["name"], obj["metadata"].get("namespace"))
                    deleted.append(_key(obj))
        return deleted

    def refresh_status(self, name: str) -> list[Obj]:
        """Conditions from the workloads as they are now, without applying anything (a workload's status
        changed); the configuration verdict of the last reconciliation is kept. [] when there is nothing to do."""
        with self._lock:
            collector = self.kube.get("FlowCollector", name)
            if collector is None or "deletionTimestamp" in collector["metadata"]:
                return []
            previous = list(collector.get("status", {}).get("conditions", []))
            config = next((c for c in previous if c["type"] == "ConfigurationValid"), None)
            if config is None or config["status"] != "True":  # not reconciled yet, or refused: nothing to add
                return []
            spec = spec_of(collector)
            live = {}
            for kind, comp in (("DaemonSet", AGENT), ("DaemonSet", PROCESSOR), ("Deployment", PROCESSOR),
                               ("Deployment", API)):
                obj = self.kube.get(kind, comp, spec["namespace"])
                if obj is not None:
                    live[f"{kind}/{spec['namespace']}/{comp}"] = {**obj, "kind": kind}
            out = Outcome()
            self._write_status(collector, self._components(spec, live),
                               status.State(config["reason"], config["message"]),
                               int(collector["metadata"].get("generation", 0)), previous, out)
            return out.conditions

    def delete_all(self, name: str) -> list[str]:
        """Everything made for FlowCollector `name`, explicitly (no garbage collector is assumed)."""
        with self._lock:
            return self._prune(name, set())

    def _write_status(self, collector: Obj, components: dict[str, status.State], config: status.State,
                      generation: int, previous: list[Obj], out: Outcome) -> None:
        out.conditions = status.conditions(components, config, generation, previous)
        ready = out.conditions[0]
        body = {"observedGeneration": generation, "conditions": out.conditions,
                "namespace": spec_of(collector)["namespace"], "message": ready["message"]}
        if {k: collector.get("status", {}).get(k) for k in body} != body:
            self.kube.patch_status("FlowCollector", collector["metadata"]["name"], body)

    def _flowmetric_status(self, v: flowmetrics.Verdict) -> None:
        current = self.kube.get("FlowMetric", v.name, v.namespace)
        if current is None:
            return
        previous = list(current.get("status", {}).get("conditions", []))
        cond = status.condition("Ready", v.ok, "Ready" if v.ok else "Invalid", v.message,
                                int(current["metadata"].get("generation", 0)), previous)
        body = {"conditions": [cond], "prometheusName": v.prometheus_name}
        if current.get("status") != body:
            self.kube.patch_status("FlowMetric", v.name, body, v.namespace)

