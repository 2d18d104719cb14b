"""The synthetic cluster's communication graph: edge weights and the numpy index flows are drawn from.

Called by `cluster.make_cluster`; `flows.generate` reads `GraphIndex` only, so sampling a flow is a
handful of array lookups (a group is a slice of `members`, an edge names a client and a server group).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from flowlake.engine.synth import catalog

Arr = npt.NDArray[Any]
KINDS = ("Node", "Pod", "Service", "External")  # endpoint kinds; GraphIndex.ep_kind indexes this
_NX_SUFFIXES = ("svc.cluster.local.", "cluster.local.", "{region}.compute.internal.")
_KUBERNETES = "kubernetes.default.svc.cluster.local."


@dataclass(frozen=True, eq=False)
class GraphIndex:
    """Numpy view of a cluster; endpoint arrays (`ep_*`) are indexed like `Cluster.endpoints` rows."""

    ip: pa.Array  # string per endpoint
    mac: pa.Array  # string per endpoint (null for Services, external), then each node's gateway MAC
    iface: pa.Array  # host-side veth per endpoint (null unless a pod), then "genev_sys_6081", "ens5"
    ns_names: pa.Array  # namespace names, indexed by ep_ns
    ep_kind: Arr  # int8 index into KINDS
    ep_host: Arr  # int32: endpoint index of the node it runs on (nodes: itself; -1 = none)
    ep_ns: Arr  # int32: index into ns_names, -1 = no namespace
    ep_probe_port: Arr  # int32
    ep_metrics_port: Arr  # int32
    members: Arr  # int32 endpoint indices, grouped
    g_start: Arr  # int32 per group: first position in members
    g_size: Arr  # int32 per group
    g_service: Arr  # int32 per group: endpoint index of its Service, -1 = none
    e_client: Arr  # int32 per edge: client group, -1 = the node of the chosen server pod
    e_server: Arr  # int32 per edge
    e_proto: Arr  # uint8
    e_port: Arr  # int32; catalog.PROBE_PORT / METRICS_PORT resolve per server endpoint
    e_cum: Arr  # float64 cumulative weight, last = 1
    e_service_share: Arr  # float64
    e_mu: Arr  # float64 (edges, 2): log median bytes of request, response
    e_sigma: Arr  # float64 (edges, 2)
    dns_names: pa.Array  # string; NoError names, then their NXDomain variants
    dns_len: Arr  # int32 length of each name
    nx_of: Arr  # int32: index of the NXDomain variant of each name
    d_members: Arr  # int32 name indices, grouped by client group
    d_start: Arr  # int32 per group: first position in d_members
    d_size: Arr  # int32 per group


def _strings(col: pl.Series) -> pa.Array:
    return col.cast(pl.String).to_arrow().cast(pa.string())


def _gateway_macs(nodes: int) -> pa.Array:
    """OVN's router port MAC on each node's pod subnet (.1): what pods see as the other end."""
    first = (10 << 24) + (128 << 16) + 1
    return pa.array(["0a:58:" + ":".join(f"{(a >> s) & 255:02x}" for s in (24, 16, 8, 0))
                     for a in (first + 512 * k for k in range(nodes))], pa.string())


def _workload_port(key: str) -> int:
    return next((w.port for w in catalog.WORKLOADS if f"{w.namespace}/{w.name}" == key), 0)


def weigh_edges(rng: np.random.Generator, groups: dict[str, list[int]]) -> pl.DataFrame:
    """Edges with weights summing to 1: fixed infra shares, DNS by pod count, app edges Zipf-like by a
    seed-shuffled rank (so one app edge is clearly the heaviest)."""
    specs = list(catalog.EDGES)
    clients = [w for w in catalog.WORKLOADS if not w.host_network and w.name != "coredns"]
    pods = {f"{w.namespace}/{w.name}": len(groups[f"{w.namespace}/{w.name}"]) for w in clients}
    total = sum(pods.values())
    specs += [catalog.EdgeSpec(k, "kube-system/coredns", catalog.UDP, 53, "dns",
                               catalog.DNS_SHARE * n / total, 0.5) for k, n in pods.items()]
    # An edge whose only client is its only server would be a host talking to itself: not on the wire.
    specs = [e for e in specs if e.client == catalog.NODE_OF_SERVER or e.client not in groups
             or groups[e.client] != groups[e.server] or len(groups[e.server]) > 1]
    app = [i for i, e in enumerate(specs) if e.share == 0]
    weight = np.array([e.share for e in specs])
    ranks = rng.permutation(len(app))
    zipf = 1.0 / (ranks + 1.0) ** 1.1
    weight[app] = zipf / zipf.sum() * max(0.0, 1.0 - weight.sum())
    weight /= weight.sum()
    return pl.DataFrame({
        "client": [e.client for e in specs], "server": [e.server for e in specs],
        "proto": pl.Series([e.proto for e in specs], dtype=pl.UInt8),
        "port": pl.Series([e.port or _workload_port(e.server) for e in specs], dtype=pl.Int32),
        "profile": [e.profile for e in specs], "weight": weight,
        "service_share": [e.service_share for e in specs],
    }).sort("weight", descending=True, maintain_order=True)


def _dns_names(edges: pl.DataFrame, hostnames: dict[str, list[str]]) -> dict[str, list[str]]:
    """The names each client group looks up: the Services and external hosts it talks to."""
    services = {f"{w.namespace}/{w.name}": f"{w.service}.{w.namespace}.svc.cluster.local."
                for w in catalog.WORKLOADS if w.service}
    services[catalog.APISERVER] = _KUBERNETES
    out: dict[str, list[str]] = {}
    for client, server in edges.select("client", "server").iter_rows():
        if server == "kube-system/coredns":  # the resolver itself is never looked up
            continue
        names = [services[server]] if server in services else hostnames.get(server, [])
        out.setdefault(client, [])
        out[client] += [n for n in names if n not in out[client]]
    out["kube-system/coredns"] = sorted({h for hs in hostnames.values() for h in hs})  # forwarded upstream
    return out


def build_index(rng: np.random.Generator, region: str, endpoints: pl.DataFrame, groups: dict[str, list[int]],
                services: dict[str, int], hostnames: dict[str, list[str]], edges: pl.DataFrame) -> GraphIndex:
    """Freeze the cluster into arrays. `groups` maps group name -> endpoint indices, `services` group
    name -> its Service endpoint, `hostnames` external group -> DNS names."""
    names = list(groups)
    gid = {n: i for i, n in enumerate(names)}
    sizes = np.array([len(groups[n]) for n in names], dtype=np.int32)
    members = np.array([m for n in names for m in groups[n]], dtype=np.int32)
    wanted = _dns_names(edges, hostnames)
    dns = sorted({h for hs in wanted.values() for h in hs} | {_KUBERNETES})
    suffix = rng.integers(len(_NX_SUFFIXES), size=len(dns))
    nx = [d + _NX_SUFFIXES[s].format(region=region) for d, s in zip(dns, suffix, strict=True)]
    d_lists = [[dns.index(h) for h in (wanted.get(n) or [_KUBERNETES])] for n in names]
    d_sizes = np.array([len(d) for d in d_lists], dtype=np.int32)
    ns_names = sorted(set(endpoints["Namespace"].drop_nulls().to_list()))
    ns_code = {n: i for i, n in enumerate(ns_names)}
    mu = np.log([catalog.PROFILES[p][0::2] for p in edges["profile"]])
    sigma = np.array([catalog.PROFILES[p][1::2] for p in edges["profile"]])
    cum = np.cumsum(edges["weight"].to_numpy())
    g_service = np.array([services.get(n, -1) for n in names], dtype=np.int32)
    e_server = np.array([gid[s] for s in edges["server"]], dtype=np.int32)
    return GraphIndex(
        ip=_strings(endpoints["ip"]),
        mac=pa.concat_arrays([_strings(endpoints["mac"]),
                              _gateway_macs(int((endpoints["kind"] == "Node").sum()))]),
        iface=pa.concat_arrays([_strings(endpoints["iface"]), pa.array(["genev_sys_6081", "ens5"])]),
        ns_names=pa.array(ns_names, pa.string()),
        ep_kind=np.array([KINDS.index(k) for k in endpoints["kind"]], dtype=np.int8),
        ep_host=endpoints["host"].to_numpy().astype(np.int32),
        ep_ns=np.array([ns_code.get(n, -1) if n else -1 for n in endpoints["Namespace"]], dtype=np.int32),
        ep_probe_port=endpoints["probe_port"].fill_null(0).to_numpy().astype(np.int32),
        ep_metrics_port=endpoints["metrics_port"].fill_null(0).to_numpy().astype(np.int32),
        members=members, g_start=(np.cumsum(sizes) - sizes).astype(np.int32), g_size=sizes,
        g_service=g_service,
        e_client=np.array([gid.get(c, -1) for c in edges["client"]], dtype=np.int32),
        e_server=e_server, e_proto=edges["proto"].to_numpy().astype(np.uint8),
        e_port=edges["port"].to_numpy().astype(np.int32), e_cum=cum / cum[-1],
        e_service_share=np.where(g_service[e_server] >= 0, edges["service_share"].to_numpy(), 0.0),
        e_mu=mu, e_sigma=sigma,
        dns_names=pa.array(dns + nx, pa.string()),
        dns_len=np.array([len(d) for d in dns + nx], dtype=np.int32),
        nx_of=np.arange(len(dns), 2 * len(dns), dtype=np.int32),
        d_members=np.array([i for d in d_lists for i in d], dtype=np.int32),
        d_start=(np.cumsum(d_sizes) - d_sizes).astype(np.int32), d_size=d_sizes,
    )
