"""HTTP pushes to a Loki-protocol endpoint with retries and exponential backoff; used by `sinks.loki`.

One keep-alive connection (http.client; no extra dependency). A push is retried after a 429, a 5xx,
a timeout or a connection error, waiting min_backoff, then twice as long each time up to max_backoff
(a 429's Retry-After is honoured within that bound), at most max_retries times; then it is dropped.
Any other status is permanent: dropped at once. Every outcome is counted (flowlake_sink_*).
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping

from flowlake.engine import selfmetrics

log = logging.getLogger(__name__)


class Pusher:
    """Sends push bodies to one URL; `push` returns True once delivered, False once given up."""

    def __init__(self, url: str, *, sink: str = "loki", timeout: float = 10.0, min_backoff: float = 1.0,
                 max_backoff: float = 5.0, max_retries: int = 2, headers: Mapping[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"loki.url {url!r}: expected http(s)://HOST[:PORT]/PATH, e.g. "
                             "http://loki:3100/loki/api/v1/push")
        self.url, self.sink = url, sink
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout, self.min_backoff, self.max_backoff = timeout, min_backoff, max_backoff
        self.max_retries = max_retries
        self.headers = dict(headers or {})
        self._sleep = sleep
        self._conn: http.client.HTTPConnection | None = None

    def push(self, body: bytes, content_type: str, rows: int) -> bool:
        """Deliver one body of `rows` flows, retrying as the module says."""
        headers = {**self.headers, "Content-Type": content_type, "Content-Length": str(len(body))}
        for attempt in range(self.max_retries + 1):
            status, detail, retry_after = self._send(body, headers)
            if status is not None and 200 <= status < 300:
                selfmetrics.SINK_REQUESTS.labels(sink=self.sink, outcome="ok").inc()
                return True
            transient = status is None or status == 429 or status >= 500
            selfmetrics.SINK_REQUESTS.labels(sink=self.sink, outcome="retry" if transient else "error").inc()
            if not transient or attempt == self.max_retries:
                why = "a permanent error" if not transient else f"{self.max_retries} retries"
                log.error("%s sink: dropped %d flows after %s: %s (check %s, the receiver's limits and logs)",
                          self.sink, rows, why, detail, self.url)
                break
            delay = min(self.max_backoff, self.min_backoff * 2 ** attempt)
            if retry_after is not None:
                delay = min(self.max_backoff, max(delay, retry_after))
            selfmetrics.SINK_RETRIES.labels(sink=self.sink).inc(rows)
            log.warning("%s sink: push of %d flows failed (%s); retry %d/%d in %.1fs", self.sink, rows, detail,
                        attempt + 1, self.max_retries, delay)
            self._sleep(delay)
        selfmetrics.SINK_DROPPED.labels(sink=self.sink).inc(rows)
        selfmetrics.SINK_ERRORS.labels(sink=self.sink).inc()
        return False

    def _send(self, body: bytes, headers: dict[str, str]) -> tuple[int | None, str, float | None]:
        """(status or None for a transport failure, a description, Retry-After seconds)."""
        try:
            conn = self._connection()
            conn.request("POST", self._target, body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace").strip()  # read whole: the connection is reused
            if resp.will_close or resp.status >= 300:
                self.close()
            retry_after = resp.getheader("Retry-After")
            seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
            return resp.status, f"HTTP {resp.status} {text[:300]}", seconds
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timeout, bad response
            self.close()
            return None, f"{type(exc).__name__}: {exc}", None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        """Drop the keep-alive connection (the next push opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
