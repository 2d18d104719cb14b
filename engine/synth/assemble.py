"""Reporter rows and Arrow assembly for `flows.generate`: who reports each flow, on which interfaces.

Called only by `flows`. `expand` turns distinct flows into reported rows (a flow between two nodes
twice, everything else once); `to_batch` builds the `schema.SCHEMA` batch with Arrow `take` on the
cluster's string tables, so no Python string is made per flow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from flowlake.engine import schema
from flowlake.engine.synth import fields
from flowlake.engine.synth.catalog import ICMP, TCP
from flowlake.engine.synth.graph import Arr, GraphIndex

_IF_DIRS = np.array([0, 1], np.uint8)  # first interface seen on the way in, second on the way out


@dataclass(frozen=True, eq=False)
class Rows:
    """One entry per reported row."""

    flow: Arr  # index into Flows
    src: Arr  # endpoint of SrcAddr (ground truth)
    dst: Arr
    reporter: Arr  # node endpoint whose agent reported the row
    direction: Arr  # 0 ingress, 1 egress, 2 inner
    duplicate: Arr  # the egress copy of a flow the destination node reports too
    last: Arr  # the last report of its flow (drops are counted where the packet died)
    if_codes: Arr  # (rows, 2) indices into GraphIndex.iface, -1 = absent; directions are 0 then 1


def expand(ix: GraphIndex, fl: fields.Flows, cut_last: bool = False) -> Rows:
    """Reported rows; `cut_last` keeps only the source node's report of the last flow."""
    n = len(fl.src)
    sh, dh = ix.ep_host[fl.src], ix.ep_host[fl.dst]
    two = (sh >= 0) & (dh >= 0) & (sh != dh)
    if cut_last:
        two[-1] = False
    reps = 1 + two.astype(np.int64)
    f = np.repeat(np.arange(n), reps)
    ends = np.cumsum(reps)
    second = np.zeros(len(f), bool)
    second[ends[two] - 1] = True
    last = np.zeros(len(f), bool)
    last[ends - 1] = True
    src, dst, sh, dh, two = fl.src[f], fl.dst[f], sh[f], dh[f], two[f]
    on_src = ~second & (sh >= 0)  # reported by the source's node (egress, or inner when same node)
    inner = (sh == dh) & (sh >= 0)
    direction = np.where(second, 0, np.where(inner, 2, np.where(on_src, 1, 0))).astype(np.uint8)
    # Interfaces: the pod's host-side veth (pods only), then the tunnel (pod to pod, or via a Service)
    # or the node's uplink; first-seen first.
    src_pod, dst_pod = ix.ep_kind[src] == fields.POD, ix.ep_kind[dst] == fields.POD
    genev, ens5 = len(ix.ep_kind), len(ix.ep_kind) + 1
    tunnel = (src_pod & dst_pod) | (ix.ep_kind[src] == fields.SERVICE) | (ix.ep_kind[dst] == fields.SERVICE)
    wire = np.where(tunnel, genev, ens5)
    veth_src, veth_dst = np.where(src_pod, src, -1), np.where(dst_pod, dst, -1)
    a = np.where(on_src, veth_src, wire)
    b = np.where(on_src, np.where(inner, veth_dst, wire), veth_dst)
    a = np.where((a < 0) & (b < 0), ens5, a)
    return Rows(flow=f, src=src, dst=dst, reporter=np.where(second | ~on_src, dh, sh), direction=direction,
                duplicate=two & ~second, last=last, if_codes=np.stack([a, b], axis=1))


def _num(values: Arr, typ: pa.DataType, null: Arr | None = None) -> pa.Array:
    return pa.array(np.ascontiguousarray(values).astype(typ.to_pandas_dtype(), copy=False), typ, mask=null)


def _take(strings: pa.Array, idx: Arr, null: Arr | None = None) -> pa.Array:
    return strings.take(pa.array(idx.astype(np.int32, copy=False), pa.int32(), mask=null))


def _lists(offsets: pa.Array, values: pa.Array) -> pa.Array:
    return pa.ListArray.from_arrays(offsets, values)


def _null_columns(m: int) -> dict[pa.DataType, pa.Array]:
    """All-null arrays for the columns synth leaves empty, sharing one zeroed buffer (one allocation
    instead of ~50: the processor fills K8S_* and friends)."""
    zero = pa.py_buffer(np.zeros(8 * (m + 1), np.uint8))
    out: dict[pa.DataType, pa.Array] = {}
    for fd in schema.FIELDS:
        t = fd.type
        if t in out:
            continue
        if pa.types.is_list(t):
            out[t] = pa.Array.from_buffers(t, m, [zero, zero], null_count=m,
                                           children=[pa.array([], t.value_type)])
        elif pa.types.is_string(t):
            out[t] = pa.Array.from_buffers(t, m, [zero, zero, pa.py_buffer(b"")], null_count=m)
        elif pa.types.is_integer(t) or pa.types.is_boolean(t):
            out[t] = pa.Array.from_buffers(t, m, [zero, zero], null_count=m)
        else:
            out[t] = pa.nulls(m, t)
    return out


def to_batch(ix: GraphIndex, fl: fields.Flows, rw: Rows, sampling: int) -> pa.RecordBatch:
    f = rw.flow
    m = len(f)
    proto = fl.proto[f]
    not_tcp, not_icmp, no_ports = proto != TCP, proto != ICMP, proto == ICMP
    not_dns = ~fl.dns[f]
    drop_null = ~(rw.last & (fl.drop_packets[f] > 0))
    rtt = fl.rtt[f]
    gateway = len(ix.ep_kind) + rw.reporter  # the reporter's OVN router MAC
    own_src = ix.ep_host[rw.src] == rw.reporter
    own_dst = ix.ep_host[rw.dst] == rw.reporter
    present = rw.if_codes >= 0
    offsets = np.zeros(m + 1, np.int32)
    np.cumsum(present.sum(axis=1, dtype=np.int32), out=offsets[1:])
    if_offsets = pa.array(offsets)
    icmp = fl.icmp[f]
    cols: dict[str, pa.Array] = {
        "TimeFlowStartMs": _num(fl.t_start[f], pa.int64()), "TimeFlowEndMs": _num(fl.t_end[f], pa.int64()),
        "AgentIP": _take(ix.ip, rw.reporter), "Etype": _num(np.full(m, 2048), pa.uint16()),
        "SrcMac": _take(ix.mac, np.where(own_src, rw.src, gateway)),
        "DstMac": _take(ix.mac, np.where(own_dst, rw.dst, gateway)),
        "SrcAddr": _take(ix.ip, rw.src), "DstAddr": _take(ix.ip, rw.dst),
        "SrcPort": _num(fl.sport[f], pa.uint16(), no_ports),
        "DstPort": _num(fl.dport[f], pa.uint16(), no_ports),
        "Proto": _num(proto, pa.uint8()), "Dscp": _num(fl.dscp[f], pa.uint8()),
        "IcmpType": _num(icmp[:, 0], pa.uint8(), not_icmp),
        "IcmpCode": _num(icmp[:, 1], pa.uint8(), not_icmp),
        "Flags": _num(fl.flags[f], pa.uint16(), not_tcp),
        "Bytes": _num(fl.bytes[f], pa.uint64()), "Packets": _num(fl.packets[f], pa.uint64()),
        "Sampling": _num(np.full(m, sampling), pa.uint32()),
        "Interfaces": _lists(if_offsets, ix.iface.take(pa.array(rw.if_codes[present].astype(np.int32)))),
        "IfDirections": _lists(if_offsets, pa.array(np.broadcast_to(_IF_DIRS, (m, 2))[present])),
        "FlowDirection": _num(rw.direction, pa.uint8()),
        "DnsId": _num(fl.dns_id[f], pa.uint16(), not_dns),
        "DnsFlags": _num(fl.dns_flags[f], pa.uint16(), not_dns),
        "DnsFlagsResponseCode": _take(pa.array(fields.RCODES), fl.rcode[f], not_dns),
        "DnsLatencyMs": _num(fl.dns_latency[f], pa.uint32(), not_dns | ~fl.reply[f]),
        "DnsName": _take(ix.dns_names, fl.dns_name[f], not_dns),
        "TimeFlowRttNs": _num(rtt, pa.int64(), rtt < 0),
        "PktDropBytes": _num(fl.drop_bytes[f], pa.uint64(), drop_null),
        "PktDropPackets": _num(fl.drop_packets[f], pa.uint64(), drop_null),
        "PktDropLatestState": _take(pa.array(fields.STATES), fl.drop_state[f], drop_null),
        "PktDropLatestDropCause": _take(pa.array(fields.CAUSES), fl.drop_cause[f], drop_null),
        "PktDropLatestFlags": _num(fl.drop_flags[f], pa.uint16(), drop_null),
    }
    nulls = _null_columns(m)
    return pa.RecordBatch.from_arrays([cols[fd.name] if fd.name in cols else nulls[fd.type]
                                       for fd in schema.FIELDS], schema=schema.SCHEMA)
