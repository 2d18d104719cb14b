"""Streaming export of a flow query: `iter_export` yields Arrow record batches, never the whole answer.

Called by `GET /api/export` (which encodes the batches as CSV, NDJSON, Parquet or Arrow IPC) and by
the Flight service. Memory stays bounded whatever the size of the answer: a pyarrow dataset scanner
reads the opened hour partitions row group by row group (row groups outside the time range are skipped
by their statistics; Parquet decodes a row group at a time, so about one row group of the needed
columns, lake.row_group_rows, is held), and each batch is filtered columnar with the same Polars
predicate as `/api/flows` (tenant scope first, then filters, packet loss and record type).

Rows come in lake order (hour partitions oldest first, then the order they were written); a sorted
answer would need every row in memory, which is what `/api/flows` (bounded by `limit`) is for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from flowlake.engine import schema
from flowlake.engine.query import tenancy
from flowlake.engine.query.flows import FlowQuery, QueryError
from flowlake.engine.query.tenancy import Scope
from flowlake.engine.store import lake

BATCH_ROWS = 65_536


@dataclass
class ExportStats:
    """Filled in while the iterator runs (the API reads it after the last batch for its metrics)."""

    files_scanned: int = 0
    rows_scanned: int = 0
    rows_exported: int = 0
    columns: list[str] = field(default_factory=list)


def check_columns(columns: Sequence[str] | None) -> list[str]:
    """The export columns in order (all flow fields when None or empty); `QueryError` naming unknown ones."""
    if not columns:
        return list(schema.BY_NAME)
    unknown = [c for c in columns if c not in schema.BY_NAME]
    if unknown:
        raise QueryError(f"unknown column(s) {', '.join(map(repr, unknown))}: use flow field names "
                         "(docs/flows-format.md), comma-separated, e.g. columns=TimeFlowEndMs,SrcAddr,Bytes",
                         "columns")
    if len(set(columns)) != len(columns):
        raise QueryError("a column is listed twice; list each once", "columns")
    return list(columns)


def export_schema(columns: Sequence[str]) -> pa.Schema:
    """The Arrow schema of the exported batches (flow-schema types, in the requested order)."""
    return pa.schema([schema.SCHEMA.field(c) for c in columns])


def iter_export(lake_url: str, q: FlowQuery, columns: Sequence[str] | None = None, scope: Scope = None,
                *, limit: int | None = None, batch_rows: int = BATCH_ROWS,
                stats: ExportStats | None = None) -> Iterator[pa.RecordBatch]:
    """Matching flows as record batches of at most `batch_rows` rows, `limit` rows at most (None: all).

    `q.limit` and `q.sort_by` are not used (an export is unbounded unless `limit` is given, and in
    lake order). Bad columns or limit raise `QueryError` here, before any batch is produced.
    """
    cols = check_columns(columns)
    if limit is not None and limit < 1:
        raise QueryError(f"limit must be >= 1 when given, got {limit}", "limit")
    return _batches(lake_url, q, cols, scope, limit, batch_rows,
                    stats if stats is not None else ExportStats())


def _batches(lake_url: str, q: FlowQuery, cols: list[str], scope: Scope, limit: int | None,
             batch_rows: int, st: ExportStats) -> Iterator[pa.RecordBatch]:
    out_schema = export_schema(cols)
    predicate = q.predicate()
    scope_pred = tenancy.scope_expr(scope) if scope is not None else pl.lit(True)
    needed = sorted({*cols, *predicate.meta.root_names(), *scope_pred.meta.root_names(), "TimeFlowEndMs"})
    st.columns = cols
    scan = lake.open_scan(lake_url, q.start_ms, q.end_ms)
    st.files_scanned = len(scan.files)
    if not scan.files:
        return
    time_filter = pc.scalar(True)
    if q.start_ms is not None:
        time_filter = time_filter & (pc.field("TimeFlowEndMs") >= q.start_ms)
    if q.end_ms is not None:
        time_filter = time_filter & (pc.field("TimeFlowEndMs") < q.end_ms)
    dataset = ds.dataset(scan.files, filesystem=scan.fs, format="parquet", schema=schema.SCHEMA)
    left = limit
    # Little readahead: the scanner's defaults (16 batches, 4 files) would hold many row groups at once.
    for raw in dataset.to_batches(columns=needed, filter=time_filter, batch_size=batch_rows, batch_readahead=1,
                                  fragment_readahead=1):
        st.rows_scanned += raw.num_rows
        if raw.num_rows == 0:
            continue
        frame = pl.from_arrow(raw)
        assert isinstance(frame, pl.DataFrame)
        kept = frame.filter(scope_pred).filter(predicate).select(cols)
        if left is not None:
            kept = kept.head(left)
            left -= kept.height
        if kept.height:
            st.rows_exported += kept.height
            yield from kept.to_arrow().cast(out_schema).to_batches()
        if left == 0:
            return
