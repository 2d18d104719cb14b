"""The Kafka transport against a real broker, in one process: keys and order, bad messages, held commits,
SASL (PLAIN, SCRAM-SHA-512) and TLS, and the errors an unreachable or refusing broker gives."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from flowlake.engine import config, selfmetrics, transport
from flowlake.engine.errors import SinkError, TransportError
from flowlake.engine.processor import Processor
from flowlake.engine.sinks.memory import MemorySink
from flowlake.engine.transport import kafka as kafka_transport
from flowlake.engine.transport import kafka_ingest
from tests.kafka import broker as kb
from tests.kafka.conftest import all_committed, committed, read_topic

pytestmark = pytest.mark.slow  # a real broker
Factory = Callable[..., pa.RecordBatch]


def memory_processor() -> tuple[Processor, MemorySink]:
    processor = Processor(config.load(None, sinks=["memory"], stages=[], metrics_address=""))
    sink = processor.sinks[0]
    assert isinstance(sink, MemorySink)
    return processor, sink


def run_ingest(url: str, target: Any, until: Callable[[], bool], timeout: float = 60) -> kafka_ingest.KafkaIngest:
    """Consume with a KafkaIngest in a thread until `until()` holds, then stop it (final flush and commit)."""
    ingest = kafka_ingest.KafkaIngest(url, target, checkpoint_seconds=0.5)
    stop = threading.Event()
    ingest.start(stop)
    deadline = time.monotonic() + timeout
    try:
        while not until():
            assert ingest.error is None, ingest.error
            assert time.monotonic() < deadline, "the ingest did not get there in time"
            time.sleep(0.2)
    finally:
        stop.set()
        ingest.join()
    assert ingest.error is None, ingest.error
    return ingest


def sample(metric: Any, **labels: str) -> float:
    return float(metric.labels(**labels)._value.get())


def test_messages_are_keyed_by_agent_in_order(kafka: kb.KafkaBroker, topic: Callable[..., str],
                                              batch_factory: Factory) -> None:
    name = topic()
    n = 3000
    batch = batch_factory(n, AgentIP=[f"192.168.1.{i % 3}" for i in range(n)])
    sender = transport.open_sender(f"kafka://{kafka.bootstrap}/{name}?max_rows=400")
    assert sender.send([batch]) == n
    sender.close()
    messages = read_topic(kafka.bootstrap, name, 9)  # 1000 rows per agent, 400 per message
    partitions: dict[bytes, set[int]] = {}
    for agent in {m.key() for m in messages}:
        mine = sorted((m for m in messages if m.key() == agent), key=lambda m: m.offset())
        partitions[agent] = {m.partition() for m in mine}
        rows = pa.Table.from_batches([b for m in mine for b in kafka_ingest.decode(m.value())])
        assert set(rows.column("AgentIP").to_pylist()) == {agent.decode()}
        ends = rows.column("TimeFlowEndMs").to_pylist()
        assert ends == sorted(ends) and len(ends) == 1000  # one agent: one partition, in order
        assert dict(mine[0].headers() or [])["content-type"] == kafka_transport.CONTENT_TYPE[1]
    assert all(len(p) == 1 for p in partitions.values())


def test_bad_messages_are_counted_and_skipped(kafka: kb.KafkaBroker, topic: Callable[..., str],
                                              batch_factory: Factory) -> None:
    from confluent_kafka import Producer

    name = topic(1)  # one partition: the bad messages sit between good ones
    good = batch_factory(100)
    wrong = pa.record_batch({"SrcAddr": ["10.0.0.1"], "Nonsense": [1]})
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    encode = kafka_transport.encode
    payloads = [encode(good), b"\xff\x00garbage", b'{"SrcAddr": "10.0.0.1"}', encode(wrong),
                encode(good.slice(0, 0)), None, encode(good)]
    for value in payloads:
        producer.produce(name, value=value)
    assert producer.flush(30) == 0
    before = {r: sample(selfmetrics.KAFKA_BAD, topic=name, reason=r) for r in ("decode", "schema", "empty")}
    processor, sink = memory_processor()
    group = f"g-{name}"
    run_ingest(f"kafka://{kafka.bootstrap}/{name}?group={group}", processor,
               until=lambda: sink.frame().height == 200 and committed(kafka.bootstrap, group, name)[0] == 7)
    bad = {r: sample(selfmetrics.KAFKA_BAD, topic=name, reason=r) - before[r] for r in before}
    assert bad == {"decode": 2, "schema": 1, "empty": 2}
    assert sample(selfmetrics.KAFKA_CONSUMED, topic=name) == 7
    assert all_committed(kafka.bootstrap, group, name)  # the bad messages did not block their partition


class FailingTarget:
    """A processor whose sinks refuse to publish `failures` times: nothing may be committed meanwhile."""

    def __init__(self, failures: int) -> None:
        self.processor, self.sink = memory_processor()
        self.failures = failures
        self.flushes = 0

    def ingest(self, batch: pa.RecordBatch, transport: str) -> None:
        self.processor.ingest(batch, transport)

    def flush(self, *, strict: bool = False) -> int:
        self.flushes += 1
        if self.failures:
            self.failures -= 1
            raise SinkError("test sink: destination down")
        return self.processor.flush(strict=strict)


def test_nothing_is_committed_while_a_sink_cannot_publish(kafka: kb.KafkaBroker, topic: Callable[..., str],
                                                          batch_factory: Factory) -> None:
    name = topic(2)
    sender = transport.open_sender(f"kafka://{kafka.bootstrap}/{name}?key=none&max_rows=100")
    sender.send([batch_factory(1000)])
    sender.close()
    group = f"g-{name}"
    target = FailingTarget(failures=3)
    held = sample(selfmetrics.KAFKA_COMMITS, result="held")
    seen: list[dict[int, int]] = []

    def done() -> bool:
        if target.failures:  # still failing: the group must have committed nothing
            seen.append(committed(kafka.bootstrap, group, name))
            return False
        return target.sink.frame().height == 1000 and all_committed(kafka.bootstrap, group, name)

    run_ingest(f"kafka://{kafka.bootstrap}/{name}?group={group}", target, until=done)
    assert seen and all(offset < 0 for c in seen for offset in c.values())
    assert sample(selfmetrics.KAFKA_COMMITS, result="held") - held == 3
    assert target.sink.frame().height == 1000


def test_sasl_plain_and_scram_and_tls(kafka: kb.KafkaBroker, topic: Callable[..., str], batch_factory: Factory,
                                      tmp_path: Path) -> None:
    for user, password in ((kb.PLAIN_USER, kb.PLAIN_PASSWORD), (kb.SCRAM_USER, kb.SCRAM_PASSWORD)):
        (tmp_path / user).write_text(user)
        (tmp_path / f"{user}.secret").write_text(password)
    certs = kafka.workdir
    urls = {
        "plain": f"kafka://{kafka.sasl_bootstrap}/{{}}?sasl=plain&sasl_client_id_path={tmp_path}/{kb.PLAIN_USER}"
                 f"&sasl_client_secret_path={tmp_path}/{kb.PLAIN_USER}.secret",
        "scram": f"kafka://{kafka.sasl_bootstrap}/{{}}?sasl=scram-sha512&sasl_client_id_path={tmp_path}/"
                 f"{kb.SCRAM_USER}&sasl_client_secret_path={tmp_path}/{kb.SCRAM_USER}.secret",
        "mtls": f"kafka://{kafka.ssl_bootstrap}/{{}}?tls=true&tls_ca_cert_path={certs}/ca.crt"
                f"&tls_user_cert_path={certs}/client.crt&tls_user_key_path={certs}/client.key",
    }
    for kind, url in urls.items():
        name = topic(1)
        sender = transport.open_sender(url.format(name))
        assert sender.send([batch_factory(50)]) == 50, kind
        sender.close()
        processor, sink = memory_processor()
        run_ingest(url.format(name) + f"&group=g-{name}", processor, until=lambda s=sink: s.frame().height == 50)


def test_wrong_password_is_a_transport_error_naming_sasl(kafka: kb.KafkaBroker, topic: Callable[..., str],
                                                         batch_factory: Factory, tmp_path: Path) -> None:
    (tmp_path / "id").write_text(kb.PLAIN_USER)
    (tmp_path / "secret").write_text("not-the-password")
    sender = transport.open_sender(f"kafka://{kafka.sasl_bootstrap}/{topic()}?sasl=plain&timeout=20"
                                   f"&sasl_client_id_path={tmp_path}/id&sasl_client_secret_path={tmp_path}/secret")
    with pytest.raises(TransportError, match=r"SASL|[Aa]uthentication") as info:
        sender.send([batch_factory(10)])
    assert info.value.retry_after is None  # retrying with the same password cannot help


def test_unreachable_broker_is_a_retryable_transport_error(batch_factory: Factory) -> None:
    sender = transport.open_sender("kafka://127.0.0.1:9/flows?timeout=2")  # port 9 (discard): nobody listens
    with pytest.raises(TransportError, match=r"not acknowledged within 2s .*is the broker reachable") as info:
        sender.send([batch_factory(10)])
    assert info.value.retry_after is not None


def test_arrow_ingest_equals_what_was_sent(kafka: kb.KafkaBroker, topic: Callable[..., str],
                                           batch_factory: Factory) -> None:
    name = topic()
    batches = [batch_factory(700, seed=s, start_ms=1_764_000_000_000 + s * 1_000_000,
                             AgentIP=[f"192.168.2.{s}"] * 700) for s in range(4)]
    sender = transport.open_sender(f"kafka://{kafka.bootstrap}/{name}?max_rows=300&compression=zstd")
    sender.send(batches)
    sender.close()
    processor, sink = memory_processor()
    run_ingest(f"kafka://{kafka.bootstrap}/{name}?group=g-{name}", processor, until=lambda: sink.frame().height == 2800)
    got = sink.frame().sort("AgentIP", "TimeFlowEndMs")
    sent = pl.from_arrow(pa.Table.from_batches(batches))
    assert isinstance(sent, pl.DataFrame)
    cols = ["AgentIP", "TimeFlowEndMs", "SrcAddr", "DstAddr", "SrcPort", "Bytes", "Packets"]
    assert got.select(cols).equals(sent.select(cols).sort("AgentIP", "TimeFlowEndMs"))
