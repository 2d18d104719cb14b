"""In-memory transport: a sender that calls an ingest callback directly. Used by tests and `up`."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from flowlake.engine.transport.base import Ingest

_ROUTES: dict[str, Ingest] = {}


def register(name: str, ingest: Ingest) -> None:
    """Make `memory://name` deliver to `ingest` (the processor registers itself)."""
    _ROUTES[name] = ingest


class MemorySender:
    """Delivers batches synchronously to the ingest registered under the URL's name."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._name = url.removeprefix("memory://")

    def send(self, batches: Iterable[pa.RecordBatch]) -> int:
        ingest = _ROUTES[self._name]
        rows = 0
        for batch in batches:
            ingest(batch, "memory")
            rows += batch.num_rows
        return rows

    def close(self) -> None:
        pass
