"""The CustomResourceDefinition objects of FlowCollector and FlowMetric; written to deploy/ by
`flowlake operator manifests` and applied by the tests before the operator starts.
"""

from __future__ import annotations

from typing import Any

from flowlake.operator import crd_flowcollector as fc
from flowlake.operator import crd_flowmetric as fm

GROUP, VERSION = fc.GROUP, fc.VERSION
API_VERSION = f"{GROUP}/{VERSION}"


def _crd(kind: str, plural: str, scope: str, schema: dict[str, Any], columns: list[dict[str, Any]],
         short: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "flowlake"}},
        "spec": {
            "group": GROUP, "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List",
                      "shortNames": short},
            "versions": [{"name": VERSION, "served": True, "storage": True, "schema": {"openAPIV3Schema": schema},
                          "subresources": {"status": {}}, "additionalPrinterColumns": columns}],
        },
    }


def flowcollector() -> dict[str, Any]:
    ready = '.status.conditions[?(@.type=="Ready")]'
    return _crd(fc.KIND, fc.PLURAL, "Cluster", fc.openapi_schema(), [
        {"name": "Model", "type": "string", "jsonPath": ".spec.deploymentModel"},
        {"name": "Mode", "type": "string", "jsonPath": ".spec.execution.mode"},
        {"name": "Namespace", "type": "string", "jsonPath": ".spec.namespace"},
        {"name": "Ready", "type": "string", "jsonPath": f"{ready}.status"},
        {"name": "Reason", "type": "string", "jsonPath": f"{ready}.reason"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ], ["fc"])


def flowmetric() -> dict[str, Any]:
    return _crd(fm.KIND, fm.PLURAL, "Namespaced", fm.openapi_schema(), [
        {"name": "Metric", "type": "string", "jsonPath": ".status.prometheusName"},
        {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ], ["fm"])


def all_crds() -> list[dict[str, Any]]:
    return [flowcollector(), flowmetric()]
