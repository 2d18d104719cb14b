"""Where the agent sends batches: Arrow Flight (`grpc://`, `grpc+tls://`), `memory://`, or `file://DIR`.

Called by the agent's exporter thread. Network transports come from `flowlake.engine.transport`
(the same client `flowlake synth` uses); `file://` writes one Arrow IPC stream file per batch, for
debugging without a processor.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from flowlake.engine import transport


class Exporter(Protocol):
    kind: str

    def send(self, batches: Iterable[pa.RecordBatch]) -> int: ...

    def close(self) -> None: ...


class FileExporter:
    """Writes `flows-<unix ns>.arrow` files (Arrow IPC stream format) into a directory."""

    kind = "file"

    def __init__(self, url: str) -> None:
        self.dir = Path(url.removeprefix("file://"))
        self.dir.mkdir(parents=True, exist_ok=True)

    def send(self, batches: Iterable[pa.RecordBatch]) -> int:
        rows = 0
        for batch in batches:
            tmp = self.dir / f".flows-{time.time_ns()}.arrow"
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, batch.schema) as writer:
                writer.write_batch(batch)
            tmp.rename(self.dir / tmp.name[1:])  # readers never see a half-written file
            rows += batch.num_rows
        return rows

    def close(self) -> None:
        pass


class TransportExporter:
    """Any `flowlake.engine.transport` sender (Flight, memory)."""

    def __init__(self, url: str) -> None:
        self.kind = url.partition("://")[0]
        self._sender = transport.open_sender(url)

    def send(self, batches: Iterable[pa.RecordBatch]) -> int:
        return self._sender.send(batches)

    def close(self) -> None:
        self._sender.close()


def open_exporter(url: str) -> Exporter:
    if url.startswith("file://"):
        return FileExporter(url)
    return TransportExporter(url)
