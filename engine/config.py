"""Processor configuration: one YAML file (or defaults), validated by pydantic with clear errors.

Read by `flowlake processor` and `flowlake up`; rendered by the operator. Field descriptions are the
reference documentation (`docs/config.md` is generated from them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flowlake.engine.errors import ConfigError
from flowlake.engine.metrics import definitions as metric_definitions
from flowlake.engine.metrics import predefined as metric_predefined


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in a key is an error, not a silent default


class LakeConfig(_Strict):
    """The Parquet lake sink (`sinks: [lake]`)."""

    url: str = Field("./flowlake-data/lake", description="fsspec URL of the Parquet flow lake")
    flush_rows: int = Field(500_000, gt=0, description="publish a file once this many rows are buffered")
    compression: Literal["zstd", "snappy", "lz4", "gzip", "brotli", "none"] = Field(
        "zstd", description="Parquet codec")
    compression_level: int = Field(3, ge=1, le=22, description="codec level (zstd 1-22, gzip 1-9, "
                                   "brotli 1-11; ignored by snappy, lz4 and none)")
    row_group_rows: int = Field(256_000, gt=0, description="rows per Parquet row group")
    storage_options: dict[str, Any] = Field(default_factory=dict, description="fsspec options of the URL's "
                                            "filesystem, e.g. for s3:// {endpoint_url, key, secret, region_name} "
                                            "(default: the AWS_* environment variables); needs flowlake[s3]")
    max_buffer_rows: int = Field(5_000_000, gt=0, description="rows held while the destination fails; beyond, "
                                 "ingest waits (backpressure, flowlake_sink_blocked_writers): the lake never drops")
    retention_days: float = Field(0.0, ge=0, description="delete hour partitions older than this (`flowlake "
                                  "lake expire`, and the sink when maintenance_seconds is set); 0 = keep all")
    maintenance_seconds: float = Field(0.0, ge=0, description="run compaction (one file per closed hour) and "
                                       "retention in the processor this often; 0 = never (use `flowlake lake "
                                       "compact|expire` from cron)")
    background_publish: bool = Field(True, description="publish full buffers from a publisher thread, so a "
                                     "burst is absorbed at the stages' rate while Parquet encoding runs on "
                                     "another core; false publishes in the ingest thread that filled the buffer")


class LokiConfig(_Strict):
    """The Loki sink (`sinks: [loki]`): flows pushed as log lines, as NetObserv's FLP Loki writer."""

    url: str = Field("http://loki:3100/loki/api/v1/push", description="push endpoint (Loki's "
                     "/loki/api/v1/push, VictoriaLogs' /insert/loki/api/v1/push, ...); query arguments are kept")
    tenant_id: str = Field("", description="X-Scope-OrgID header (multi-tenant Loki); empty = none")
    format: Literal["protobuf", "json"] = Field("protobuf", description="wire format: protobuf = logproto "
                                                "PushRequest, snappy block compressed (Loki's native); json")
    labels: list[str] = Field(default_factory=lambda: list(_loki_default_labels()), description="flow fields "
                              "that become stream labels (default: the reference's eight); every other field "
                              "goes into the JSON line")
    extra_labels: list[str] = Field(default_factory=list, description="more label fields on top of `labels`, "
                                    "e.g. _RecordType with conntrack, K8S_ClusterName, SrcK8S_Zone/DstK8S_Zone")
    static_labels: dict[str, str] = Field(default_factory=lambda: {"app": "netobserv-flowcollector"},
                                          description="constant labels of every stream (the console selects "
                                          "app=netobserv-flowcollector)")
    batch_wait_seconds: float = Field(1.0, gt=0, description="push buffered lines at least this often "
                                      "(writeBatchWait)")
    batch_size_bytes: int = Field(10_485_760, gt=0, description="push once this many bytes of lines are "
                                  "buffered (writeBatchSize)")
    timeout_seconds: float = Field(10.0, gt=0, description="per push request (writeTimeout)")
    min_backoff_seconds: float = Field(1.0, ge=0, description="first wait before a retry (writeMinBackoff)")
    max_backoff_seconds: float = Field(5.0, ge=0, description="longest wait between retries (writeMaxBackoff)")
    max_retries: int = Field(2, ge=0, description="retries of a push after a 429, 5xx, timeout or refused "
                             "connection; then its rows are dropped and counted (writeMaxRetries)")
    bearer_token_file: str = Field("", description="file whose content is sent as `Authorization: Bearer`")

    @field_validator("url")
    @classmethod
    def _push_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected http(s)://HOST[:PORT]/PATH such as http://loki:3100/loki/api/v1/push, "
                             f"got {value!r}")
        return value

    @model_validator(mode="after")
    def _label_names(self) -> LokiConfig:
        from flowlake.engine import schema  # lazy: pyarrow stays out of `flowlake --help`

        unknown = [n for n in self.labels + self.extra_labels if n not in schema.BY_NAME]
        if unknown:
            raise ValueError(f"labels {unknown} are not flow fields; see docs/flows-format.md")
        return self


def _loki_default_labels() -> tuple[str, ...]:
    from flowlake.engine import schema

    return schema.LOKI_LABELS


class ConntrackConfig(_Strict):
    """Conversation tracking (`stages: [conntrack]`), as NetObserv's processor.logTypes and advanced.conversation*."""

    log_types: Literal["Flows", "Conversations", "EndedConversations", "All"] = Field(
        "Flows", description="records emitted: Flows = each flow as a flowLog row with its conversation "
        "_HashId; Conversations = newConnection, heartbeat and endConnection records instead of flows; "
        "EndedConversations = endConnection records only; All = flows and conversation records")
    heartbeat_interval_seconds: float = Field(30.0, gt=0, description="emit a heartbeat record of each "
                                              "open conversation this often (conversationHeartbeatInterval)")
    end_timeout_seconds: float = Field(10.0, ge=0, description="end a conversation this long after its "
                                       "last flow (conversationEndTimeout)")
    terminating_timeout_seconds: float = Field(5.0, ge=0, description="end a TCP conversation this long "
                                               "after a flow with FIN_ACK, RST or RST_ACK "
                                               "(conversationTerminatingTimeout)")
    max_connections_tracked: int = Field(1_000_000, ge=0, description="conversations held in memory; flows "
                                         "of further new conversations are not tracked and counted in "
                                         "flowlake_conntrack_overflow_total; 0 = no limit")
    detect_end_connection: bool = Field(True, description="use terminating_timeout_seconds once FIN_ACK, "
                                        "RST or RST_ACK is seen (tcpFlags.detectEndConnection)")
    swap_ab: bool = Field(True, description="when a conversation's first flow carries SYN_ACK (a reply), "
                          "make its destination endpoint A, so A is the client (tcpFlags.swapAB)")
    clock: Literal["processing", "event"] = Field(
        "processing", description="what 'now' is for timeouts and heartbeats: processing = the processor's "
        "wall clock (as NetObserv); event = the largest TimeFlowEndMs seen, advanced by the wall clock "
        "between batches (replays of recorded flows)")


class MetricsConfig(_Strict):
    """Prometheus flow metrics (`sinks: [metrics]`), served on `metrics_address`; see docs/flow-metrics.md."""

    prefix: str = Field("netobserv_", description="prepended to every metric name; NetObserv's, so its "
                        "dashboards and alerts work unchanged")
    include: list[str] = Field(default_factory=lambda: list(metric_predefined.DEFAULT_INCLUDE),
                               description="predefined metrics to serve, by name without the prefix; "
                               "replaces the default list (NetObserv's)")
    additional_include: list[str] = Field(default_factory=list, description="predefined metrics served on "
                                          "top of `include`")
    definitions: list[metric_definitions.FlowMetricSpec] = Field(
        default_factory=list, description="custom metrics, each a FlowMetric CRD spec: metricName, type, "
        "valueField, labels, filters, flatten, remap, direction, buckets, divider")
    expiry: float = Field(120.0, gt=0, description="seconds without an update after which a series is "
                          "dropped (FLP expiryTime)")
    max_series: int = Field(100_000, gt=0, description="most series held over all metrics; new ones beyond "
                            "are refused and counted in flowlake_metrics_refused_series_total")
    scale_by_sampling: bool = Field(False, description="multiply counter values by each flow's Sampling "
                                    "(NetObserv does not)")

    @model_validator(mode="after")
    def _selection(self) -> MetricsConfig:
        metric_predefined.select(self.include + self.additional_include, self.definitions, self.prefix)
        return self


def _check_flp_query(value: str) -> str:
    from flowlake.engine.query import flpexpr  # lazy: polars stays out of `flowlake --help`

    flpexpr.compile_query(value)  # FilterError is a ValueError: pydantic names the field
    return value


class DirectionConfig(_Strict):
    """The direction stage (`stages: [direction]`): node-level FlowDirection from AgentIP and the host IPs."""

    keep_interface_direction: bool = Field(True, description="when a flow has no IfDirections, store the "
                                           "agent's FlowDirection there as a one-entry list before rewriting "
                                           "it (the reference's ifDirectionField)")


class SubnetLabelConfig(_Strict):
    """One named CIDR list of the subnets stage."""

    name: str = Field(min_length=1, description="the label; prefix it with `EXT:` to mark external networks")
    cidrs: list[str] = Field(default_factory=list, description="IPv4 and IPv6 CIDRs (10.0.0.0/8, fd00::/8)")
    private: bool = Field(False, description="also label private addresses (10/8, 172.16/12, 192.168/16, "
                          "fc00::/7) that no CIDR matches")

    @field_validator("cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        import ipaddress

        for j, cidr in enumerate(value):
            try:
                ipaddress.ip_network(cidr.strip(), strict=False)
            except ValueError:
                raise ValueError(f"entry {j}, {cidr!r}, is not a CIDR; write e.g. 10.0.0.0/8 or fd00::/8") from None
        return value


class SubnetsConfig(_Strict):
    """The subnets stage (`stages: [subnets]`): Src/DstSubnetLabel from named CIDR lists."""

    labels: list[SubnetLabelConfig] = Field(default_factory=list, description="[{name, cidrs, private}, ...]; "
                                            "an address takes the label of the most specific CIDR containing "
                                            "it (longest prefix), whichever list it is in; the same CIDR in two "
                                            "lists: the later list wins")

class LayerConfig(_Strict):
    """The layer stage (`stages: [layer]`): K8S_FlowLayer `app` when either end is an application, else `infra`."""

    infra_prefixes: list[str] = Field(default_factory=lambda: ["openshift", "kube-", "netobserv", "flowlake"],
                                      description="namespaces starting with one of these are infrastructure")
    infra_refs: list[str] = Field(default_factory=lambda: ["default/kubernetes", "default/openshift"],
                                  description="`namespace/name` of single infrastructure objects (the API "
                                  "server Services) in otherwise application namespaces")

    @field_validator("infra_refs")
    @classmethod
    def _refs(cls, value: list[str]) -> list[str]:
        for ref in value:
            ns, sep, name = ref.partition("/")
            if not sep or not ns or not name or "/" in name:
                raise ValueError(f"{ref!r} is not namespace/name; write e.g. default/kubernetes")
        return value


class FilterConfig(_Strict):
    """The filter stage (`stages: [filter]`): keeps flows matching a query (FLP keep_entry_query language)."""

    query: str = Field("", description="e.g. `SrcK8S_Namespace=\"shop\" or DstPort=53`; empty keeps every "
                       "flow. Operators = != =~ !~ > >= < <=, with(Field), without(Field), and, or, parentheses")
    sampling: int = Field(1, ge=1, description="keep 1 in N matching flows, chosen by a hash of the flow; "
                          "kept flows get Sampling multiplied by N")

    _query = field_validator("query")(_check_flp_query)


class DedupConfig(_Strict):
    """The dedup stage (`stages: [dedup]`): the egress copy of flows reported by two nodes."""

    mode: Literal["Disabled", "Drop", "Sample"] = Field("Disabled", description="Drop removes the copies; "
                                                        "Sample keeps 1 in `sampling` of them; Disabled keeps all")
    sampling: int = Field(50, ge=1, description="Sample mode: keep 1 copy in N (Sampling is not changed)")
    rule: Literal["node", "owner"] = Field("node", description="which egress flows are copies: node = the "
                                           "destination runs on another node (DstK8S_HostIP set); owner = "
                                           "DstK8S_OwnerName set, the reference's test (also drops egress "
                                           "flows to Services)")
    reporter_window_seconds: float = Field(600.0, ge=0, description="rule node: drop a copy only if its "
                                           "destination node reported flows within this time of it, so copies "
                                           "to nodes without a running agent are kept; 0 = do not check")


class OutputFilterConfig(_Strict):
    """One per-output filter (`filters:`), as the reference's processor.filters."""

    query: str = Field(description="FLP query language, as `filter.query`")
    output_target: Literal["", "Loki", "Metrics", "Exporters"] = Field(
        "", description="which sinks it applies to: Loki = the flow store (lake, memory), Metrics = the "
        "metrics sink, Exporters = Kafka/IPFIX/OTLP exports, empty = every sink")
    sampling: int = Field(1, ge=1, description="keep 1 in N matching flows (Sampling multiplied by N)")

    _query = field_validator("query")(_check_flp_query)


class KubernetesConfig(_Strict):
    """Kubernetes metadata from the API server (the enrich stage's source when enabled); docs/kubernetes.md."""

    enabled: bool = Field(False, description="watch pods, services, nodes, replicasets and jobs and enrich by "
                          "IP from them (instead of the static `metadata` file)")
    kubeconfig: str = Field("", description="kubeconfig file; empty = $KUBECONFIG, else the in-cluster service "
                            "account, else ~/.kube/config")
    node_name: str = Field("", description="watch only the pods of this node (spec.nodeName field selector), "
                           "e.g. `$NODE_NAME` to read it from that environment variable; services, nodes and "
                           "owners are still watched cluster-wide. Empty = all pods")
    deleted_grace_seconds: float = Field(120.0, ge=0, description="keep a deleted (or finished) object's IPs "
                                         "this long so late flows still enrich; a new object with the IP wins "
                                         "at once")
    table_interval_seconds: float = Field(1.0, gt=0, description="rebuild the IP table from watch events at "
                                          "most this often")
    resync_seconds: float = Field(0.0, ge=0, description="list everything again this often as a safety net; "
                                  "0 = only when a watch expires (410 Gone)")
    watch_timeout_seconds: float = Field(300.0, gt=0, description="server-side length of one watch request, "
                                         "randomized up to twice this (as client-go)")
    sync_timeout_seconds: float = Field(30.0, ge=0, description="at start, wait this long for the first "
                                        "complete list of every kind; flows are processed meanwhile, "
                                        "unenriched")
    page_size: int = Field(500, gt=0, description="objects per LIST page")


class KafkaTLSConfig(_Strict):
    """TLS to the Kafka brokers (FlowCollector kafka.tls; the agent's KAFKA_ENABLE_TLS, KAFKA_TLS_*)."""

    enable: bool = Field(False, description="connect with TLS")
    insecure_skip_verify: bool = Field(False, description="do not verify the brokers' certificates")
    ca_cert_path: str = Field("", description="PEM file of the CA that signed the brokers' certificates "
                              "(empty: the system's)")
    user_cert_path: str = Field("", description="PEM client certificate, for mutual TLS")
    user_key_path: str = Field("", description="PEM key of the client certificate")


class KafkaSASLConfig(_Strict):
    """SASL to the Kafka brokers (FlowCollector kafka.sasl; KAFKA_ENABLE_SASL, KAFKA_SASL_*)."""

    type: Literal["Disabled", "Plain", "ScramSHA512"] = Field("Disabled", description="SASL mechanism")
    client_id_path: str = Field("", description="file holding the user name (a mounted secret)")
    client_secret_path: str = Field("", description="file holding the password")


class KafkaExportConfig(_Strict):
    """The Kafka exporter sink (`sinks: [kafka]`): enriched flows to a topic (FlowCollector exporters[].kafka)."""

    address: str = Field("", description="brokers, HOST:PORT[,HOST:PORT]; required by the kafka sink")
    topic: str = Field("network-flows-export", description="topic the flows are written to")
    format: Literal["json", "arrow"] = Field("json", description="json: one JSON object per flow and message "
                                             "with NetObserv's field names (FLP kafka encode); arrow: Arrow IPC "
                                             "messages as the Kafka transport (another processor can ingest them)")
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field("lz4", description="producer "
                                                                           "compression")
    batch_messages: int = Field(10_000, ge=1, description="most messages per produce request")
    batch_bytes: int = Field(1_048_576, ge=1, description="most bytes per produce request")
    linger_ms: int = Field(20, ge=0, description="wait this long to fill a batch")
    max_rows: int = Field(10_000, ge=1, description="format arrow: rows per message")
    max_message_bytes: int = Field(1_000_000, ge=1024, description="format arrow: bytes per message; keep "
                                   "under the topic's max.message.bytes")
    max_buffer_messages: int = Field(100_000, ge=1, description="messages queued for the brokers; a full "
                                     "queue makes the pipeline wait (up to timeout_seconds)")
    timeout_seconds: float = Field(30.0, gt=0, description="how long a flush waits for acknowledgements")
    tls: KafkaTLSConfig = Field(default_factory=KafkaTLSConfig)  # type: ignore[arg-type]
    sasl: KafkaSASLConfig = Field(default_factory=KafkaSASLConfig)  # type: ignore[arg-type]


class IpfixConfig(_Strict):
    """The IPFIX exporter sink (`sinks: [ipfix]`): flows to an IPFIX collector (FlowCollector exporters[].ipfix)."""

    target_host: str = Field("", description="collector host name or address; required by the ipfix sink")
    target_port: int = Field(4739, ge=1, le=65535, description="collector port (IANA's IPFIX port)")
    transport: Literal["tcp", "udp"] = Field("tcp", description="tcp: one stream, templates on each "
                                             "connection; udp: datagrams, templates re-sent on the interval")
    enterprise_id: int = Field(2, ge=1, le=4_294_967_295, description="private enterprise number of the "
                               "Kubernetes elements (the reference's enterpriseID default; docs/sinks.md)")
    observation_domain_id: int = Field(0, ge=0, le=4_294_967_295, description="Observation Domain ID in "
                                       "every message header")
    template_interval_seconds: float = Field(60.0, gt=0, description="re-send the templates this often "
                                             "(FLP tplSendInterval 1m); also on every new TCP connection")
    max_message_bytes: int = Field(0, ge=0, le=65_535, description="largest IPFIX message; 0 = 1400 for "
                                   "udp (one datagram within a 1500 MTU), 65535 for tcp")
    udp_messages_per_second: float = Field(0.0, ge=0, description="udp: pace datagrams to at most this "
                                           "rate, so a burst does not overflow the collector's socket buffer "
                                           "(UDP loses what does not fit); 0 = no pacing")
    batch_wait_seconds: float = Field(1.0, gt=0, description="send buffered flows at least this often")
    timeout_seconds: float = Field(5.0, gt=0, description="connect and send timeout")
    min_backoff_seconds: float = Field(0.5, ge=0, description="first wait before a retry")
    max_backoff_seconds: float = Field(5.0, ge=0, description="longest wait between retries")
    max_retries: int = Field(2, ge=0, description="retries of a message over a new connection after a "
                             "refused, reset or timed-out send; then the unsent flows are dropped and counted")


class OtlpFieldMapping(_Strict):
    """One renamed field of the OTLP export (FlowCollector openTelemetry.fieldsMapping[])."""

    input: str = Field(description="flow field name")
    output: str = Field(description="attribute name sent")
    multiplier: float = Field(1.0, description="numeric values are multiplied by this (e.g. 1e-3 for ms -> s)")


class OtlpConfig(_Strict):
    """The OpenTelemetry sink (`sinks: [otlp]`): OTLP logs for flows and OTLP metrics for the metric set."""

    target_host: str = Field("", description="OTLP receiver host (collector); required by the otlp sink")
    target_port: int = Field(4317, ge=1, le=65535, description="4317 for grpc, usually 4318 for http")
    protocol: Literal["grpc", "http"] = Field("grpc", description="OTLP over gRPC, or HTTP with protobuf bodies")
    tls: bool = Field(False, description="connect with TLS (system CAs unless ca_cert_path)")
    ca_cert_path: str = Field("", description="PEM CA of the receiver's certificate")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers (e.g. auth)")
    fields_mapping: list[OtlpFieldMapping] = Field(default_factory=list, description="renames on top of "
                                                   "the reference's OTel column (docs/sinks.md), which "
                                                   "applies by default; other fields keep their flow name")
    logs: bool = Field(True, description="send every flow as an OTLP log record")
    metrics: bool = Field(True, description="send the metric set (section `metrics`) as OTLP metrics")
    metrics_push_seconds: float = Field(20.0, gt=0, description="push the metrics this often "
                                        "(pushTimeInterval)")
    batch_wait_seconds: float = Field(1.0, gt=0, description="send buffered flows at least this often")
    max_records_per_request: int = Field(2_000, gt=0, description="log records per export request (~1.2 KB "
                                         "each: 2000 stays under the Collector's default 4 MiB gRPC limit)")
    timeout_seconds: float = Field(10.0, gt=0, description="per export request (logs) or metrics push, "
                                   "including the metric exporter's own retries of transient errors")
    max_retries: int = Field(1, ge=0, description="export attempts after a failed one; then the flows are "
                             "dropped and counted")


class ProcessorConfig(_Strict):
    listen: str = Field("grpc://0.0.0.0:2055", description="Arrow Flight address agents send to")
    ingest: str = Field("grpc", description="where flows come from: grpc = the Arrow Flight server on "
                        "`listen`; kafka://BROKER[:PORT][,BROKER...]/TOPIC?group=NAME = a member of a Kafka "
                        "consumer group (URL options in docs/kafka.md); offsets are committed after each "
                        "flush, every flush_seconds")
    metrics_address: str = Field("0.0.0.0:9102", description="HOST:PORT of the Prometheus /metrics "
                                 "endpoint; empty to disable")
    metadata: str | None = Field(None, description="static metadata file (IP -> Kubernetes identity), "
                                 "used outside Kubernetes; see docs/flows-format.md")
    cluster_name: str = Field("", description="K8S_ClusterName for every flow (overrides the "
                              "metadata file's cluster)")
    flush_seconds: float = Field(10.0, gt=0, description="publish sink buffers at least this often")
    stages: list[str] = Field(["enrich", "direction", "layer", "subnets", "decode"],
                              description="stages after validation, in order (also: filter, dedup, conntrack)")
    sinks: list[str] = Field(["lake"], description="where processed flows go")
    lake: LakeConfig = Field(default_factory=LakeConfig)  # type: ignore[arg-type]
    loki: LokiConfig = Field(default_factory=LokiConfig)  # type: ignore[arg-type]
    sink_queue_rows: int = Field(1_000_000, gt=0, description="rows each queued sink (every sink but lake, "
                                 "memory and metrics: loki, kafka, ...) may hold waiting for its worker thread; "
                                 "beyond, batches are dropped and counted (flowlake_sink_dropped_rows_total)")
    sink_timeout_seconds: float = Field(10.0, gt=0, description="how long a flush or close waits for a "
                                        "queued sink's worker; a flush still running then is reported and not "
                                        "waited for again, and close counts what is still queued as dropped")
    conntrack: ConntrackConfig = Field(default_factory=ConntrackConfig,  # type: ignore[arg-type]
                                       description="settings of the conntrack stage")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)  # type: ignore[arg-type]
    direction: DirectionConfig = Field(default_factory=DirectionConfig)  # type: ignore[arg-type]
    subnets: SubnetsConfig = Field(default_factory=SubnetsConfig)  # type: ignore[arg-type]
    layer: LayerConfig = Field(default_factory=LayerConfig)  # type: ignore[arg-type]
    filter: FilterConfig = Field(default_factory=FilterConfig)  # type: ignore[arg-type]
    dedup: DedupConfig = Field(default_factory=DedupConfig)  # type: ignore[arg-type]
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)  # type: ignore[arg-type]
    kafka_export: KafkaExportConfig = Field(default_factory=KafkaExportConfig,  # type: ignore[arg-type]
                                            description="settings of the kafka sink")
    ipfix: IpfixConfig = Field(default_factory=IpfixConfig,  # type: ignore[arg-type]
                               description="settings of the ipfix sink")
    otlp: OtlpConfig = Field(default_factory=OtlpConfig,  # type: ignore[arg-type]
                             description="settings of the otlp sink")
    filters: list[OutputFilterConfig] = Field(default_factory=list, description="per-output filters "
                                              "[{query, output_target, sampling}, ...]: a sink receives the "
                                              "flows kept by ANY filter of its target (each sampling its own "
                                              "matches), after those of target \"\" (every sink)")

    @field_validator("listen")
    @classmethod
    def _flight_url(cls, value: str) -> str:
        if not value.startswith(("grpc://", "grpc+tcp://", "grpc+tls://")):
            raise ValueError(f"expected grpc://HOST:PORT (or grpc+tls://), got {value!r}")
        return value

    @field_validator("ingest")
    @classmethod
    def _ingest(cls, value: str) -> str:
        if value == "grpc":
            return value
        if not value.startswith("kafka://"):
            raise ValueError(f"expected grpc or kafka://BROKER:PORT/TOPIC?group=NAME, got {value!r}")
        from flowlake.engine.transport import kafka_ingest  # lazy: pyarrow stays out of `flowlake --help`

        kafka_ingest.consumer_config(value)  # ConfigError is a ValueError: pydantic names the field
        return value

    @field_validator("metrics_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        _, sep, port = value.rpartition(":")
        if value and (not sep or not port.isdigit() or int(port) > 65535):
            raise ValueError(f"expected HOST:PORT such as 0.0.0.0:9102 (or '' to disable), got {value!r}")
        return value


def load(path: str | Path | None = None, **overrides: Any) -> ProcessorConfig:
    """Load a YAML config (or defaults), apply non-None overrides; errors name each bad field."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read processor config {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"processor config {path}: expected a mapping at the top level")
    for key, value in overrides.items():
        if value is None:
            continue
        target = data
        *parents, leaf = key.split(".")
        for p in parents:
            if not isinstance(target.get(p), dict):  # an empty `lake:` in YAML is None
                target[p] = {}
            target = target[p]
        target[leaf] = value
    try:
        return ProcessorConfig.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid processor config: " + "; ".join(problems)) from exc


def render_markdown() -> str:
    """`docs/config.md`, generated from the field descriptions (one table per section)."""
    lines = ["# Processor configuration", "",
             "<!-- generated by `flowlake docs --write` from flowlake.engine.config; do not edit -->", "",
             "`flowlake processor --config FILE` reads one YAML file; every key is optional. Each stage",
             "and sink named in `stages:` / `sinks:` takes its settings from the section of the same name.",
             ""]
    sections: list[tuple[str, type[BaseModel]]] = []

    def table(model: type[BaseModel], prefix: str) -> None:
        lines.extend(["| Key | Default | Meaning |", "|---|---|---|"])
        for name, f in model.model_fields.items():
            if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
                sections.append((f"{prefix}{name}", f.annotation))
                continue
            lines.append(f"| `{prefix}{name}` | `{f.get_default(call_default_factory=True)!r}` | "
                         f"{f.description or ''} |")
        lines.append("")

    table(ProcessorConfig, "")
    while sections:
        name, model = sections.pop(0)
        lines += [f"## {name}", ""]
        if model.__doc__:
            lines += [model.__doc__.strip().splitlines()[0], ""]
        table(model, f"{name}.")
    return "\n".join(lines)
