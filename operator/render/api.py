"""The API Deployment and Service (`flowlake api` over the lake); called by render.render_all.

The arguments are flags of `flowlake.api.cli` (a test parses them with its real parser).
"""

from __future__ import annotations

from flowlake.operator.render.common import API, DATA, ETC, Obj, container_security, meta, pod_security, selector
from flowlake.operator.render.processor import lake_env_from, lake_volume

TOKENS_DIR = f"{ETC}/auth"


def args(spec: Obj) -> list[str]:
    api = spec["api"]
    out = ["--lake", spec["lake"]["url"], "--host", "0.0.0.0", "--port", str(api["port"])]
    if api["auth"]["type"] == "Tokens":
        out += ["--tokens", f"{TOKENS_DIR}/{api['auth']['tokensSecret']['key']}"]
    return out


def deployment(collector: Obj, spec: Obj) -> Obj:
    api = spec["api"]
    volumes, mounts = [lake_volume(spec)], [{"name": "lake", "mountPath": DATA, "readOnly": True}]
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
                                  "spec": {"serviceAccountName": API, "automountServiceAccountToken": False,
                                           "securityContext": pod_security(), "containers": [container],
                                           "volumes": volumes}}}}


def service(collector: Obj, spec: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(collector, API, API, spec["namespace"]),
            "spec": {"selector": selector(API),
                     "ports": [{"name": "http", "port": spec["api"]["port"], "targetPort": "http", "protocol": "TCP"}]}}
