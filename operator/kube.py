"""A thin typed layer over the Kubernetes REST API for the reconciler: server-side apply, get, list by
label, delete and status patches, by kind. Built on the kubernetes client's ApiClient (untyped, held as
Any, as engine/metadata/kube*.py do); every failure is a KubeError naming the object and the HTTP status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flowlake.engine.errors import FlowlakeError

Obj = dict[str, Any]


class KubeError(FlowlakeError):
    """A request the API server refused; `status` is the HTTP status (0 = no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Kind:
    api_version: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        ns = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{base}{ns}/{self.plural}" + (f"/{name}" if name else "")


KINDS: dict[str, Kind] = {
    "Namespace": Kind("v1", "namespaces", False),
    "ServiceAccount": Kind("v1", "serviceaccounts", True),
    "ConfigMap": Kind("v1", "configmaps", True),
    "Service": Kind("v1", "services", True),
    "ClusterRole": Kind("rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": Kind("rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "RoleBinding": Kind("rbac.authorization.k8s.io/v1", "rolebindings", True),
    "DaemonSet": Kind("apps/v1", "daemonsets", True),
    "Deployment": Kind("apps/v1", "deployments", True),
    "HorizontalPodAutoscaler": Kind("autoscaling/v2", "horizontalpodautoscalers", True),
    "NetworkPolicy": Kind("networking.k8s.io/v1", "networkpolicies", True),
    "ServiceMonitor": Kind("monitoring.coreos.com/v1", "servicemonitors", True),
    "FlowCollector": Kind("flows.flowlake.io/v1alpha1", "flowcollectors", False),
    "FlowMetric": Kind("flows.flowlake.io/v1alpha1", "flowmetrics", True),
    "CustomResourceDefinition": Kind("apiextensions.k8s.io/v1", "customresourcedefinitions", False),
}


def client_from_kubeconfig(path: str = "") -> Any:
    """An ApiClient from `path`, else $KUBECONFIG / the in-cluster account / ~/.kube/config."""
    from kubernetes import client

    from flowlake.engine.metadata import kube as engine_kube

    return client.ApiClient(engine_kube.client_configuration(path))


class Kube:
    """Requests as the operator's identity; one ApiClient, safe to share between handler threads."""

    def __init__(self, api: Any, field_manager: str) -> None:
        self.api = api
        self.field_manager = field_manager

    def request(self, method: str, path: str, *, body: Any = None, params: list[tuple[str, str]] | None = None,
                content_type: str = "application/json") -> Obj | None:
        """The JSON answer, None for 404; KubeError for any other refusal."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        m, url, hdrs, _, _ = self.api.param_serialize(method, path, query_params=params or [],
                                                      header_params=headers, auth_settings=["BearerToken"])
        try:
            resp = self.api.call_api(m, url, header_params=hdrs, body=body, _request_timeout=(5, 30)).response
        except Exception as exc:  # urllib3 connection errors and the like
            raise KubeError(f"{method} {path}: the API server did not answer ({exc})") from exc
        try:
            text = resp.data.decode("utf-8", "replace")
        finally:
            resp.release_conn()
        if resp.status == 404:
            return None
        data: Any = json.loads(text) if text.startswith("{") else {}
        if resp.status >= 400:
            raise KubeError(f"{method} {path}: HTTP {resp.status} {data.get('message', text).strip()}", resp.status)
        return dict(data)

    def apply(self, obj: Obj) -> Obj:
        """Server-side apply of `obj` with our field manager, taking over conflicting fields (force)."""
        kind = KINDS[obj["kind"]]
        path = kind.path(obj["metadata"].get("namespace"), obj["metadata"]["name"])
        out = self.request("PATCH", path, body=obj, content_type="application/apply-patch+yaml",
                           params=[("fieldManager", self.field_manager), ("force", "true")])
        if out is None:  # the namespace or the API group is not there
            raise KubeError(f"apply {obj['kind']} {obj['metadata']['name']}: not found (is its namespace or "
                            "CRD missing?)", 404)
        return out

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        return self.request("GET", KINDS[kind].path(namespace, name))

    def list(self, kind: str, label_selector: str = "", namespace: str | None = None) -> list[Obj]:
        params = [("labelSelector", label_selector)] if label_selector else []
        out = self.request("GET", KINDS[kind].path(namespace), params=params)
        return list(out["items"]) if out else []

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete with background propagation; False if it was already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        return self.request("DELETE", KINDS[kind].path(namespace, name), body=body) is not None

    def patch_status(self, kind: str, name: str, status: Obj, namespace: str | None = None) -> None:
        """Merge-patch the status subresource."""
        self.request("PATCH", KINDS[kind].path(namespace, name) + "/status", body={"status": status},
                     content_type="application/merge-patch+json")

    def crd_exists(self, name: str) -> bool:
        return self.get("CustomResourceDefinition", name) is not None

