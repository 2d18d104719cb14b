"""Namespace, ServiceAccounts, least-privilege RBAC, the NetworkPolicy, the agent's metrics Service and the
ServiceMonitors; called by render.render_all.

Only the processor talks to the Kubernetes API (its informers, `engine.metadata.kube.RBAC_RULES`); the agent
and the API run without a service-account token.
"""

from __future__ import annotations

from flowlake.engine.metadata import kube
from flowlake.operator.render.common import AGENT, API, PROCESSOR, Obj, meta, selector

NAMESPACE_LABELS = {
    # The agent needs host networking, host paths and BPF capabilities: privileged pod security.
    "pod-security.kubernetes.io/enforce": "privileged", "pod-security.kubernetes.io/audit": "privileged",
    "pod-security.kubernetes.io/warn": "privileged",
}


def namespace(collector: Obj, spec: Obj) -> Obj:
    m = meta(collector, spec["namespace"], "flowlake", None)
    m["labels"].update(NAMESPACE_LABELS)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": m}


def service_accounts(collector: Obj, spec: Obj) -> list[Obj]:
    return [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(collector, n, n, spec["namespace"])}
            for n in (AGENT, PROCESSOR, API)]


def processor_rbac(collector: Obj, spec: Obj) -> list[Obj]:
    """A ClusterRole with exactly the informers' rules, bound to the processor's ServiceAccount."""
    # Cluster-scoped names carry the namespace: two namespaces in one cluster's history never clash.
    name = f"{PROCESSOR}-{spec['namespace']}"
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": meta(collector, name, PROCESSOR, None), "rules": [dict(r) for r in kube.RBAC_RULES]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": meta(collector, name, PROCESSOR, None),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
               "subjects": [{"kind": "ServiceAccount", "name": PROCESSOR, "namespace": spec["namespace"]}]}
    return [role, binding]


def agent_metrics_service(collector: Obj, spec: Obj) -> Obj:
    port = spec["agent"]["metricsPort"]
    m = meta(collector, f"{AGENT}-metrics", AGENT, spec["namespace"])
    return {"apiVersion": "v1", "kind": "Service", "metadata": m,
            "spec": {"selector": selector(AGENT), "clusterIP": "None",
                     "ports": [{"name": "metrics", "port": port, "targetPort": "metrics", "protocol": "TCP"}]}}


def network_policy(collector: Obj, spec: Obj) -> Obj:
    """Ingress only from the namespace itself and the additional ones; the Flight port of the processor stays
    open, since agents run in the host network and their packets come from node addresses."""
    p = spec["processor"]
    peers: list[Obj] = [{"podSelector": {}}] + [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
        for ns in spec["networkPolicy"]["additionalNamespaces"]]
    rules: list[Obj] = [{"from": peers}]
    if spec["deploymentModel"] == "Service":
        rules.append({"ports": [{"port": p["port"], "protocol": "TCP"}]})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": meta(collector, "flowlake", "flowlake", spec["namespace"]),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": rules}}


def service_monitors(collector: Obj, spec: Obj) -> list[Obj]:
    out = []
    for component in (PROCESSOR, AGENT):  # each selects its component's Services by their labels
        out.append({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                    "metadata": meta(collector, component, component, spec["namespace"]),
                    "spec": {"selector": {"matchLabels": {**selector(component),
                                                          "app.kubernetes.io/part-of": "flowlake"}},
                             "namespaceSelector": {"matchNames": [spec["namespace"]]},
                             "endpoints": [{"port": "metrics", "interval": "30s", "path": "/metrics"}]}})
    return out
