"""The synthetic cluster: nodes, pods, Services and external endpoints, plus who talks to whom.

Built by `flowlake synth`, `flowlake demo` and tests through `make_cluster`; `flows.generate` draws
flows from its communication graph and `static.dump` writes its `metadata_table()` for the
processor's enrich stage. Same seed, same cluster: IPs, pod names, placement and edge weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from flowlake.engine.errors import ConfigError
from flowlake.engine.metadata.base import IDENTITY_COLUMNS
from flowlake.engine.synth import catalog, graph

_K8S_CHARS = np.array(list("bcdfghjklmnpqrstvwxz2456789"))  # apimachinery's rand.String alphabet
_HEX = np.array(list("0123456789abcdef"))


@dataclass(frozen=True, eq=False)
class Cluster:
    """A cluster as Polars frames; `index` is the numpy view the flow generator samples from."""

    name: str
    seed: int
    region: str
    nodes: pl.DataFrame  # name, ip, zone, role, mac
    workloads: pl.DataFrame  # namespace, name, kind, pods, port, service, host_network
    endpoints: pl.DataFrame  # every address a flow can carry: ip, identity columns, kind, host, ...
    edges: pl.DataFrame  # client, server, proto, port, profile, weight (sums to 1), service_share
    index: graph.GraphIndex

    def __repr__(self) -> str:
        return (f"Cluster(name={self.name!r}, seed={self.seed}, nodes={self.nodes.height}, "
                f"endpoints={self.endpoints.height}, edges={self.edges.height})")

    @property
    def entities(self) -> pl.DataFrame:
        """Pods, Services and Nodes with a Kubernetes identity (external endpoints have none)."""
        return self.endpoints.filter(pl.col("kind") != "External").select(["ip", *IDENTITY_COLUMNS])

    def metadata_table(self) -> pl.DataFrame:
        """The identity table (one row per IP) for `metadata.static.dump`."""
        return self.entities.cast(pl.String)  # every identity column is text (TABLE_SCHEMA)


class _Builder:
    """Accumulates endpoint rows; a cluster has hundreds of them, so plain Python is fine here."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 0x5EED])
        self.rows: list[dict[str, object]] = []
        self.used: set[str] = set()

    def token(self, n: int, alphabet: np.ndarray | None = None) -> str:
        chars = _K8S_CHARS if alphabet is None else alphabet
        return "".join(self.rng.choice(chars, n))

    def unique_ip(self, head: str, *ranges: tuple[int, int]) -> str:
        """`head` followed by one random octet per [low, high) range, not used before."""
        for _ in range(10_000):
            ip = head + ".".join(str(self.rng.integers(lo, hi)) for lo, hi in ranges)
            if ip not in self.used:
                self.used.add(ip)
                return ip
        raise ConfigError("synthetic cluster: address range exhausted; use fewer nodes or a smaller --scale")

    def add(self, ip: str, kind: str, **cols: object) -> int:
        self.used.add(ip)
        self.rows.append({"ip": ip, "kind": kind, **cols})
        return len(self.rows) - 1


def _octets(ip: str) -> list[int]:
    return [int(p) for p in ip.split(".")]


def _pod_ip(node: int, k: int) -> str:
    """The k-th pod address on a node: each node owns a /23 of 10.128.0.0/14; .1 and .2 are OVN's."""
    n = (10 << 24) + (128 << 16) + 512 * node + 3 + k
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def make_cluster(seed: int, nodes: int = 6, zones: int = 3, *, scale: int = 1, control_plane: int = 1,
                 region: str = "eu-west-1", name: str = "synth") -> Cluster:
    """A realistic cluster, deterministic by `seed`.

    `nodes` includes `control_plane` nodes (they host the API server on 6443, host network); node `i`
    is in zone `i % zones`. `scale` multiplies Deployment and StatefulSet replicas.
    """
    if not 1 <= nodes <= 512 or not 1 <= zones <= 14 or not 1 <= control_plane <= nodes or scale < 1:
        raise ConfigError(f"synthetic cluster: need 1 <= nodes <= 512, 1 <= zones <= 14, "
                          f"1 <= control_plane <= nodes and scale >= 1 (got nodes={nodes}, zones={zones}, "
                          f"control_plane={control_plane}, scale={scale})")
    b = _Builder(seed)
    rng = b.rng
    node_rows = []
    for i in range(nodes):
        z = i % zones
        ip = b.unique_ip("10.0.", (16 * z, 16 * z + 16), (4, 255))
        o = _octets(ip)
        node_name = f"ip-{o[0]}-{o[1]}-{o[2]}-{o[3]}"
        mac = "06:" + ":".join(f"{x:02x}" for x in rng.integers(0, 256, 5))
        zone = f"{region}{chr(ord('a') + z)}"
        role = "control-plane" if i < control_plane else "worker"
        b.add(ip, "Node", Name=node_name, Type="Node", OwnerName=node_name, OwnerType="Node", HostIP=ip,
              HostName=node_name, Zone=zone, host=i, mac=mac)
        node_rows.append({"name": node_name, "ip": ip, "zone": zone, "role": role, "mac": mac})
    workers = list(range(control_plane, nodes)) or list(range(nodes))
    pods_on = [0] * nodes
    groups: dict[str, list[int]] = {catalog.NODES: list(range(nodes)),
                                    catalog.APISERVER: list(range(control_plane)), catalog.PODS: []}
    services: dict[str, int] = {}
    wl_rows = []
    for w in catalog.WORKLOADS:
        key = f"{w.namespace}/{w.name}"
        if w.kind == "DaemonSet":
            placement = list(range(nodes))
        else:
            extra = int(rng.integers(2)) if w.kind == "Deployment" and w.replicas >= 2 else 0
            count = max(1, w.replicas * scale + extra)
            start = int(rng.integers(len(workers)))
            placement = [workers[(start + k) % len(workers)] for k in range(count)]
        if w.host_network:
            groups[key] = placement
        else:
            template_hash = b.token(10)
            members = []
            for k, node in enumerate(placement):
                if pods_on[node] >= 500:
                    raise ConfigError(f"synthetic cluster: node {node} is full (500 pods); add --nodes")
                pod_ip = _pod_ip(node, pods_on[node])
                pods_on[node] += 1
                pod_name = {"Deployment": f"{w.name}-{template_hash}-{b.token(5)}",
                            "StatefulSet": f"{w.name}-{k}"}.get(w.kind, f"{w.name}-{b.token(5)}")
                n = node_rows[node]
                members.append(b.add(
                    pod_ip, "Pod", Name=pod_name, Type="Pod", Namespace=w.namespace, OwnerName=w.name,
                    OwnerType=w.kind, HostIP=n["ip"], HostName=n["name"], Zone=n["zone"], host=node,
                    mac="0a:58:" + ":".join(f"{x:02x}" for x in _octets(pod_ip)),
                    iface=b.token(15, _HEX), port=w.port,
                    probe_port=w.probe_port or w.port, metrics_port=w.metrics_port))
            groups[key] = members
            groups[catalog.PODS] += members
        wl_rows.append({"namespace": w.namespace, "name": w.name, "kind": w.kind, "pods": len(placement),
                        "port": w.port, "service": w.service or None, "host_network": w.host_network})
    b.used.update({"172.30.0.1", "172.30.0.10"})
    for w in catalog.WORKLOADS:
        if w.service:
            ip = "172.30.0.10" if w.service == "kube-dns" else b.unique_ip("172.30.", (1, 256), (1, 255))
            services[f"{w.namespace}/{w.name}"] = b.add(
                ip, "Service", Name=w.service, Type="Service", Namespace=w.namespace, OwnerName=w.service,
                OwnerType="Service", host=-1, port=w.port)
    services[catalog.APISERVER] = b.add("172.30.0.1", "Service", Name="kubernetes", Type="Service",
                                        Namespace="default", OwnerName="kubernetes", OwnerType="Service",
                                        host=-1, port=443)
    hostnames: dict[str, list[str]] = {}
    for e in catalog.EXTERNALS:
        host = e.hostname.format(region=region)
        hostnames.setdefault(e.group, []).append(host)
        ips = [b.add(b.unique_ip(e.prefix, (0, 256), (1, 255)),
                     "External", host=-1, dns_name=host) for _ in range(e.addresses)]
        groups.setdefault(e.group, []).extend(ips)
    groups[catalog.INTERNET] = [
        b.add(b.unique_ip(str(rng.choice(catalog.INTERNET_PREFIXES)), (0, 256), (0, 256), (1, 255)),
              "External", host=-1) for _ in range(catalog.INTERNET_CLIENTS)]
    groups[catalog.UPSTREAM_DNS] = [b.add(catalog.UPSTREAM_DNS_IP, "External", host=-1)]
    endpoints = pl.DataFrame(b.rows, infer_schema_length=None).select(
        "ip", *[pl.col(c).cast(pl.String) for c in IDENTITY_COLUMNS],
        pl.col("kind"), pl.col("host").cast(pl.Int32),
        *[pl.col(c) for c in ("mac", "iface", "port", "probe_port", "metrics_port", "dns_name")])
    edges = graph.weigh_edges(rng, groups)
    index = graph.build_index(rng, region, endpoints, groups, services, hostnames, edges)
    return Cluster(name, seed, region, pl.DataFrame(node_rows), pl.DataFrame(wl_rows), endpoints,
                   edges, index)
