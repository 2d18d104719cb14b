"""Loki sink (`sinks: [loki]`): flows pushed as log lines to a Loki-protocol receiver, as NetObserv does.

Built by the processor from `config.loki`, which runs it behind a bounded queue and worker thread
(`sinks.queued`) that calls `flush` every `batch_wait_seconds`. Labels, lines and bodies are made by
`sinks.loki_wire`; pushes, retries and drop accounting by `sinks.loki_http`. Receivers: Grafana Loki,
VictoriaLogs (`/insert/loki/api/v1/push`, what the tests run), or anything speaking the push API.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import polars as pl

from flowlake.engine import selfmetrics
from flowlake.engine.config import LokiConfig
from flowlake.engine.errors import ConfigError, SinkError
from flowlake.engine.sinks import loki_http, loki_wire
from flowlake.engine.sinks.base import Capabilities


class LokiSink:
    """Buffers prepared lines; pushes when `batch_size_bytes` are buffered and on every `flush`."""

    name = "loki"
    output = "Loki"  # NetObserv's own Loki target
    capabilities = Capabilities(durable=False, ordered=False, atomic_publish=False)

    def __init__(self, cfg: LokiConfig, pusher: loki_http.Pusher | None = None) -> None:
        self.cfg = cfg
        self.labels = list(dict.fromkeys(cfg.labels + cfg.extra_labels))
        self.flush_interval = cfg.batch_wait_seconds  # the queue worker flushes this often (writeBatchWait)
        self.pusher = pusher or loki_http.Pusher(
            cfg.url, sink=self.name, timeout=cfg.timeout_seconds, min_backoff=cfg.min_backoff_seconds,
            max_backoff=cfg.max_backoff_seconds, max_retries=cfg.max_retries, headers=_headers(cfg))
        self._pending: list[pl.DataFrame] = []
        self._pending_bytes = 0
        self._lock = threading.Lock()  # guards the buffer
        self._io_lock = threading.Lock()  # one push at a time, in order

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        prepared = loki_wire.prepare(frame, self.labels)
        size = int(loki_wire.line_bytes(prepared).sum())
        with self._lock:
            self._pending.append(prepared)
            self._pending_bytes += size
            full = self._pending_bytes >= self.cfg.batch_size_bytes
        if full:
            self.flush()

    def flush(self) -> int:
        """Push everything buffered, in bodies of about `batch_size_bytes` of lines; returns rows delivered.

        Rows of a body that fails after its retries are dropped and counted; SinkError then says how many.
        """
        with self._io_lock:
            with self._lock:
                frames, self._pending, self._pending_bytes = self._pending, [], 0
            if not frames:
                return 0
            prepared = pl.concat(frames) if len(frames) > 1 else frames[0]
            delivered = dropped = 0
            for chunk in _chunks(prepared, self.cfg.batch_size_bytes):
                streams = loki_wire.group(chunk, self.labels, self.cfg.static_labels)
                body = loki_wire.BODIES[self.cfg.format](streams)
                if self.pusher.push(body, loki_wire.CONTENT_TYPES[self.cfg.format], chunk.height):
                    delivered += chunk.height
                    selfmetrics.SINK_ROWS.labels(sink=self.name).inc(chunk.height)
                else:
                    dropped += chunk.height
        if dropped:
            raise SinkError(f"loki sink: dropped {dropped} flows that {self.cfg.url} did not accept after "
                            f"{self.cfg.max_retries} retries (see the log for the status); is the receiver up, "
                            "and loki.url, loki.tenant_id right?")
        return delivered

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.pusher.close()


def _chunks(prepared: pl.DataFrame, max_bytes: int) -> list[pl.DataFrame]:
    """Consecutive slices of about `max_bytes` of lines: each holds the lines that start in one `max_bytes`
    window of the running total, so it is at most one line over."""
    sizes = loki_wire.line_bytes(prepared).cast(pl.Int64)
    if prepared.height == 0 or int(sizes.sum()) <= max_bytes:
        return [prepared] if prepared.height else []
    bucket = ((sizes.cum_sum() - sizes) // max_bytes).to_numpy()  # start offset of each line, in batches
    edges = [0, *(np.flatnonzero(np.diff(bucket)) + 1).tolist(), prepared.height]
    return [prepared.slice(a, b - a) for a, b in itertools.pairwise(edges)]


def _headers(cfg: LokiConfig) -> dict[str, str]:
    headers = {"User-Agent": "flowlake"}
    if cfg.tenant_id:
        headers["X-Scope-OrgID"] = cfg.tenant_id
    if cfg.bearer_token_file:
        try:
            headers["Authorization"] = "Bearer " + Path(cfg.bearer_token_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"loki.bearer_token_file: cannot read {cfg.bearer_token_file} ({exc}); mount "
                              "the token there or leave the key empty") from exc
    return headers
