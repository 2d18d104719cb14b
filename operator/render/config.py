"""The processor's YAML config (the schema of `flowlake.engine.config.ProcessorConfig`) from a FlowCollector
spec and the valid FlowMetrics; called by render.processor (the ConfigMap) and the reconciler, which loads
it with the real pydantic model before applying anything.
"""

from __future__ import annotations

from typing import Any

import yaml

from flowlake.operator.render import kafka
from flowlake.operator.render.common import ETC, Obj, seconds

BASE_STAGES = ["enrich", "direction", "layer", "subnets", "decode"]


def _conntrack(p: Obj) -> Obj:
    return {"log_types": p["logTypes"], "heartbeat_interval_seconds": seconds(p["conversationHeartbeatInterval"]),
            "end_timeout_seconds": seconds(p["conversationEndTimeout"]),
            "terminating_timeout_seconds": seconds(p["conversationTerminatingTimeout"])}


def _loki(spec: Obj) -> Obj:
    loki, p = spec["loki"], spec["processor"]
    extra = (["SrcK8S_Zone", "DstK8S_Zone"] if p["addZone"] else []) + \
        (["_RecordType"] if p["logTypes"] != "Flows" else [])
    return {"url": loki["url"], "tenant_id": loki["tenantID"], "format": loki["format"],
            "batch_wait_seconds": seconds(loki["batchWait"]), "batch_size_bytes": loki["batchSize"],
            "timeout_seconds": seconds(loki["timeout"]), "min_backoff_seconds": seconds(loki["minBackoff"]),
            "max_backoff_seconds": seconds(loki["maxBackoff"]), "max_retries": loki["maxRetries"],
            "static_labels": dict(loki["staticLabels"]), "extra_labels": extra}


def exporter(spec: Obj, kind: str) -> Obj | None:
    """The exporter of type `kind` (the CRD allows one of each)."""
    return next((e for e in spec["exporters"] if e["type"] == kind), None)


def kafka_exporter(spec: Obj) -> Obj | None:
    return exporter(spec, "Kafka")


OTLP_CA_DIR = f"{ETC}/otlp-ca"


def _ipfix(e: Obj) -> Obj:
    return {"target_host": e["targetHost"], "target_port": e["targetPort"], "transport": e["transport"].lower(),
            "enterprise_id": e["enterpriseID"]}


def _otlp(e: Obj) -> Obj:
    tls = e["tls"]
    return {"target_host": e["targetHost"], "target_port": e["targetPort"], "protocol": e["protocol"],
            "tls": tls["enable"],
            "ca_cert_path": f"{OTLP_CA_DIR}/{tls['caCert']['key']}" if tls["enable"] and "caCert" in tls else "",
            "headers": dict(e["headers"]),
            "fields_mapping": [{"input": m["input"], "output": m["output"], "multiplier": float(m["multiplier"])}
                               for m in e["fieldsMapping"]],
            "logs": e["logs"]["enable"], "metrics": e["metrics"]["enable"],
            "metrics_push_seconds": seconds(e["metrics"]["pushTimeInterval"])}


def processor_config(spec: Obj, metric_definitions: list[Obj]) -> Obj:
    """The config as a mapping; `metric_definitions` are FlowMetric specs already checked by the engine."""
    p = spec["processor"]
    stages = list(BASE_STAGES)
    if p["deduper"]["mode"] != "Disabled":
        stages.append("dedup")
    if p["logTypes"] != "Flows":
        stages.append("conntrack")
    sinks = (["lake"] if spec["lake"]["enable"] else []) + (["loki"] if spec["loki"]["enable"] else []) + ["metrics"]
    metrics: Obj = {"prefix": p["metrics"]["prefix"], "definitions": metric_definitions}
    if "includeList" in p["metrics"]:
        metrics["include"] = list(p["metrics"]["includeList"])
    lake = spec["lake"]
    cfg: Obj = {
        "listen": f"grpc://0.0.0.0:{p['port']}",
        "ingest": "grpc",
        "metrics_address": f"0.0.0.0:{p['metricsPort']}",
        "cluster_name": p["clusterName"],
        "stages": stages,
        "sinks": sinks,
        "kubernetes": {"enabled": True, "node_name": "$NODE_NAME" if spec["deploymentModel"] == "Direct" else ""},
        "lake": {"url": lake["url"], "retention_days": float(lake["retentionDays"]),
                 "maintenance_seconds": seconds(lake["maintenanceInterval"])},
        "metrics": metrics,
        "subnets": {"labels": [{"name": s["name"], "cidrs": list(s["cidrs"])}
                               for s in p["subnetLabels"]["customLabels"]]},
        "dedup": {"mode": p["deduper"]["mode"], "sampling": p["deduper"]["sampling"]},
        "conntrack": _conntrack(p),
        "filters": [{"query": f["query"], "output_target": f["outputTarget"], "sampling": f["sampling"]}
                    for f in p["filters"]],
    }
    if spec["deploymentModel"] == "Kafka":
        cfg["ingest"] = kafka.url(spec["kafka"], kafka.files(spec["kafka"], "kafka"), group="flowlake-processor")
    if spec["loki"]["enable"]:
        cfg["loki"] = _loki(spec)
    k = kafka_exporter(spec)
    if k is not None:
        cfg["sinks"].append("kafka")
        cfg["kafka_export"] = kafka.export_config(k["kafka"], kafka.files(k["kafka"], "export-kafka"))
    ipfix, otlp = exporter(spec, "IPFIX"), exporter(spec, "OpenTelemetry")
    if ipfix is not None:
        cfg["sinks"].append("ipfix")
        cfg["ipfix"] = _ipfix(ipfix["ipfix"])
    if otlp is not None:
        cfg["sinks"].append("otlp")
        cfg["otlp"] = _otlp(otlp["openTelemetry"])
    return cfg


def to_yaml(cfg: Obj) -> str:
    text: Any = yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)
    return str(text)
