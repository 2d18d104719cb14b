"""The FlowCollector CRD (flows.flowlake.io/v1alpha1): its OpenAPI schema with defaults and CEL rules.

Read by `crds.py` (the CustomResourceDefinition object, `flowlake operator manifests`), `defaults.py`
(the same defaults applied offline) and `docs.py` (docs/operator.md is generated from the descriptions).
Names and defaults follow NetObserv's FlowCollector v1beta2 (reference/netobserv.md section 4) where a
field means the same thing, with a flatter layout.
"""

from __future__ import annotations

from flowlake.engine.metrics import predefined
from flowlake.operator import defaults
from flowlake.operator.schema import (
    DNS_LABEL_PATTERN,
    K8S_NAME_PATTERN,
    Schema,
    array,
    boolean,
    duration,
    integer,
    number,
    obj,
    resources,
    rule,
    secret_ref,
    section,
    string,
    string_map,
)

GROUP, VERSION, KIND, PLURAL = "flows.flowlake.io", "v1alpha1", "FlowCollector", "flowcollectors"
SINGLETON = "cluster"
FEATURES = ("PacketDrop", "DNSTracking", "FlowRTT")  # what flowlake agent --features accepts
PROTOCOLS = ("TCP", "UDP", "SCTP", "ICMP", "ICMPv6")
TCP_FLAGS = ("SYN", "SYN-ACK", "ACK", "FIN", "RST", "PSH", "URG", "ECE", "CWR", "FIN-ACK", "RST-ACK")
PORTS_PATTERN = r"^[0-9]{1,5}(-[0-9]{1,5})?$"


def _filter_rule() -> Schema:
    return obj("one flow filter rule (NetObserv flowFilter semantics)", {
        "cidr": string("addresses the rule applies to, matched against the source or the destination "
                       "(longest prefix wins), e.g. 10.128.0.0/14 or 0.0.0.0/0", max_length=43,
                       rules=[rule("isCIDR(self)", "cidr must be a CIDR such as 10.0.0.0/8 or fd00::/8")]),
        "action": string("Accept counts matching packets, Reject skips them", default="Accept",
                         enum=["Accept", "Reject"]),
        "direction": string("only packets in this direction (empty: both)", enum=["Ingress", "Egress"]),
        "protocol": string("only this L4 protocol", enum=list(PROTOCOLS)),
        "sourcePorts": string("source port or range (80, 80-100)", pattern=PORTS_PATTERN),
        "destPorts": string("destination port or range", pattern=PORTS_PATTERN),
        "ports": string("port or range on either side", pattern=PORTS_PATTERN),
        "icmpType": integer("ICMP type (protocol ICMP or ICMPv6)", minimum=0, maximum=255),
        "icmpCode": integer("ICMP code (protocol ICMP or ICMPv6)", minimum=0, maximum=255),
        "peerCIDR": string("the other end must be in this CIDR", max_length=43,
                           rules=[rule("isCIDR(self)", "peerCIDR must be a CIDR such as 10.0.0.0/8")]),
        "tcpFlags": string("only packets with these TCP flags", enum=list(TCP_FLAGS)),
        "sampling": integer("count 1 packet in N for this rule (overrides agent.sampling); 0 = agent.sampling",
                            minimum=0),
    }, required=["cidr"], rules=[
        rule("!has(self.ports) || (!has(self.sourcePorts) && !has(self.destPorts))",
             "ports cannot be combined with sourcePorts or destPorts: use either ports, or sourcePorts/destPorts"),
        rule("!(has(self.icmpType) || has(self.icmpCode)) || (has(self.protocol) && self.protocol in "
             "['ICMP', 'ICMPv6'])", "icmpType and icmpCode need protocol ICMP or ICMPv6"),
    ])


def _agent() -> Schema:
    unique = "self.all(r, self.filter(s, s.cidr == r.cidr).size() == 1)"
    return section("the eBPF agent DaemonSet (one `flowlake agent` per node, host network)", {
        "sampling": integer("count 1 packet in N, chosen at random in the kernel; 0 or 1 = every packet",
                            default=50, minimum=0),
        "cacheActiveTimeout": duration("how often the agent drains its flow maps and sends the flows", "15s"),
        "cacheMaxFlows": integer("size of the kernel flow map; when full, flows go through a ring buffer "
                                 "and are counted", default=120000, minimum=1),
        "interfaces": array("interface names or /regex/ to watch (empty: all)",
                            string("interface name or /regex/", max_length=64), default=[], max_items=64),
        "excludeInterfaces": array("interface names or /regex/ to skip; wins over interfaces",
                                   string("interface name or /regex/", max_length=64), default=["lo"],
                                   max_items=64),
        "features": array("optional measurements: PacketDrop (kernel drops with reason), DNSTracking "
                          "(DNS id, flags, latency), FlowRTT (TCP round-trip time)",
                          string("a feature", enum=list(FEATURES)), default=[], list_type="set"),
        "dnsTrackingPort": integer("UDP/TCP port parsed as DNS with DNSTracking", default=53, minimum=1,
                                   maximum=65535),
        "privileged": boolean("run the agent container privileged instead of with the capabilities BPF, "
                              "PERFMON, NET_ADMIN and SYS_RESOURCE", default=False),
        "metricsPort": integer("port of the agent's /metrics (host network)", default=9400, minimum=1,
                               maximum=65535),
        "flowFilter": section("kernel-side flow filtering: with enable, only packets accepted by the rule "
                              "with the longest matching prefix are counted", {
            "enable": boolean("apply the rules", default=False),
            "rules": array("1 to 16 rules; add 0.0.0.0/0 Accept to keep what no other rule matches",
                           _filter_rule(), default=[], max_items=16, rules=[
                               rule(unique, "two rules have the same cidr; the agent keeps one rule per CIDR: merge "
                                               "them")]),
        }, rules=[rule("!self.enable || size(self.rules) > 0",
                       "flowFilter.enable needs at least one rule (e.g. {cidr: 0.0.0.0/0, action: Accept})")]),
        "resources": resources("agent container resources",
                               {"requests": {"cpu": "100m", "memory": "50Mi"}, "limits": {"memory": "800Mi"}}),
        "nodeSelector": string_map("run agents only on nodes with these labels (default: every node)"),
    })


def _processor() -> Schema:
    autoscaler = section("HorizontalPodAutoscaler of the Kafka consumers (deploymentModel Kafka only)", {
        "enable": boolean("create the HorizontalPodAutoscaler", default=False),
        "minReplicas": integer("fewest consumers", default=1, minimum=1),
        "maxReplicas": integer("most consumers (no more than the topic's partitions are useful)", default=3,
                               minimum=1),
        "targetCPUUtilization": integer("average CPU utilization, in percent of requests, to keep",
                                        default=80, minimum=1, maximum=100),
    }, rules=[rule("self.minReplicas <= self.maxReplicas", "autoscaler.minReplicas must not exceed maxReplicas")])
    return section("the processor (`flowlake processor`): enrichment, metrics, the lake and exports", {
        "replicas": integer("processor replicas in the Service and Kafka models (Direct: one per node)",
                            default=3, minimum=1, maximum=100),
        "autoscaler": autoscaler,
        "port": integer("Arrow Flight port agents send to", default=2055, minimum=1, maximum=65535),
        "metricsPort": integer("port of /metrics (flow metrics and self-metrics)", default=9102, minimum=1,
                               maximum=65535),
        "resources": resources("processor container resources",
                               {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"memory": "800Mi"}}),
        "clusterName": string("K8S_ClusterName of every flow", default="", max_length=253),
        "addZone": boolean("add SrcK8S_Zone and DstK8S_Zone (from the nodes' topology.kubernetes.io/zone) "
                           "to the Loki labels", default=False),
        "logTypes": string("records produced: Flows, or conversation tracking records (Conversations = "
                           "newConnection/heartbeat/endConnection, EndedConversations, All)", default="Flows",
                           enum=["Flows", "Conversations", "EndedConversations", "All"]),
        "conversationHeartbeatInterval": duration("heartbeat record interval of open conversations", "30s"),
        "conversationEndTimeout": duration("a conversation ends this long after its last flow", "10s"),
        "conversationTerminatingTimeout": duration("a TCP conversation ends this long after FIN or RST", "5s"),
        "metrics": section("Prometheus flow metrics served on metricsPort", {
            "includeList": array("predefined metrics to serve (names without the netobserv_ prefix); "
                                 "default: NetObserv's default list",
                                 string("a predefined metric", enum=sorted(predefined.PREDEFINED)),
                                 list_type="set"),
            "prefix": string("prepended to every metric name", default="netobserv_",
                             pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"),
        }),
        "subnetLabels": section("Src/DstSubnetLabel from named CIDR lists", {
            "customLabels": array("[{name, cidrs}]: an address takes the label of its most specific CIDR", obj(
                "one label", {"name": string("the label; prefix it with EXT: to mark external networks",
                                             min_length=1, max_length=63),
                              "cidrs": array("IPv4 and IPv6 CIDRs", string("a CIDR", max_length=43, rules=[
                                  rule("isCIDR(self)", "each entry of cidrs must be a CIDR such as 10.0.0.0/8")]),
                                  max_items=256)},
                required=["name", "cidrs"]), default=[], max_items=64),
        }),
        "filters": array("per-output filters [{query, outputTarget, sampling}] in the FLP query language",
                         obj("one filter", {
                             "query": string("e.g. SrcK8S_Namespace=\"shop\" or DstPort=53", min_length=1,
                                             max_length=4096),
                             "outputTarget": string("sinks it applies to: Loki (lake and Loki), Metrics, "
                                                    "Exporters, or empty for all", default="",
                                                    enum=["", "Loki", "Metrics", "Exporters"]),
                             "sampling": integer("keep 1 in N matching flows", default=1, minimum=1),
                         }, required=["query"]), default=[], max_items=32),
        "deduper": section("removal of the egress copy of flows seen by two nodes", {
            "mode": string("Disabled, Drop or Sample", default="Disabled", enum=["Disabled", "Drop", "Sample"]),
            "sampling": integer("Sample mode: keep 1 copy in N", default=50, minimum=1),
        }),
    })


def _tls() -> Schema:
    return section("TLS to the brokers", {
        "enable": boolean("connect with TLS", default=False),
        "insecureSkipVerify": boolean("do not verify the brokers' certificates", default=False),
        "caCert": secret_ref("CA certificate (PEM) in a Secret; default: the system CAs", "ca.crt"),
        "userCert": obj("client certificate and key (mutual TLS) in a Secret", {
            "name": string("Secret name", pattern=K8S_NAME_PATTERN, max_length=253),
            "certKey": string("key holding the certificate", default="tls.crt", min_length=1),
            "keyKey": string("key holding the private key", default="tls.key", min_length=1),
        }, required=["name"]),
    })


def _sasl() -> Schema:
    return section("SASL authentication to the brokers", {
        "type": string("mechanism", default="Disabled", enum=["Disabled", "Plain", "ScramSHA512"]),
        "secretName": string("Secret holding the user and password", pattern=K8S_NAME_PATTERN, max_length=253),
        "clientIDKey": string("key of the user name in the Secret", default="username", min_length=1),
        "clientSecretKey": string("key of the password in the Secret", default="password", min_length=1),
    }, rules=[rule("self.type == 'Disabled' || has(self.secretName)",
                   "sasl.type other than Disabled needs sasl.secretName")])


def _kafka(desc: str, topic: str) -> Schema:
    return section(desc, {
        "brokers": array("HOST:PORT of the brokers", string("HOST:PORT", min_length=1, max_length=253),
                         default=[], max_items=32),
        "topic": string("topic", default=topic, min_length=1, max_length=249, pattern=r"^[a-zA-Z0-9._-]+$"),
        "compression": string("producer compression", default="lz4",
                              enum=["none", "gzip", "snappy", "lz4", "zstd"]),
        "tls": _tls(),
        "sasl": _sasl(),
    })


def _exporter() -> Schema:
    kafka = _kafka("Kafka exporter settings", "network-flows-export")
    kafka["properties"]["format"] = string("json: one NetObserv-style JSON object per flow; arrow: Arrow IPC "
                                           "batches", default="json", enum=["json", "arrow"])
    return obj("one exporter of enriched flows", {
        "type": string("Kafka, IPFIX or OpenTelemetry", enum=["Kafka", "IPFIX", "OpenTelemetry"]),
        "kafka": kafka,
        "ipfix": obj("IPFIX collector", {
            "targetHost": string("collector host", min_length=1), "targetPort": integer(
                "collector port", default=4739, minimum=1, maximum=65535),
            "transport": string("TCP or UDP", default="TCP", enum=["TCP", "UDP"]),
            "enterpriseID": integer("private enterprise number of the Kubernetes elements", default=2, minimum=1,
                                    maximum=4294967295)}, required=["targetHost"]),
        "openTelemetry": obj("OpenTelemetry collector (OTLP logs for flows, OTLP metrics for the flow metrics)", {
            "targetHost": string("collector host", min_length=1), "targetPort": integer(
                "collector port (4317 gRPC, usually 4318 HTTP)", default=4317, minimum=1, maximum=65535),
            "protocol": string("grpc or http", default="grpc", enum=["grpc", "http"]),
            "tls": obj("TLS to the collector", {
                "enable": boolean("connect with TLS", default=False),
                "caCert": secret_ref("CA certificate (PEM) in a Secret; default: the system CAs", "ca.crt")},
                default={"enable": False}),
            "headers": string_map("extra request headers", default={}),
            "fieldsMapping": array("renames on top of the default OTel names", obj("one mapping", {
                "input": string("flow field", min_length=1), "output": string("attribute name", min_length=1),
                "multiplier": number("numeric values are multiplied by this", default=1)},
                required=["input", "output"]), default=[], max_items=128),
            "logs": obj("flows as OTLP log records", {"enable": boolean("send them", default=True)},
                        default={"enable": True}),
            "metrics": obj("the flow metrics as OTLP metrics", {
                "enable": boolean("send them", default=True),
                "pushTimeInterval": duration("push interval", "20s")},
                default={"enable": True, "pushTimeInterval": "20s"}),
        }, required=["targetHost"]),
    }, required=["type"], rules=[
        rule("self.type != 'Kafka' || (has(self.kafka) && size(self.kafka.brokers) > 0)",
             "an exporter of type Kafka needs kafka.brokers"),
        rule("self.type != 'IPFIX' || has(self.ipfix)", "an exporter of type IPFIX needs ipfix.targetHost"),
        rule("self.type != 'OpenTelemetry' || has(self.openTelemetry)",
             "an exporter of type OpenTelemetry needs openTelemetry.targetHost"),
    ])


def _loki() -> Schema:
    return section("push flows to Loki (or a Loki-protocol store such as VictoriaLogs)", {
        "enable": boolean("push flows to url", default=False),
        "url": string("push endpoint", default="http://loki:3100/loki/api/v1/push", pattern=r"^https?://.+"),
        "tenantID": string("X-Scope-OrgID (multi-tenant Loki); empty = none", default=""),
        "format": string("protobuf (Loki's native, snappy) or json", default="protobuf",
                         enum=["protobuf", "json"]),
        "batchWait": duration("push at least this often", "1s"),
        "batchSize": integer("push once this many bytes are buffered", default=10485760, minimum=1),
        "timeout": duration("per push request", "10s"),
        "minBackoff": duration("first wait before a retry", "1s"),
        "maxBackoff": duration("longest wait between retries", "5s"),
        "maxRetries": integer("retries of a failed push", default=2, minimum=0),
        "staticLabels": string_map("constant labels of every stream", default={"app": "netobserv-flowcollector"}),
    })


def _lake() -> Schema:
    return section("the Parquet flow lake the processor writes and the API reads", {
        "enable": boolean("write the lake", default=True),
        "url": string("fsspec URL (s3://bucket/prefix, or a path inside the volume mounted at /data)",
                      default="/data/lake", min_length=1),
        "persistentVolumeClaim": string("claim mounted at /data in the processor and API pods (ReadWriteMany "
                                        "when they run on several nodes); empty = an emptyDir per pod, which "
                                        "the API cannot read: use it only with an object store URL",
                                        default="", max_length=253),
        "retentionDays": number("delete hour partitions older than this; 0 = keep all", default=7, minimum=0),
        "maintenanceInterval": duration("run compaction and retention in the processor this often; 0s = never",
                                        "1h"),
        "credentialsSecret": string("Secret whose keys become environment variables of the processor and API "
                                    "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...)",
                                    pattern=K8S_NAME_PATTERN, max_length=253),
    })


def _api() -> Schema:
    return section("the query API and web console (`flowlake api`)", {
        "enable": boolean("deploy the API", default=True),
        "replicas": integer("API replicas", default=1, minimum=0, maximum=20),
        "port": integer("HTTP port", default=8080, minimum=1, maximum=65535),
        "resources": resources("API container resources",
                               {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"memory": "1Gi"}}),
        "auth": section("who may query", {
            "type": string("Disabled: every caller is admin; Tokens: bearer tokens from tokensSecret, each "
                           "an admin or a tenant limited to its namespaces; Kubernetes: Kubernetes tokens "
                           "(TokenReview), roles from RBAC (SubjectAccessReview of get flows.flowlake.io/flows: "
                           "cluster-wide = admin, in some namespaces = a tenant of those)", default="Disabled",
                           enum=["Disabled", "Tokens", "Kubernetes"]),
            "adminGroups": array("auth Kubernetes: groups bound cluster-wide to reading flows (admins)",
                                 string("group", min_length=1), default=[], max_items=32),
            "tokensSecret": secret_ref("Secret holding the tokens file: tokens: [{name, token, role: admin|tenant, "
                                       "namespaces: [...]}]", "tokens.yaml"),
        }, rules=[rule("self.type != 'Tokens' || has(self.tokensSecret)", "auth.type Tokens needs auth.tokensSecret")]),
        "tenants": array("auth Kubernetes: users and groups that see the flows of some namespaces only (a "
                         "RoleBinding to reading flows in each); with Tokens, tenants are the tokens file's "
                         "`role: tenant` entries", obj("one tenant", {
                             "name": string("tenant name", pattern=DNS_LABEL_PATTERN, max_length=40),
                             "namespaces": array("namespaces whose flows (source or destination) it sees",
                                                 string("namespace", pattern=DNS_LABEL_PATTERN, max_length=63),
                                                 max_items=256),
                             "users": array("Kubernetes user names", string("user", min_length=1), default=[],
                                            max_items=64),
                             "groups": array("Kubernetes groups", string("group", min_length=1), default=[],
                                             max_items=64)}, required=["name", "namespaces"],
                             rules=[rule("size(self.users) + size(self.groups) > 0",
                                         "a tenant needs at least one of users or groups")]),
                         default=[], max_items=256),
    }, rules=[rule("size(self.tenants) == 0 || self.auth.type == 'Kubernetes'",
                   "api.tenants needs api.auth.type Kubernetes (with Tokens, tenants are the tokens file's "
                   "role: tenant entries)")])


def spec_schema() -> Schema:
    return obj("the desired flowlake deployment", {
        "namespace": string("namespace of every component (created and labelled for privileged pods, which "
                            "the agent needs)", default="flowlake", pattern=DNS_LABEL_PATTERN, max_length=63),
        "deploymentModel": string("Service: agents -> processor Deployment behind a Service; Direct: a processor "
                                  "per node (DaemonSet), agents send to their node; Kafka: agents -> Kafka -> "
                                  "processor consumer group", default="Service", enum=["Direct", "Service", "Kafka"]),
        "execution": section("whether workloads run", {
            "mode": string("Running, or OnHold: workloads are removed, configuration is kept",
                           default="Running", enum=["Running", "OnHold"])}),
        "image": string("container image of every component (one image, see the Dockerfile)",
                        default="ghcr.io/flowlake/flowlake:0.1.0", min_length=1),
        "imagePullPolicy": string("image pull policy", default="IfNotPresent",
                                  enum=["Always", "IfNotPresent", "Never"]),
        "agent": _agent(),
        "processor": _processor(),
        "loki": _loki(),
        "kafka": _kafka("brokers of the Kafka deployment model (agents produce, the processor consumes)",
                        "network-flows"),
        "exporters": array("exports of enriched flows", _exporter(), default=[], max_items=8, rules=[
            rule(f"self.filter(e, e.type == '{t}').size() <= 1", f"at most one exporter of type {t}")
            for t in ("Kafka", "IPFIX", "OpenTelemetry")]),
        "lake": _lake(),
        "api": _api(),
        "networkPolicy": section("a NetworkPolicy isolating the namespace", {
            "enable": boolean("create it", default=False),
            "additionalNamespaces": array("namespaces also allowed in (e.g. monitoring)",
                                          string("namespace", pattern=DNS_LABEL_PATTERN, max_length=63),
                                          default=[], max_items=64),
        }),
    }, rules=[
        rule("self.deploymentModel != 'Kafka' || size(self.kafka.brokers) > 0",
             "deploymentModel Kafka needs kafka.brokers (HOST:PORT of at least one broker)"),
        rule("self.processor.logTypes == 'Flows' || self.deploymentModel != 'Service'",
             "conversation tracking (processor.logTypes other than Flows) needs all flows of a conversation in "
             "one processor: use deploymentModel Direct or Kafka, or logTypes Flows"),
        rule("!self.processor.autoscaler.enable || self.deploymentModel == 'Kafka'",
             "processor.autoscaler scales Kafka consumers: it needs deploymentModel Kafka"),
    ])


def _condition() -> Schema:
    return obj("a condition", {
        "type": string("Ready, AgentReady, ProcessorReady, APIReady, ConfigurationValid"),
        "status": string("True, False or Unknown", enum=["True", "False", "Unknown"]),
        "reason": string("one CamelCase word"), "message": string("what is wrong, and what to do"),
        "lastTransitionTime": string("when status last changed (RFC 3339)"),
        "observedGeneration": integer("the metadata.generation the condition describes"),
    }, required=["type", "status"])


def status_schema() -> Schema:
    return obj("what the operator observed", {
        "observedGeneration": integer("the last metadata.generation reconciled"),
        "namespace": string("namespace the components run in"),
        "conditions": array("Ready plus one condition per component", _condition(), list_type="map"),
        "message": string("summary of what is not ready"),
    })


def openapi_schema() -> Schema:
    """The openAPIV3Schema of FlowCollector v1alpha1."""
    root = obj("FlowCollector: one per cluster, named `cluster`; deploys and reconciles the flowlake pipeline", {
        "apiVersion": string("flows.flowlake.io/v1alpha1"), "kind": string("FlowCollector"),
        "metadata": {"type": "object"}, "spec": spec_schema(), "status": status_schema(),
    }, rules=[rule(f"self.metadata.name == '{SINGLETON}'",
                   f"a FlowCollector must be named '{SINGLETON}': there is one per cluster; set metadata.name: "
                   f"{SINGLETON}")])
    root["properties"]["spec"]["default"] = defaults.apply(root["properties"]["spec"], {})
    root["properties"]["status"]["properties"]["conditions"]["x-kubernetes-list-map-keys"] = ["type"]
    return root

