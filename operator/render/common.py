"""Names, labels, owner references and small helpers shared by the render modules.

Everything here is pure: a FlowCollector (a dict) in, plain dicts out.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from flowlake.operator import crd_flowcollector as fc
from flowlake.operator import defaults

MANAGER = "flowlake-operator"  # the server-side apply field manager and the managed-by label
COLLECTOR_LABEL = "flows.flowlake.io/collector"
CONFIG_HASH = "flows.flowlake.io/config-hash"
MANAGED = {"app.kubernetes.io/managed-by": MANAGER}
AGENT, PROCESSOR, API = "flowlake-agent", "flowlake-processor", "flowlake-api"
CONFIG_MAP = "flowlake-processor-config"
CONFIG_KEY = "processor.yaml"
ETC = "/etc/flowlake"  # Secrets are mounted in sub-directories of it
CONFIG_DIR = f"{ETC}/config"  # the ConfigMap (a sibling of the Secrets: nothing is mounted inside it)
DATA = "/data"  # the lake volume

Obj = dict[str, Any]
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def spec_of(collector: Obj) -> Obj:
    """The FlowCollector's spec with every schema default filled in (as the API server stores it)."""
    return dict(defaults.apply(fc.spec_schema(), collector.get("spec") or {}))


def seconds(value: str) -> float:
    """`1h30m` -> 5400.0 (the CRD pattern guarantees the syntax)."""
    return sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(value))


def labels(component: str, collector: Obj) -> dict[str, str]:
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/part-of": "flowlake", **MANAGED,
            COLLECTOR_LABEL: collector["metadata"]["name"]}


def selector(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": component}


def owner(collector: Obj) -> list[Obj]:
    """ownerReferences to the FlowCollector, so garbage collection removes what the operator made."""
    meta = collector["metadata"]
    return [{"apiVersion": f"{fc.GROUP}/{fc.VERSION}", "kind": fc.KIND, "name": meta["name"],
             "uid": meta.get("uid", ""), "controller": True, "blockOwnerDeletion": True}]


def meta(collector: Obj, name: str, component: str, namespace: str | None) -> Obj:
    m: Obj = {"name": name, "labels": labels(component, collector), "ownerReferences": owner(collector)}
    if namespace is not None:
        m["namespace"] = namespace
    return m


def digest(value: Any) -> str:
    """A short stable hash of a JSON-able value (pod-template annotations that roll pods on change)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def pod_security() -> Obj:
    return {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> Obj:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}}
