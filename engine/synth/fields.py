"""Per-flow field distributions and the RecordBatch assembly behind `flows.generate`.

Called only by `flows`. Every function works on whole columns: `draw` turns conversations into
request/reply flows (bytes, flags, DNS, RTT, drops), `expand` adds the second reporter of flows between
nodes, `to_batch` gathers strings and builds `schema.SCHEMA` columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowlake.engine.synth.catalog import ICMP, TCP, UDP
from flowlake.engine.synth.graph import Arr, GraphIndex

ACTIVE_TIMEOUT_MS = 5_000  # the agent's cache active timeout: no report spans more
POD, SERVICE, EXTERNAL = 1, 2, 3  # graph.KINDS indices
# TCP conversation shapes: complete, ongoing, opening, closing, refused. Bits: FIN 1, SYN 2, RST 4,
# PSH 8, ACK 16, SYN_ACK 256, FIN_ACK 512, RST_ACK 1024 (the agent folds SYN+ACK etc. into one bit).
TCP_SHAPE_CUM = np.cumsum([0.45, 0.45, 0.04, 0.03, 0.03])
REFUSED = 4
REQ_FLAGS = np.array([2 | 16 | 8 | 512, 16 | 8, 2 | 16 | 8, 16 | 8 | 512, 2], dtype=np.uint16)
RESP_FLAGS = np.array([256 | 16 | 8 | 512, 16 | 8, 256 | 16 | 8, 16 | 512, 1024], dtype=np.uint16)
RCODES, RCODE_VALUES, RCODE_CUM = ("NoError", "NXDomain", "ServFail"), np.array([0, 3, 2]), \
    np.cumsum([0.915, 0.08, 0.005])
DSCP_VALUES = np.array([10, 18, 26, 46])
CAUSES = ("SKB_DROP_REASON_TCP_INVALID_SEQUENCE", "SKB_DROP_REASON_TCP_OLD_DATA",
          "SKB_DROP_REASON_NO_SOCKET", "SKB_DROP_REASON_NETFILTER_DROP", "SKB_DROP_REASON_SOCKET_BACKLOG",
          "SKB_DROP_REASON_SOCKET_RCVBUFF")
CAUSE_CUM = np.cumsum([[0.35, 0.2, 0.15, 0.15, 0.15, 0.0],  # TCP
                       [0.0, 0.0, 0.5, 0.2, 0.0, 0.3],  # UDP
                       [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]], axis=1)  # ICMP
STATES = ("TCP_ESTABLISHED", "TCP_FIN_WAIT1", "TCP_CLOSE_WAIT", "TCP_TIME_WAIT", "TCP_SYN_RECV", "TCP_CLOSE")
STATE_CUM = np.cumsum([[0.75, 0.08, 0.07, 0.05, 0.05, 0.0], [0.4, 0, 0, 0, 0, 0.6], [0.4, 0, 0, 0, 0, 0.6]],
                      axis=1)


@dataclass(frozen=True, eq=False)
class Conversations:
    """One row per client->server conversation (endpoint indices into the cluster)."""

    edge: Arr
    client: Arr
    server: Arr  # the address the client used: a pod, a node, a Service or an external endpoint
    client_group: Arr
    port: Arr
    proto: Arr
    t_end: Arr


@dataclass(frozen=True, eq=False)
class Flows:
    """One entry per distinct flow (a request or a reply); `expand` turns them into reported rows."""

    src: Arr
    dst: Arr
    proto: Arr
    sport: Arr
    dport: Arr
    t_start: Arr
    t_end: Arr
    bytes: Arr
    packets: Arr
    flags: Arr
    dscp: Arr
    icmp: Arr  # uint8 (n, 2): type, code
    dns: Arr  # bool
    dns_id: Arr
    dns_flags: Arr
    rcode: Arr
    dns_name: Arr
    dns_latency: Arr  # ms, meaningful on replies
    reply: Arr
    rtt: Arr  # ns, -1 = not measured
    drop_packets: Arr  # 0 = no drop
    drop_bytes: Arr
    drop_cause: Arr
    drop_state: Arr
    drop_flags: Arr


def _pick(cum: Arr, u: Arr) -> Arr:
    """Row-wise categorical draw from cumulative probabilities `cum` (n, k) or (k,)."""
    out: Arr = (np.searchsorted(cum, u, side="right") if cum.ndim == 1 else (u[:, None] >= cum).sum(axis=1))
    return out.clip(0, cum.shape[-1] - 1)


def draw(rng: np.random.Generator, ix: GraphIndex, c: Conversations, sel: Arr, start_ms: int, end_ms: int,
         sampling: int) -> Flows:
    """Flows `sel` (conversation * 2 + 1 for a reply) with counters, flags, DNS, RTT and drops."""
    nc = len(c.edge)
    tcp, icmp = c.proto == TCP, c.proto == ICMP
    dns = (c.proto == UDP) & (c.port == 53)
    shape = _pick(TCP_SHAPE_CUM, rng.random(nc))
    eph = rng.integers(32768, 61000, nc)
    dscp = np.where(rng.random(nc) < 0.04, DSCP_VALUES[rng.integers(0, 4, nc)], 0).astype(np.uint8)
    rcode = _pick(RCODE_CUM, rng.random(nc))
    cg = c.client_group
    name = ix.d_members[ix.d_start[cg] + (rng.random(nc) * ix.d_size[cg]).astype(np.int32)]
    name = np.where(rcode == 1, ix.nx_of[name], name)
    ext = (ix.ep_kind[c.client] == EXTERNAL) | (ix.ep_kind[c.server] == EXTERNAL)
    h_c, h_s = ix.ep_host[c.client], ix.ep_host[c.server]
    same = (h_c == h_s) & (h_c >= 0)
    lo, med, hi = (np.where(ext, a, np.where(same, b, d)) for a, b, d in
                   ((5e6, 10e3, 50e3), (20e6, 40e3, 180e3), (80e6, 500e3, 2e6)))
    rtt = np.clip(med * np.exp(0.5 * rng.standard_normal(nc)), lo, hi).astype(np.int64)
    rtt[~tcp | (shape == REFUSED) | (rng.random(nc) >= 0.8)] = -1
    icmp_n = rng.integers(1, 6, nc)
    unreachable = rng.random(nc) < 0.03
    # -- per flow: sel = conversation * 2, + 1 for its reply (server -> client)
    n = len(sel)
    ci = sel >> 1
    reply = (sel & 1).astype(bool)
    e, r = c.edge[ci], reply.astype(np.intp)
    size = np.exp(ix.e_mu[e, r] + ix.e_sigma[e, r] * rng.standard_normal(n, np.float32))
    packets = np.maximum(1.0, np.ceil(size / rng.uniform(300, 1400, n).astype(np.float32)))
    nbytes = np.minimum(np.maximum(size, 54 * packets), 5e9)
    f_tcp, f_shape, f_rcode = tcp[ci], shape[ci], rcode[ci]
    refused = np.flatnonzero(f_tcp & (f_shape == REFUSED))
    packets[refused], nbytes[refused] = 1, np.where(reply[refused], 54, 74)
    # DNS, ICMP and drops touch a few percent of the rows: draw them on those rows only.
    di = np.flatnonzero(dns[ci])
    d_rcode, d_reply = f_rcode[di], reply[di]
    answer = np.choose(d_rcode, [27 + 16 * rng.integers(1, 5, len(di)), 90, 11])
    packets[di] = dns_pk = np.where(rng.random(len(di)) < 0.02, 2, 1)
    nbytes[di] = dns_pk * (58 + ix.dns_len[name[ci[di]]] + np.where(d_reply, answer, 0))
    latency = np.zeros(n, np.uint32)
    latency[di] = np.choose(d_rcode, [rng.lognormal(0.0, 0.9, len(di)), rng.lognormal(0.7, 0.8, len(di)),
                                      rng.uniform(1000, 5000, len(di))]).round()
    ii = np.flatnonzero(icmp[ci])
    packets[ii] = icmp_n[ci[ii]]
    nbytes[ii] = 98 * packets[ii]
    multi = np.flatnonzero(packets > 1)
    dur = np.zeros(n, np.int64)
    dur[multi] = np.minimum(ACTIVE_TIMEOUT_MS, rng.lognormal(np.log(200), 1.5, len(multi)))
    t_end = np.minimum(c.t_end[ci] + reply * rng.integers(0, 3, n, dtype=np.int64), end_ms - 1)
    xi = np.flatnonzero(rng.random(n, np.float32) < np.where(ext, 0.03, 0.01)[ci])
    drop_pk = np.zeros(n, np.uint64)
    drop_pk[xi] = np.minimum(packets[xi], rng.geometric(0.6, len(xi)))
    if sampling > 1:  # counters as a sampling agent sees them: a binomial share of the packets
        kept = np.maximum(1, rng.binomial(packets.astype(np.int64), 1.0 / sampling))
        nbytes = np.maximum(1.0, np.round(nbytes * kept / packets))
        packets = kept.astype(np.float64)
        drop_pk = np.minimum(drop_pk, packets.astype(np.uint64))
    packets_u = packets.astype(np.uint64)
    bytes_u = nbytes.astype(np.uint64)
    proto_class = np.where(f_tcp[xi], 0, np.where(icmp[ci[xi]], 2, 1))
    cause, state, drop_flags = np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(n, np.uint16)
    cause[xi] = _pick(CAUSE_CUM[proto_class], rng.random(len(xi)))
    state[xi] = _pick(STATE_CUM[proto_class], rng.random(len(xi)))
    drop_flags[xi] = np.where(proto_class == 0, np.where(rng.random(len(xi)) < 0.5, 16, 24), 0)
    drop_bytes = np.zeros(n, np.uint64)
    drop_bytes[xi] = drop_pk[xi] * (bytes_u[xi] // np.maximum(packets_u[xi], 1))
    port, eph_f = c.port[ci], eph[ci]
    icmp_type = np.where(reply, np.where(unreachable[ci], 3, 0), 8).astype(np.uint8)
    return Flows(
        src=np.where(reply, c.server[ci], c.client[ci]), dst=np.where(reply, c.client[ci], c.server[ci]),
        proto=c.proto[ci], sport=np.where(reply, port, eph_f), dport=np.where(reply, eph_f, port),
        t_start=np.maximum(start_ms, t_end - dur.astype(np.int64)), t_end=t_end,
        bytes=bytes_u, packets=packets_u,
        flags=np.where(reply, RESP_FLAGS[f_shape], REQ_FLAGS[f_shape]), dscp=dscp[ci],
        icmp=np.stack([icmp_type, (icmp_type == 3).astype(np.uint8)], axis=1),
        dns=dns[ci], dns_id=rng.integers(0, 65536, nc)[ci].astype(np.uint16),
        dns_flags=np.where(reply, 0x8180 | RCODE_VALUES[f_rcode], 0x0100).astype(np.uint16),
        rcode=np.where(reply, f_rcode, 0), dns_name=name[ci], dns_latency=latency, reply=reply,
        rtt=rtt[ci], drop_packets=drop_pk, drop_bytes=drop_bytes, drop_cause=cause, drop_state=state,
        drop_flags=drop_flags,
    )
