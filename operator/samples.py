"""Example FlowCollectors (one per deployment model) and a FlowMetric; written to deploy/samples/ and quoted
in docs/operator.md by `flowlake operator manifests`; the tests check the CRD schemas accept them.
"""

from __future__ import annotations

from typing import Any

from flowlake.operator.crds import API_VERSION

Obj = dict[str, Any]


def _collector(spec: Obj) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "FlowCollector", "metadata": {"name": "cluster"}, "spec": spec}


SAMPLES: dict[str, Obj] = {
    "flowcollector-service.yaml": _collector({
        "deploymentModel": "Service",
        "agent": {"sampling": 50, "features": ["DNSTracking", "FlowRTT"]},
        "processor": {"replicas": 3, "subnetLabels": {"customLabels": [
            {"name": "EXT:internet", "cidrs": ["0.0.0.0/0"]}, {"name": "pods", "cidrs": ["10.128.0.0/14"]}]}},
        "lake": {"url": "s3://flows/lake", "credentialsSecret": "lake-s3", "retentionDays": 14},
        "api": {"auth": {"type": "Tokens", "tokensSecret": {"name": "flowlake-tokens"}}},
    }),
    "flowcollector-direct.yaml": _collector({
        "deploymentModel": "Direct",
        "agent": {"sampling": 1, "features": ["PacketDrop", "DNSTracking", "FlowRTT"], "privileged": True,
                  "flowFilter": {"enable": True, "rules": [
                      {"cidr": "10.128.0.0/14", "action": "Accept"},
                      {"cidr": "0.0.0.0/0", "action": "Accept", "sampling": 100}]}},
        "processor": {"logTypes": "All", "deduper": {"mode": "Drop"}},
        "lake": {"persistentVolumeClaim": "flowlake-lake"},
        "loki": {"enable": True, "url": "http://loki.monitoring:3100/loki/api/v1/push"},
    }),
    "flowcollector-kafka.yaml": _collector({
        "deploymentModel": "Kafka",
        "kafka": {"brokers": ["kafka-0.kafka:9093", "kafka-1.kafka:9093"], "topic": "network-flows",
                  "tls": {"enable": True, "caCert": {"name": "kafka-ca"}},
                  "sasl": {"type": "ScramSHA512", "secretName": "kafka-user"}},
        "processor": {"replicas": 3, "autoscaler": {"enable": True, "minReplicas": 2, "maxReplicas": 6}},
        "exporters": [{"type": "Kafka", "kafka": {"brokers": ["kafka-0.kafka:9093"], "topic": "flows-enriched",
                                                  "tls": {"enable": True, "caCert": {"name": "kafka-ca"}}}}],
        "lake": {"url": "s3://flows/lake", "credentialsSecret": "lake-s3"},
        "api": {"replicas": 2, "auth": {"type": "Kubernetes", "adminGroups": ["netops"]},
                "tenants": [{"name": "shop-team", "namespaces": ["shop", "payments"], "groups": ["shop-devs"]}]},
        "networkPolicy": {"enable": True, "additionalNamespaces": ["monitoring"]},
    }),
    "flowmetric.yaml": {
        "apiVersion": API_VERSION, "kind": "FlowMetric", "metadata": {"name": "dns-errors", "namespace": "flowlake"},
        "spec": {"metricName": "namespace_dns_errors_total", "type": "Counter",
                 "help": "DNS answers with an error code, per source namespace",
                 "labels": ["SrcK8S_Namespace", "DnsFlagsResponseCode"],
                 "filters": [{"field": "DnsFlagsResponseCode", "value": "NoError", "matchType": "NotEqual"},
                             {"field": "DnsId", "matchType": "Presence"}]},
    },
}
