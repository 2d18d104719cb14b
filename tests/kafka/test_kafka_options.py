"""Kafka URLs and settings, the sender's message cutting and the missing-client error; no broker needed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from flowlake.engine import config, transport
from flowlake.engine.errors import ConfigError
from flowlake.engine.transport import kafka, kafka_ingest, kafka_options


def test_url_with_defaults() -> None:
    settings, extra = kafka_options.parse_url("kafka://k1,k2:9093/network-flows")
    assert settings.brokers == "k1:9092,k2:9093"
    assert settings.topic == "network-flows"
    assert extra == {}
    conf = settings.producer_config(1_000_000)
    assert conf["compression.type"] == "lz4" and conf["enable.idempotence"] is True
    assert conf["batch.num.messages"] == 1000 and conf["batch.size"] == 1_048_576
    assert conf["security.protocol"] == "plaintext"


def test_tls_sasl_and_passthrough_options(tmp_path: Path) -> None:
    (tmp_path / "id").write_text("alice\n")
    (tmp_path / "secret").write_text("s3cret\n")
    url = (f"kafka://b:9092/t?compression=zstd&batch_messages=50&tls=true&tls_ca_cert_path=/ca.crt"
           f"&tls_insecure_skip_verify=1&sasl=scram-sha512&sasl_client_id_path={tmp_path}/id"
           f"&sasl_client_secret_path={tmp_path}/secret&rdkafka.client.id=node-1&group=g")
    settings, extra = kafka_options.parse_url(url, ("group",))
    assert extra == {"group": "g"}
    conf = settings.common_config()
    assert conf["security.protocol"] == "sasl_ssl"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (conf["sasl.username"], conf["sasl.password"]) == ("alice", "s3cret")
    assert conf["ssl.ca.location"] == "/ca.crt" and conf["enable.ssl.certificate.verification"] is False
    assert conf["client.id"] == "node-1"
    assert settings.producer_config(1_000_000)["compression.type"] == "zstd"


@pytest.mark.parametrize(("url", "message"), [
    pytest.param("kafka://b:9092/t?compresion=lz4", "unknown option 'compresion'; valid options:", id="typo"),
    pytest.param("kafka://b:9092/t?compression=brotli", "is not one of none, gzip", id="codec"),
    pytest.param("kafka://b:9092/", "bad topic", id="no-topic"),
    pytest.param("kafka:///t", "no broker address", id="no-broker"),
    pytest.param("kafka://b/t?batch_messages=many", "expected an integer", id="not-int"),
    pytest.param("kafka://b/t?tls=maybe", "expected true or false", id="not-bool"),
    pytest.param("kafka://b/t?sasl=plain", "sasl_client_id_path", id="sasl-without-files"),
    pytest.param("kafka://b/t?sasl=plain&sasl_client_id_path=/nope&sasl_client_secret_path=/nope",
                 "mount the secret", id="sasl-file-missing"),
])
def test_bad_urls_name_the_fix(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        kafka_options.parse_url(url)[0].common_config()


def test_ingest_url_options_are_checked_by_the_processor_config() -> None:
    cfg = config.load(None, ingest="kafka://b:9092/flows?group=g&offset_reset=latest&batch_max_len=10")
    assert cfg.ingest.startswith("kafka://")
    _, conf = kafka_ingest.consumer_config(cfg.ingest)
    assert conf["group.id"] == "g" and conf["auto.offset.reset"] == "latest"
    assert conf["enable.auto.commit"] is False
    with pytest.raises(ConfigError, match=r"ingest: .*offset_reset is earliest or latest"):
        config.load(None, ingest="kafka://b:9092/flows?offset_reset=middle")
    with pytest.raises(ConfigError, match=r"ingest: .*expected grpc or kafka://"):
        config.load(None, ingest="amqp://b/flows")


def test_missing_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)
    with pytest.raises(ConfigError, match=r"pip install 'flowlake\[kafka\]'"):
        transport.open_sender("kafka://127.0.0.1:9/flows")


def test_split_by_agent_keeps_each_agents_order(batch_factory: Callable[..., pa.RecordBatch]) -> None:
    n = 1000
    batch = batch_factory(n, AgentIP=[f"192.168.0.{i % 3}" if i % 10 else None for i in range(n)])
    parts = list(kafka.by_agent(batch))
    assert [a for a, _ in parts] == ["192.168.0.0", "192.168.0.1", "192.168.0.2", None]
    assert sum(p.num_rows for _, p in parts) == n
    for agent, part in parts:
        assert set(part.column("AgentIP").to_pylist()) == {agent}
        ends = part.column("TimeFlowEndMs").to_pylist()
        assert ends == sorted(ends)  # the input was time-ordered: a stable split keeps it
    single = batch_factory(10)
    assert [p for _, p in kafka.by_agent(single)] == [single]  # one agent: no copy


def test_messages_are_cut_to_max_bytes(batch_factory: Callable[..., pa.RecordBatch]) -> None:
    batch = batch_factory(5000)
    whole = len(kafka.encode(batch))
    messages = list(kafka.slices(batch, 10_000, whole // 3))
    assert len(messages) >= 3 and all(len(m) <= whole // 3 for m in messages)
    rows = [b for m in messages for b in kafka_ingest.decode(m)]
    assert pa.Table.from_batches(rows).equals(pa.Table.from_batches([batch]))
    assert len(list(kafka.slices(batch, 1000, 10**9))) == 5


@pytest.mark.parametrize("value", [None, b"", b"{\"SrcAddr\": \"10.0.0.1\"}", b"\xff" * 100],
                         ids=["tombstone", "empty", "json", "garbage"])
def test_decode_rejects_what_is_not_arrow(value: bytes | None) -> None:
    with pytest.raises(ValueError, match=r"empty|not an Arrow IPC stream"):
        kafka_ingest.decode(value)


@pytest.mark.parametrize(("url", "message"), [
    pytest.param("kafka://127.0.0.1:9/t?timeout=soon", "timeout='soon': expected an integer", id="timeout"),
    pytest.param("kafka://127.0.0.1:9/t?max_message_bytes=10", "max_message_bytes >= 1024", id="tiny-messages"),
    pytest.param("kafka://127.0.0.1:9/t?group=g", "unknown option 'group'", id="consumer-option"),
])
def test_sender_options_are_checked(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        transport.open_sender(url)


def test_processor_cli_passes_ingest_to_the_config() -> None:
    import argparse

    from flowlake.engine import processor_cli

    parser = argparse.ArgumentParser()
    processor_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["processor", "--ingest", "kafka://b:9092/flows?group=replicas"])
    assert processor_cli.config_from_args(args).ingest == "kafka://b:9092/flows?group=replicas"


def test_the_agent_exports_to_kafka_through_open_sender() -> None:
    from flowlake.agent import export

    exporter = export.open_exporter("kafka://127.0.0.1:9/network-flows?async=true")  # nothing is sent
    assert exporter.kind == "kafka"
    assert isinstance(exporter, export.TransportExporter)
    assert isinstance(exporter._sender, kafka.KafkaSender)
