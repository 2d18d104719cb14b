"""Processor pipeline: validation, enrichment by IP from a static metadata file, sinks, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from flowlake.engine import config
from flowlake.engine.errors import ConfigError, SchemaError
from flowlake.engine.metadata import static
from flowlake.engine.processor import Processor
from flowlake.engine.sinks.memory import MemorySink
from tests.conftest import make_batch

ENTRIES = [
    {"ip": f"10.0.0.{k}", "name": f"web-{k}", "type": "Pod", "namespace": "shop", "ownerName": "web",
     "ownerType": "Deployment", "hostIP": "192.168.0.1", "hostName": "node-1", "zone": "z1"}
    for k in range(5)
] + [
    {"ip": f"10.1.0.{k}", "name": f"db-{k}", "type": "Pod", "namespace": "data", "ownerName": "db",
     "ownerType": "StatefulSet", "hostIP": "192.168.0.2", "hostName": "node-2", "zone": "z2"}
    for k in range(5)
]


@pytest.fixture
def metadata_file(tmp_path: Path) -> Path:
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps({"format": static.FORMAT, "cluster": "test-cluster", "entries": ENTRIES}))
    return path


def memory_processor(metadata: Path | None) -> tuple[Processor, MemorySink]:
    cfg = config.load(None, metadata=str(metadata) if metadata else None, sinks=["memory"])
    proc = Processor(cfg)
    sink = proc.sinks[0]
    assert isinstance(sink, MemorySink)
    return proc, sink


def test_enrichment_joins_both_sides(metadata_file: Path) -> None:
    proc, sink = memory_processor(metadata_file)
    proc.ingest(make_batch(20), "test")  # src 10.0.0.0-9 (0-4 known), dst 10.1.0.0-4 (all known)
    proc.flush()
    out = sink.frame()
    assert out.height == 20
    src_known = out.filter(pl.col("SrcAddr").is_in([f"10.0.0.{k}" for k in range(5)]))
    assert src_known.height == 10
    assert src_known["SrcK8S_Namespace"].unique().to_list() == ["shop"]
    assert (src_known["SrcK8S_Name"] == src_known["SrcAddr"].str.replace("10.0.0.", "web-")).all()
    assert out.filter(pl.col("SrcK8S_Name").is_null()).height == 10  # 10.0.0.5-9 are unknown
    assert set(out["DstK8S_OwnerType"].to_list()) == {"StatefulSet"}
    assert set(out["DstK8S_Zone"].to_list()) == {"z2"}
    assert set(out["K8S_ClusterName"].to_list()) == {"test-cluster"}
    assert out["TimeReceived"].null_count() == 0
    assert out["Bytes"].sum() == sum(range(100, 120))


def test_existing_identity_is_kept(metadata_file: Path) -> None:
    proc, sink = memory_processor(metadata_file)
    batch = make_batch(2, SrcK8S_Namespace=["preset", None])
    proc.ingest(batch, "test")
    proc.flush()
    assert sink.frame()["SrcK8S_Namespace"].to_list() == ["preset", "shop"]


def test_without_metadata_flows_pass_unenriched() -> None:
    proc, sink = memory_processor(None)
    proc.ingest(make_batch(3), "test")
    proc.flush()
    assert sink.frame()["SrcK8S_Name"].null_count() == 3


def test_bad_batch_rejected_before_any_sink(metadata_file: Path) -> None:
    proc, sink = memory_processor(metadata_file)
    with pytest.raises(SchemaError):
        proc.ingest(pa.RecordBatch.from_pydict({"Bytes": ["x"]}), "test")
    proc.flush()
    assert sink.frame().height == 0


def test_lake_sink_publishes_partitions(metadata_file: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    cfg = config.load(None, metadata=str(metadata_file), **{"lake.url": str(lake)})
    proc = Processor(cfg)
    # 3 hours of flows, one per minute
    proc.ingest(make_batch(180, step_ms=60_000), "test")
    proc.close()
    files = sorted(p.relative_to(lake).parent.as_posix() for p in lake.rglob("*.parquet"))
    assert files == ["date=2025-11-24/hour=16", "date=2025-11-24/hour=17", "date=2025-11-24/hour=18"]
    assert not list((lake / "_staging").iterdir())
    back = pl.read_parquet(list(lake.rglob("*.parquet")))
    assert back.height == 180 and back["SrcK8S_Namespace"].null_count() == 90


@pytest.mark.parametrize(("overrides", "message"), [
    pytest.param({"stages": ["enrich", "magic"]}, r"unknown stage 'magic'; valid stages: (\w+, )*enrich\b", id="stage"),
    pytest.param({"sinks": ["lake", "s3"]}, r"unknown sink 's3'; valid sinks: (\w+, )*lake, (\w+, )*memory\b",
                     id="sink"),
])
def test_unknown_stage_or_sink_lists_valid_names(overrides: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Processor(config.load(None, **overrides))


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("lake:\n  flush_rows: -5\n  urll: x\nflush_seconds: soon\n")
    with pytest.raises(ConfigError) as err:
        config.load(path)
    text = str(err.value)
    assert "lake.flush_rows" in text and "lake.urll" in text and "flush_seconds" in text


@pytest.mark.parametrize(("content", "message"), [
    pytest.param("{", "not valid JSON", id="json"),
    pytest.param('{"entries": []}', "expected an object with \"format\"", id="format"),
    pytest.param(json.dumps({"format": static.FORMAT, "entries": [{"name": "x"}]}), "have no \"ip\"",
                 id="no-ip"),
])
def test_bad_metadata_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        static.load(str(path))


def test_metadata_round_trip(tmp_path: Path, metadata_file: Path) -> None:
    cluster, table = static.load(str(metadata_file))
    out = tmp_path / "copy.json"
    static.dump(str(out), table, cluster)
    cluster2, table2 = static.load(str(out))
    assert cluster2 == cluster == "test-cluster"
    assert table2.equals(table) and table.height == 10
