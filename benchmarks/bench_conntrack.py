"""Conntrack stage throughput on one million synthetic flows (an hour of a 6-node cluster).

Runs as a plain test under `--benchmark-disable` (CI) and checks the conversations against the generator's
ground truth; with `--benchmark-enable` it times whole runs (fresh stage, batches of `BATCH_ROWS` fed at
their own event time, a final flush) and puts flows/s in `extra_info`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pytest

from flowlake.engine import selfmetrics
from flowlake.engine.config import ConntrackConfig
from flowlake.engine.stages.conntrack import TRANSPORT, ConntrackStage
from flowlake.engine.synth import SynthFlows, generate, make_cluster

N_FLOWS = 1_000_000
BATCH_ROWS = 65_536  # the Flight transport's batch size
START_MS = 1_764_028_800_000  # 2025-11-25T00:00:00Z
END_MS = START_MS + 3_600_000


@dataclass
class Run:
    stage: ConntrackStage
    counts: dict[str, int]  # rows per _RecordType
    ended_bytes: int
    ended_flow_logs: int
    new_ids: pl.Series
    ended_ids: pl.Series


def run(frame: pl.DataFrame, log_types: str, batch_rows: int = BATCH_ROWS) -> Run:
    """Feeds `frame` in batches, each at its latest TimeFlowEndMs, then flushes an hour later."""
    now = [START_MS]
    stage = ConntrackStage(ConntrackConfig(log_types=log_types), clock=lambda: now[0])  # type: ignore[arg-type]
    outs = []
    for offset in range(0, frame.height, batch_rows):
        part = frame.slice(offset, batch_rows)
        now[0] = max(now[0], int(part["TimeFlowEndMs"].max()))  # type: ignore[arg-type]
        outs.append(stage.process(part).select("_RecordType", "_HashId", "Bytes", "numFlowLogs"))
    now[0] += 3_600_000
    held = stage.flush()
    if held is not None:
        outs.append(held.select("_RecordType", "_HashId", "Bytes", "numFlowLogs"))
    out = pl.concat(outs)
    ended = out.filter(pl.col("_RecordType") == "endConnection")
    return Run(stage, dict(out["_RecordType"].value_counts().rows()), int(ended["Bytes"].sum()),
               int(ended["numFlowLogs"].sum()), out.filter(pl.col("_RecordType") == "newConnection")["_HashId"],
               ended["_HashId"])


@pytest.fixture(scope="module")
def synth() -> SynthFlows:
    return generate(make_cluster(seed=1), START_MS, END_MS, N_FLOWS, seed=1)


def _counter(classification: str) -> float:
    return selfmetrics.REGISTRY.get_sample_value("flowlake_conntrack_input_records_total",
                                                 {"classification": classification}) or 0.0


@pytest.mark.benchmark(group="conntrack")
@pytest.mark.parametrize("log_types", ["Flows", "All"])
def test_conntrack_1m(benchmark: Any, synth: SynthFlows, log_types: str) -> None:
    frame = pl.from_arrow(synth.batch)
    assert isinstance(frame, pl.DataFrame)
    run(frame.head(50_000), log_types)  # warm up Polars and numpy kernels
    before = _counter("duplicate")
    result = benchmark.pedantic(run, args=(frame, log_types), rounds=3, iterations=1, warmup_rounds=0)

    # Ground truth: the generator marks the first of the two reports of a flow seen by two nodes; the
    # stage counts a report once when its twin is in the same batch (the second report is the duplicate).
    rows = np.arange(N_FLOWS)
    transport = np.isin(synth.batch.column("Proto").to_numpy(), TRANSPORT)  # ICMP is never tracked
    twin_in_batch = synth.duplicate & transport & (rows // BATCH_ROWS == (rows + 1) // BATCH_ROWS)
    nbytes = synth.batch.column("Bytes").to_numpy()
    rounds = 1 if benchmark.stats is None else 3  # None under --benchmark-disable
    assert _counter("duplicate") - before == rounds * int(twin_in_batch.sum())
    assert result.counts["flowLog"] == N_FLOWS
    assert result.stage.state.height == 0  # the final flush ended every conversation
    if log_types == "All":
        tracked = transport & ~twin_in_batch
        assert result.ended_bytes == int(nbytes[tracked].sum())  # every tracked byte is in one conversation
        assert result.ended_flow_logs == int(tracked.sum())
        assert result.counts["newConnection"] == result.counts["endConnection"] > 100_000
        assert result.new_ids.value_counts().sort("_HashId").equals(result.ended_ids.value_counts().sort("_HashId"))
    if benchmark.stats is not None:
        benchmark.extra_info.update(flows_per_s=round(N_FLOWS / benchmark.stats.stats.min),
                                    conversations=result.counts.get("endConnection", 0))
