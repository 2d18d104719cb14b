"""Kafka exporter sink (`sinks: [kafka]`, section `kafka_export`): enriched flows to a topic for other consumers.

Built by `engine.processor` from `KafkaExportConfig`; the reference's FLP kafka encode (FlowCollector
`exporters[].kafka`). `format: json` writes one JSON object per flow and message, with the flow record's
field names (NetObserv's) and without its null fields, as FLP's JSON of a flow map.
`format: arrow` writes Arrow IPC messages exactly as the Kafka transport does, so another flowlake processor
can consume the export. `write` queues messages in the producer; `flush` waits until the broker
acknowledged them and produces failed ones again, so a flush that returned means the rows are in Kafka.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import polars as pl

from flowlake.engine import selfmetrics
from flowlake.engine.config import KafkaExportConfig
from flowlake.engine.errors import ConfigError, SinkError
from flowlake.engine.sinks.base import Capabilities
from flowlake.engine.transport import kafka as kafka_transport
from flowlake.engine.transport import kafka_options

log = logging.getLogger(__name__)
_SASL = {"Disabled": "", "Plain": "plain", "ScramSHA512": "scram-sha512"}


def settings(cfg: KafkaExportConfig) -> kafka_options.KafkaSettings:
    """The connection settings of a `kafka_export` section; ConfigError when the address is missing."""
    if not cfg.address:
        raise ConfigError("kafka sink: set kafka_export.address (brokers, HOST:PORT[,HOST:PORT])")
    return kafka_options.KafkaSettings(
        brokers=cfg.address, topic=cfg.topic, compression=cfg.compression, batch_messages=cfg.batch_messages,
        batch_bytes=cfg.batch_bytes, linger_ms=cfg.linger_ms, tls=cfg.tls.enable,
        tls_ca_cert_path=cfg.tls.ca_cert_path, tls_user_cert_path=cfg.tls.user_cert_path,
        tls_user_key_path=cfg.tls.user_key_path, tls_insecure_skip_verify=cfg.tls.insecure_skip_verify,
        sasl=_SASL[cfg.sasl.type], sasl_client_id_path=cfg.sasl.client_id_path,
        sasl_client_secret_path=cfg.sasl.client_secret_path)


def json_lines(frame: pl.DataFrame) -> list[bytes]:
    """One JSON document per flow without its null fields (as FLP's maps), by Polars' NDJSON writer.

    Rows are grouped by which columns are null (a few dozen patterns in real traffic) and each group is
    written with only its non-null columns: vectorized, no Python object per flow.
    """
    counts = dict(zip(frame.columns, frame.null_count().row(0), strict=True))
    frame = frame.select([c for c, n in counts.items() if n < frame.height])
    partial = [c for c in frame.columns if counts[c]]
    if not partial:
        return frame.write_ndjson().encode().splitlines()
    pattern = pl.concat_str([pl.col(c).is_null().cast(pl.UInt8).cast(pl.String) for c in partial])
    lines: list[bytes] = []
    for part in frame.with_columns(pattern.alias("_nulls")).partition_by("_nulls", include_key=False):
        nulls = dict(zip(part.columns, part.null_count().row(0), strict=True))
        lines += part.select([c for c, n in nulls.items() if not n]).write_ndjson().encode().splitlines()
    return lines


class KafkaExportSink:
    """Produces each written frame to `kafka_export.topic` as JSON lines or Arrow IPC messages."""

    name = "kafka"
    output = "Exporters"
    capabilities = Capabilities(durable=True, ordered=False, atomic_publish=False)

    def __init__(self, cfg: KafkaExportConfig) -> None:
        self.cfg = cfg
        self.settings = settings(cfg)
        self._producer = kafka_options.client().Producer(
            {**self.settings.producer_config(cfg.max_message_bytes),
             "queue.buffering.max.messages": cfg.max_buffer_messages})
        self._lock = threading.Lock()
        self._failed: list[tuple[bytes | None, bytes | None]] = []  # (key, value) of undelivered messages
        self._rows = 0  # rows produced since the last flush

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            selfmetrics.SINK_ERRORS.labels(sink=self.name).inc()
            if len(self._failed) < self.cfg.max_buffer_messages:
                self._failed.append((msg.key(), msg.value()))
            else:
                selfmetrics.SINK_DROPPED.labels(sink=self.name).inc()

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        if self.cfg.format == "json":
            messages = json_lines(frame)
        else:
            batches = frame.to_arrow().to_batches(max_chunksize=self.cfg.max_rows)
            messages = [m for b in batches for m in kafka_transport.slices(b, self.cfg.max_rows,
                                                                          self.cfg.max_message_bytes)]
        with self._lock:
            for value in messages:
                self._produce(None, value)
            self._rows += frame.height

    def _produce(self, key: bytes | None, value: bytes | None) -> None:
        deadline = time.monotonic() + self.cfg.timeout_seconds
        while True:
            try:
                self._producer.produce(self.settings.topic, value=value, key=key, on_delivery=self._delivered)
                return
            except BufferError:  # max_buffer_messages queued: wait for the broker (backpressure)
                if time.monotonic() > deadline:
                    selfmetrics.SINK_DROPPED.labels(sink=self.name).inc()
                    raise SinkError(f"kafka sink: {self.cfg.max_buffer_messages} messages queued for "
                                    f"{self.settings.brokers} for {self.cfg.timeout_seconds:.0f}s; is the broker "
                                    "reachable? raise kafka_export.max_buffer_messages for bursts") from None
                self._producer.poll(0.1)

    def flush(self) -> int:
        """Wait for acknowledgements; produce failed messages again; SinkError if some stay undelivered."""
        with self._lock:
            deadline = time.monotonic() + self.cfg.timeout_seconds
            while True:
                left = self._producer.flush(max(deadline - time.monotonic(), 0.0))
                failed, self._failed = self._failed, []
                if not failed and not left:
                    break
                if time.monotonic() >= deadline:
                    self._failed = failed
                    selfmetrics.SINK_ERRORS.labels(sink=self.name).inc()
                    selfmetrics.SINK_RETRIES.labels(sink=self.name).inc(self._rows)  # kept, tried again next flush
                    raise SinkError(f"kafka sink: {left + len(failed)} messages to {self.settings.topic} at "
                                    f"{self.settings.brokers} not acknowledged within "
                                    f"{self.cfg.timeout_seconds:.0f}s; kept for the next flush. Is the broker "
                                    "reachable, and the topic writable (TLS, SASL, ACLs)?")
                self._producer.poll(0.5)  # a refusal (auth, ACL) comes back at once: do not spin
                for key, value in failed:
                    self._produce(key, value)
            rows, self._rows = self._rows, 0
        selfmetrics.SINK_ROWS.labels(sink=self.name).inc(rows)
        return rows

    def close(self) -> None:
        self.flush()
