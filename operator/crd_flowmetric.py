"""The FlowMetric CRD (flows.flowlake.io/v1alpha1, namespaced): one custom Prometheus flow metric.

Its spec is the shape of `flowlake.engine.metrics.definitions.FlowMetricSpec` (NetObserv's FlowMetric keys),
so the operator copies each spec into the processor config's `metrics.definitions`; the engine's own
checks (fields exist, labels valid, buckets parse) run in the operator and their message lands in the
FlowMetric's status. Read by `crds.py`, `docs.py` and `flowmetrics.py`.
"""

from __future__ import annotations

from flowlake.engine.metrics import definitions
from flowlake.operator.schema import Schema, array, free_form, integer, obj, rule, string, string_map

KIND, PLURAL = "FlowMetric", "flowmetrics"


def spec_schema() -> Schema:
    return obj("one custom flow metric (NetObserv FlowMetric keys)", {
        "metricName": string("name without the prefix; empty = the resource name with - turned into _",
                             pattern=r"^([a-zA-Z_:][a-zA-Z0-9_:]*)?$", max_length=200),
        "type": string("Counter, Histogram or Gauge", enum=list(definitions.KINDS)),
        "help": string("HELP text", default=""),
        "valueField": string("numeric flow field to add up (Bytes, Packets, ...); empty counts flows", default=""),
        "filters": array("all fields must match", obj("one filter", {
            "field": string("flow field", min_length=1),
            "value": string("value (Equal/NotEqual, may hold $(OtherField)) or a regex", default=""),
            "matchType": string("how to compare", default="Equal", enum=list(definitions.MATCH_TYPES)),
        }, required=["field"]), default=[], max_items=32),
        "labels": array("flow fields that become labels", string("flow field", min_length=1), default=[],
                        max_items=32),
        "flatten": array("list fields giving one series per item (Interfaces, ...)", string("list field"),
                         default=[], max_items=8),
        "remap": string_map("label field -> exposed label name", default={}),
        "direction": string("Any, Ingress (FlowDirection 0|2) or Egress (1|2)", default="Any",
                            enum=list(definitions.DIRECTIONS)),
        "buckets": array("histogram upper bounds, as strings (\".005\", \"1\")", string("a number"), default=[],
                         max_items=64),
        "divider": string("the value is divided by this (1000000000 for ns -> s); empty = 1", default=""),
        "charts": array("dashboard charts (accepted for compatibility, not used)", free_form("a chart"),
                        default=[]),
    }, required=["type"], rules=[
        rule("self.type == 'Histogram' || size(self.buckets) == 0", "only a Histogram has buckets"),
    ])


def openapi_schema() -> Schema:
    cond = obj("a condition", {"type": string("Ready"), "status": string("True, False or Unknown"),
                               "reason": string("one word"), "message": string("what is wrong"),
                               "lastTransitionTime": string("RFC 3339"),
                               "observedGeneration": integer("metadata.generation it describes")},
               required=["type", "status"])
    return obj("FlowMetric: a custom Prometheus metric computed from flows by the processor; it must live in "
               "the FlowCollector's namespace", {
                   "apiVersion": string("flows.flowlake.io/v1alpha1"), "kind": string("FlowMetric"),
                   "metadata": {"type": "object"}, "spec": spec_schema(),
                   "status": obj("what the operator made of it", {
                       "conditions": {**array("Ready", cond, list_type="map"), "x-kubernetes-list-map-keys": ["type"]},
                       "prometheusName": string("the full metric name served by the processor"),
                   }),
               }, required=["spec"])
