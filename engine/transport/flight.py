"""Arrow Flight transport: `do_put` of flow batches from agents and `synth` into the processor.

`FlightSender` is the client helper producers use; `FlowFlightServer` runs inside
`flowlake processor`, hands every batch to the pipeline's ingest callback and turns a rejected batch
into a Flight error the client can read, without affecting other clients.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.flight as flight

from flowlake.engine import schema, selfmetrics
from flowlake.engine.errors import SchemaError, TransportError
from flowlake.engine.transport.base import Ingest

log = logging.getLogger(__name__)
DEFAULT_PORT = 2055
_DESCRIPTOR = flight.FlightDescriptor.for_path("flows")
_REJECTED = "flow batch rejected: "  # SchemaError's prefix: how a client tells rejection from failure


def location(url: str) -> str:
    """Normalize `grpc://host:port` (port defaults to 2055) into a Flight location string."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("grpc", "grpc+tcp", "grpc+tls"):
        raise TransportError(f"not a Flight URL: {url!r}; use grpc://HOST:PORT or grpc+tls://HOST:PORT")
    if ":" not in rest.rsplit("]", 1)[-1]:
        rest = f"{rest}:{DEFAULT_PORT}"
    return f"{'grpc+tls' if scheme == 'grpc+tls' else 'grpc+tcp'}://{rest}"


class FlightSender:
    """Sends batches to a processor with one `do_put` stream per `send` call."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self._client = flight.FlightClient(location(url))
        self._options = flight.FlightCallOptions(timeout=timeout)

    def send(self, batches: Iterable[pa.RecordBatch]) -> int:
        """Send batches in one stream; returns rows sent.

        Each batch is conformed to the flow schema first (so a bad batch fails here, before any
        network trip, and every batch of the stream has one schema). A batch the server rejects
        raises SchemaError naming it; the batches before it in the stream were accepted. A server or
        network failure raises a retryable TransportError.
        """
        rows = 0
        writer = None
        try:
            for batch in batches:
                valid = schema.validate(batch)
                if writer is None:
                    writer, _ = self._client.do_put(_DESCRIPTOR, schema.SCHEMA, options=self._options)
                writer.write_batch(valid)
                rows += batch.num_rows
            if writer is not None:
                writer.close()
                writer = None
        except pa.ArrowInvalid as exc:
            if _REJECTED in str(exc):
                raise SchemaError([_server_message(exc)]) from exc
            raise TransportError(f"processor at {self.url} failed: {exc}", retry_after=1.0) from exc
        except flight.FlightError as exc:  # unavailable, timed out, internal: worth trying again
            raise TransportError(f"processor at {self.url}: {type(exc).__name__}: {exc}",
                                 retry_after=1.0) from exc
        finally:
            if writer is not None:
                with contextlib.suppress(pa.ArrowException, flight.FlightError):
                    writer.close()
        return rows

    def close(self) -> None:
        self._client.close()


def _server_message(exc: Exception) -> str:
    # gRPC wraps our message in transport detail; keep the part the server wrote.
    text = str(exc)
    text = text[text.index(_REJECTED) + len(_REJECTED):]
    return text.split(". Detail:")[0].strip()


class FlowFlightServer(flight.FlightServerBase):  # type: ignore[misc]
    """Flight server accepting `do_put` of flow batches from any number of concurrent clients."""

    def __init__(self, url: str, ingest: Ingest) -> None:
        super().__init__(location(url))
        self._ingest = ingest

    def do_put(self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor,
               reader: flight.MetadataRecordBatchReader, writer: flight.FlightMetadataWriter) -> None:
        peer = context.peer()
        chunks = iter(reader)
        accepted = 0
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except (pa.ArrowInvalid, OSError) as exc:
                selfmetrics.INGEST_REJECTED.labels(transport="grpc", reason="decode").inc()
                log.warning("could not decode a stream from %s: %s", peer, exc)
                raise pa.ArrowInvalid(f"{_REJECTED}cannot decode the stream ({exc})") from exc
            batch = chunk.data
            if batch is None or batch.num_rows == 0:
                selfmetrics.INGEST_REJECTED.labels(transport="grpc", reason="empty").inc()
                continue  # an empty batch carries nothing: count it, skip it, keep the stream
            try:
                self._ingest(batch, "grpc")
            except SchemaError as exc:
                selfmetrics.INGEST_REJECTED.labels(transport="grpc", reason="schema").inc()
                log.warning("rejected batch %d of a stream from %s: %s", accepted + 1, peer, exc)
                raise pa.ArrowInvalid(f"{exc} (batch {accepted + 1} of this stream; the {accepted} "
                                      "before it were accepted)") from exc
            except Exception as exc:  # a processor fault, not the client's: tell it to retry
                log.exception("processor failed on a batch from %s", peer)
                raise flight.FlightInternalError(f"processor failed on batch {accepted + 1}: {exc}; "
                                                 "retry later") from exc
            accepted += 1

    def list_flights(self, context: flight.ServerCallContext, criteria: bytes) -> Iterable[flight.FlightInfo]:
        yield flight.FlightInfo(schema.SCHEMA, _DESCRIPTOR, [], -1, -1)
