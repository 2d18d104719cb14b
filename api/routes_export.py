"""`GET /api/export`: a filtered flow query streamed as CSV, NDJSON, Parquet or Arrow IPC.

Mounted by `api.app`. Batches come from `engine.query.export.iter_export` (bounded memory: one
record batch at a time) and are encoded and sent as they come, with chunked transfer encoding, so an
export of any size never sits in memory. Parameters are those of `/api/flows` plus `format`,
`columns` and an optional `limit`. Rows are in lake order (oldest hour first); `Flags` stays a
bitfield. In CSV, list columns are joined with `,` inside one field and map lists are JSON.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Annotated, Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from flowlake.api import errors, params
from flowlake.engine import selfmetrics
from flowlake.engine.query import export, flows
from flowlake.engine.query.flows import QueryError

router = APIRouter(tags=["export"])
ROUTE = "/api/export"
Format = Literal["csv", "ndjson", "parquet", "arrow"]
MEDIA: dict[str, tuple[str, str]] = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "ndjson": ("application/x-ndjson", "ndjson"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
    "arrow": ("application/vnd.apache.arrow.stream", "arrows"),
}


class _Chunks(io.RawIOBase):
    """A write-only sink that hands out what was written since the last `take`, keeping `tell` honest
    (the Parquet writer records file offsets in its footer)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        data = bytes(b)
        self._parts.append(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


def _csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV has no lists: list columns become one text field, lists of maps a JSON array."""
    fixes = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.List):
            inner = dtype.inner
            if isinstance(inner, pl.Struct | pl.List):
                enc = pl.col(name).list.eval(pl.element().struct.json_encode() if isinstance(inner, pl.Struct)
                                             else pl.element().cast(pl.String))
                fixes.append((pl.lit("[") + enc.list.join(",") + pl.lit("]")).alias(name))
            else:
                fixes.append(pl.col(name).list.eval(pl.element().cast(pl.String)).list.join(",").alias(name))
    return frame.with_columns(fixes) if fixes else frame


def encode(batches: Iterator[pa.RecordBatch], fmt: str, schema: pa.Schema) -> Iterator[bytes]:
    """The byte chunks of `batches` in `fmt` (one chunk per batch, plus header/footer chunks)."""
    if fmt in ("csv", "ndjson"):
        header = True
        for b in batches:
            frame = pl.from_arrow(b)
            assert isinstance(frame, pl.DataFrame)
            if fmt == "csv":
                yield _csv_ready(frame).write_csv(include_header=header).encode()
                header = False
            else:
                yield frame.write_ndjson().encode()
        if fmt == "csv" and header:  # no row at all: still a header line
            yield ",".join(schema.names).encode() + b"\n"
        return
    sink = _Chunks()
    out = pa.PythonFile(sink, mode="w")
    writer: pq.ParquetWriter | pa.ipc.RecordBatchStreamWriter
    writer = (pq.ParquetWriter(out, schema, compression="zstd") if fmt == "parquet"
              else pa.ipc.new_stream(out, schema))
    try:
        for b in batches:
            writer.write_batch(b)
            chunk = sink.take()
            if chunk:
                yield chunk
    finally:
        writer.close()
    yield sink.take()


@router.get(ROUTE, summary="Stream a flow query as CSV, NDJSON, Parquet or Arrow IPC",
            response_class=StreamingResponse,
            responses={200: {"content": {m: {} for m, _ in MEDIA.values()},
                             "description": "the flows, streamed (chunked)"},
                       400: {"model": errors.ErrorBody}, 401: {"model": errors.ErrorBody}})
def get_export(
    request: Request,
    who: params.Caller,
    rows: params.Selected,
    format: Annotated[Format, Query(description="csv (default), ndjson, parquet or arrow (IPC stream)")] = "csv",
    columns: Annotated[str, Query(max_length=10_000, description="comma-separated flow fields, in output "
                                  "order (default: every field)")] = "",
    limit: Annotated[int | None, Query(ge=1, description="at most this many rows (default: all)")] = None,
) -> StreamingResponse:
    wanted = [c.strip() for c in columns.split(",") if c.strip()]
    stats = export.ExportStats()
    try:
        q = flows.FlowQuery(start_ms=rows.start_ms, end_ms=rows.end_ms, filters=rows.filters,
                            packet_loss=rows.packet_loss, record_type=rows.record_type)
        batches = export.iter_export(request.app.state.lake_url, q, wanted, who.scope, limit=limit, stats=stats)
    except QueryError as exc:
        raise params.bad_query(exc) from exc
    schema = export.export_schema(export.check_columns(wanted))

    def body() -> Iterator[bytes]:
        try:
            yield from encode(batches, format, schema)
        finally:
            if who.scope is None:  # as params.stats_json: a tenant's scans would reveal others' row counts
                selfmetrics.API_ROWS_SCANNED.labels(route=ROUTE).inc(stats.rows_scanned)
            selfmetrics.API_ROWS_RETURNED.labels(route=ROUTE).inc(stats.rows_exported)

    media, ext = MEDIA[format]
    return StreamingResponse(body(), media_type=media,
                             headers={"Content-Disposition": f"attachment; filename=flows.{ext}"})
