"""Lake write rate and bytes per flow on disk, for 1M realistic enriched synthetic flows.

Run with timing: `make bench` (or `pytest benchmarks/bench_lake.py --benchmark-enable`); the numbers go
to docs/performance.md. In CI it runs once with timing disabled and still checks the output.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl

from flowlake.engine.sinks.lake import LakeSink
from flowlake.engine.stages.enrich import EnrichStage
from flowlake.engine.store import lake, maintenance
from flowlake.engine.synth import SynthFlows


class _Tables:
    def __init__(self, table: pl.DataFrame, name: str) -> None:
        self._table, self.cluster_name = table, name

    def table(self) -> pl.DataFrame:
        return self._table


def enriched(flows: SynthFlows) -> pl.DataFrame:
    stage = EnrichStage(_Tables(flows.cluster.metadata_table(), flows.cluster.name))
    frame = pl.from_arrow(flows.batch)
    assert isinstance(frame, pl.DataFrame)
    return stage.process(frame)


def test_enrich_1m(benchmark: Any, flows_1m: SynthFlows) -> None:
    out = benchmark(enriched, flows_1m)
    assert out.height == flows_1m.num_rows
    assert out["SrcK8S_Namespace"].null_count() < out.height


def test_lake_write_1m(benchmark: Any, flows_1m: SynthFlows, tmp_path: Path) -> None:
    frame = enriched(flows_1m)
    runs = iter(range(1000))

    def write() -> Path:
        root = tmp_path / f"lake{next(runs)}"
        sink = LakeSink(str(root), flush_rows=10_000_000)
        sink.write(frame)
        sink.close()
        return root

    root = benchmark(write)
    size = sum(p.stat().st_size for p in root.rglob("*.parquet"))
    per_flow = size / frame.height
    benchmark.extra_info["bytes_per_flow"] = round(per_flow, 2)
    print(f"\nlake: {frame.height} flows, {size} bytes on disk, {per_flow:.2f} bytes/flow")
    assert lake.scan(str(root)).select(pl.len()).collect().item() == frame.height
    assert per_flow <= 20  # zstd + dictionary + sorted by 5-minute bucket and endpoints (~12; JSON lines ~600)


def test_lake_small_files_then_compact(benchmark: Any, flows_1m: SynthFlows, tmp_path: Path) -> None:
    """1M flows published 20k at a time (the processor's periodic flushes), then one file per hour."""
    frame = enriched(flows_1m).sort("TimeFlowEndMs")
    root = tmp_path / "lake"
    sink = LakeSink(str(root), flush_rows=10**9)
    for part in frame.iter_slices(20_000):
        sink.write(part)
        sink.flush()
    small = sum(p.stat().st_size for p in root.rglob("*.parquet")) / frame.height
    now = int(time.time() * 1000)
    stats = benchmark.pedantic(maintenance.compact, args=(str(root),), kwargs={"now_ms": now, "grace_seconds": 0},
                               rounds=1, iterations=1)
    maintenance.compact(str(root), grace_seconds=0)  # now: deletes the replaced files
    files = list(root.rglob("*.parquet"))
    compacted = sum(p.stat().st_size for p in files) / frame.height
    print(f"\nlake: {stats.files_merged} small files {small:.2f} bytes/flow -> {len(files)} files "
          f"{compacted:.2f} bytes/flow")
    assert len(files) == 4 and compacted <= small
    assert lake.scan(str(root)).select(pl.len()).collect().item() == frame.height
