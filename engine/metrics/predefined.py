"""The predefined metrics (NetObserv's set, same names and labels) and `select`; used by the metrics sink.

Built like `OP internal/pkg/metrics/predefined_metrics.go`: three label groups (node, namespace,
workload) times traffic, flows, sampling, RTT, drops, DNS, network-policy and IPsec metrics, plus
`node_to_node_ingress_flows_total`. `metrics.include` picks from them by name (without the prefix).
"""

from __future__ import annotations

from pydantic import ValidationError

from flowlake.engine.errors import ConfigError
from flowlake.engine.metrics import definitions
from flowlake.engine.metrics.definitions import FlowMetricSpec, MetricFilter

LATENCY_BUCKETS = [".005", ".01", ".02", ".03", ".04", ".05", ".075", ".1", ".25", "1"]
_ZONES = ["K8S_ClusterName", "SrcK8S_Zone", "DstK8S_Zone"]
_NAMESPACE = [*_ZONES, "SrcK8S_Namespace", "DstK8S_Namespace", "K8S_FlowLayer", "SrcSubnetLabel", "DstSubnetLabel"]
GROUP_LABELS: dict[str, list[str]] = {
    "node": [*_ZONES, "SrcK8S_HostName", "DstK8S_HostName", "TLSVersion"],
    "namespace": [*_NAMESPACE, "TLSVersion"],
    "workload": [*_NAMESPACE, "SrcK8S_NetworkName", "DstK8S_NetworkName", "SrcK8S_OwnerName", "DstK8S_OwnerName",
                 "SrcK8S_OwnerType", "DstK8S_OwnerType", "SrcK8S_Type", "DstK8S_Type", "TLSVersion"],
}
_NETPOL_KEYS = ("Type", "Namespace", "Name", "Action", "Direction")

# The reference's default `includeList` (OP api/flowcollector/v1beta2 DefaultIncludeList) less
# `workload_sampling`, which the operator only keeps when a processor filter samples.
DEFAULT_INCLUDE: tuple[str, ...] = (
    "node_ingress_bytes_total", "node_egress_bytes_total", "node_ingress_packets_total", "node_drop_packets_total",
    "workload_ingress_bytes_total", "workload_egress_bytes_total", "namespace_flows_total",
    "namespace_ingress_packets_total", "namespace_drop_packets_total", "namespace_rtt_seconds",
    "namespace_dns_latency_seconds", "namespace_network_policy_events_total", "node_ipsec_flows_total",
    "node_to_node_ingress_flows_total",
)


def _presence(field: str) -> list[MetricFilter]:
    return [MetricFilter(field=field, matchType="Presence")]


def _group(group: str) -> list[FlowMetricSpec]:
    labels = GROUP_LABELS[group]
    out = [FlowMetricSpec(metricName=f"{group}_{direction.lower()}_{unit}_total", type="Counter",
                          help=f"Total {unit} per {group} in {direction.lower()} direction",
                          valueField=field, direction=direction, labels=labels)
           for unit, field in (("bytes", "Bytes"), ("packets", "Packets")) for direction in ("Egress", "Ingress")]
    out += [
        FlowMetricSpec(metricName=f"{group}_sampling", type="Gauge", help=f"Sampling per {group}",
                       valueField="Sampling", labels=labels),
        FlowMetricSpec(metricName=f"{group}_flows_total", type="Counter", help=f"Total flows per {group}",
                       labels=labels),
        FlowMetricSpec(metricName=f"{group}_rtt_seconds", type="Histogram",
                       help=f"Round-trip time latency in seconds per {group}", valueField="TimeFlowRttNs",
                       filters=_presence("TimeFlowRttNs"), labels=labels, divider="1000000000",
                       buckets=list(LATENCY_BUCKETS)),
    ]
    drop_labels = [*labels, "PktDropLatestState", "PktDropLatestDropCause"]
    out += [FlowMetricSpec(metricName=f"{group}_drop_{unit}_total", type="Counter",
                           help=f"Total dropped {unit} per {group}", valueField=field, filters=_presence(field),
                           labels=drop_labels)
            for unit, field in (("packets", "PktDropPackets"), ("bytes", "PktDropBytes"))]
    out += [
        FlowMetricSpec(metricName=f"{group}_dns_latency_seconds", type="Histogram",
                       help=f"DNS latency in seconds per {group}", valueField="DnsLatencyMs",
                       filters=_presence("DnsId"), labels=[*labels, "DnsFlagsResponseCode"], divider="1000",
                       buckets=list(LATENCY_BUCKETS)),
        FlowMetricSpec(metricName=f"{group}_network_policy_events_total", type="Counter",
                       help=f"Total network policy events per {group}",
                       labels=[*labels, *(f"NetworkEvents>{k}" for k in _NETPOL_KEYS)],
                       filters=[MetricFilter(field="NetworkEvents>Feature", value="acl")], flatten=["NetworkEvents"],
                       remap={f"NetworkEvents>{k}": k.lower() for k in _NETPOL_KEYS}),
        FlowMetricSpec(metricName=f"{group}_ipsec_flows_total", type="Counter",
                       help=f"Total IPsec encrypted flows per {group}", filters=_presence("IPSecStatus"),
                       labels=[*labels, "IPSecStatus"]),
    ]
    return out


PREDEFINED: dict[str, FlowMetricSpec] = {
    spec.metricName: spec
    for spec in [
        *(s for g in GROUP_LABELS for s in _group(g)),
        FlowMetricSpec(metricName="node_to_node_ingress_flows_total", type="Counter",
                       help="Total ingress flows between nodes", labels=GROUP_LABELS["node"],
                       filters=[MetricFilter(field="FlowDirection", value="2", matchType="NotEqual"),
                                *_presence("SrcK8S_HostName"), *_presence("DstK8S_HostName")]),
    ]
}


def parse(items: list[dict[str, object]]) -> list[FlowMetricSpec]:
    """FlowMetric-shaped mappings -> specs; ConfigError names the metric and the problem."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append(FlowMetricSpec.model_validate(item))
        except ValidationError as exc:  # FlowMetricSpec's messages already name the metric
            problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            raise ConfigError(f"metrics.definitions[{i}]: {problems}") from exc
    return out


def _sample_names(kind: str, name: str) -> set[str]:
    """The family and sample names a metric takes on the exposition."""
    if kind == "counter":
        return {name, name.removesuffix("_total")}
    if kind == "histogram":
        return {name, f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return {name}


def select(include: list[str] | tuple[str, ...], custom: list[FlowMetricSpec], prefix: str) -> list[FlowMetricSpec]:
    """The predefined metrics named in `include`, then `custom`; unknown or repeated names are errors."""
    unknown = [n for n in include if n not in PREDEFINED]
    if unknown:
        raise ConfigError(f"metrics.include: unknown metric(s) {unknown}; predefined names are: "
                          f"{', '.join(sorted(PREDEFINED))} (without the prefix)")
    chosen = [PREDEFINED[n] for n in dict.fromkeys(include)] + list(custom)
    names = [prefix + s.metricName for s in chosen]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"metrics: {dup} defined more than once (metrics.include and metrics.definitions); "
                          "rename the custom definition or drop it from include")
    exposed: dict[str, str] = {}
    for spec, name in zip(chosen, names, strict=True):
        for sample in _sample_names(spec.kind, name):
            if exposed.setdefault(sample, name) != name:
                raise ConfigError(f"metrics: {name!r} and {exposed[sample]!r} both expose {sample!r}; rename one")
    bad = [n for n in names if not definitions.valid_metric_name(n)]
    if bad:
        raise ConfigError(f"metrics.prefix {prefix!r} makes invalid names {bad[:3]}; use letters, digits, _ and :")
    return chosen
