"""Flow fields as OpenTelemetry attributes: the reference's OTel names, and frames turned into attribute dicts.

Used by `sinks.otlp` (log records) and `sinks.otlp_metrics` (metric labels). `OTEL_NAMES` is the OTel
column of the reference's field table (NetObserv's otel-config.json); `otlp.fields_mapping` entries
override or extend it; unmapped fields keep their flow name. `prepare` is columnar (renames, multipliers,
TCP flags decoded once per distinct value); `sinks.otlp_wire` then encodes the prepared frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from flowlake.engine.query import flags


def _sides(suffix: str, otel: str) -> dict[str, str]:
    return {f"Src{suffix}": f"source.{otel}", f"Dst{suffix}": f"destination.{otel}"}


OTEL_NAMES: dict[str, str] = {
    "TimeFlowStartMs": "timeflowstart", "TimeFlowEndMs": "timeflowend", "TimeReceived": "timereceived",
    **_sides("Addr", "address"), **_sides("Port", "port"), **_sides("Mac", "mac"),
    "Proto": "protocol", "Dscp": "dscp", "IcmpType": "icmp.type", "IcmpCode": "icmp.code", "Flags": "tcp.flags",
    "Bytes": "bytes", "Packets": "packets", "FlowDirection": "host.direction",
    "IfDirections": "interface.directions", "Interfaces": "interface.names",
    **_sides("K8S_Name", "k8s.name"), **_sides("K8S_Type", "k8s.kind"),
    **_sides("K8S_OwnerName", "k8s.owner.name"), **_sides("K8S_OwnerType", "k8s.owner.kind"),
    **_sides("K8S_Namespace", "k8s.namespace.name"), **_sides("K8S_HostIP", "k8s.host.address"),
    **_sides("K8S_HostName", "k8s.host.name"), **_sides("K8S_Zone", "zone"),
    **_sides("SubnetLabel", "subnet.label"),
    "K8S_FlowLayer": "k8s.layer", "K8S_ClusterName": "k8s.cluster.name",
    "PktDropBytes": "drops.bytes", "PktDropPackets": "drops.packets", "PktDropLatestState": "drops.lateststate",
    "PktDropLatestDropCause": "drops.latestcause", "PktDropLatestFlags": "drops.latestflags",
    "DnsId": "dns.id", "DnsFlags": "dns.flags", "DnsFlagsResponseCode": "dns.responsecode",
    "DnsLatencyMs": "dns.latency", "DnsErrno": "dns.errno", "TimeFlowRttNs": "tcp.rtt",
}


@dataclass(frozen=True)
class Mapping:
    """Flow field -> attribute name, and multipliers of numeric fields."""

    names: dict[str, str]
    multipliers: dict[str, float]

    def name(self, field: str) -> str:
        return self.names.get(field, field)


def mapping(overrides: Iterable[tuple[str, str, float]]) -> Mapping:
    """The reference's names with `(input, output, multiplier)` overrides on top."""
    names, multipliers = dict(OTEL_NAMES), {}
    for field, output, multiplier in overrides:
        names[field] = output
        if multiplier != 1.0:
            multipliers[field] = multiplier
    return Mapping(names, multipliers)


def prepare(frame: pl.DataFrame, m: Mapping) -> pl.DataFrame:
    """Flags as names, multipliers applied, columns renamed; columns null in every row left out."""
    if "Flags" in frame.columns:
        names = (frame.select(pl.col("Flags").unique().drop_nulls())
                 .with_columns(flags.decode(pl.col("Flags")).alias("_n")))
        frame = (frame.join(names, on="Flags", how="left", maintain_order="left")
                 .with_columns(pl.col("_n").alias("Flags")).drop("_n"))
    scaled = [(pl.col(c) * factor).alias(c) for c, factor in m.multipliers.items() if c in frame.columns]
    if scaled:
        frame = frame.with_columns(scaled)
    counts = dict(zip(frame.columns, frame.null_count().row(0), strict=True))
    frame = frame.select([c for c, n in counts.items() if n < frame.height])
    return frame.rename({c: m.name(c) for c in frame.columns})
