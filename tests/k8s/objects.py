"""Creates Kubernetes objects in the test API server the way controllers and kubelets would.

Used by tests/k8s: there is no controller manager or kubelet, so owners are created explicitly (with
ownerReferences carrying their uids) and pod/ReplicaSet status is written through the status subresource.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tests.k8s.conftest import Cluster, admin_client

Ref = dict[str, Any]
_TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}


class Objects:
    """Admin-side helpers; each returns what a later object needs (an owner reference)."""

    def __init__(self, cluster: Cluster) -> None:
        self.api = admin_client(cluster)
        # Any: the client's annotations say model classes, but it takes (and we pass) plain dicts.
        self.core: Any = client.CoreV1Api(self.api)
        self.apps: Any = client.AppsV1Api(self.api)
        self.batch: Any = client.BatchV1Api(self.api)

    def close(self) -> None:
        self.api.close()

    def namespace(self, name: str) -> None:
        self.core.create_namespace({"metadata": {"name": name}})

    def node(self, name: str, internal: str, zone: str = "", external: str = "", extra: str = "") -> None:
        addresses = [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": internal}]
        addresses += [{"type": "ExternalIP", "address": external}] if external else []
        addresses += [{"type": "InternalIP", "address": extra}] if extra else []
        labels = {"topology.kubernetes.io/zone": zone} if zone else {}
        self.core.create_node({"metadata": {"name": name, "labels": labels}, "status": {"addresses": addresses}})

    @staticmethod
    def _ref(api_version: str, kind: str, obj: Any) -> Ref:
        return {"apiVersion": api_version, "kind": kind, "name": obj.metadata.name, "uid": obj.metadata.uid,
                "controller": True}

    def deployment(self, ns: str, name: str) -> Ref:
        spec = {"selector": {"matchLabels": {"app": "x"}}, "template": _TEMPLATE}
        return self._ref("apps/v1", "Deployment",
                         self.apps.create_namespaced_deployment(ns, {"metadata": {"name": name}, "spec": spec}))

    def replicaset(self, ns: str, name: str, owner: Ref | None = None, replicas: int = 1) -> Ref:
        meta: dict[str, Any] = {"name": name, **({"ownerReferences": [owner]} if owner else {})}
        spec = {"replicas": replicas, "selector": {"matchLabels": {"app": "x"}}, "template": _TEMPLATE}
        rs = self.apps.create_namespaced_replica_set(ns, {"metadata": meta, "spec": spec})
        # What the ReplicaSet controller would report.
        self.apps.patch_namespaced_replica_set_status(name, ns, [
            {"op": "replace", "path": "/status", "value": {"replicas": replicas}}])
        return self._ref("apps/v1", "ReplicaSet", rs)

    def statefulset(self, ns: str, name: str) -> Ref:
        spec = {"serviceName": name, "selector": {"matchLabels": {"app": "x"}}, "template": _TEMPLATE}
        return self._ref("apps/v1", "StatefulSet",
                         self.apps.create_namespaced_stateful_set(ns, {"metadata": {"name": name}, "spec": spec}))

    def daemonset(self, ns: str, name: str) -> Ref:
        spec = {"selector": {"matchLabels": {"app": "x"}}, "template": _TEMPLATE}
        return self._ref("apps/v1", "DaemonSet",
                         self.apps.create_namespaced_daemon_set(ns, {"metadata": {"name": name}, "spec": spec}))

    def cronjob_job(self, ns: str, cronjob: str, job: str) -> Ref:
        template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}
        cj = self.batch.create_namespaced_cron_job(ns, {"metadata": {"name": cronjob}, "spec": {
            "schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}}})
        created = self.batch.create_namespaced_job(ns, {
            "metadata": {"name": job, "ownerReferences": [self._ref("batch/v1", "CronJob", cj)]},
            "spec": {"template": template}})
        return self._ref("batch/v1", "Job", created)

    def pod(self, ns: str, name: str, node: str, host_ip: str, ips: list[str], owner: Ref | None = None,
            host_network: bool = False, phase: str = "Running") -> None:
        meta: dict[str, Any] = {"name": name, **({"ownerReferences": [owner]} if owner else {})}
        spec = {"nodeName": node, "hostNetwork": host_network, "containers": [{"name": "c", "image": "x"}]}
        self.core.create_namespaced_pod(ns, {"metadata": meta, "spec": spec})
        self.set_pod_status(ns, name, ips, host_ip, phase)

    def set_pod_status(self, ns: str, name: str, ips: list[str], host_ip: str = "", phase: str = "Running") -> None:
        """What the kubelet reports; a JSON patch, so podIPs is replaced rather than merged."""
        status: dict[str, Any] = {"phase": phase, "podIP": ips[0], "podIPs": [{"ip": ip} for ip in ips]}
        if host_ip:
            status |= {"hostIP": host_ip, "hostIPs": [{"ip": host_ip}]}
        self.core.patch_namespaced_pod_status(name, ns, [
            {"op": "add", "path": f"/status/{k}", "value": v} for k, v in status.items()])

    def delete_pod(self, ns: str, name: str) -> None:
        # Grace 0: with no kubelet to confirm, a graceful delete would leave the pod terminating forever.
        self.core.delete_namespaced_pod(name, ns, grace_period_seconds=0)

    def service(self, ns: str, name: str, cluster_ip: str) -> None:
        self.core.create_namespaced_service(ns, {"metadata": {"name": name}, "spec": {
            "clusterIP": cluster_ip, "ports": [{"port": 80}], "selector": {"app": name}}})
