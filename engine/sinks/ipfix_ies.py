"""The Information Elements the IPFIX exporter sends, and its two templates; read by `sinks.ipfix_encode`.

IANA numbers (https://www.iana.org/assignments/ipfix) for what has a standard element, and elements of our
own under the configured private enterprise number (`ipfix.enterprise_id`, default 2 as the reference
FlowCollector's `exporters[].ipfix.enterpriseID`) for the Kubernetes names and the node-level direction,
which have none. The reference names no enterprise element numbers, so these are ours (docs/sinks.md).
Fixed-width elements come first in each template and variable-length strings last: the encoder writes
the fixed part of every record from one structured numpy array and appends the strings after it.
"""

from __future__ import annotations

from dataclasses import dataclass

VARLEN = 0xFFFF  # template field length meaning "variable length" (RFC 7011 §7)
TEMPLATE_V4, TEMPLATE_V6 = 256, 257  # data set ids; 0-255 are reserved for set kinds


@dataclass(frozen=True)
class IE:
    """One template field: IANA (pen 0) or enterprise element, its wire length and the flow column it carries.

    `kind` says how the column becomes bytes: u (unsigned big-endian of `length` bytes), ip4/ip6 (address
    text), mac (MAC text, 6 bytes), first_str / first_u8 (the first entry of a list column), str (UTF-8).
    """

    name: str
    id: int
    length: int
    column: str
    kind: str = "u"
    enterprise: bool = False


def _k8s(first_id: int, side: str) -> list[IE]:
    names = ["K8S_Namespace", "K8S_Name", "K8S_Type", "K8S_OwnerName", "K8S_OwnerType", "K8S_HostIP",
             "K8S_HostName", "K8S_Zone", "K8S_NetworkName", "SubnetLabel"]
    return [IE(f"{side}{n}", first_id + i, VARLEN, f"{side}{n}", "str", enterprise=True)
            for i, n in enumerate(names)]


def _fields(v6: bool) -> tuple[IE, ...]:
    ip = "ip6" if v6 else "ip4"
    alen = 16 if v6 else 4
    return (
        IE("flowStartMilliseconds", 152, 8, "TimeFlowStartMs"),
        IE("flowEndMilliseconds", 153, 8, "TimeFlowEndMs"),
        IE("octetDeltaCount", 1, 8, "Bytes"),
        IE("packetDeltaCount", 2, 8, "Packets"),
        IE("sourceIPv6Address" if v6 else "sourceIPv4Address", 27 if v6 else 8, alen, "SrcAddr", ip),
        IE("destinationIPv6Address" if v6 else "destinationIPv4Address", 28 if v6 else 12, alen, "DstAddr", ip),
        IE("sourceTransportPort", 7, 2, "SrcPort"),
        IE("destinationTransportPort", 11, 2, "DstPort"),
        IE("protocolIdentifier", 4, 1, "Proto"),
        IE("tcpControlBits", 6, 2, "Flags"),  # RFC 7125: two octets, the full flag field
        IE("ipDiffServCodePoint", 195, 1, "Dscp"),
        IE("icmpTypeIPv6" if v6 else "icmpTypeIPv4", 178 if v6 else 176, 1, "IcmpType"),
        IE("icmpCodeIPv6" if v6 else "icmpCodeIPv4", 179 if v6 else 177, 1, "IcmpCode"),
        IE("ethernetType", 256, 2, "Etype"),
        IE("sourceMacAddress", 56, 6, "SrcMac", "mac"),
        IE("destinationMacAddress", 80, 6, "DstMac", "mac"),
        IE("flowDirection", 61, 1, "IfDirections", "first_u8"),  # of the first interface: 0 in, 1 out
        IE("samplingPacketInterval", 305, 4, "Sampling"),
        IE("flowDirectionNode", 23, 1, "FlowDirection", enterprise=True),  # 0 ingress, 1 egress, 2 inner
        IE("interfaceName", 82, VARLEN, "Interfaces", "first_str"),  # the first interface the flow was seen on
        *_k8s(1, "Src"),
        *_k8s(11, "Dst"),
        IE("K8S_FlowLayer", 21, VARLEN, "K8S_FlowLayer", "str", enterprise=True),
        IE("K8S_ClusterName", 22, VARLEN, "K8S_ClusterName", "str", enterprise=True),
        IE("AgentIP", 24, VARLEN, "AgentIP", "str", enterprise=True),
    )


FIELDS_V4: tuple[IE, ...] = _fields(v6=False)
FIELDS_V6: tuple[IE, ...] = _fields(v6=True)
TEMPLATES: dict[int, tuple[IE, ...]] = {TEMPLATE_V4: FIELDS_V4, TEMPLATE_V6: FIELDS_V6}
