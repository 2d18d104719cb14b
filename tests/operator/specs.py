"""The FlowCollector specs the render tests run over: one per deployment model and feature combination, plus
the shipped samples. Each id names what it exercises."""

from __future__ import annotations

from typing import Any

from flowlake.operator.samples import SAMPLES

Obj = dict[str, Any]

KAFKA_TLS_SASL: Obj = {
    "brokers": ["kafka-0.kafka:9093", "kafka-1.kafka:9093"], "topic": "flows",
    "tls": {"enable": True, "caCert": {"name": "kafka-ca"}, "userCert": {"name": "kafka-client"}},
    "sasl": {"type": "Plain", "secretName": "kafka-user"},
}

SPECS: dict[str, Obj] = {
    "defaults": {},
    "service-features-filters": {
        "namespace": "netflows",
        "agent": {"sampling": 1, "features": ["PacketDrop", "DNSTracking", "FlowRTT"], "interfaces": ["eth0", "/^ens/"],
                  "excludeInterfaces": ["lo", "docker0"], "cacheActiveTimeout": "2500ms", "cacheMaxFlows": 50000,
                  "flowFilter": {"enable": True, "rules": [
                      {"cidr": "10.128.0.0/14", "action": "Accept", "protocol": "TCP", "destPorts": "443"},
                      {"cidr": "10.0.0.0/8", "action": "Reject", "ports": "8000-8100", "peerCIDR": "10.1.0.0/16"},
                      {"cidr": "0.0.0.0/0", "action": "Accept", "sampling": 100, "protocol": "ICMP", "icmpType": 8}]}},
        "processor": {"replicas": 2, "clusterName": "east", "filters": [
            {"query": "SrcK8S_Namespace=\"shop\" or DstPort=53", "outputTarget": "Loki"},
            {"query": "Proto=6", "outputTarget": "Metrics", "sampling": 10}],
            "subnetLabels": {"customLabels": [{"name": "EXT:internet", "cidrs": ["0.0.0.0/0", "::/0"]}]},
            "metrics": {"includeList": ["namespace_flows_total", "node_ingress_bytes_total"], "prefix": "fl_"}},
    },
    "direct-conntrack-loki": {
        "deploymentModel": "Direct",
        "agent": {"privileged": True, "nodeSelector": {"kubernetes.io/os": "linux"}},
        "processor": {"logTypes": "All", "deduper": {"mode": "Sample", "sampling": 10}, "addZone": True,
                      "conversationEndTimeout": "1m"},
        "loki": {"enable": True, "url": "https://loki.example:3100/loki/api/v1/push", "tenantID": "net",
                 "format": "json", "staticLabels": {"app": "flowlake"}},
        "lake": {"persistentVolumeClaim": "lake", "retentionDays": 0.5, "maintenanceInterval": "0s"},
        "exporters": [{"type": "OpenTelemetry", "openTelemetry": {
            "targetHost": "otel-collector.monitoring", "targetPort": 4318, "protocol": "http",
            "tls": {"enable": True, "caCert": {"name": "otel-ca"}}, "headers": {"x-tenant": "net"},
            "fieldsMapping": [{"input": "DnsLatencyMs", "output": "dns.latency", "multiplier": 0.001}],
            "metrics": {"pushTimeInterval": "1m"}}}],
    },
    "kafka-tls-sasl-hpa-exporter": {
        "deploymentModel": "Kafka", "kafka": KAFKA_TLS_SASL,
        "processor": {"autoscaler": {"enable": True, "minReplicas": 2, "maxReplicas": 8, "targetCPUUtilization": 60}},
        "exporters": [{"type": "Kafka", "kafka": {**KAFKA_TLS_SASL, "topic": "enriched", "format": "arrow"}},
                      {"type": "IPFIX", "ipfix": {"targetHost": "collector", "transport": "UDP"}}],
        "lake": {"url": "s3://flows/lake", "credentialsSecret": "lake-s3"},
        "api": {"replicas": 2, "auth": {"type": "Tokens", "tokensSecret": {"name": "tokens", "key": "t.yaml"}}},
        "networkPolicy": {"enable": True, "additionalNamespaces": ["monitoring", "openshift-console"]},
    },
    "kafka-plain-no-api": {
        "deploymentModel": "Kafka", "kafka": {"brokers": ["kafka:9092"]}, "api": {"enable": False},
        "networkPolicy": {"enable": True},
    },
    "onhold": {"execution": {"mode": "OnHold"}, "deploymentModel": "Direct"},
    **{f"sample-{name.removesuffix('.yaml')}": dict(obj["spec"]) for name, obj in SAMPLES.items()
       if obj["kind"] == "FlowCollector"},
}


def collector(spec: Obj, name: str = "cluster", uid: str = "0b6c3c2e-6a1e-4d53-9d7e-5a4f1f2c0001") -> Obj:
    return {"apiVersion": "flows.flowlake.io/v1alpha1", "kind": "FlowCollector",
            "metadata": {"name": name, "uid": uid, "generation": 1}, "spec": spec}
