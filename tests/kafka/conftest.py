"""A real Kafka broker for the tests in tests/kafka/ (see broker.py), one per session, stopped by PID.

Without java, the jars (tests/kafka/build_kafka.sh, `make kafka-broker`) or the confluent-kafka client the
tests skip, unless FLOWLAKE_REQUIRE_KAFKA=1 (CI), where that is a failure.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.kafka.broker import BrokerUnavailable, KafkaBroker

REQUIRE_KAFKA = os.environ.get("FLOWLAKE_REQUIRE_KAFKA") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail under FLOWLAKE_REQUIRE_KAFKA=1."""
    if REQUIRE_KAFKA:
        pytest.fail(f"{reason} (FLOWLAKE_REQUIRE_KAFKA=1 makes this a failure)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        unavailable("the confluent-kafka client is not installed: pip install 'flowlake[kafka]'")
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
    except BrokerUnavailable as exc:
        unavailable(f"no Kafka broker: {exc}")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def topic(kafka: KafkaBroker) -> Callable[..., str]:
    """Makes a fresh topic (4 partitions unless told) so tests never see each other's messages."""
    def make(partitions: int | None = None) -> str:
        return kafka.create_topic(f"flows-{uuid.uuid4().hex[:10]}", partitions)
    return make


def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 60.0) -> list[Any]:
    """The first `count` messages of every partition of `topic` (no group: offsets are not committed)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "flowlake-test-reader",
                         "enable.auto.commit": False, "log_level": 0})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            out += [m for m in consumer.consume(1000, timeout=0.5) if m.error() is None]
        assert len(out) >= count, f"read {len(out)} of {count} messages from {topic} in {timeout:.0f}s"
        return out
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition (-1001 = nothing committed yet)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        try:
            got = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        except KafkaException:  # the group coordinator is still loading (a fresh broker): nothing yet
            return {}
        return {tp.partition: tp.offset for tp in got}
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The high watermark of every partition: a group that committed these has read everything."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "flowlake-test-reader", "log_level": 0})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        consumer.close()


def all_committed(bootstrap: str, group: str, topic: str) -> bool:
    """The group committed the end of every partition (one without messages has nothing to commit)."""
    done = committed(bootstrap, group, topic)
    return all(end == 0 or done.get(p) == end for p, end in end_offsets(bootstrap, topic).items())
