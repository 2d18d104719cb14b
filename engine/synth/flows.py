"""Synthetic flows drawn from a `Cluster`, vectorized with numpy (no per-flow Python), plus ground truth.

Called by `flowlake synth` (cli), `live.stream`, benchmarks and tests. Each conversation is a request
and a reply flow; a flow between two nodes is reported by both (source node: egress, destination node:
ingress, same 5-tuple and counters), a same-node flow once (inner), an external one by its cluster-side
node. Sizes count reported rows, as a lake does. K8S_* columns stay null: the processor enriches them
from `Cluster.metadata_table()`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from flowlake.engine.errors import ConfigError
from flowlake.engine.synth import assemble, catalog, fields
from flowlake.engine.synth.cluster import Cluster
from flowlake.engine.synth.graph import Arr

DAY_MS = 86_400_000
PEAK_MS = 14 * 3_600_000  # busiest at 14:00 UTC, quietest at 02:00
DIURNAL_AMPLITUDE = 0.6  # rate ∝ 1 + 0.6 cos(2π (t - 14h) / 24h)


@dataclass(frozen=True, eq=False)
class SynthFlows:
    """A batch in `schema.SCHEMA` and, per row, which cluster endpoints it really carries."""

    cluster: Cluster
    batch: pa.RecordBatch
    src_endpoint: Arr  # int32 row index into cluster.endpoints of SrcAddr
    dst_endpoint: Arr  # int32, of DstAddr
    duplicate: Arr  # bool: the egress copy of a flow also reported by the destination node

    def __repr__(self) -> str:
        return f"SynthFlows({self.cluster!r}, rows={self.num_rows}, flows={self.num_flows})"

    @property
    def num_rows(self) -> int:
        return int(self.batch.num_rows)

    @property
    def num_flows(self) -> int:
        """Distinct flows (rows minus the second reports of flows between nodes)."""
        return self.num_rows - int(self.duplicate.sum())

    def _namespace(self, ep: Arr) -> pl.Series:
        ns = self.cluster.index.ep_ns[ep]
        return pl.Series(self.cluster.index.ns_names.take(pa.array(ns, mask=ns < 0)))

    @property
    def src_namespace(self) -> pl.Series:
        """Namespace of each row's source as the generator chose it; null for nodes and external."""
        return self._namespace(self.src_endpoint).alias("src_ns")

    @property
    def dst_namespace(self) -> pl.Series:
        return self._namespace(self.dst_endpoint).alias("dst_ns")

    def batches(self, max_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        """The batch in zero-copy slices of at most `max_rows` rows, for sending in chunks."""
        for offset in range(0, self.num_rows, max_rows):
            yield self.batch.slice(offset, max_rows)

    def truth_by_namespace_pair(self, *, dedup: bool = False) -> pl.DataFrame:
        """Rows, bytes and packets per (src_ns, dst_ns), sorted by bytes; nodes and external are null.

        Counts rows as reported (a flow between nodes counts twice, as in an un-deduplicated lake);
        `dedup=True` counts each flow once, dropping the egress copies a deduper would remove.
        """
        frame = pl.DataFrame([self.src_namespace, self.dst_namespace,
                              pl.Series("bytes", self.batch.column("Bytes")),
                              pl.Series("packets", self.batch.column("Packets"))])
        if dedup:
            frame = frame.filter(~pl.Series(self.duplicate))
        return (frame.group_by("src_ns", "dst_ns")
                .agg(pl.len().cast(pl.UInt64).alias("flows"), pl.col("bytes").sum(), pl.col("packets").sum())
                .sort(["bytes", "src_ns", "dst_ns"], descending=[True, False, False], nulls_last=True))


def diurnal_cdf(t_ms: Arr, start_ms: int) -> Arr:
    """Integral of the diurnal rate from `start_ms` to `t_ms` (in ms at rate 1)."""
    k = 2 * math.pi / DAY_MS
    out: Arr = (t_ms - start_ms) + DIURNAL_AMPLITUDE / k * (np.sin(k * (t_ms - PEAK_MS))
                                                          - np.sin(k * (start_ms - PEAK_MS)))
    return out


def _times(rng: np.random.Generator, n: int, start_ms: int, end_ms: int, lo: float, hi: float) -> Arr:
    """`n` sorted end times in the CDF window [lo, hi) of the diurnal rate over [start_ms, end_ms)."""
    grid = np.linspace(start_ms, end_ms, 4097)
    cdf = diurnal_cdf(grid, start_ms)
    e = rng.standard_exponential(n + 1)
    u = lo + (hi - lo) * (np.cumsum(e[:n]) / e.sum())  # sorted uniforms without a sort
    t: Arr = np.interp(u, cdf / cdf[-1], grid).astype(np.int64)
    return np.minimum(t, end_ms - 1)


def generate(cluster: Cluster, start_ms: int, end_ms: int, n_flows: int, seed: int,
             sampling: int = 1, *, stream: int = 0) -> SynthFlows:
    """Exactly `n_flows` flow records (rows) ending in [start_ms, end_ms), as agents would report
    them: a flow between two nodes is two of those rows, so `num_flows` (distinct) is about n / 1.45.
    Deterministic by (`seed`, `stream`); `stream` gives independent draws for one seed (live ticks)."""
    return _generate(cluster, start_ms, end_ms, n_flows, seed, sampling, 0.0, 1.0, stream)


def generate_chunks(cluster: Cluster, start_ms: int, end_ms: int, n_flows: int, seed: int,
                    sampling: int = 1, chunk_flows: int = 1_000_000) -> Iterator[SynthFlows]:
    """Like `generate` for any size in bounded memory: chunk k holds the k-th equal share of the rows
    and of the time range's flow mass, so the concatenation is time-ordered. One chunk is exactly
    `generate`'s output."""
    chunks = max(1, math.ceil(n_flows / chunk_flows))
    for k in range(chunks):
        size = n_flows * (k + 1) // chunks - n_flows * k // chunks
        yield _generate(cluster, start_ms, end_ms, size, seed, sampling, k / chunks, (k + 1) / chunks, k)


def _select(reps: Arr, n: int) -> tuple[Arr, bool]:
    """Flow ids (conversation * 2 + reply) whose reports add up to exactly `n` rows, given each flow's
    report count; `True` when the last flow must be reported by one node only (tiny `n`)."""
    cum = np.cumsum(reps)
    k = int(np.searchsorted(cum, n, side="right"))
    if (k == 0 and n == 0) or (k > 0 and cum[k - 1] == n):
        return np.arange(k), False
    singles = np.flatnonzero(reps[k:] == 1)  # one row short: add the next once-reported flow
    if len(singles):
        return np.append(np.arange(k), k + singles[0]), False
    return np.arange(k + 1), True


def _generate(cluster: Cluster, start_ms: int, end_ms: int, n: int, seed: int, sampling: int,
              lo: float, hi: float, stream: int) -> SynthFlows:
    if end_ms <= start_ms or n < 0 or sampling < 1:
        raise ConfigError(f"synth: need start < end, flows >= 0 and sampling >= 1 (got start={start_ms}, "
                          f"end={end_ms}, flows={n}, sampling={sampling})")
    ix = cluster.index
    rng = np.random.default_rng([seed, stream])
    nc = (n + 1) // 2  # enough: every conversation yields at least two rows
    edge = np.minimum(np.searchsorted(ix.e_cum, rng.random(nc), side="right"), len(ix.e_cum) - 1)
    u = rng.random((3, nc))
    sg = ix.e_server[edge]
    server = ix.members[ix.g_start[sg] + (u[0] * ix.g_size[sg]).astype(np.int32)]
    cg = np.maximum(ix.e_client[edge], 0)
    c_off = (u[1] * ix.g_size[cg]).astype(np.int32)
    client = np.where(ix.e_client[edge] >= 0, ix.members[ix.g_start[cg] + c_off], ix.ep_host[server])
    clash = client == server  # a self-edge picked the same pod twice: take its neighbour
    client[clash] = ix.members[ix.g_start[cg] + (c_off + 1) % ix.g_size[cg]][clash]
    server_addr = np.where(u[2] < ix.e_service_share[edge], ix.g_service[sg], server)
    h_c, h_s = ix.ep_host[client], ix.ep_host[server_addr]
    sel, cut_last = _select(np.repeat(1 + ((h_c >= 0) & (h_s >= 0) & (h_c != h_s)), 2), n)
    m = int(sel[-1] >> 1) + 1 if len(sel) else 0  # conversations used
    port = ix.e_port[edge[:m]]
    port = np.where(port == catalog.PROBE_PORT, ix.ep_probe_port[server[:m]],
                    np.where(port == catalog.METRICS_PORT, ix.ep_metrics_port[server[:m]], port))
    conv = fields.Conversations(edge=edge[:m], client=client[:m], server=server_addr[:m], client_group=cg[:m],
                                port=port, proto=ix.e_proto[edge[:m]],
                                t_end=_times(rng, m, start_ms, end_ms, lo, hi))
    flows = fields.draw(rng, ix, conv, sel, start_ms, end_ms, sampling)
    rows = assemble.expand(ix, flows, cut_last)
    batch = assemble.to_batch(ix, flows, rows, sampling)
    return SynthFlows(cluster, batch, rows.src, rows.dst, rows.duplicate)
