"""Dedup stage: drops or samples the egress copy of flows that both the source and destination nodes report.

Built by the processor from `stages: [dedup]` (settings in `dedup:`); it runs after `enrich` and
`direction`. The reference (`reference/netobserv.md` §2.3 and §4.1 `processor.deduper`; the operator's
`flp_pipeline_builder.go` dedup stage) removes, in mode Drop, every flow with FlowDirection == 1
(egress) AND DstK8S_OwnerName present, "since the same flow is also reported as ingress at the
destination node"; mode Sample keeps 1 in `sampling` (default 50) of those instead, without touching
Sampling (the operator sets no samplingField on this stage: the kept rows are extra copies, not
stand-ins for dropped flows); Disabled keeps everything.

Which rows are copies (`rule`):
- `owner`: the reference's test exactly (egress and DstK8S_OwnerName not null).
- `node` (default): egress, DstK8S_HostIP not null and not the reporter, i.e. the destination runs on
  another node, whose agent sees the same packets as ingress. Unlike `owner` it keeps egress flows to
  Services (they have an owner but no node; after DNAT the destination node reports a pod-to-pod flow,
  not this one; the console counts them too, §5.2) and so loses no traffic, matching the synthetic
  generator's ground truth (`SynthFlows.duplicate`).

The two copies usually come from different agents in different batches, so the decision is made per
row from what the row itself says, never by pairing rows: nothing is held back and there is no join
window to size. The risk of that design is dropping an egress copy whose ingress twin never arrives (the
destination node runs no agent, or its agent is down). With `rule: node` and `reporter_window_seconds`
> 0 the stage therefore remembers, per AgentIP, the latest flow end time it reported, and only drops an
egress copy when its destination node reported within that window of the flow (the state is one row per
node). The cost: until a node's first batch arrives, copies to it are kept (briefly over-counted, never
lost).
"""

from __future__ import annotations

import threading

import polars as pl

from flowlake.engine.stages import filter as flt

MODES = ("Disabled", "Drop", "Sample")
RULES = ("node", "owner")


class DedupStage:
    """Removes (Drop) or thins out (Sample) the egress copies of flows reported by two nodes."""

    name = "dedup"

    def __init__(self, mode: str = "Disabled", sampling: int = 50, rule: str = "node",
                 reporter_window_seconds: float = 600.0, salt: int = 0xDED0) -> None:
        self.mode, self.sampling, self.rule, self.salt = mode, sampling, rule, salt
        self.window_ms = int(reporter_window_seconds * 1000)
        self._seen = pl.DataFrame(schema={"_reporter": pl.String, "_last_ms": pl.Int64})
        self._lock = threading.Lock()  # ingest runs on many transport threads

    def _remember(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Merge this batch's reporters into the state; returns the updated (reporter, last_ms) table."""
        batch = (frame.filter(pl.col("AgentIP").is_not_null())
                 .group_by(pl.col("AgentIP").alias("_reporter")).agg(pl.col("TimeFlowEndMs").max().alias("_last_ms")))
        with self._lock:
            self._seen = pl.concat([self._seen, batch]).group_by("_reporter").agg(pl.col("_last_ms").max())
            return self._seen

    def duplicates(self, frame: pl.DataFrame) -> pl.Series:
        """True for the rows this stage treats as the removable copy."""
        egress = pl.col("FlowDirection") == 1
        if self.rule == "owner":
            return frame.select((egress & pl.col("DstK8S_OwnerName").is_not_null()).fill_null(False)).to_series()
        dst_node = pl.col("DstK8S_HostIP")
        copy = egress & dst_node.is_not_null() & (dst_node != pl.col("AgentIP").fill_null(""))
        if self.window_ms <= 0:
            return frame.select(copy.fill_null(False)).to_series()
        seen = self._remember(frame).rename({"_reporter": "DstK8S_HostIP"})
        reported = pl.col("_last_ms") >= pl.col("TimeFlowEndMs") - self.window_ms
        return (frame.select("FlowDirection", "DstK8S_HostIP", "AgentIP", "TimeFlowEndMs")
                .join(seen, on="DstK8S_HostIP", how="left", maintain_order="left")
                .select((copy & reported).fill_null(False)).to_series())

    def process(self, frame: pl.DataFrame) -> pl.DataFrame:
        if self.mode == "Disabled" or frame.height == 0:
            return frame
        dup = self.duplicates(frame)
        if self.mode == "Sample":
            dup = dup & ~flt.sample_mask(frame, self.sampling, self.salt)
        return frame.filter(~dup)

    def flush(self) -> pl.DataFrame | None:
        return None
