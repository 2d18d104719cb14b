"""The Transport seam: how flow batches travel from agents (and `synth`) to the processor.

A `Sender` is what producers hold; the processor side of each transport calls an `Ingest` callback
with every batch it receives. `engine.transport.open_sender` picks the implementation by URL scheme.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import pyarrow as pa


class Sender(Protocol):
    """Sends flow batches; raises `TransportError` (retryable) or `SchemaError` (the batch is bad)."""

    url: str

    def send(self, batches: Iterable[pa.RecordBatch]) -> int: ...

    def close(self) -> None: ...


class Ingest(Protocol):
    """The processor's entry point for a received batch; raises `SchemaError` to reject it."""

    def __call__(self, batch: pa.RecordBatch, transport: str) -> None: ...
