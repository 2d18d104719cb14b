"""All stages from one processor config: registry names, config sections, row self-metrics, end result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flowlake.engine import config, selfmetrics
from flowlake.engine.metadata import static
from flowlake.engine.processor import STAGES, Processor
from flowlake.engine.sinks.memory import MemorySink
from flowlake.engine.synth import SynthFlows

PIPELINE = ["enrich", "direction", "layer", "subnets", "decode", "filter", "dedup"]


def counter(name: str, stage: str) -> float:
    value = selfmetrics.REGISTRY.get_sample_value(name, {"stage": stage})
    return value or 0.0


def test_registry_has_every_stage() -> None:
    assert set(PIPELINE) <= set(STAGES)


@pytest.mark.parametrize("name", PIPELINE)
def test_each_stage_builds_from_default_config(name: str) -> None:
    proc = Processor(config.load(None, stages=[name], sinks=["memory"]))
    assert proc.stages[0].name == name


def test_full_pipeline(tmp_path: Path, synth: SynthFlows) -> None:
    meta = tmp_path / "cluster.json"
    static.dump(str(meta), synth.cluster.metadata_table(), synth.cluster.name)
    cfg_file = tmp_path / "processor.yaml"
    cfg_file.write_text(f"""
metadata: {meta}
sinks: [memory]
stages: [{", ".join(PIPELINE)}]
subnets:
  labels:
    - {{name: cluster, cidrs: [10.0.0.0/8, 172.30.0.0/16]}}
    - {{name: "EXT:internet", cidrs: [0.0.0.0/0]}}
layer:
  infra_prefixes: [kube-, monitoring, ingress-nginx]
filter:
  query: 'without(SrcK8S_Namespace) or SrcK8S_Namespace!="analytics"'
dedup:
  mode: Drop
""")
    proc = Processor(config.load(cfg_file))
    before = {s: counter("flowlake_stage_rows_out_total", s) for s in PIPELINE}
    raw = pl.from_arrow(synth.batch)
    assert isinstance(raw, pl.DataFrame)
    # the agent's view: FlowDirection per interface, no DNS names, no layer or labels yet
    raw = raw.with_columns(pl.col("IfDirections").list.first().alias("FlowDirection"),
                           pl.lit(None, pl.String).alias("DnsFlagsResponseCode"))
    proc.ingest(raw.to_arrow(), "test")
    proc.flush()
    sink = proc.sinks[0]
    assert isinstance(sink, MemorySink)
    out = sink.frame()

    src_ns = synth.src_namespace
    keep = (src_ns.is_null() | (src_ns != "analytics")).to_numpy() & ~synth.duplicate
    truth = pl.from_arrow(synth.batch).filter(pl.Series(keep))
    assert isinstance(truth, pl.DataFrame)
    assert out.height == truth.height
    assert out["FlowDirection"].to_list() == truth["FlowDirection"].to_list()
    assert out["DnsFlagsResponseCode"].to_list() == truth["DnsFlagsResponseCode"].to_list()
    assert set(out["SrcSubnetLabel"].unique().to_list()) == {"cluster", "EXT:internet"}
    assert out["K8S_FlowLayer"].null_count() == 0
    assert "analytics" not in out["SrcK8S_Namespace"].to_list()
    rows_out = {s: counter("flowlake_stage_rows_out_total", s) - before[s] for s in PIPELINE}
    assert rows_out["enrich"] == synth.num_rows
    assert rows_out["filter"] == int((src_ns.is_null() | (src_ns != "analytics")).sum())
    assert rows_out["dedup"] == out.height
    assert counter("flowlake_stage_rows_in_total", "dedup") >= rows_out["filter"]
    assert np.isclose(out["Bytes"].sum(), truth["Bytes"].sum())
