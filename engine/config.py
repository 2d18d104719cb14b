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


class ProcessorConfig(_Strict):
    listen: str = Field("grpc://0.0.0.0:2055", description="Arrow Flight address agents send to")
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
    conntrack: ConntrackConfig = Field(default_factory=ConntrackConfig,  # type: ignore[arg-type]
                                       description="settings of the conntrack stage")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)  # type: ignore[arg-type]
    direction: DirectionConfig = Field(default_factory=DirectionConfig)  # type: ignore[arg-type]
    subnets: SubnetsConfig = Field(default_factory=SubnetsConfig)  # type: ignore[arg-type]
    layer: LayerConfig = Field(default_factory=LayerConfig)  # type: ignore[arg-type]
    filter: FilterConfig = Field(default_factory=FilterConfig)  # type: ignore[arg-type]
    dedup: DedupConfig = Field(default_factory=DedupConfig)  # type: ignore[arg-type]
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)  # type: ignore[arg-type]
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
