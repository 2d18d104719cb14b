"""Kafka transport, producer side: agents and `flowlake synth --target kafka://...` send flow batches to a topic.

`open_sender("kafka://BROKER[:PORT][,BROKER...]/TOPIC?options")` returns a `KafkaSender`. Each Kafka message
is one Arrow IPC stream (schema + one record batch of the flow schema) of at most `max_message_bytes`;
`flowlake processor --ingest kafka://...` (`kafka_ingest.py`) reads them back. Messages are keyed by the
batch's AgentIP so one agent's flows stay in one partition, in order. Options beyond those of
`kafka_options` (TLS, SASL, compression, batching):

- `key=agent` (default: rows are split by AgentIP, one key per agent), `key=none` (no key: the
  producer spreads messages), or any other value used as the key of every message
- `max_rows=10000` (rows per message, as the reference's GRPC_MESSAGE_MAX_FLOWS) and
  `max_message_bytes=1000000` (keep under the broker's message.max.bytes; larger slices are halved)
- `async=false`: `send` waits until the broker acknowledged its messages and raises `TransportError` on
  a failure (the agent then retries); `async=true` returns once queued (KAFKA_ASYNC), failures are
  raised by the next `send` or `close`
- `timeout=30`: whole seconds `send` (sync) and `close` wait for acknowledgements
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from flowlake.engine import schema, selfmetrics
from flowlake.engine.errors import ConfigError, TransportError
from flowlake.engine.transport import kafka_options

log = logging.getLogger(__name__)
CONTENT_TYPE = ("content-type", b"application/vnd.apache.arrow.stream")
_OPTIONS = ("key", "max_rows", "max_message_bytes", "async", "timeout")


def encode(batch: pa.RecordBatch) -> bytes:
    """One record batch as a self-contained Arrow IPC stream (what one Kafka message carries)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue())


def by_agent(batch: pa.RecordBatch) -> Iterator[tuple[str | None, pa.RecordBatch]]:
    """(AgentIP, rows of that agent) runs, vectorized; a one-agent batch (the agent's own) is not copied."""
    agents = batch.column("AgentIP")
    if batch.num_rows == 0:
        return
    if agents.null_count == 0 and pc.count_distinct(agents).as_py() == 1:
        yield agents[0].as_py(), batch
        return
    order = pc.sort_indices(agents)  # stable, nulls last: each agent's rows keep their order
    grouped = batch.take(order)
    runs = pc.run_end_encode(grouped.column("AgentIP").cast(pa.string()))
    start = 0
    for end, value in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
        yield value, grouped.slice(start, end - start)
        start = end


def slices(batch: pa.RecordBatch, max_rows: int, max_bytes: int) -> Iterator[bytes]:
    """Encoded messages of at most `max_rows` rows and `max_bytes` bytes; halves a slice that is too big."""
    for start in range(0, batch.num_rows, max_rows):
        yield from _fit(batch.slice(start, max_rows), max_bytes)


def _fit(part: pa.RecordBatch, max_bytes: int) -> Iterator[bytes]:
    data = encode(part)
    if len(data) <= max_bytes:
        yield data
    elif part.num_rows <= 1:
        raise TransportError(f"one flow encodes to {len(data)} bytes, over max_message_bytes={max_bytes}; "
                             "raise max_message_bytes (and the topic's max.message.bytes)")
    else:
        half = part.num_rows // 2
        yield from _fit(part.slice(0, half), max_bytes)
        yield from _fit(part.slice(half), max_bytes)


def _retry_hint(err: Any) -> tuple[str, float | None]:
    """Text naming the fix, and the retry delay (None when retrying cannot help)."""
    name = err.name()
    if name in ("TOPIC_AUTHORIZATION_FAILED", "SASL_AUTHENTICATION_FAILED", "_AUTHENTICATION",
                "CLUSTER_AUTHORIZATION_FAILED"):
        return "check the SASL credentials and the topic's ACLs", None
    if name in ("MSG_SIZE_TOO_LARGE", "_MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE"):
        return "lower max_message_bytes or raise the topic's max.message.bytes", None
    if name in ("UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC"):
        return "create the topic, or enable auto.create.topics.enable on the brokers", 5.0
    return "is the broker reachable? try again shortly", 1.0


class KafkaSender:
    """Produces flow batches as Arrow IPC messages to one topic; thread-safe, idempotent producer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.settings, opts = kafka_options.parse_url(url, _OPTIONS)
        self.key = opts.get("key", "agent")
        self.max_rows = kafka_options.to_int("max_rows", opts.get("max_rows", "10000"))
        self.max_bytes = kafka_options.to_int("max_message_bytes", opts.get("max_message_bytes", "1000000"))
        self.asynchronous = opts.get("async", "false").lower() in ("1", "true", "yes", "on")
        self.timeout = kafka_options.to_int("timeout", opts.get("timeout", "30"))
        if self.max_rows < 1 or self.max_bytes < 1024 or self.timeout < 1:
            raise ConfigError("Kafka sender: max_rows and timeout must be >= 1, max_message_bytes >= 1024")
        ck = kafka_options.client()
        self._client_error: Any = None  # the last connection-level KafkaError (auth, all brokers down)
        self._producer = ck.Producer({**self.settings.producer_config(self.max_bytes), "error_cb": self._error})
        self._lock = threading.Lock()
        self._failures: list[Any] = []  # KafkaErrors reported by delivery callbacks
        self._topic = self.settings.topic

    def _error(self, err: Any) -> None:
        self._client_error = err

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._failures.append(err)
            selfmetrics.KAFKA_PRODUCE_ERRORS.labels(topic=self._topic).inc()

    def send(self, batches: Iterable[pa.RecordBatch]) -> int:
        """Produce every batch; returns rows sent. Raises TransportError (retry hint) or SchemaError."""
        rows = messages = 0
        with self._lock:
            self._raise_failures()
            self._client_error = None  # a connection problem of an earlier call is no news now
            for batch in batches:
                valid = schema.validate(batch)
                assert isinstance(valid, pa.RecordBatch)
                parts = by_agent(valid) if self.key == "agent" else [(None if self.key == "none" else self.key,
                                                                      valid)]
                for agent, part in parts:
                    key = agent.encode() if agent is not None else None
                    for data in slices(part, self.max_rows, self.max_bytes):
                        self._produce(data, key)
                        messages += 1
                rows += valid.num_rows
            if not self.asynchronous:
                self._wait(self.timeout)
                self._raise_failures()
        selfmetrics.KAFKA_PRODUCED.labels(topic=self._topic).inc(messages)
        return rows

    def _produce(self, data: bytes, key: bytes | None) -> None:
        while True:
            try:
                self._producer.produce(self._topic, value=data, key=key, headers=[CONTENT_TYPE],
                                       on_delivery=self._delivered)
                self._producer.poll(0)
                return
            except BufferError:  # the local queue is full: let delivery catch up
                self._producer.poll(0.1)
            except kafka_options.client().KafkaException as exc:
                hint, retry = _retry_hint(exc.args[0])
                raise TransportError(f"Kafka {self.url}: {exc.args[0].str()}; {hint}", retry_after=retry) from exc

    def _wait(self, timeout: float) -> None:
        """Until every queued message is acknowledged; gives up early when the broker refuses us (auth)."""
        deadline = time.monotonic() + timeout
        while left := self._producer.flush(min(1.0, max(deadline - time.monotonic(), 0.0))):
            err = self._client_error
            hint, retry = _retry_hint(err) if err is not None else ("is the broker reachable?", 5.0)
            if retry is None or time.monotonic() >= deadline:
                seen = f" (last error: {err.str()})" if err is not None else ""
                raise TransportError(f"Kafka {self.url}: {left} messages not acknowledged within {timeout:.0f}s"
                                     f"{seen}; {hint}", retry_after=retry)

    def _raise_failures(self) -> None:
        if not self._failures:
            return
        failures, self._failures = self._failures, []
        hint, retry = _retry_hint(failures[0])
        raise TransportError(f"Kafka {self.url}: {len(failures)} messages failed ({failures[0].str()}); {hint}",
                             retry_after=retry)

    def close(self) -> None:
        """Deliver everything queued (flush); raises TransportError if some messages could not be."""
        with self._lock:
            try:
                self._wait(self.timeout)
                self._raise_failures()
            finally:
                self._producer = _Closed(self.url)


class _Closed:
    """Stands in for the producer after `close`: a late `send` gets a clear error, not a segfault."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __getattr__(self, name: str) -> Any:
        raise TransportError(f"Kafka sender {self.url} is closed; open a new one with open_sender()")
