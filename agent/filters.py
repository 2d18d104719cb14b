"""Flow filter rules (NetObserv `flowFilter` / FLOW_FILTER_RULES semantics) -> kernel LPM map entries.

Parsed by `flowlake agent --filter-rules JSON` and loaded into the `filter_rules` map at start.
Errors name the rule, the field and the fix.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from flowlake.engine.errors import ConfigError

PROTOCOLS = {"TCP": 6, "UDP": 17, "SCTP": 132, "ICMP": 1, "ICMPv6": 58}
DIRECTIONS = {"": 0, "Ingress": 1, "Egress": 2}
TCP_FLAGS = {"FIN": 1, "SYN": 2, "RST": 4, "PSH": 8, "ACK": 16, "URG": 32, "ECE": 64, "CWR": 128,
             "SYN-ACK": 256, "FIN-ACK": 512, "RST-ACK": 1024}
FIELDS = {"ip_cidr", "action", "direction", "protocol", "source_port", "destination_port", "port",
          "icmp_type", "icmp_code", "peer_cidr", "peer_ip", "tcp_flags", "sample"}
MAX_RULES = 32

KEY = np.dtype([("prefix_len", "<u4"), ("ip", "V16")])
RULE = np.dtype([("action", "u1"), ("proto", "u1"), ("direction", "u1"), ("icmp_type", "u1"),
                 ("icmp_code", "u1"), ("peer_prefix_len", "u1"), ("prefix_len", "u1"), ("pad", "u1"),
                 ("tcp_flags", "<u2"), ("src_port_alt", "<u2"), ("src_port_lo", "<u2"), ("src_port_hi", "<u2"),
                 ("dst_port_lo", "<u2"), ("dst_port_hi", "<u2"), ("any_port_lo", "<u2"),
                 ("any_port_hi", "<u2"), ("sampling", "<u4"), ("peer_ip", "V16"), ("dst_port_alt", "<u2"),
                 ("any_port_alt", "<u2")])
assert KEY.itemsize == 20 and RULE.itemsize == 48


@dataclass(frozen=True)
class Entry:
    key: bytes
    rule: bytes


def _v6(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[bytes, int]:
    """Address bytes and prefix length in the kernel's v4-mapped IPv6 space."""
    if net.version == 4:
        return bytes(10) + b"\xff\xff" + net.network_address.packed, 96 + net.prefixlen
    return net.network_address.packed, net.prefixlen


def _ports(value: Any, where: str) -> tuple[int, int, int]:
    """(lo, hi, alt) from "80", 80, a range "80-100", or a pair "80,443" (two ports, as NetObserv)."""
    text = str(value).strip()
    alt = ""
    if "," in text:
        text, alt = (p.strip() for p in text.split(",", 1))
    lo, _, hi = text.partition("-")
    hi = hi or lo
    parts = [lo.strip(), hi.strip(), alt or "1"]
    if not all(p.isdigit() for p in parts) or not 1 <= int(parts[0]) <= int(parts[1]) <= 65535 \
            or not 1 <= int(parts[2]) <= 65535 or ("-" in text and alt):
        raise ConfigError(f"{where}: {value!r} is not a port, a range 80-100 or a pair 80,443 (1-65535)")
    return int(parts[0]), int(parts[1]), int(alt) if alt else 0


def parse(text: str) -> list[Entry]:
    """JSON array of rules -> map entries; at most one rule per CIDR (the kernel keys them by CIDR)."""
    try:
        rules = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"filter rules: not valid JSON ({exc}); expected a list of objects") from exc
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise ConfigError("filter rules: expected a JSON list of objects, e.g. "
                          '[{"ip_cidr": "10.0.0.0/8", "action": "Accept"}]')
    if len(rules) > MAX_RULES:
        raise ConfigError(f"filter rules: {len(rules)} rules, at most {MAX_RULES}")
    out, seen = [], set()
    for i, r in enumerate(rules):
        where = f"filter rule {i}"
        unknown = set(r) - FIELDS
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; valid: {sorted(FIELDS)}")
        try:
            net = ipaddress.ip_network(r.get("ip_cidr", ""), strict=False)
        except ValueError as exc:
            raise ConfigError(f"{where}: ip_cidr {r.get('ip_cidr')!r} is not a CIDR such as 10.0.0.0/8") from exc
        ip, plen = _v6(net)
        if (ip, plen) in seen:
            raise ConfigError(f"{where}: a rule for {net} already exists (one rule per CIDR)")
        seen.add((ip, plen))
        rule = np.zeros(1, RULE)[0]
        action = r.get("action", "Accept")
        if action not in ("Accept", "Reject"):
            raise ConfigError(f"{where}: action {action!r} must be Accept or Reject")
        rule["action"] = 0 if action == "Accept" else 1
        rule["prefix_len"] = plen
        proto = r.get("protocol", "")
        if proto and proto not in PROTOCOLS:
            raise ConfigError(f"{where}: protocol {proto!r} must be one of {sorted(PROTOCOLS)}")
        rule["proto"] = PROTOCOLS.get(proto, 0)
        direction = r.get("direction", "")
        if direction not in DIRECTIONS:
            raise ConfigError(f"{where}: direction {direction!r} must be Ingress or Egress (or absent)")
        rule["direction"] = DIRECTIONS[direction]
        if "port" in r and ("source_port" in r or "destination_port" in r):
            raise ConfigError(f"{where}: port cannot be combined with source_port or destination_port")
        for field, lo_hi in (("source_port", "src_port"), ("destination_port", "dst_port"), ("port", "any_port")):
            if field in r:
                rule[f"{lo_hi}_lo"], rule[f"{lo_hi}_hi"], rule[f"{lo_hi}_alt"] = _ports(r[field], f"{where}: {field}")
        rule["icmp_type"] = int(r.get("icmp_type", 255))
        rule["icmp_code"] = int(r.get("icmp_code", 255))
        peer = r.get("peer_cidr") or (f"{r['peer_ip']}/{32 if ':' not in r['peer_ip'] else 128}"
                                      if r.get("peer_ip") else None)
        if peer:
            try:
                pnet = ipaddress.ip_network(peer, strict=False)
            except ValueError as exc:
                raise ConfigError(f"{where}: peer {peer!r} is not an IP or CIDR") from exc
            pip, pplen = _v6(pnet)
            rule["peer_ip"], rule["peer_prefix_len"] = pip, pplen
        flags = r.get("tcp_flags", "")
        if flags and flags not in TCP_FLAGS:
            raise ConfigError(f"{where}: tcp_flags {flags!r} must be one of {sorted(TCP_FLAGS)}")
        rule["tcp_flags"] = TCP_FLAGS.get(flags, 0)
        rule["sampling"] = int(r.get("sample", 0))
        key = np.zeros(1, KEY)[0]
        key["prefix_len"], key["ip"] = plen, ip
        out.append(Entry(key.tobytes(), rule.tobytes()))
    return out
