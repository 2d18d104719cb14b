"""The Kafka exporter sink against a real broker: JSON lines and Arrow messages read back and compared field by
field with what the flow store got, the Exporters output filter, and a flush that fails when nobody acks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from flowlake.engine import config, selfmetrics
from flowlake.engine.errors import ConfigError, SinkError
from flowlake.engine.metadata import static
from flowlake.engine.processor import Processor
from flowlake.engine.sinks.kafka import KafkaExportSink
from flowlake.engine.sinks.memory import MemorySink
from flowlake.engine.synth import SynthFlows, generate, make_cluster
from flowlake.engine.transport import kafka_ingest
from tests.kafka import broker as kb
from tests.kafka.conftest import read_topic

pytestmark = pytest.mark.slow  # a real broker
START_MS = 1_764_000_000_000
SORT = ["TimeFlowEndMs", "TimeFlowStartMs", "AgentIP", "SrcAddr", "DstAddr", "SrcPort", "DstPort", "Bytes"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthFlows, Path]:
    cluster = make_cluster(seed=5)
    metadata = tmp_path_factory.mktemp("export") / "metadata.json"
    static.dump(str(metadata), cluster.metadata_table(), cluster.name)
    return generate(cluster, START_MS, START_MS + 3_600_000, 5_000, seed=5), metadata


def export(bootstrap: str, name: str, metadata: Path, flows: SynthFlows,
           **settings: Any) -> tuple[Processor, pl.DataFrame]:
    """Run flows through a processor with sinks [memory, kafka]; returns it and what the memory sink got."""
    cfg = config.load(None, sinks=["memory", "kafka"], metadata=str(metadata), metrics_address="",
                      **{"kafka_export.address": bootstrap, "kafka_export.topic": name},
                      **{f"kafka_export.{k}": v for k, v in settings.items()})
    processor = Processor(cfg)
    for batch in flows.batches(max_rows=1_000):
        processor.ingest(batch, "test")
    processor.flush(strict=True)  # returns only once the broker acknowledged every message
    memory = processor.sinks[0]
    assert isinstance(memory, MemorySink)
    return processor, memory.frame()


def test_json_lines_carry_every_field_of_every_flow(kafka: kb.KafkaBroker, topic: Callable[..., str],
                                                     synth: tuple[SynthFlows, Path]) -> None:
    flows, metadata = synth
    name = topic()
    rows_before = selfmetrics.SINK_ROWS.labels(sink="kafka")._value.get()
    processor, stored = export(kafka.bootstrap, name, metadata, flows, compression="zstd")
    assert selfmetrics.SINK_ROWS.labels(sink="kafka")._value.get() - rows_before == flows.num_rows
    messages = read_topic(kafka.bootstrap, name, flows.num_rows)
    assert len(messages) == flows.num_rows  # one JSON document per flow and message
    exported = pl.read_ndjson(b"\n".join(m.value() for m in messages), infer_schema_length=None)
    assert stored.height == exported.height == flows.num_rows
    present = [c for c in stored.columns if stored[c].null_count() < stored.height]
    assert sorted(exported.columns) == sorted(present)  # NetObserv's names
    assert not any(b":null" in m.value() for m in messages)  # a null field is left out, as FLP's maps
    assert {"SrcK8S_Namespace", "DstK8S_OwnerName", "K8S_FlowLayer", "Interfaces"} <= set(exported.columns)
    stored, exported = stored.sort(SORT), exported.sort(SORT)
    for column in present:
        want = stored[column]
        got = exported[column].cast(want.dtype)
        assert got.equals(want), f"column {column} differs"
    processor.close()


def test_arrow_messages_are_the_transport_format(kafka: kb.KafkaBroker, topic: Callable[..., str],
                                                 synth: tuple[SynthFlows, Path]) -> None:
    flows, metadata = synth
    name = topic()
    processor, stored = export(kafka.bootstrap, name, metadata, flows, format="arrow", max_rows=700)
    batches: list[pa.RecordBatch] = []
    while sum(b.num_rows for b in batches) < flows.num_rows:  # message count unknown: read until all rows
        batches = [b for m in read_topic(kafka.bootstrap, name, len(batches) + 1)
                   for b in kafka_ingest.decode(m.value())]
    exported = pl.from_arrow(pa.Table.from_batches(batches))
    assert isinstance(exported, pl.DataFrame)
    assert max(b.num_rows for b in batches) <= 700
    assert exported.sort(SORT).equals(stored.sort(SORT))
    processor.close()


def test_exporters_filter_applies_to_the_kafka_sink(kafka: kb.KafkaBroker, topic: Callable[..., str],
                                                   synth: tuple[SynthFlows, Path], tmp_path: Path) -> None:
    flows, metadata = synth
    name = topic()
    conf = tmp_path / "processor.yaml"
    conf.write_text(f"sinks: [memory, kafka]\nmetadata: {metadata}\nmetrics_address: ''\n"
                    f"kafka_export: {{address: '{kafka.bootstrap}', topic: {name}}}\n"
                    "filters: [{query: 'SrcK8S_Namespace=\"shop\"', output_target: Exporters}]\n")
    processor = Processor(config.load(conf))
    processor.ingest(flows.batch, "test")
    processor.flush(strict=True)
    memory = processor.sinks[0]
    assert isinstance(memory, MemorySink)
    shop = memory.frame().filter(pl.col("SrcK8S_Namespace") == "shop").height
    assert 0 < shop < flows.num_rows
    messages = read_topic(kafka.bootstrap, name, shop)
    assert len(messages) == shop
    assert all(b'"SrcK8S_Namespace":"shop"' in m.value() for m in messages)
    processor.close()


def test_a_flush_nobody_acknowledges_fails_and_keeps_the_rows(synth: tuple[SynthFlows, Path]) -> None:
    flows, _ = synth
    cfg = config.load(None, **{"kafka_export.address": "127.0.0.1:9", "kafka_export.timeout_seconds": 2,
                               "kafka_export.sasl.type": "Disabled"})
    sink = KafkaExportSink(cfg.kafka_export)
    frame = pl.from_arrow(flows.batch.slice(0, 10))
    assert isinstance(frame, pl.DataFrame)
    sink.write(frame)
    with pytest.raises(SinkError, match="not acknowledged within 2s; kept for the next flush"):
        sink.flush()


def test_the_kafka_sink_needs_an_address() -> None:
    with pytest.raises(ConfigError, match=r"set kafka_export\.address"):
        Processor(config.load(None, sinks=["kafka"], metrics_address=""))
