"""Drained kernel map buffers -> one Arrow RecordBatch of the flow schema (the only such function).

The numpy dtypes below mirror `bpf/flows.h` byte for byte (tests compare them with the sizes bcc
reports). Called by `agent.run` after every drain; works on whole arrays: the only per-item Python
is per distinct address, MAC or interface, never per flow.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowlake.engine import schema

MAX_IFACES = 6
DNS_NAME_LEN = 32

KEY = np.dtype([("src_ip", "V16"), ("dst_ip", "V16"), ("src_port", "<u2"), ("dst_port", "<u2"),
                ("proto", "u1"), ("icmp_type", "u1"), ("icmp_code", "u1"), ("pad", "u1")])
STATS = np.dtype([("first_ns", "<u8"), ("last_ns", "<u8"), ("bytes", "<u8"), ("packets", "<u4"),
                  ("flags", "<u4"), ("if_first", "<u4"), ("sampling", "<u4"), ("eth_proto", "<u2"),
                  ("src_mac", "V6"), ("dst_mac", "V6"), ("dir_first", "u1"), ("dscp", "u1"),
                  ("n_ifaces", "u1"), ("ifaces_missed", "u1"), ("pad", "V2"),
                  ("ifaces", "<u4", (MAX_IFACES,)), ("dirs", "u1", (MAX_IFACES,)), ("pad2", "V6")])
EVENT = np.dtype([("key", KEY), ("stats", STATS)])
DNS = np.dtype([("latency_ns", "<u8"), ("id", "<u2"), ("flags", "<u2"), ("name", f"S{DNS_NAME_LEN}"),
                ("pad", "V4")])
DROP = np.dtype([("bytes", "<u8"), ("packets", "<u4"), ("latest_reason", "<u2"), ("latest_state", "u1"),
                 ("pad", "u1"), ("latest_flags", "<u4"), ("pad2", "<u4")])
assert KEY.itemsize == 40 and STATS.itemsize == 96 and DNS.itemsize == 48 and DROP.itemsize == 24

# Linux TCP states (include/net/tcp_states.h), for PktDropLatestState.
TCP_STATES = ["", "TCP_ESTABLISHED", "TCP_SYN_SENT", "TCP_SYN_RECV", "TCP_FIN_WAIT1", "TCP_FIN_WAIT2",
              "TCP_TIME_WAIT", "TCP_CLOSE", "TCP_CLOSE_WAIT", "TCP_LAST_ACK", "TCP_LISTEN", "TCP_CLOSING",
              "TCP_NEW_SYN_RECV"]
_V4_PREFIX = bytes(10) + b"\xff\xff"


def _format_ip(raw: bytes) -> str:
    if raw[:12] == _V4_PREFIX:
        return socket.inet_ntop(socket.AF_INET, raw[12:])
    return socket.inet_ntop(socket.AF_INET6, raw)


def _dns_name(raw: bytes) -> str:
    """Wire-format labels (3www7example3com0) -> "www.example.com"; a truncated name keeps its part."""
    labels, i = [], 0
    while i < len(raw) and raw[i] != 0:
        n = raw[i]
        labels.append(raw[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += n + 1
    return ".".join(labels)


def _format_mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


_OCTETS = pa.array([str(i) for i in range(256)], pa.string())  # octet -> decimal text, by take


def _addresses(values: np.ndarray) -> pa.Array:
    """IP text for 16-byte addresses, formatted once per distinct address (hash-encoded in Arrow).

    Distinct IPv4 (v4-mapped) addresses are formatted with vectorized Arrow kernels, IPv6 ones by
    the socket module; a node sees many flows between far fewer addresses.
    """
    if len(values) == 0:
        return pa.array([], pa.string())
    encoded = _fixed(values).dictionary_encode()
    uniq = np.frombuffer(encoded.dictionary.buffers()[1], np.uint8)[:16 * len(encoded.dictionary)].reshape(-1, 16)
    v4 = (uniq[:, :10] == 0).all(axis=1) & (uniq[:, 10] == 0xFF) & (uniq[:, 11] == 0xFF)
    if v4.all():
        octets = [_OCTETS.take(pa.array(uniq[:, 12 + i])) for i in range(4)]
        names = pc.binary_join_element_wise(*octets, ".")
    else:
        names = pa.array([_format_ip(bytes(u)) for u in uniq], pa.string())
    return names.take(encoded.indices)


def _fixed(values: np.ndarray) -> pa.FixedSizeBinaryArray:
    """A zero-copy-ish Arrow view of fixed-size numpy byte values, for hashing."""
    width = values.dtype.itemsize
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(values), [None, pa.py_buffer(np.ascontiguousarray(values).tobytes())])


def _strings(values: np.ndarray, fmt: Callable[[bytes], str]) -> pa.Array:
    """Format fixed-size byte values to strings once per distinct value (hash-encoded in Arrow)."""
    if len(values) == 0:
        return pa.array([], pa.string())
    encoded = _fixed(values).dictionary_encode()
    names = pa.array([fmt(v.as_py()) for v in encoded.dictionary], pa.string())
    return names.take(encoded.indices)


def _lists(counts: np.ndarray, values: np.ndarray, value_type: pa.DataType) -> pa.Array:
    """A list column from a per-row count and a (rows, MAX) matrix of values (first `count` used)."""
    if len(counts) and (counts == 1).all():  # the usual case: one interface per flow, no masking
        offsets = np.arange(len(counts) + 1, dtype=np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values[:, 0], value_type))
    counts = np.minimum(counts.astype(np.int32), values.shape[1])
    mask = np.arange(values.shape[1])[None, :] < counts[:, None]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values[mask], value_type))


def _iface_lists(counts: np.ndarray, ifindexes: np.ndarray, ifname: Callable[[int], str]) -> pa.Array:
    """Interfaces as list<string>: one name lookup per distinct ifindex (found in O(n)), then Arrow take."""
    counts = np.minimum(counts.astype(np.int32), ifindexes.shape[1])
    valid = ifindexes[np.arange(ifindexes.shape[1])[None, :] < counts[:, None]]
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    if valid.size == 0:
        return pa.ListArray.from_arrays(offsets, pa.array([], pa.string()))
    present = np.flatnonzero(np.bincount(valid))
    lut = [""] * (int(present[-1]) + 1)
    for i in present:
        lut[i] = ifname(int(i))
    return pa.ListArray.from_arrays(offsets, pa.array(lut, pa.string()).take(pa.array(valid)))


@functools.lru_cache(maxsize=256)
def _nulls(n: int, typ: pa.DataType) -> pa.Array:
    """All-null columns, cached: drains of full chunks ask for the same sizes again and again."""
    return pa.nulls(n, typ)


def to_batch(keys: np.ndarray, stats: np.ndarray, *, agent_ip: str, mono_to_wall_ns: int,
             ifname: Callable[[int], str], dns: tuple[np.ndarray, np.ndarray] | None = None,
             rtt_ns: np.ndarray | None = None,
             drops: np.ndarray | None = None, drop_reasons: dict[int, str] | None = None) -> pa.RecordBatch:
    """One batch of the flow schema from aligned per-flow arrays (feature arrays already merged by key).

    `dns` is (records, found mask), `rtt_ns` and `drops` arrays; all aligned with `keys` (rows without a
    feature value hold zeros).
    """
    n = len(keys)
    proto = keys["proto"]
    has_ports = np.isin(proto, (6, 17, 132))
    is_icmp = np.isin(proto, (1, 58))
    cols: dict[str, Any] = {
        "TimeFlowStartMs": pa.array((stats["first_ns"] + mono_to_wall_ns) // 1_000_000, pa.int64()),
        "TimeFlowEndMs": pa.array((stats["last_ns"] + mono_to_wall_ns) // 1_000_000, pa.int64()),
        "AgentIP": pa.repeat(pa.scalar(agent_ip, pa.string()), n),
        "Etype": pa.array(stats["eth_proto"], pa.uint16()),
        "SrcMac": _strings(stats["src_mac"], _format_mac),
        "DstMac": _strings(stats["dst_mac"], _format_mac),
        "SrcAddr": _addresses(keys["src_ip"]),
        "DstAddr": _addresses(keys["dst_ip"]),
        "SrcPort": pa.array(keys["src_port"], pa.uint16(), mask=~has_ports),
        "DstPort": pa.array(keys["dst_port"], pa.uint16(), mask=~has_ports),
        "Proto": pa.array(proto, pa.uint8()),
        "Dscp": pa.array(stats["dscp"], pa.uint8()),
        "IcmpType": pa.array(keys["icmp_type"], pa.uint8(), mask=~is_icmp),
        "IcmpCode": pa.array(keys["icmp_code"], pa.uint8(), mask=~is_icmp),
        "Flags": pa.array(stats["flags"].astype(np.uint16), pa.uint16(), mask=proto != 6),
        "Bytes": pa.array(stats["bytes"], pa.uint64()),
        "Packets": pa.array(stats["packets"].astype(np.uint64), pa.uint64()),
        "Sampling": pa.array(stats["sampling"], pa.uint32()),
        "Interfaces": _iface_lists(stats["n_ifaces"], stats["ifaces"], ifname),
        "IfDirections": _lists(stats["n_ifaces"], stats["dirs"], pa.uint8()),
        # Flows seen only by a feature map (e.g. dropped before reaching TC) have no interface.
        "FlowDirection": pa.array(stats["dir_first"], pa.uint8(), mask=stats["n_ifaces"] == 0),
    }
    if dns is not None:
        rec, found = dns
        cols["DnsId"] = pa.array(rec["id"], pa.uint16(), mask=~found)
        cols["DnsFlags"] = pa.array(rec["flags"], pa.uint16(), mask=~found)
        cols["DnsLatencyMs"] = pa.array((rec["latency_ns"] // 1_000_000).astype(np.uint32), pa.uint32(),
                                        mask=~found)
        names = _strings(rec["name"], _dns_name)
        cols["DnsName"] = pc.if_else(pa.array(found), names, pa.scalar(None, pa.string()))
    if rtt_ns is not None:
        cols["TimeFlowRttNs"] = pa.array(rtt_ns.astype(np.int64), pa.int64(), mask=rtt_ns == 0)
    if drops is not None:
        has = drops["packets"] > 0
        cols["PktDropBytes"] = pa.array(drops["bytes"], pa.uint64(), mask=~has)
        cols["PktDropPackets"] = pa.array(drops["packets"].astype(np.uint64), pa.uint64(), mask=~has)
        cols["PktDropLatestFlags"] = pa.array(drops["latest_flags"].astype(np.uint16), pa.uint16(), mask=~has)
        reasons = drop_reasons or {}
        r_ids = np.unique(drops["latest_reason"])
        r_lut = {int(r): f"SKB_DROP_REASON_{reasons.get(int(r), str(int(r)))}" for r in r_ids}
        cols["PktDropLatestDropCause"] = pa.array(
            np.array([r_lut[int(r)] for r in r_ids], dtype=object)[np.searchsorted(r_ids, drops["latest_reason"])]
            if n else np.array([], dtype=object), pa.string(), mask=~has)
        states = np.array(TCP_STATES + [""] * (256 - len(TCP_STATES)), dtype=object)
        st = states[drops["latest_state"]]
        cols["PktDropLatestState"] = pa.array(st, pa.string(), mask=~has | (drops["latest_state"] == 0))
    # Every schema column in order (absent features as nulls), so validation takes its fast path.
    arrays = [cols[f.name] if f.name in cols else _nulls(n, f.type) for f in schema.SCHEMA]
    return schema.validate(pa.RecordBatch.from_arrays(arrays, schema=schema.SCHEMA))  # type: ignore[return-value]
