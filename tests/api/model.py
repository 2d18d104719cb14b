"""A small enriched lake with a plain-Python model of every row, for the metrics/topology/tenancy tests.

`ROWS` are dicts built by a seeded `random.Random`; `write(url)` stores them through the real
`LakeSink`. Tests compute expected answers from `ROWS` with plain Python (no Polars), so the query
layer is checked against an independent computation.
"""

from __future__ import annotations

import random
from typing import Any

import polars as pl

from flowlake.engine.sinks.lake import LakeSink
from tests.conftest import BASE_MS, make_batch

Row = dict[str, Any]
N = 1500
SPAN_MS = 2 * 3_600_000  # two hour partitions
NAMESPACES = ("shop", "payments", "db", "kube-system", None)  # None: an address outside the cluster
HOSTS = ("node-a", "node-b", "node-c")
ZONES = {"node-a": "z1", "node-b": "z1", "node-c": "z2"}
OWNERS = {"shop": ("cart", "web"), "payments": ("pay",), "db": ("pg",), "kube-system": ("dns",)}


def _endpoint(rng: random.Random, side: str) -> Row:
    ns = rng.choice(NAMESPACES)
    if ns is None:
        return {f"{side}Addr": f"203.0.113.{rng.randrange(4)}"}
    owner = rng.choice(OWNERS[ns])
    host = rng.choice(HOSTS)
    kind = "Service" if side == "Dst" and rng.random() < 0.2 else "Pod"
    pod = owner if kind == "Service" else f"{owner}-{rng.randrange(2)}"
    return {f"{side}K8S_Namespace": ns, f"{side}K8S_OwnerName": owner,
            f"{side}K8S_OwnerType": "Service" if kind == "Service" else "Deployment",
            f"{side}K8S_Name": pod, f"{side}K8S_Type": kind, f"{side}K8S_HostName": host,
            f"{side}K8S_Zone": ZONES[host], f"{side}Addr": f"10.{hash((ns, pod)) % 200}.0.{rng.randrange(2)}"}


def _row(rng: random.Random, i: int) -> Row:
    r: Row = {"TimeFlowEndMs": BASE_MS + i * (SPAN_MS // N) + rng.randrange(SPAN_MS // N),
              "Bytes": rng.randrange(50, 5000), "Packets": rng.randrange(1, 40),
              "FlowDirection": rng.choice((0, 1, 2, None)), "K8S_ClusterName": "c1",
              "DnsId": None, "DnsLatencyMs": None, "DnsFlagsResponseCode": None, "TimeFlowRttNs": None,
              "PktDropPackets": None, "PktDropBytes": None, "PktDropLatestDropCause": None}
    r.update(_endpoint(rng, "Src"))
    r.update(_endpoint(rng, "Dst"))
    roll = rng.random()
    if roll < 0.15:
        r["DnsId"] = rng.randrange(65536)
        r["DnsLatencyMs"] = rng.randrange(0, 300)
        r["DnsFlagsResponseCode"] = rng.choice(("NoError", "NoError", "NXDomain", "ServFail"))
    elif roll < 0.5:
        r["TimeFlowRttNs"] = rng.randrange(10_000, 50_000_000)
    if rng.random() < 0.1:
        r["PktDropPackets"] = rng.randrange(1, 5)
        r["PktDropBytes"] = r["PktDropPackets"] * 100
        r["PktDropLatestDropCause"] = "SKB_DROP_REASON_NO_SOCKET"
    return r


def _rows() -> list[Row]:
    rng = random.Random(20261126)
    return [_row(rng, i) for i in range(N)]


ROWS: list[Row] = _rows()
COLUMNS = sorted({k for r in ROWS for k in r} - {"TimeFlowEndMs"})


def write(url: str) -> None:
    """Store ROWS in a lake at `url` (one flush per hour partition)."""
    sink = LakeSink(url)
    ends = [r["TimeFlowEndMs"] for r in ROWS]
    cols = {k: [r.get(k) for r in ROWS] for k in COLUMNS}
    batch = make_batch(len(ROWS), TimeFlowStartMs=[e - 500 for e in ends], TimeFlowEndMs=ends, **cols)
    sink.write(pl.from_arrow(batch))  # type: ignore[arg-type]
    sink.close()


def in_range(start_ms: int, end_ms: int) -> list[Row]:
    return [r for r in ROWS if start_ms <= r["TimeFlowEndMs"] < end_ms]


def visible(rows: list[Row], namespaces: frozenset[str] | None) -> list[Row]:
    """The rows a tenant owning `namespaces` may see (source OR destination namespace)."""
    if namespaces is None:
        return rows
    return [r for r in rows if r.get("SrcK8S_Namespace") in namespaces or r.get("DstK8S_Namespace") in namespaces]


def dedup(r: Row) -> bool:
    """The reference's reporter merge, written independently of engine.query.measures."""
    fd = r["FlowDirection"]
    if fd is None:
        return True
    return fd in (0, 2) or (fd == 1 and (r.get("DstK8S_Type") or "") in ("", "Service"))
