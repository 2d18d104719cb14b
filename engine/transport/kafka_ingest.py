"""Kafka transport, consumer side: `flowlake processor --ingest kafka://BROKERS/TOPIC?group=NAME`.

Started by `processor_cli.serve`. Runs one consumer of a consumer group (replicas of the processor share
the topic's partitions), decodes each message (an Arrow IPC stream, see `kafka.py`) and hands the batches
to `Processor.ingest(batch, "kafka")`.

At-least-once: offsets are never committed automatically. Every `checkpoint_seconds` (the processor's
`flush_seconds`), before partitions are revoked by a rebalance, and at shutdown, the loop calls
`Processor.flush(strict=True)`, which drains the stages and publishes every sink buffer (lake files renamed
into place, exporter messages acknowledged), and only when that returned commits the offsets after the
messages it had ingested. The processor's background flusher does not run in this mode, so nothing else
publishes concurrently. A crash (even SIGKILL) loses at most the uncommitted span, which is read again:
flows are never lost, and a crash or rebalance can publish the same flows twice. When a sink cannot
publish, nothing is committed and consumption pauses until a flush succeeds (no unbounded buffering).
A message that is not an Arrow IPC stream of the flow schema is counted and skipped: its offset is
committed like the others, so it never blocks its partition.

Options (besides those of `kafka_options`): `group=flowlake-processor` (FLP groupid),
`offset_reset=earliest|latest` (where a new group starts), `batch_max_len=500` (messages per poll, FLP
batchMaxLen), `pull_max_bytes=52428800` (FLP pullMaxBytes), `session_timeout_ms=10000` (how soon a dead
replica's partitions move), `group_protocol=classic|consumer` (KIP-848 needs Kafka 4 brokers).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

import pyarrow as pa

from flowlake.engine import schema, selfmetrics
from flowlake.engine.errors import ConfigError, FlowlakeError, SchemaError, TransportError
from flowlake.engine.transport import kafka_options

log = logging.getLogger(__name__)
_OPTIONS = ("group", "offset_reset", "batch_max_len", "pull_max_bytes", "session_timeout_ms", "group_protocol")
_EOF = -191  # librdkafka's _PARTITION_EOF: informational, not an error


class Target(Protocol):
    """What the ingest feeds: `engine.processor.Processor`."""

    def ingest(self, batch: pa.RecordBatch | pa.Table, transport: str) -> None: ...

    def flush(self, *, strict: bool = False) -> int: ...


def consumer_config(url: str) -> tuple[kafka_options.KafkaSettings, dict[str, Any]]:
    """Settings and the librdkafka consumer configuration of an ingest URL; ConfigError names a bad option."""
    settings, opts = kafka_options.parse_url(url, _OPTIONS)
    reset = opts.get("offset_reset", "earliest")
    protocol = opts.get("group_protocol", "classic")
    if reset not in ("earliest", "latest") or protocol not in ("classic", "consumer"):
        raise ConfigError(f"Kafka ingest {url!r}: offset_reset is earliest or latest, group_protocol classic or "
                          "consumer")
    pull = kafka_options.to_int("pull_max_bytes", opts.get("pull_max_bytes", "52428800"))
    # A message is up to ~1 MB: librdkafka's default of 1 MB per partition and fetch would make every
    # fetch round trip carry one message per partition (measured: 5.7 of 10 s spent waiting in consume).
    conf = {**settings.common_config(), "group.id": opts.get("group", "flowlake-processor"),
            "enable.auto.commit": False, "enable.auto.offset.store": False, "auto.offset.reset": reset,
            "fetch.max.bytes": pull, "max.partition.fetch.bytes": max(pull // 4, 1_048_576),
            "group.protocol": protocol, **settings.extra}
    if protocol == "classic":  # KIP-848 moves the session timeout to the broker
        conf["session.timeout.ms"] = kafka_options.to_int("session_timeout_ms",
                                                          opts.get("session_timeout_ms", "10000"))
    conf["_batch_max_len"] = kafka_options.to_int("batch_max_len", opts.get("batch_max_len", "500"))
    return settings, conf


def decode(value: bytes | None) -> list[pa.RecordBatch]:
    """The record batches of one message; raises ValueError when it is not an Arrow IPC stream."""
    if not value:
        raise ValueError("empty message")
    try:
        with pa.ipc.open_stream(pa.py_buffer(value)) as reader:
            return list(reader)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"not an Arrow IPC stream ({exc})") from exc


class KafkaIngest:
    """One group member: poll, decode, ingest, and commit only what the sinks have published."""

    def __init__(self, url: str, target: Target, *, checkpoint_seconds: float = 10.0) -> None:
        self.url = url
        self.settings, conf = consumer_config(url)
        self.batch_max_len = int(conf.pop("_batch_max_len"))
        self.topic = self.settings.topic
        self.target = target
        self.checkpoint_seconds = checkpoint_seconds
        self.error: BaseException | None = None
        self._ck = kafka_options.client()
        self._consumer = self._ck.Consumer(conf)
        self._offsets: dict[int, int] = {}  # partition -> next offset to read (what a commit stores)
        self._committed: dict[int, int] = {}
        self._paused = False
        self._thread: threading.Thread | None = None

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set, then publish, commit and leave the group."""
        self._consumer.subscribe([self.topic], on_assign=self._assigned, on_revoke=self._revoked,
                                 on_lost=self._lost)
        log.info("kafka ingest: consuming %s from %s as group member", self.topic, self.settings.brokers)
        due = time.monotonic() + self.checkpoint_seconds
        try:
            while not stop.is_set():
                messages = self._consumer.consume(self.batch_max_len, timeout=0.5)
                if messages:
                    self._handle(messages)
                if time.monotonic() >= due:
                    ok = self._checkpoint()
                    due = time.monotonic() + (self.checkpoint_seconds if ok else min(self.checkpoint_seconds, 2.0))
            self._checkpoint()
        finally:
            self._consumer.close()  # leaves the group at once: the partitions move without waiting a timeout

    def start(self, stop: threading.Event) -> None:
        """Run in a thread; a fatal error is kept in `error` and sets `stop` (the processor then exits)."""
        def main() -> None:
            try:
                self.run(stop)
            except BaseException as exc:  # kept for serve() to raise after a clean shutdown
                log.error("kafka ingest stopped: %s", exc)
                self.error = exc
                stop.set()
        self._thread = threading.Thread(target=main, name="flowlake-kafka-ingest", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    # -- messages ---------------------------------------------------------------------------------------
    def _handle(self, messages: list[Any]) -> None:
        batches: list[pa.RecordBatch] = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() == _EOF:
                    continue
                if err.fatal():
                    raise TransportError(f"Kafka ingest {self.url}: fatal error {err.str()}")
                log.warning("kafka ingest: %s", err.str())
                continue
            self._offsets[msg.partition()] = msg.offset() + 1
            selfmetrics.KAFKA_CONSUMED.labels(topic=self.topic).inc()
            try:
                for batch in decode(msg.value()):
                    if batch.num_rows == 0:
                        raise ValueError("empty batch")
                    valid = schema.validate(batch)
                    # one schema object (without the producer's metadata), so a poll concatenates
                    batches.append(pa.RecordBatch.from_arrays(valid.columns, schema=schema.SCHEMA))
            except SchemaError as exc:
                self._bad(msg, "schema", exc)
            except ValueError as exc:
                self._bad(msg, "empty" if "empty" in str(exc) else "decode", exc)
        if batches:
            self._ingest(batches)

    def _bad(self, msg: Any, reason: str, exc: Exception) -> None:
        selfmetrics.KAFKA_BAD.labels(topic=self.topic, reason=reason).inc()
        selfmetrics.INGEST_REJECTED.labels(transport="kafka", reason=reason).inc()
        log.warning("kafka ingest: skipped message %s[%d]@%d: %s", self.topic, msg.partition(), msg.offset(), exc)

    def _ingest(self, batches: list[pa.RecordBatch]) -> None:
        """One pipeline pass for the whole poll (per-call costs are paid once); on a failure, one per batch.

        The poll's batches go in as one table without copying them into one batch (Polars keeps the chunks).
        """
        try:
            self.target.ingest(pa.Table.from_batches(batches) if len(batches) > 1 else batches[0], "kafka")
            return
        except Exception:
            if len(batches) == 1:
                log.exception("kafka ingest: the pipeline failed on a batch; skipped")
                selfmetrics.KAFKA_BAD.labels(topic=self.topic, reason="error").inc()
                return
        for batch in batches:  # find the batch the pipeline fails on; keep the others
            try:
                self.target.ingest(batch, "kafka")
            except Exception:
                log.exception("kafka ingest: the pipeline failed on a batch; skipped")
                selfmetrics.KAFKA_BAD.labels(topic=self.topic, reason="error").inc()

    # -- checkpoints ------------------------------------------------------------------------------------
    def _checkpoint(self) -> bool:
        """Publish every sink, then commit; False (and consumption paused) when a sink did not publish."""
        try:
            self.target.flush(strict=True)
        except FlowlakeError as exc:
            selfmetrics.KAFKA_COMMITS.labels(result="held").inc()
            log.error("kafka ingest: not committing, a sink did not publish (%s); consumption paused", exc)
            self._pause(True)
            return False
        self._pause(False)
        todo = {p: o for p, o in self._offsets.items() if self._committed.get(p) != o}
        if todo:
            try:
                self._consumer.commit(offsets=[self._ck.TopicPartition(self.topic, p, o) for p, o in todo.items()],
                                      asynchronous=False)
            except self._ck.KafkaException as exc:  # e.g. a rebalance is under way: the next owner re-reads
                selfmetrics.KAFKA_COMMITS.labels(result="failed").inc()
                log.warning("kafka ingest: commit failed (%s); those messages may be read again", exc)
                return True
            self._committed.update(todo)
            selfmetrics.KAFKA_COMMITS.labels(result="ok").inc()
        self._report_lag()
        return True

    def _report_lag(self) -> None:
        lag = 0
        for p, committed in self._committed.items():
            try:
                marks = self._consumer.get_watermark_offsets(self._ck.TopicPartition(self.topic, p), cached=True)
            except self._ck.KafkaException:
                continue
            if marks and marks[1] >= 0:  # nothing cached yet: (-1001, -1001), or None in older clients
                lag += max(marks[1] - committed, 0)
        selfmetrics.KAFKA_COMMIT_LAG.labels(topic=self.topic).set(lag)

    def _pause(self, pause: bool) -> None:
        if pause == self._paused:
            return
        parts = self._consumer.assignment()
        (self._consumer.pause if pause else self._consumer.resume)(parts)
        self._paused = pause

    # -- rebalances (called by librdkafka from inside consume()) -------------------------------------------
    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        log.info("kafka ingest: assigned partitions %s", sorted(tp.partition for tp in partitions))
        if self._paused:
            consumer.pause(partitions)

    def _revoked(self, consumer: Any, partitions: list[Any]) -> None:
        """Publish and commit while the partitions are still ours, so the next owner starts after them."""
        self._checkpoint()
        for tp in partitions:
            self._offsets.pop(tp.partition, None)
            self._committed.pop(tp.partition, None)

    def _lost(self, consumer: Any, partitions: list[Any]) -> None:
        """Taken away without a chance to commit (we missed the session timeout): the next owner re-reads."""
        log.warning("kafka ingest: lost partitions %s; their uncommitted messages will be read again",
                    sorted(tp.partition for tp in partitions))
        for tp in partitions:
            self._offsets.pop(tp.partition, None)
            self._committed.pop(tp.partition, None)
