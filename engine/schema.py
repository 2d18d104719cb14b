"""The flow record: the one Arrow schema every agent, stage, sink and query shares.

Field names follow NetObserv exactly so queries, dashboards and Loki lines carry over. The agent
and `flowlake synth` build batches of this schema; the processor calls `validate` on every batch it
receives; `docs/flows-format.md` is rendered from `FIELDS` by `render_markdown`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from flowlake.engine.errors import SchemaError

_STR = pa.string()
_MAC_DOC = "MAC address, `aa:bb:cc:dd:ee:ff`"


@dataclass(frozen=True)
class Field:
    """One column of the flow record and the facts the docs and the Loki sink need about it."""

    name: str
    type: pa.DataType
    meaning: str
    unit: str = ""
    filter_id: str = ""
    loki_label: str = "no"  # "yes" (default label), "conditional" (when a feature is on) or "no"
    required: bool = False
    group: str = ""


def _pair(suffix: str, typ: pa.DataType, meaning: str, *, unit: str = "", filter_suffix: str = "",
          loki: str = "no", group: str) -> list[Field]:
    """The Src/Dst twins of one field; `{side}` in `meaning` becomes "source" or "destination"."""
    out = []
    for side, word in (("Src", "source"), ("Dst", "destination")):
        fid = f"{side.lower()}_{filter_suffix}" if filter_suffix else ""
        out.append(Field(f"{side}{suffix}", typ, meaning.format(side=word), unit, fid, loki, group=group))
    return out


def _k8s(suffix: str, meaning: str, filter_suffix: str, loki: str = "no") -> list[Field]:
    return _pair(f"K8S_{suffix}", _STR, meaning, filter_suffix=filter_suffix, loki=loki,
                 group="Kubernetes")


FIELDS: tuple[Field, ...] = (
    # -- time
    Field("TimeFlowStartMs", pa.int64(), "first packet of the flow in this report", "ms since epoch",
          required=True, group="Time"),
    Field("TimeFlowEndMs", pa.int64(), "last packet of the flow in this report; partitions the lake",
          "ms since epoch", required=True, group="Time"),
    Field("TimeReceived", pa.int64(), "when the processor received the flow", "s since epoch",
          group="Time"),
    # -- reporter and layer 2
    Field("AgentIP", _STR, "IP of the node whose agent reported the flow", filter_id="agent_ip",
          group="Reporter"),
    Field("Etype", pa.uint16(), "EtherType (2048 IPv4, 34525 IPv6)", required=True, group="L2"),
    *_pair("Mac", _STR, "{side} " + _MAC_DOC, filter_suffix="mac", group="L2"),
    # -- layer 3/4
    *_pair("Addr", _STR, "{side} IPv4 or IPv6 address", filter_suffix="address", group="L3/L4"),
    *_pair("Port", pa.uint16(), "{side} L4 port (TCP, UDP, SCTP only)", filter_suffix="port",
           group="L3/L4"),
    Field("Proto", pa.uint8(), "L4 protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 132 SCTP)",
          filter_id="protocol", required=True, group="L3/L4"),
    Field("Dscp", pa.uint8(), "DSCP value of the IP header", filter_id="dscp", group="L3/L4"),
    Field("IcmpType", pa.uint8(), "ICMP type", filter_id="icmp_type", group="L3/L4"),
    Field("IcmpCode", pa.uint8(), "ICMP code", filter_id="icmp_code", group="L3/L4"),
    Field("Flags", pa.uint16(), "union of TCP flags seen, as a bitfield (FIN 1, SYN 2, RST 4, PSH 8, "
          "ACK 16, URG 32, ECE 64, CWR 128, SYN_ACK 256, FIN_ACK 512, RST_ACK 1024); decoded to "
          "names on output", filter_id="tcp_flags", group="L3/L4"),
    # -- counters
    Field("Bytes", pa.uint64(), "bytes in this report (sampled, not multiplied by Sampling)", "bytes",
          required=True, group="Counters"),
    Field("Packets", pa.uint64(), "packets in this report (sampled)", "packets", required=True,
          group="Counters"),
    Field("Sampling", pa.uint32(), "sampling interval used for this flow (1 = every packet)",
          group="Counters"),
    # -- interfaces and direction
    Field("Interfaces", pa.list_(_STR), "interfaces the flow was seen on, first-seen first",
          filter_id="interfaces", group="Interfaces"),
    Field("IfDirections", pa.list_(pa.uint8()), "direction per entry of Interfaces: 0 ingress, 1 egress",
          filter_id="ifdirections", group="Interfaces"),
    Field("Udns", pa.list_(_STR), "user-defined network per entry of Interfaces", filter_id="udns",
          group="Interfaces"),
    Field("FlowDirection", pa.uint8(), "node-level direction: 0 ingress, 1 egress, 2 inner (same node)",
          filter_id="node_direction", loki_label="yes", group="Interfaces"),
    # -- DNS
    Field("DnsId", pa.uint16(), "DNS transaction id", filter_id="dns_id", group="DNS"),
    Field("DnsFlags", pa.uint16(), "DNS header flags", group="DNS"),
    Field("DnsFlagsResponseCode", _STR, "DNS RCODE name (NoError, NXDomain, ServFail, ...)",
          filter_id="dns_flag_response_code", group="DNS"),
    Field("DnsLatencyMs", pa.uint32(), "DNS request to response time", "ms", filter_id="dns_latency",
          group="DNS"),
    Field("DnsErrno", pa.uint8(), "error number from the DNS tracker", filter_id="dns_errno", group="DNS"),
    Field("DnsName", _STR, "queried DNS name", filter_id="dns_name", group="DNS"),
    # -- RTT
    Field("TimeFlowRttNs", pa.int64(), "TCP round-trip time (handshake or timestamp echo)", "ns",
          filter_id="time_flow_rtt", group="RTT"),
    Field("MaxTimeFlowRttNs", pa.int64(), "largest RTT over a conversation (conntrack records)", "ns",
          group="RTT"),
    # -- drops
    Field("PktDropBytes", pa.uint64(), "bytes dropped by the kernel", "bytes", group="Drops"),
    Field("PktDropPackets", pa.uint64(), "packets dropped by the kernel", "packets", group="Drops"),
    Field("PktDropLatestState", _STR, "TCP state at the latest drop (TCP_ESTABLISHED, ...)",
          filter_id="pkt_drop_state", group="Drops"),
    Field("PktDropLatestDropCause", _STR, "kernel drop reason of the latest drop (SKB_DROP_REASON_*)",
          filter_id="pkt_drop_cause", group="Drops"),
    Field("PktDropLatestFlags", pa.uint16(), "TCP flags bitfield of the latest dropped packet",
          group="Drops"),
    # -- network events, NAT, IPsec, TLS, QUIC
    Field("NetworkEvents", pa.list_(pa.map_(_STR, _STR)), "network events (policy verdicts): Feature, "
          "Type, Namespace, Name, Action, Direction", filter_id="network_events", group="Events"),
    Field("XlatSrcAddr", _STR, "source address after NAT", filter_id="xlat_src_address", group="NAT"),
    Field("XlatDstAddr", _STR, "destination address after NAT", filter_id="xlat_dst_address", group="NAT"),
    Field("XlatSrcPort", pa.uint16(), "source port after NAT", filter_id="xlat_src_port", group="NAT"),
    Field("XlatDstPort", pa.uint16(), "destination port after NAT", filter_id="xlat_dst_port", group="NAT"),
    Field("ZoneId", pa.uint16(), "conntrack zone id", filter_id="xlat_zone_id", group="NAT"),
    Field("IPSecStatus", _STR, "IPsec outcome: success or error", filter_id="ipsec_status", group="IPsec"),
    Field("IPSecRetCode", pa.int32(), "IPsec return code from xfrm", group="IPsec"),
    Field("TLSVersion", _STR, "TLS version from the handshake", filter_id="tls_version", group="TLS"),
    Field("TLSTypes", pa.list_(_STR), "TLS record types seen", filter_id="tls_types", group="TLS"),
    Field("TLSCipherSuite", _STR, "negotiated TLS cipher suite", filter_id="tls_cipher_suite", group="TLS"),
    Field("TLSCurve", _STR, "TLS key-share group", filter_id="tls_curve", group="TLS"),
    Field("QuicVersion", pa.uint32(), "QUIC version", group="QUIC"),
    Field("QuicSeenLongHdr", pa.bool_(), "a QUIC long header was seen", group="QUIC"),
    Field("QuicSeenShortHdr", pa.bool_(), "a QUIC short header was seen", group="QUIC"),
    # -- Kubernetes enrichment (added by the processor)
    *_k8s("Name", "{side} pod, service or node name", "name"),
    *_k8s("Type", "{side} kind: Pod, Service or Node", "kind", loki="yes"),
    *_k8s("Namespace", "{side} namespace", "namespace", loki="yes"),
    *_k8s("OwnerName", "{side} owner (Deployment, StatefulSet, DaemonSet, ...) name", "owner_name",
          loki="yes"),
    *_k8s("OwnerType", "{side} owner kind", "owner_type"),
    *_k8s("HostIP", "{side} node IP", "host_address"),
    *_k8s("HostName", "{side} node name", "host_name"),
    *_k8s("Zone", "{side} availability zone (node label topology.kubernetes.io/zone)", "zone",
          loki="conditional"),
    *_k8s("NetworkName", "{side} network name (secondary or user-defined network)", "network"),
    *_pair("SubnetLabel", _STR, "{side} subnet label; `EXT:` prefix marks external",
           filter_suffix="subnet_label", group="Kubernetes"),
    Field("K8S_FlowLayer", _STR, "`app` or `infra`", filter_id="flow_layer", loki_label="yes",
          group="Kubernetes"),
    Field("K8S_ClusterName", _STR, "cluster name", filter_id="cluster_name", loki_label="conditional",
          group="Kubernetes"),
    # -- conversation tracking (added by the processor)
    Field("_RecordType", _STR, "flowLog, newConnection, heartbeat or endConnection", filter_id="type",
          loki_label="conditional", group="Conversations"),
    Field("_HashId", _STR, "conversation id", filter_id="id", group="Conversations"),
    Field("_IsFirst", pa.bool_(), "first record of a conversation", group="Conversations"),
    Field("numFlowLogs", pa.uint32(), "flow logs aggregated into a conversation record",
          group="Conversations"),
    Field("Bytes_AB", pa.uint64(), "bytes from endpoint A to B", "bytes", group="Conversations"),
    Field("Bytes_BA", pa.uint64(), "bytes from endpoint B to A", "bytes", group="Conversations"),
    Field("Packets_AB", pa.uint64(), "packets from A to B", "packets", group="Conversations"),
    Field("Packets_BA", pa.uint64(), "packets from B to A", "packets", group="Conversations"),
    Field("PktDropBytes_AB", pa.uint64(), "dropped bytes from A to B", "bytes", group="Conversations"),
    Field("PktDropBytes_BA", pa.uint64(), "dropped bytes from B to A", "bytes", group="Conversations"),
    Field("PktDropPackets_AB", pa.uint64(), "dropped packets from A to B", "packets",
          group="Conversations"),
    Field("PktDropPackets_BA", pa.uint64(), "dropped packets from B to A", "packets",
          group="Conversations"),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
REQUIRED: tuple[str, ...] = tuple(f.name for f in FIELDS if f.required)
SCHEMA: pa.Schema = pa.schema(
    [pa.field(f.name, f.type, nullable=not f.required) for f in FIELDS],
    metadata={b"flowlake.schema": b"1"},
)
FILTER_IDS: dict[str, str] = {f.filter_id: f.name for f in FIELDS if f.filter_id}
LOKI_LABELS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.loki_label == "yes")


def _kind(t: pa.DataType) -> str:
    """A coarse type class: columns of the same class can be cast to the canonical type."""
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_null(t):
        return "null"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return f"list<{_kind(t.value_type)}>"
    if pa.types.is_map(t):
        return "map"
    if pa.types.is_boolean(t):
        return "boolean"
    return str(t)


def _conform_column(name: str, col: pa.ChunkedArray | pa.Array, want: pa.DataType,
                    problems: list[str]) -> pa.ChunkedArray | pa.Array | None:
    got = col.type
    if got == want:
        return col
    got_kind, want_kind = _kind(got), _kind(want)
    if got_kind != "null" and got_kind != want_kind:
        problems.append(f"column {name}: got {got}, expected {want} ({want_kind})")
        return None
    try:
        return pc.cast(col, want, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        problems.append(f"column {name}: cannot convert {got} to {want} ({str(exc).splitlines()[0]})")
        return None


def validate(batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch | pa.Table:
    """Return `batch` in the canonical schema, or raise `SchemaError` naming every bad column.

    Missing optional columns become nulls, integer widths and string encodings are converted, and
    columns come out in schema order. Unknown columns, missing or null required columns, wrong
    type classes and values that do not fit (a negative port, say) are errors.
    """
    if batch.schema.equals(SCHEMA, check_metadata=False):
        _check_required_non_null(batch)
        return batch
    problems: list[str] = []
    names = batch.schema.names
    dup = sorted({n for n in names if names.count(n) > 1})
    problems += [f"column {n}: appears more than once" for n in dup]
    problems += [
        f"column {n}: not in the flow schema (see docs/flows-format.md for the field names)"
        for n in names if n not in BY_NAME
    ]
    problems += [f"column {n}: required but missing" for n in REQUIRED if n not in names]
    columns = []
    for f in FIELDS:
        if f.name not in names or f.name in dup:
            columns.append(pa.nulls(batch.num_rows, f.type))
            continue
        conformed = _conform_column(f.name, batch.column(f.name), f.type, problems)
        columns.append(conformed if conformed is not None else pa.nulls(batch.num_rows, f.type))
    if problems:
        raise SchemaError(problems)
    out: pa.RecordBatch | pa.Table
    if isinstance(batch, pa.RecordBatch):
        out = pa.RecordBatch.from_arrays(columns, schema=SCHEMA)
    else:
        out = pa.Table.from_arrays(columns, schema=SCHEMA)
    _check_required_non_null(out)
    return out


# Flow times must be milliseconds of this century: catches seconds, micro- and nanoseconds early,
# before one stray value opens thousands of hour partitions in the lake.
TIME_MIN_MS = 946_684_800_000  # 2000-01-01
TIME_MAX_MS = 4_102_444_800_000  # 2100-01-01


def _check_required_non_null(batch: pa.RecordBatch | pa.Table) -> None:
    problems = [f"column {n}: required but has {batch.column(n).null_count} null values"
                for n in REQUIRED if batch.column(n).null_count]
    for name in ("TimeFlowStartMs", "TimeFlowEndMs"):
        if batch.num_rows == 0:
            break
        lo, hi = pc.min_max(batch.column(name)).values()
        if lo.is_valid and (lo.as_py() < TIME_MIN_MS or hi.as_py() >= TIME_MAX_MS):
            problems.append(f"column {name}: values from {lo.as_py()} to {hi.as_py()} are outside "
                            f"{TIME_MIN_MS}..{TIME_MAX_MS} (years 2000-2100 in ms since the epoch); "
                            "were seconds, microseconds or nanoseconds sent?")
    if problems:
        raise SchemaError(problems)


def empty_batch() -> pa.RecordBatch:
    """A zero-row batch of the canonical schema."""
    return pa.RecordBatch.from_pylist([], schema=SCHEMA)


def render_markdown() -> str:
    """`docs/flows-format.md`, generated from `FIELDS`; a test fails when the committed file is stale."""
    lines = [
        "# Flow record format",
        "",
        "<!-- generated by `flowlake docs --write` from flowlake.engine.schema; do not edit -->",
        "",
        "Every agent batch, processor stage, lake file and query result uses this one Arrow schema.",
        "Field names are NetObserv's, so existing queries, dashboards and Loki lines carry over.",
        "Required fields must be present and non-null in every batch; optional fields may be left out",
        "(they become nulls). Text columns are plain UTF-8 on the wire and dictionary-encoded in the",
        "Parquet lake. **Loki label**: `yes` = a default stream label, `conditional` = a label when its",
        "feature is on (zones, multi-cluster, conversation tracking), `no` = in the JSON line.",
        "",
    ]
    group = None
    for f in FIELDS:
        if f.group != group:
            group = f.group
            lines += ["", f"## {group}", "",
                      "| Field | Arrow type | Meaning | Unit | Filter id | Loki label | Required |",
                      "|---|---|---|---|---|---|---|"]
        meaning = f.meaning.replace("|", "\\|")
        lines.append(f"| `{f.name}` | `{f.type}` | {meaning} | {f.unit or '-'} | "
                     f"{f.filter_id or '-'} | {f.loki_label} | {'yes' if f.required else 'no'} |")
    return "\n".join(lines) + "\n"
