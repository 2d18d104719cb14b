"""What an IPFIX export of flows should carry, computed flow by flow in Python, and what collectors decoded.

`expected` is the oracle (plain Python over `to_dicts()`, independent of the exporter's vectorized code);
`from_records` reads the RFC 7011 test decoder's records and `from_goflow2` goflow2's JSON lines into the
same normalized frame, so one comparison serves both collectors. The element numbers here are written from
IANA's registry and docs/sinks.md, not imported from the exporter.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import polars as pl

PEN = 2  # docs/sinks.md: the default ipfix.enterprise_id
K8S = ["K8S_Namespace", "K8S_Name", "K8S_Type", "K8S_OwnerName", "K8S_OwnerType", "K8S_HostIP", "K8S_HostName",
       "K8S_Zone", "K8S_NetworkName", "SubnetLabel"]
# enterprise element id -> flow column (docs/sinks.md)
ENTERPRISE_STRINGS: dict[int, str] = {**{1 + i: f"Src{n}" for i, n in enumerate(K8S)},
                                      **{11 + i: f"Dst{n}" for i, n in enumerate(K8S)},
                                      21: "K8S_FlowLayer", 22: "K8S_ClusterName", 24: "AgentIP"}
# IANA element id -> normalized column, for the unsigned numbers
IANA_NUMBERS: dict[int, str] = {152: "start_ms", 153: "end_ms", 1: "bytes", 2: "packets", 7: "src_port",
                                11: "dst_port", 4: "proto", 6: "tcp_flags", 195: "dscp", 176: "icmp_type",
                                177: "icmp_code", 178: "icmp_type", 179: "icmp_code", 256: "etype",
                                61: "if_direction", 305: "sampling"}
NUMBERS = ["start_ms", "end_ms", "bytes", "packets", "src_port", "dst_port", "proto", "tcp_flags", "dscp",
           "icmp_type", "icmp_code", "etype", "if_direction", "sampling", "node_direction"]
TEXTS = ["src_addr", "dst_addr", "src_mac", "dst_mac", "interface", *ENTERPRISE_STRINGS.values()]
SCHEMA = {**{c: pl.Int64 for c in NUMBERS}, **{c: pl.String for c in TEXTS}}


def _v6(value: int) -> str:
    return ipaddress.IPv6Address(value).exploded


def _addr_int(text: str | None) -> tuple[int, bool]:
    """(128-bit value with IPv4 as ::ffff:a.b.c.d, is IPv4); a missing address is IPv4 0.0.0.0."""
    if text is None:
        return 0xFFFF << 32, True
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv4Address):
        return int(ip) | (0xFFFF << 32), True
    mapped = ip.ipv4_mapped
    return int(ip), mapped is not None


def expected(sent: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for f in sent.to_dicts():
        (src, src4), (dst, dst4) = _addr_int(f["SrcAddr"]), _addr_int(f["DstAddr"])
        if not (src4 and dst4) and f["SrcAddr"] is None:
            src = 0  # an IPv6 flow without a source: 16 zero octets
        if not (src4 and dst4) and f["DstAddr"] is None:
            dst = 0
        row: dict[str, Any] = {
            "start_ms": f["TimeFlowStartMs"], "end_ms": f["TimeFlowEndMs"], "bytes": f["Bytes"],
            "packets": f["Packets"], "src_port": f["SrcPort"] or 0, "dst_port": f["DstPort"] or 0,
            "proto": f["Proto"] or 0, "tcp_flags": f["Flags"] or 0, "dscp": f["Dscp"] or 0,
            "icmp_type": f["IcmpType"] or 0, "icmp_code": f["IcmpCode"] or 0, "etype": f["Etype"] or 0,
            "if_direction": (f["IfDirections"] or [0])[0], "sampling": f["Sampling"] or 0,
            "node_direction": f["FlowDirection"] or 0,
            "src_addr": _v6(src), "dst_addr": _v6(dst),
            "src_mac": (f["SrcMac"] or "00:00:00:00:00:00").lower(),
            "dst_mac": (f["DstMac"] or "00:00:00:00:00:00").lower(),
            "interface": (f["Interfaces"] or [""])[0] or "",
        }
        row.update({c: f[c] or "" for c in ENTERPRISE_STRINGS.values()})
        rows.append(row)
    return pl.DataFrame(rows, schema=SCHEMA)


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _addr(raw: bytes) -> str:
    value = int.from_bytes(raw, "big")
    return _v6(value | (0xFFFF << 32) if len(raw) == 4 else value)


def from_records(records: list[dict[tuple[int, int], bytes]]) -> pl.DataFrame:
    """Rows of the RFC 7011 test decoder (keys (pen, element id))."""
    rows = []
    for r in records:
        row: dict[str, Any] = {col: int.from_bytes(r[(0, ie)], "big") for ie, col in IANA_NUMBERS.items()
                               if (0, ie) in r}
        row["node_direction"] = int.from_bytes(r[(PEN, 23)], "big")
        row["src_addr"] = _addr(r.get((0, 8)) or r[(0, 27)])
        row["dst_addr"] = _addr(r.get((0, 12)) or r[(0, 28)])
        row["src_mac"], row["dst_mac"] = _mac(r[(0, 56)]), _mac(r[(0, 80)])
        row["interface"] = r[(0, 82)].decode()
        row.update({col: r[(PEN, ie)].decode() for ie, col in ENTERPRISE_STRINGS.items()})
        rows.append(row)
    return pl.DataFrame(rows, schema=SCHEMA)


def goflow2_mapping() -> str:
    """goflow2's -mapping YAML: the elements it does not decode itself, into extra JSON fields."""
    custom = {"node_direction": (PEN, 23, "varint"), "if_direction": (0, 61, "varint"),
              "sampling": (0, 305, "varint"), "dscp": (0, 195, "varint"), "etype_ie": (0, 256, "varint"),
              "interface": (0, 82, "string"), **{c: (PEN, ie, "string") for ie, c in ENTERPRISE_STRINGS.items()}}
    fields = ["time_flow_start_ns", "time_flow_end_ns", "bytes", "packets", "src_addr", "dst_addr", "src_port",
              "dst_port", "proto", "tcp_flags", "icmp_type", "icmp_code", "src_mac", "dst_mac", *custom]
    lines = ["formatter:", "  fields:", *(f"    - {f}" for f in fields), "  protobuf:"]
    for i, (name, (_, _, kind)) in enumerate(custom.items()):
        lines += [f"    - name: {name}", f"      index: {1000 + i}", f"      type: {kind}"]
    # strings stay in goflow2's default rendering, hex: its `string` renderer does not escape quotes
    lines += ["  render:", "    proto: none", "ipfix:", "  mapping:"]
    for name, (pen, ie, _) in custom.items():
        lines += [f"    - field: {ie}", f"      destination: {name}"]
        if pen:
            lines += ["      penprovided: true", f"      pen: {pen}"]
    return "\n".join(lines) + "\n"


def _ip_text(text: str) -> str:
    ip = ipaddress.ip_address(text)
    return _v6(int(ip) | (0xFFFF << 32) if isinstance(ip, ipaddress.IPv4Address) else int(ip))


def from_goflow2(lines: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows of goflow2's JSON output (with `goflow2_mapping`); absent fields are goflow2's zero values."""
    rows = []
    for j in lines:
        row: dict[str, Any] = {
            "start_ms": j.get("time_flow_start_ns", 0) // 1_000_000,
            "end_ms": j.get("time_flow_end_ns", 0) // 1_000_000,
            "src_addr": _ip_text(j["src_addr"]), "dst_addr": _ip_text(j["dst_addr"]),
            "etype": j.get("etype_ie", 0), "src_mac": j["src_mac"].lower(), "dst_mac": j["dst_mac"].lower(),
        }
        row.update({c: j.get(c, 0) for c in ("bytes", "packets", "src_port", "dst_port", "proto", "tcp_flags",
                                               "icmp_type", "icmp_code", "dscp", "if_direction", "sampling",
                                               "node_direction")})
        row.update({c: bytes.fromhex(j.get(c, "")).decode() for c in ["interface", *ENTERPRISE_STRINGS.values()]})
        rows.append(row)
    return pl.DataFrame(rows, schema=SCHEMA)


def sort(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns)
