"""The CRDs on a real kube-apiserver: samples accepted, server-side defaults equal to the offline ones
(operator/defaults.py), and invalid specs refused with the schema's or the CEL rule's message. No operator runs:
every create is a dry run, so nothing is stored."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from flowlake.operator import crd_flowcollector as fc
from flowlake.operator import crd_flowmetric as fm
from flowlake.operator import defaults
from flowlake.operator.kube import Kube, KubeError
from flowlake.operator.samples import SAMPLES
from tests.operator.specs import SPECS

Obj = dict[str, Any]
FC_PATH = "/apis/flows.flowlake.io/v1alpha1/flowcollectors"


def dry_create(kube: Kube, obj: Obj, path: str = FC_PATH) -> Obj:
    out = kube.request("POST", path, body=obj, params=[("dryRun", "All"), ("fieldValidation", "Strict")])
    assert out is not None
    return out


def fc_obj(spec: Obj, name: str = "cluster") -> Obj:
    return {"apiVersion": "flows.flowlake.io/v1alpha1", "kind": "FlowCollector", "metadata": {"name": name},
            "spec": copy.deepcopy(spec)}


@pytest.mark.parametrize("spec_id", list(SPECS))
def test_specs_are_accepted_with_the_offline_defaults(crds_installed: Kube, spec_id: str) -> None:
    stored = dry_create(crds_installed, fc_obj(SPECS[spec_id]))
    assert stored["spec"] == defaults.apply(fc.spec_schema(), SPECS[spec_id])


def test_flowmetric_sample_is_accepted_with_defaults(crds_installed: Kube) -> None:
    sample = copy.deepcopy(SAMPLES["flowmetric.yaml"])
    sample["metadata"]["namespace"] = "default"  # the sample's namespace does not exist here
    stored = dry_create(crds_installed, sample,
                        "/apis/flows.flowlake.io/v1alpha1/namespaces/default/flowmetrics")
    assert stored["spec"] == defaults.apply(fm.spec_schema(), sample["spec"])
    assert stored["spec"]["direction"] == "Any" and stored["spec"]["charts"] == []


INVALID: list[tuple[str, Obj, str, str]] = [
    ("wrong-name", {}, "other", "a FlowCollector must be named 'cluster': there is one per cluster"),
    ("kafka-without-brokers", {"deploymentModel": "Kafka"}, "cluster",
     "deploymentModel Kafka needs kafka.brokers (HOST:PORT of at least one broker)"),
    ("unknown-model", {"deploymentModel": "Mesh"}, "cluster",
     'spec.deploymentModel: Unsupported value: "Mesh": supported values: "Direct", "Service", "Kafka"'),
    ("conversations-with-service", {"processor": {"logTypes": "Conversations"}}, "cluster",
     "conversation tracking (processor.logTypes other than Flows) needs all flows of a conversation in one processor"),
    ("hpa-without-kafka", {"processor": {"autoscaler": {"enable": True}}}, "cluster",
     "processor.autoscaler scales Kafka consumers: it needs deploymentModel Kafka"),
    ("hpa-min-above-max", {"processor": {"autoscaler": {"minReplicas": 5, "maxReplicas": 2}}}, "cluster",
     "autoscaler.minReplicas must not exceed maxReplicas"),
    ("ports-and-destports", {"agent": {"flowFilter": {"enable": True, "rules": [
        {"cidr": "10.0.0.0/8", "ports": "80", "destPorts": "443"}]}}}, "cluster",
     "ports cannot be combined with sourcePorts or destPorts"),
    ("duplicate-cidr", {"agent": {"flowFilter": {"enable": True, "rules": [
        {"cidr": "10.0.0.0/8"}, {"cidr": "10.0.0.0/8", "action": "Reject"}]}}}, "cluster",
     "two rules have the same cidr; the agent keeps one rule per CIDR: merge them"),
    ("not-a-cidr", {"agent": {"flowFilter": {"enable": True, "rules": [{"cidr": "10.0.0.300/8"}]}}}, "cluster",
     "cidr must be a CIDR such as 10.0.0.0/8 or fd00::/8"),
    ("filter-without-rules", {"agent": {"flowFilter": {"enable": True}}}, "cluster",
     "flowFilter.enable needs at least one rule"),
    ("icmp-type-on-tcp", {"agent": {"flowFilter": {"enable": True, "rules": [
        {"cidr": "0.0.0.0/0", "protocol": "TCP", "icmpType": 8}]}}}, "cluster",
     "icmpType and icmpCode need protocol ICMP or ICMPv6"),
    ("negative-sampling", {"agent": {"sampling": -1}}, "cluster",
     "spec.agent.sampling: Invalid value: -1: spec.agent.sampling in body should be greater than or equal to 0"),
    ("bad-duration", {"agent": {"cacheActiveTimeout": "15 seconds"}}, "cluster",
     "spec.agent.cacheActiveTimeout in body should match"),
    ("unknown-feature", {"agent": {"features": ["TLSTracking"]}}, "cluster",
     'spec.agent.features[0]: Unsupported value: "TLSTracking"'),
    ("unknown-metric", {"processor": {"metrics": {"includeList": ["pod_bytes_total"]}}}, "cluster",
     'Unsupported value: "pod_bytes_total"'),
    ("two-kafka-exporters", {"exporters": [{"type": "Kafka", "kafka": {"brokers": ["a:9092"]}},
                                           {"type": "Kafka", "kafka": {"brokers": ["b:9092"]}}]}, "cluster",
     "at most one exporter of type Kafka"),
    ("ipfix-without-host", {"exporters": [{"type": "IPFIX"}]}, "cluster", "an exporter of type IPFIX needs ipfix"),
    ("sasl-without-secret", {"kafka": {"sasl": {"type": "Plain"}}}, "cluster",
     "sasl.type other than Disabled needs sasl.secretName"),
    ("tokens-without-secret", {"api": {"auth": {"type": "Tokens"}}}, "cluster",
     "auth.type Tokens needs auth.tokensSecret"),
    ("tenants-without-kube-auth", {"api": {"tenants": [{"name": "a", "namespaces": ["a"], "users": ["u"]}]}},
     "cluster", "api.tenants needs api.auth.type Kubernetes"),
    ("unknown-field", {"agent": {"samplign": 5}}, "cluster", 'unknown field "spec.agent.samplign"'),
    ("bad-namespace", {"namespace": "Flow_Lake"}, "cluster", "spec.namespace in body should match"),
]


@pytest.mark.parametrize(("spec", "name", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_specs_are_refused_with_the_message(crds_installed: Kube, spec: Obj, name: str, message: str) -> None:
    with pytest.raises(KubeError) as err:
        dry_create(crds_installed, fc_obj(spec, name))
    # 422 Invalid for schema and CEL violations; 400 for a field the schema does not have (strict decoding, as
    # kubectl asks since 1.27)
    assert err.value.status == (400 if message.startswith("unknown field") else 422), str(err.value)
    assert message in str(err.value)


def test_invalid_flowmetric_is_refused(crds_installed: Kube) -> None:
    bad = {"apiVersion": "flows.flowlake.io/v1alpha1", "kind": "FlowMetric", "metadata": {"name": "m"},
           "spec": {"type": "Counter", "buckets": ["1"]}}
    with pytest.raises(KubeError) as err:
        dry_create(crds_installed, bad, "/apis/flows.flowlake.io/v1alpha1/namespaces/default/flowmetrics")
    assert err.value.status == 422 and "only a Histogram has buckets" in str(err.value)
