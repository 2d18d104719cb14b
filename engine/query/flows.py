"""Flow-table queries over the Parquet lake: a time range, console filters, a limit, newest first.

Called by the API (`GET /api/flows`), and meant for the Arrow Flight query service and the Python
client too, so it knows nothing about HTTP: bad input raises `QueryError` naming the parameter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, get_args

import polars as pl

from flowlake.engine import schema
from flowlake.engine.errors import FilterError, FlowlakeError
from flowlake.engine.query import filters, tenancy
from flowlake.engine.query.tenancy import Scope
from flowlake.engine.store import lake, layout

PacketLoss = Literal["all", "dropped", "hasDrops", "sent"]
RecordType = Literal["flowLog", "newConnection", "heartbeat", "endConnection", "allConnections"]
PACKET_LOSS: tuple[str, ...] = get_args(PacketLoss)
RECORD_TYPES: tuple[str, ...] = get_args(RecordType)
MAX_LIMIT = 100_000
_CONNECTION_TYPES = ("newConnection", "heartbeat", "endConnection")


class QueryError(FlowlakeError, ValueError):
    """A bad query parameter: `parameter` names the FlowQuery field, `position` the offset in `filters`."""

    def __init__(self, message: str, parameter: str, position: int | None = None) -> None:
        self.parameter = parameter
        self.position = position
        super().__init__(message)


@dataclass(frozen=True)
class FlowQuery:
    """One flow-table query; the time range is start_ms <= TimeFlowEndMs < end_ms (None = open)."""

    start_ms: int | None = None
    end_ms: int | None = None
    filters: str = ""
    limit: int = 100
    packet_loss: PacketLoss = "all"
    record_type: RecordType = "flowLog"
    sort_by: str = "TimeFlowEndMs"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.start_ms is not None and self.end_ms is not None and self.end_ms < self.start_ms:
            raise QueryError(f"end ({self.end_ms} ms) is before start ({self.start_ms} ms); "
                             "swap them or widen the range", "end_ms")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}, got {self.limit}", "limit")
        if self.sort_by not in schema.BY_NAME:
            raise QueryError(f"cannot sort by {self.sort_by!r}: not a flow field (see docs/flows-format.md)",
                             "sort_by")
        self.predicate()  # a bad filter string fails here, before any file is opened

    def predicate(self) -> pl.Expr:
        """Filters, packet-loss mode and record type as one expression (pushed into the scan)."""
        return row_predicate(self.filters, self.packet_loss, self.record_type)


def row_predicate(text: str, packet_loss: str, record_type: str) -> pl.Expr:
    """The filter string, packet-loss mode and record type as one expression; `QueryError` if bad.

    Shared by every query kind (flows, metrics, topology, export, health) so they select the same rows.
    """
    if packet_loss not in PACKET_LOSS:
        raise QueryError(f"packet loss mode {packet_loss!r} is not one of {', '.join(PACKET_LOSS)}",
                         "packet_loss")
    if record_type not in RECORD_TYPES:
        raise QueryError(f"record type {record_type!r} is not one of {', '.join(RECORD_TYPES)}",
                         "record_type")
    try:
        expr = filters.compile_filters(text)
    except FilterError as exc:
        raise QueryError(str(exc), "filters", exc.position) from exc
    return expr & _packet_loss(packet_loss) & _record_type(record_type)


def _packet_loss(mode: str) -> pl.Expr:
    """NetObserv's modes; a zero counter counts as absent, since its decoder omits zero counters."""
    drops = pl.col("PktDropPackets").fill_null(0)
    if mode == "dropped":  # every packet of the flow was dropped
        return (pl.col("Packets").fill_null(0) == 0) & (drops >= 1)
    if mode == "hasDrops":
        return drops >= 1
    if mode == "sent":
        return drops == 0
    return pl.lit(True)


def _record_type(kind: str) -> pl.Expr:
    rt = pl.col("_RecordType")
    if kind == "flowLog":  # lakes written without conversation tracking leave the column null
        return rt.is_null() | (rt == "flowLog")
    if kind == "allConnections":
        return rt.is_in(_CONNECTION_TYPES).fill_null(False)
    return (rt == kind).fill_null(False)


@dataclass(frozen=True)
class QueryStats:
    files_scanned: int
    rows_scanned: int  # rows in the files opened (read from Parquet footers; an upper bound)
    num_rows: int
    limit_reached: bool  # more rows matched than `limit`; the newest `limit` were returned
    query_time_ms: float


def run_flows(lake_url: str, q: FlowQuery, scope: Scope = None) -> tuple[pl.DataFrame, QueryStats]:
    """The first `q.limit` matching flows in sort order that `scope` may see, and what it cost.

    Lazy end to end: hour partitions outside the range are never opened, the predicate is pushed into
    the Parquet scan, and only limit+1 rows are materialized (the extra row tells whether the limit
    was reached without counting every match). Polars decodes every projected column of a row group
    before filtering it, so whole rows are only read where the answer can be (`_two_pass_top`):
    - sorted by time (the default), the newest hour partition (oldest, ascending) is queried first: the
      lake is partitioned by TimeFlowEndMs, so when it holds limit+1 matches no other hour can hold a
      newer one, and a console query over a day reads one hour;
    - otherwise (another sort field, or too few matches in that hour) the other files, the same way.
    """
    t0 = time.perf_counter()
    scan = lake.open_scan(lake_url, q.start_ms, q.end_ms)
    want = q.limit + 1
    parts: list[pl.DataFrame] = []
    opened: list[str] = []
    rest = scan.files
    if q.sort_by == "TimeFlowEndMs" and scan.files:
        first_hour = layout.hour_of_path(scan.files[-1 if q.descending else 0])
        first = [f for f in scan.files if layout.hour_of_path(f) == first_hour]
        rest = [f for f in scan.files if layout.hour_of_path(f) != first_hour]
        parts.append(_two_pass_top(scan, first, q, scope, want))
        opened += first
    if rest and sum(p.height for p in parts) < want:
        parts.append(_two_pass_top(scan, rest, q, scope, want - sum(p.height for p in parts)))
        opened += rest  # all read for the sort column, some for whole rows
    if parts:
        # with a time sort the first hour's rows all come before the others' (partitioned by time)
        frame = pl.concat(parts, how="vertical") if q.sort_by == "TimeFlowEndMs" else parts[0]
    else:  # no file in range: the empty frame, in the flow schema
        frame = _top(_matching(scan.frame, q, scope), q, want).collect()
    read = lake.Scan(scan.frame, opened, scan.fs)  # footers of the files actually opened
    stats = QueryStats(files_scanned=len(opened), rows_scanned=read.rows_in_files(),
                       num_rows=min(frame.height, q.limit), limit_reached=frame.height > q.limit,
                       query_time_ms=round((time.perf_counter() - t0) * 1000, 3))
    return frame.head(q.limit), stats


def _matching(frame: pl.LazyFrame, q: FlowQuery, scope: Scope) -> pl.LazyFrame:
    return tenancy.restrict(frame, scope).filter(q.predicate())


def _top(frame: pl.LazyFrame, q: FlowQuery, n: int) -> pl.LazyFrame:
    return frame.sort(q.sort_by, descending=q.descending, nulls_last=True).head(n)


def _in_range(frame: pl.LazyFrame, q: FlowQuery) -> pl.LazyFrame:
    t = pl.col("TimeFlowEndMs")
    if q.start_ms is not None:
        frame = frame.filter(t >= q.start_ms)
    if q.end_ms is not None:
        frame = frame.filter(t < q.end_ms)
    return frame


def _two_pass_top(scan: lake.Scan, files: list[str], q: FlowQuery, scope: Scope, n: int) -> pl.DataFrame:
    """The top `n` matching rows of `files` by `q.sort_by`.

    Polars decodes every projected column of a row group before filtering it, so whole rows are only
    read where they can be: first the sort column alone gives the n-th value (the edge) and whether
    null keys matched; then rows at or beyond the edge are read, from the hours that can hold them when
    the key is the time (older hours cannot), with row-group statistics skipping the rest.
    """
    col = pl.col(q.sort_by)
    matching = _matching(_in_range(lake.read_files(scan.fs, files), q), q, scope)
    keys = (matching.select(col).filter(col.is_not_null())
            .select(col.top_k(n) if q.descending else col.bottom_k(n)).collect()[q.sort_by])
    nulls = int(matching.select(col.is_null().sum()).collect().item()) if keys.len() < n else 0
    if keys.len() == 0 and nulls == 0:
        return _top(matching, q, 0).collect()  # nothing matched: no whole row to read
    if keys.len() < n and nulls:  # nulls sort last and are part of the answer
        return _top(matching, q, n).collect()
    edge = keys.min() if q.descending else keys.max()
    beyond = (col >= edge) if q.descending else (col <= edge)
    if q.sort_by == "TimeFlowEndMs":
        edge_hour = int(edge) // layout.HOUR_MS * layout.HOUR_MS  # type: ignore[arg-type]
        files = [f for f in files if (layout.hour_of_path(f) or 0) >= edge_hour] if q.descending else \
            [f for f in files if (layout.hour_of_path(f) or 0) <= edge_hour]
        matching = _matching(_in_range(lake.read_files(scan.fs, files), q), q, scope)
    return _top(matching.filter(beyond), q, n).collect()
