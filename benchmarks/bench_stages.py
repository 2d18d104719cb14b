"""Processor stage throughput on 1M realistic enriched synthetic flows, one benchmark per stage.

Run with timing: `pytest benchmarks/bench_stages.py --benchmark-enable -p no:cacheprovider`; the numbers
go to docs/performance.md. In CI it runs once with timing disabled and still checks each stage's output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from flowlake.engine.stages import filter as flt
from flowlake.engine.stages.decode import DecodeStage
from flowlake.engine.stages.dedup import DedupStage
from flowlake.engine.stages.direction import DirectionStage
from flowlake.engine.stages.enrich import EnrichStage
from flowlake.engine.stages.layer import LayerStage
from flowlake.engine.stages.subnets import SubnetsStage
from flowlake.engine.synth import SynthFlows


class _Tables:
    def __init__(self, table: pl.DataFrame, name: str) -> None:
        self._table, self.cluster_name = table, name

    def table(self) -> pl.DataFrame:
        return self._table


@pytest.fixture(scope="module")
def frame(flows_1m: SynthFlows) -> pl.DataFrame:
    raw = pl.from_arrow(flows_1m.batch)
    assert isinstance(raw, pl.DataFrame)
    return EnrichStage(_Tables(flows_1m.cluster.metadata_table(), flows_1m.cluster.name)).process(raw)


def test_direction_1m(benchmark: Any, frame: pl.DataFrame, flows_1m: SynthFlows) -> None:
    agent_view = frame.with_columns(pl.col("IfDirections").list.first().alias("FlowDirection"))
    out = benchmark(DirectionStage().process, agent_view)
    assert out["FlowDirection"].equals(pl.Series("FlowDirection", flows_1m.batch.column("FlowDirection")))


def test_layer_1m(benchmark: Any, frame: pl.DataFrame) -> None:
    stage = LayerStage(["openshift", "kube-", "netobserv", "flowlake"], ["default/kubernetes"])
    out = benchmark(stage.process, frame)
    assert out["K8S_FlowLayer"].null_count() == 0 and out["K8S_FlowLayer"].n_unique() == 2


def test_subnets_1m(benchmark: Any, frame: pl.DataFrame) -> None:
    stage = SubnetsStage([("cluster", ["10.0.0.0/8", "172.30.0.0/16"], False), ("EXT:internet", ["0.0.0.0/0"], False),
                          ("EXT:aws", ["52.0.0.0/8", "34.224.0.0/12"], False)])
    out = benchmark(stage.process, frame)
    assert out["SrcSubnetLabel"].null_count() == 0 and out["DstSubnetLabel"].null_count() == 0
    assert set(out["DstSubnetLabel"].unique().to_list()) == {"cluster", "EXT:internet", "EXT:aws"}


def test_decode_1m(benchmark: Any, frame: pl.DataFrame) -> None:
    bare = frame.with_columns(pl.lit(None, pl.String).alias("DnsFlagsResponseCode"))
    out = benchmark(DecodeStage().process, bare)
    assert out["DnsFlagsResponseCode"].equals(frame["DnsFlagsResponseCode"])


def test_filter_1m(benchmark: Any, frame: pl.DataFrame) -> None:
    stage = flt.FilterStage('(SrcK8S_Namespace="shop" or DstK8S_Namespace=~"^pay") and Bytes > 1000 '
                            'and without(PktDropPackets)', sampling=10)
    out = benchmark(stage.process, frame)
    match = frame.filter(((pl.col("SrcK8S_Namespace") == "shop") | pl.col("DstK8S_Namespace").str.starts_with("pay"))
                         .fill_null(False) & (pl.col("Bytes") > 1000) & pl.col("PktDropPackets").is_null())
    assert 0 < out.height < match.height and set(out["Bytes"]) <= set(match["Bytes"])


def test_dedup_1m(benchmark: Any, frame: pl.DataFrame, flows_1m: SynthFlows) -> None:
    out = benchmark(DedupStage("Drop").process, frame)
    assert out.height == flows_1m.num_flows
    assert np.isclose(out["Bytes"].sum(), frame.filter(~pl.Series(flows_1m.duplicate))["Bytes"].sum())
