"""The processor's ConfigMap, workload (Deployment in the Service and Kafka models, host-network DaemonSet in
Direct), Service and Kafka-consumer HorizontalPodAutoscaler; called by render.render_all.
"""

from __future__ import annotations

from flowlake.operator.render import config as config_mod
from flowlake.operator.render import kafka
from flowlake.operator.render.common import (
    CONFIG_DIR,
    CONFIG_HASH,
    CONFIG_KEY,
    CONFIG_MAP,
    DATA,
    PROCESSOR,
    Obj,
    container_security,
    digest,
    meta,
    pod_security,
    selector,
)


def config_map(collector: Obj, spec: Obj, cfg: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": meta(collector, CONFIG_MAP, PROCESSOR, spec["namespace"]),
            "data": {CONFIG_KEY: config_mod.to_yaml(cfg)}}


def lake_volume(spec: Obj) -> Obj:
    claim = spec["lake"]["persistentVolumeClaim"]
    if claim:
        return {"name": "lake", "persistentVolumeClaim": {"claimName": claim}}
    return {"name": "lake", "emptyDir": {}}


def lake_env_from(spec: Obj) -> list[Obj]:
    secret = spec["lake"].get("credentialsSecret")
    return [{"secretRef": {"name": secret}}] if secret else []


def workload(collector: Obj, spec: Obj, cfg: Obj) -> Obj:
    p, model = spec["processor"], spec["deploymentModel"]
    # a read-only root file system: /tmp is the one writable place besides the lake
    volumes = [{"name": "config", "configMap": {"name": CONFIG_MAP}}, lake_volume(spec),
               {"name": "tmp", "emptyDir": {}}]
    mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}, {"name": "lake", "mountPath": DATA},
              {"name": "tmp", "mountPath": "/tmp"}]
    for section, name in ((spec["kafka"], "kafka") if model == "Kafka" else (None, ""),
                          (e["kafka"], "export-kafka") if (e := config_mod.kafka_exporter(spec)) else (None, "")):
        if section is not None:
            files = kafka.files(section, name)
            volumes += files.volumes
            mounts += files.mounts
    otlp = config_mod.exporter(spec, "OpenTelemetry")
    if otlp is not None and otlp["openTelemetry"]["tls"]["enable"] and "caCert" in otlp["openTelemetry"]["tls"]:
        ref = otlp["openTelemetry"]["tls"]["caCert"]
        volumes.append({"name": "otlp-ca", "secret": {"secretName": ref["name"],
                                                      "items": [{"key": ref["key"], "path": ref["key"]}]}})
        mounts.append({"name": "otlp-ca", "mountPath": config_mod.OTLP_CA_DIR, "readOnly": True})
    ports = [{"name": "metrics", "containerPort": p["metricsPort"], "protocol": "TCP"}]
    if model != "Kafka":
        ports.insert(0, {"name": "flight", "containerPort": p["port"], "protocol": "TCP"})
    container: Obj = {
        "name": "processor", "image": spec["image"], "imagePullPolicy": spec["imagePullPolicy"],
        "command": ["flowlake", "processor"], "args": ["--config", f"{CONFIG_DIR}/{CONFIG_KEY}"],
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "ports": ports, "resources": p["resources"], "securityContext": container_security(),
        "volumeMounts": mounts,
        "readinessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 10},
        "livenessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 30, "failureThreshold": 5},
    }
    env_from = lake_env_from(spec)
    if env_from:
        container["envFrom"] = env_from
    pod: Obj = {"serviceAccountName": PROCESSOR, "securityContext": pod_security(), "containers": [container],
                "volumes": volumes, "terminationGracePeriodSeconds": 60}
    labels = meta(collector, PROCESSOR, PROCESSOR, None)["labels"]
    # The config is read once at start: its hash on the pod template rolls the pods when it changes.
    template = {"metadata": {"labels": labels, "annotations": {CONFIG_HASH: digest(cfg)}}, "spec": pod}
    body: Obj = {"selector": {"matchLabels": selector(PROCESSOR)}, "template": template}
    if model == "Direct":
        pod.update(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet", tolerations=[{"operator": "Exists"}])
        body["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}}
        kind = "DaemonSet"
    else:
        kind = "Deployment"
        if not (model == "Kafka" and p["autoscaler"]["enable"]):  # the HPA owns replicas then
            body["replicas"] = p["replicas"]
        body["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta(collector, PROCESSOR, PROCESSOR, spec["namespace"]),
            "spec": body}


def service(collector: Obj, spec: Obj) -> Obj:
    p = spec["processor"]
    ports = [{"name": "metrics", "port": p["metricsPort"], "targetPort": "metrics", "protocol": "TCP"}]
    if spec["deploymentModel"] == "Service":
        ports.insert(0, {"name": "flight", "port": p["port"], "targetPort": "flight", "protocol": "TCP"})
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(collector, PROCESSOR, PROCESSOR, spec["namespace"]),
            "spec": {"selector": selector(PROCESSOR), "ports": ports}}


def autoscaler(collector: Obj, spec: Obj) -> Obj:
    hpa = spec["processor"]["autoscaler"]
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": meta(collector, PROCESSOR, PROCESSOR, spec["namespace"]),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": PROCESSOR},
                     "minReplicas": hpa["minReplicas"], "maxReplicas": hpa["maxReplicas"],
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": hpa["targetCPUUtilization"]}}}]}}
