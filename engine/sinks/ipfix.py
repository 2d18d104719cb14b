"""IPFIX exporter sink (`sinks: [ipfix]`, section `ipfix`): flows to an IPFIX collector over UDP or TCP.

Built by `engine.processor` from `IpfixConfig`, the reference FlowCollector's `exporters[].ipfix`
(targetHost, targetPort 4739, transport TCP|UDP, enterpriseID 2) and FLP's ipfix writer
(tplSendInterval 1m). It runs behind the processor's bounded queue (`sinks.queued`), which calls `flush`
every `batch_wait_seconds`. Records are encoded column by column by `sinks.ipfix_encode`; the elements
are listed in `sinks.ipfix_ies` and docs/sinks.md. Templates go first on every new connection (a TCP
Transport Session) and again every `template_interval_seconds` (what UDP collectors rely on).
A message that cannot be sent is retried with exponential backoff over a new connection, up to
`max_retries` times; then the rows still unsent are dropped and counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import polars as pl

from flowlake.engine import selfmetrics
from flowlake.engine.config import IpfixConfig
from flowlake.engine.errors import ConfigError, SinkError
from flowlake.engine.sinks import ipfix_encode
from flowlake.engine.sinks.base import Capabilities
from flowlake.engine.sinks.ipfix_transport import Transport

log = logging.getLogger(__name__)
UDP_MESSAGE_BYTES = 1_400  # one datagram within a 1500-byte MTU after the IP and UDP headers
TCP_MESSAGE_BYTES = 65_535  # the largest IPFIX Message (its length field is 16 bits)


class IpfixSink:
    """Buffers written frames; `flush` encodes them and sends IPFIX Messages to `ipfix.target_host`."""

    name = "ipfix"
    output = "Exporters"
    capabilities = Capabilities(durable=False, ordered=False, atomic_publish=False)

    def __init__(self, cfg: IpfixConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        if not cfg.target_host:
            raise ConfigError("ipfix sink: set ipfix.target_host (the collector's host name or address)")
        self.cfg = cfg
        self.flush_interval = cfg.batch_wait_seconds  # the queue worker flushes this often
        self.max_message = cfg.max_message_bytes or (UDP_MESSAGE_BYTES if cfg.transport == "udp"
                                                      else TCP_MESSAGE_BYTES)
        self.transport = Transport(cfg.target_host, cfg.target_port, cfg.transport, cfg.timeout_seconds)
        self._templates = ipfix_encode.template_set(cfg.enterprise_id)
        self._templates_sent = float("-inf")  # monotonic time of the last template message
        self._sequence = 0  # data records sent in this Transport Session (the header's sequence number)
        pace = cfg.udp_messages_per_second if cfg.transport == "udp" else 0.0
        self._gap = 1.0 / pace if pace else 0.0  # seconds between datagrams
        self._next_send = 0.0  # monotonic time the next paced datagram may leave
        self._sleep = sleep
        self._pending: list[pl.DataFrame] = []
        self._lock = threading.Lock()  # guards the buffer
        self._io_lock = threading.Lock()  # one flush at a time, messages in order

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height:
            with self._lock:
                self._pending.append(frame)

    def flush(self) -> int:
        """Send everything buffered; returns the flows sent. SinkError names the collector when rows were dropped."""
        with self._io_lock:
            with self._lock:
                frames, self._pending = self._pending, []
            if not frames:
                return 0
            sets: list[tuple[bytes, int]] = []
            too_large = 0
            for records in ipfix_encode.encode(pl.concat(frames, how="vertical_relaxed")):
                part, skipped = ipfix_encode.data_sets(records, self.max_message)
                sets += part
                too_large += skipped
            if too_large:
                selfmetrics.SINK_DROPPED.labels(sink=self.name).inc(too_large)
                log.error("ipfix sink: dropped %d flows whose record exceeds ipfix.max_message_bytes=%d",
                          too_large, self.max_message)
            sent = self._send_all(sets)
        if sent < len(sets):
            dropped = sum(rows for _, rows in sets[sent:])
            raise SinkError(f"ipfix sink: dropped {dropped} flows that {self.transport.address} did not take "
                            f"after {self.cfg.max_retries} retries; is the collector up, and ipfix.target_host, "
                            "target_port, transport right?")
        return sum(rows for _, rows in sets)

    def _send_all(self, sets: list[tuple[bytes, int]]) -> int:
        """Send the data sets in order; returns how many were sent (the rest were dropped and counted)."""
        for i, (data_set, rows) in enumerate(sets):
            for attempt in range(self.cfg.max_retries + 1):
                try:
                    self._send_one(data_set, rows)
                    break
                except OSError as exc:
                    left = sum(r for _, r in sets[i:])
                    selfmetrics.SINK_REQUESTS.labels(sink=self.name, outcome="retry").inc()
                    if attempt == self.cfg.max_retries:
                        log.error("ipfix sink: %s: %s; dropped %d flows", self.transport.address, exc, left)
                        selfmetrics.SINK_DROPPED.labels(sink=self.name).inc(left)
                        selfmetrics.SINK_ERRORS.labels(sink=self.name).inc()
                        return i
                    delay = min(self.cfg.max_backoff_seconds, self.cfg.min_backoff_seconds * 2 ** attempt)
                    selfmetrics.SINK_RETRIES.labels(sink=self.name).inc(left)
                    log.warning("ipfix sink: %s: %s; retry %d/%d in %.1fs", self.transport.address, exc,
                                attempt + 1, self.cfg.max_retries, delay)
                    self._sleep(delay)
        return len(sets)

    def _send_one(self, data_set: bytes, rows: int) -> None:
        now = time.monotonic()
        if self.transport.connect():  # a new Transport Session: templates first, sequence from 0
            self._sequence = 0
            self._templates_sent = float("-inf")
        if now - self._templates_sent >= self.cfg.template_interval_seconds:
            self.transport.send(self._message(self._templates))
            self._templates_sent = now
        if self._gap:
            wait = self._next_send - now
            if wait > 0:
                self._sleep(wait)
            self._next_send = max(now, self._next_send) + self._gap
        self.transport.send(self._message(data_set))
        self._sequence += rows
        selfmetrics.SINK_REQUESTS.labels(sink=self.name, outcome="ok").inc()
        selfmetrics.SINK_ROWS.labels(sink=self.name).inc(rows)

    def _message(self, body: bytes) -> bytes:
        return ipfix_encode.message(body, sequence=self._sequence, domain=self.cfg.observation_domain_id,
                                    export_time=int(time.time()))

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.transport.close()
