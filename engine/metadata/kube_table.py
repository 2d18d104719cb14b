"""Builds the IP -> identity table from a store snapshot, in Polars; called by KubeMetadata's rebuilds.

One row per IP, columns of `base.TABLE_SCHEMA`. The Python work is one pass per object to lay the
records out as columns; owner resolution (ReplicaSet -> Deployment, Job -> CronJob), node zones and
the one-identity-per-IP choice are joins and a sort. When several objects hold an IP, the row kept is:
live before deleted (an IP reused by a new pod wins at once over the tombstone), then Pod, Node,
host-network pod (as its node), Service, then the most recently changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from flowlake.engine.metadata.base import IDENTITY_COLUMNS, TABLE_SCHEMA
from flowlake.engine.metadata.kube_objects import Node, Owner, Pod, Service
from flowlake.engine.metadata.kube_store import Entry, Snapshot

RANK_POD, RANK_NODE, RANK_HOST_POD, RANK_SERVICE = 0, 1, 2, 3
_S = pl.String


def _frame(columns: Mapping[str, Sequence[Any]], schema: dict[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    return pl.DataFrame(columns, schema=schema)


def _per_ip(frame: pl.DataFrame, ips: Sequence[tuple[str, ...]]) -> pl.DataFrame:
    """`frame` (one row per object) repeated once per IP of its object, with an `ip` column. Flattened
    here rather than through a List column: Polars builds those one Series per element, 20x slower."""
    pairs = [(ip, i) for i, addrs in enumerate(ips) for ip in addrs]
    flat_ips, index = (list(c) for c in zip(*pairs, strict=True)) if pairs else ([], [])
    return frame[pl.Series(index, dtype=pl.UInt32)].with_columns(pl.Series("ip", flat_ips, dtype=_S))


def _pods(entries: list[Entry]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(own-address rows, host-network rows) of the pods, IPs still as lists."""
    recs: list[Pod] = [e.record for e in entries]  # type: ignore[misc]
    dead = [e.expires is not None for e in entries]
    seq = [e.seq for e in entries]
    base = _frame({"Name": [r.name for r in recs], "Namespace": [r.namespace for r in recs],
                   "node": [r.node for r in recs], "HostIP": [r.host_ip for r in recs],
                   "okind": [r.owner_kind for r in recs], "oname": [r.owner_name for r in recs],
                   "dead": dead, "seq": seq},
                  {"Name": _S, "Namespace": _S, "node": _S, "HostIP": _S, "okind": _S, "oname": _S,
                   "dead": pl.Boolean, "seq": pl.Int64})
    host = base.select("node", pl.col("HostIP").alias("pod_host_ip"), "dead", "seq")
    return _per_ip(base, [r.ips for r in recs]), _per_ip(host, [r.host_ips for r in recs])


def _nodes(entries: list[Entry]) -> tuple[list[tuple[str, ...]], pl.DataFrame]:
    """(the IPs of each node, one row per node)."""
    recs: list[Node] = [e.record for e in entries]  # type: ignore[misc]
    frame = _frame({"node": [r.name for r in recs], "node_ip": [r.ips[0] if r.ips else None for r in recs],
                    "Zone": [r.zone or None for r in recs], "dead": [e.expires is not None for e in entries],
                    "seq": [e.seq for e in entries]},
                   {"node": _S, "node_ip": _S, "Zone": _S, "dead": pl.Boolean, "seq": pl.Int64})
    return [r.ips for r in recs], frame


def _services(entries: list[Entry]) -> pl.DataFrame:
    recs: list[Service] = [e.record for e in entries]  # type: ignore[misc]
    return _per_ip(_frame({"Name": [r.name for r in recs], "Namespace": [r.namespace for r in recs],
                           "dead": [e.expires is not None for e in entries], "seq": [e.seq for e in entries]},
                          {"Name": _S, "Namespace": _S, "dead": pl.Boolean, "seq": pl.Int64}),
                   [r.ips for r in recs])


def _owners(entries: list[Entry]) -> pl.DataFrame:
    recs: list[Owner] = [e.record for e in entries]  # type: ignore[misc]
    return _frame({"Namespace": [r.namespace for r in recs], "okind": [r.kind for r in recs],
                   "oname": [r.name for r in recs], "okind2": [r.owner_kind for r in recs],
                   "oname2": [r.owner_name for r in recs]},
                  {"Namespace": _S, "okind": _S, "oname": _S, "okind2": _S, "oname2": _S})


def _node_identity(frame: pl.DataFrame, rank: int) -> pl.DataFrame:
    """Rows that identify a node (its own addresses, or a host-network pod's): Type Node, owner itself."""
    node = pl.col("node")
    return frame.select("ip", node.alias("Name"), pl.lit("Node").alias("Type"), pl.lit(None, _S).alias("Namespace"),
                        node.alias("OwnerName"), pl.lit("Node").alias("OwnerType"), pl.col("HostIP"),
                        node.alias("HostName"), "Zone", "dead", pl.lit(rank).alias("rank"), "seq")


def build(snapshot: Snapshot) -> pl.DataFrame:
    """The identity table: `ip` plus IDENTITY_COLUMNS, one row per IP."""
    get = snapshot.entries.get
    pods, host_pods = _pods(get("pods", []))
    node_ips, nodes = _nodes(get("nodes", []))
    owners = _owners(get("replicasets", []) + get("jobs", []))
    # A node known under a name twice (live and tombstone) cannot happen: nodes are keyed by name.
    node_info = nodes.select("node", "node_ip", "Zone")

    pods = (pods.join(owners, on=["Namespace", "okind", "oname"], how="left")
            .join(node_info, on="node", how="left")
            .select("ip", "Name", pl.lit("Pod").alias("Type"), "Namespace",
                    pl.coalesce("oname2", pl.when(pl.col("okind") != "").then("oname"), "Name").alias("OwnerName"),
                    pl.coalesce("okind2", pl.when(pl.col("okind") != "").then("okind"), pl.lit("Pod")
                                ).alias("OwnerType"),
                    pl.col("HostIP").replace("", None), pl.col("node").replace("", None).alias("HostName"),
                    "Zone", "dead", pl.lit(RANK_POD).alias("rank"), "seq"))
    node_rows = _node_identity(_per_ip(nodes, node_ips)
                               .with_columns(pl.col("node_ip").alias("HostIP")), RANK_NODE)
    host_rows = _node_identity(host_pods.join(node_info, on="node", how="left").with_columns(
        pl.coalesce("node_ip", pl.col("pod_host_ip").replace("", None)).alias("HostIP")), RANK_HOST_POD)
    services = _services(get("services", []))
    service_rows = services.select("ip", "Name", pl.lit("Service").alias("Type"), "Namespace",
                                   pl.col("Name").alias("OwnerName"), pl.lit("Service").alias("OwnerType"),
                                   *(pl.lit(None, _S).alias(c) for c in ("HostIP", "HostName", "Zone")),
                                   "dead", pl.lit(RANK_SERVICE).alias("rank"), "seq")
    rows = pl.concat([pods, node_rows, host_rows, service_rows], how="vertical_relaxed")
    return (rows.sort(["dead", "rank", "seq"], descending=[False, False, True])
            .unique(subset="ip", keep="first", maintain_order=True)
            .select("ip", *IDENTITY_COLUMNS)
            .cast(TABLE_SCHEMA))  # type: ignore[arg-type]
