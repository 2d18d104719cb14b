"""The API Deployment and Service (`flowlake api` over the lake); called by render.render_all.

The arguments are flags of `flowlake.api.cli` (a test parses them with its real parser).
"""

from __future__ import annotations

from typing import Any

from flowlake.operator.render.common import API, DATA, ETC, Obj, container_security, meta, pod_security, selector
from flowlake.operator.render.processor import lake_env_from, lake_volume

TOKENS_DIR = f"{ETC}/auth"
# `flowlake api --kube-auth` (api/auth.py KubeAuthenticator): what it asks the API server, and what it checks.
API_RULES: tuple[Obj, ...] = (
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]},
)
KUBE_GROUP, KUBE_RESOURCE, KUBE_VERB = "flows.flowlake.io", "flows", "get"


def args(spec: Obj) -> list[str]:
    api = spec["api"]
    out = ["--lake", spec["lake"]["url"], "--host", "0.0.0.0", "--port", str(api["port"])]
    if api["auth"]["type"] == "Tokens":
        out += ["--tokens", f"{TOKENS_DIR}/{api['auth']['tokensSecret']['key']}"]
    elif api["auth"]["type"] == "Kubernetes":
        out.append("--kube-auth")
    return out


def deployment(collector: Obj, spec: Obj) -> Obj:
    api = spec["api"]
    volumes = [lake_volume(spec), {"name": "tmp", "emptyDir": {}}]  # /tmp: the root file system is read-only
    mounts = [{"name": "lake", "mountPath": DATA, "readOnly": True}, {"name": "tmp", "mountPath": "/tmp"}]
    if api["auth"]["type"] == "Tokens":
        ref = api["auth"]["tokensSecret"]
        volumes.append({"name": "tokens", "secret": {"secretName": ref["name"],
                                                     "items": [{"key": ref["key"], "path": ref["key"]}]}})
        mounts.append({"name": "tokens", "mountPath": TOKENS_DIR, "readOnly": True})
    container: Obj = {
        "name": "api", "image": spec["image"], "imagePullPolicy": spec["imagePullPolicy"],
        "command": ["flowlake", "api"], "args": args(spec),
        "ports": [{"name": "http", "containerPort": api["port"], "protocol": "TCP"}],
        "resources": api["resources"], "securityContext": container_security(), "volumeMounts": mounts,
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 30},
    }
    env_from = lake_env_from(spec)
    if env_from:
        container["envFrom"] = env_from
    labels = meta(collector, API, API, None)["labels"]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(collector, API, API, spec["namespace"]),
            "spec": {"replicas": api["replicas"], "selector": {"matchLabels": selector(API)},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"serviceAccountName": API,
                                           # only --kube-auth talks to the API server
                                           "automountServiceAccountToken": api["auth"]["type"] == "Kubernetes",
                                           "securityContext": pod_security(), "containers": [container],
                                           "volumes": volumes}}}}


def service(collector: Obj, spec: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(collector, API, API, spec["namespace"]),
            "spec": {"selector": selector(API),
                     "ports": [{"name": "http", "port": spec["api"]["port"], "targetPort": "http", "protocol": "TCP"}]}}


def _rbac(kind: str, m: Obj, **body: Any) -> Obj:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": m, **body}


def _subjects(users: list[str], groups: list[str]) -> list[Obj]:
    return [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in users] + \
        [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups]


def kube_auth_rbac(collector: Obj, spec: Obj) -> list[Obj]:
    """auth Kubernetes: what the API's service account needs (TokenReview, SubjectAccessReview, namespaces), the
    ClusterRole that grants reading flows, bound cluster-wide to adminGroups and per namespace to each tenant."""
    ns, api = spec["namespace"], spec["api"]
    name, reader = f"{API}-{ns}", f"flowlake-flows-reader-{ns}"
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole"}
    out = [
        _rbac("ClusterRole", meta(collector, name, API, None), rules=[dict(r) for r in API_RULES]),
        _rbac("ClusterRoleBinding", meta(collector, name, API, None), roleRef={**ref, "name": name},
              subjects=[{"kind": "ServiceAccount", "name": API, "namespace": ns}]),
        _rbac("ClusterRole", meta(collector, reader, API, None), rules=[
            {"apiGroups": [KUBE_GROUP], "resources": [KUBE_RESOURCE], "verbs": [KUBE_VERB]}]),
    ]
    if api["auth"]["adminGroups"]:
        out.append(_rbac("ClusterRoleBinding", meta(collector, f"{reader}-admins", API, None),
                         roleRef={**ref, "name": reader}, subjects=_subjects([], api["auth"]["adminGroups"])))
    for tenant in api["tenants"]:
        for tns in tenant["namespaces"]:
            out.append(_rbac("RoleBinding", meta(collector, f"flowlake-tenant-{tenant['name']}", API, tns),
                             roleRef={**ref, "name": reader},
                             subjects=_subjects(tenant["users"], tenant["groups"])))
    return out
