"""Planning a Flight ticket into an Arrow schema and a lazy batch iterator; called by `api.flight_service`.

`flows` and `sql` become lazy Polars plans over the lake, with the caller's tenant scope applied to the
scan before anything else (`engine.query.tenancy`), executed on Polars' streaming engine only as the
client reads; `flows` without a sort runs one lake file at a time, so memory is bounded by the largest
file. `metrics` and `topology` call the engine's `run_metrics` / `run_topology` (small aggregates); a topology
is computed once for its nodes and edges (see `RecentTopologies`). Bad input raises `TicketError` naming
the ticket key.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

import polars as pl
import pyarrow as pa

from flowlake.api import flight_sql
from flowlake.api.flight_ticket import Ticket, TicketError
from flowlake.engine import schema
from flowlake.engine.query import flows, tenancy, timeseries, topology
from flowlake.engine.store import lake, layout

BATCH_ROWS = 65_536
_COMPAT = pl.CompatLevel.oldest()  # plain string/list columns (narrowed below): readable by any Arrow client


def plan(lake_url: str, t: Ticket, scope: tenancy.Scope,
         batch_rows: int = BATCH_ROWS) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The result schema and its batches (lazily produced) for one ticket."""
    RECENT_TOPOLOGIES.expire()
    try:
        if t.kind == "flows":
            return _stream(batch_rows, *_flows(lake_url, t, scope))
        if t.kind == "sql":
            table = tenancy.restrict(lake.scan(lake_url, t.start_ms, t.end_ms), scope)
            return _stream(batch_rows, flight_sql.execute(table, t.get("sql")))
        result = _metrics(lake_url, t, scope) if t.kind == "metrics" else _topology(lake_url, t, scope)
    except flows.QueryError as exc:
        raise TicketError(str(exc), _PARAMETER.get(exc.parameter, exc.parameter), exc.position) from exc
    # metrics and topology are small aggregates, computed whole; they stream in slices all the same
    out = arrow_schema(result.schema)
    return out, iter(result.to_arrow(compat_level=_COMPAT).cast(out).to_batches(batch_rows))


def _stream(batch_rows: int, *frames: pl.LazyFrame) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Stream the frames one after the other (same schema), each on Polars' streaming engine."""
    result_schema = arrow_schema(frames[0].collect_schema())

    def batches() -> Iterator[pa.RecordBatch]:
        # nothing runs until the client reads, and a frame only starts once the one before is done
        for frame in frames:
            for chunk in frame.collect_batches(chunk_size=batch_rows, lazy=True):
                if chunk.height:
                    yield from chunk.to_arrow(compat_level=_COMPAT).cast(result_schema).to_batches()

    return result_schema, batches()


def _flows(lake_url: str, t: Ticket, scope: tenancy.Scope) -> list[pl.LazyFrame]:
    """Matching flows: sorted (newest first by default) when a limit or sort is asked, as one frame;
    else in lake order (by time), one frame per file, so memory is bounded by the largest file."""
    limit = t.get("limit")
    ordered = limit is not None or "sort_by" in t.params or "sort_order" in t.params
    # FlowQuery checks the filters, modes and sort field; the limit is Flight's own (any size)
    q = flows.FlowQuery(start_ms=t.start_ms, end_ms=t.end_ms, filters=t.get("filters", ""), limit=1,
                        packet_loss=t.get("packet_loss", "all"), record_type=t.get("record_type", "flowLog"),
                        sort_by=t.get("sort_by", "TimeFlowEndMs"),
                        descending=t.get("sort_order", "desc") == "desc")
    columns = t.get("columns")
    unknown = [c for c in columns or [] if c not in schema.BY_NAME]
    if unknown:
        raise TicketError(f"unknown column {unknown[0]!r}: not a flow field (see docs/flows-format.md)",
                          "columns")

    def shape(frame: pl.LazyFrame) -> pl.LazyFrame:
        frame = tenancy.restrict(frame, scope).filter(q.predicate())
        if ordered:
            frame = frame.sort(q.sort_by, descending=q.descending, nulls_last=True)
        if limit is not None:
            frame = frame.head(int(limit))
        return frame.select(columns) if columns else frame

    if ordered:
        return [shape(lake.scan(lake_url, t.start_ms, t.end_ms))]
    scan = lake.open_scan(lake_url, t.start_ms, t.end_ms)
    if not scan.files:
        return [shape(scan.frame)]
    return [shape(_in_range(lake.read_files(scan.fs, [f]), t)) for f in scan.files]


def _range(lake_url: str, t: Ticket) -> tuple[int | None, int | None]:
    """The ticket's range, open ends closed at the lake's first/last hour (metrics need a real range)."""
    if t.start_ms is not None and t.end_ms is not None:
        return t.start_ms, t.end_ms
    span = lake_span(lake_url) or (t.start_ms or 0, t.end_ms or int(time.time() * 1000))
    start = t.start_ms if t.start_ms is not None else span[0]
    end = t.end_ms if t.end_ms is not None else max(span[1], start + 1)
    return start, end


def _metrics(lake_url: str, t: Ticket, scope: tenancy.Scope) -> pl.DataFrame:
    start, end = _range(lake_url, t)
    q = timeseries.MetricQuery(
        start_ms=start, end_ms=end, filters=t.get("filters", ""),
        aggregate_by=t.get("aggregate_by", "namespace"), type=t.get("type", "Bytes"),
        function=t.get("function", "rate"), step_s=None if t.get("step") is None else int(t.get("step")),
        top=int(t.get("top", 50)), packet_loss=t.get("packet_loss", "all"),
        record_type=t.get("record_type", "flowLog"))
    frame, _ = timeseries.run_metrics(lake_url, q, scope)
    return frame


class RecentTopologies:
    """Topologies computed in the last `ttl` seconds, by lake, query (defaults resolved) and tenant scope.

    A client reads a graph as two tickets, `part: nodes` then `part: edges` (Flight streams have one schema
    each), and `get_flight_info` before `do_get` runs a ticket once more: without this, one graph cost up to
    four lake scans, and nodes and edges could come from different moments of a lake being written. The
    key holds the resolved time range, so the client sends both parts with the same absolute range.
    """

    def __init__(self, ttl: float = 10.0, max_bytes: int = 64 << 20,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.max_bytes, self.clock = ttl, max_bytes, clock
        self._entries: OrderedDict[str, tuple[float, int, pl.DataFrame, pl.DataFrame]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.computed = 0  # how many graphs were computed (tests)

    def get(self, lake_url: str, q: topology.TopologyQuery, scope: tenancy.Scope,
            compute: Callable[[], tuple[pl.DataFrame, pl.DataFrame]]) -> tuple[pl.DataFrame, pl.DataFrame]:
        key = json.dumps([lake_url, dataclasses.asdict(q), sorted(scope) if scope is not None else None])
        with self._lock:
            self._expire_locked(self.clock())
            hit = self._entries.get(key)
        if hit is not None:
            return hit[2], hit[3]
        nodes, edges = compute()  # outside the lock: other queries go on meanwhile
        size = int(nodes.estimated_size() + edges.estimated_size())
        with self._lock:
            self.computed += 1
            if size <= self.max_bytes:  # a graph too big to keep is only served once
                self._drop(key)
                # stamped when computed: a graph that took longer than `ttl` still serves its other part
                self._entries[key] = (self.clock(), size, nodes, edges)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    self._drop(next(iter(self._entries)))
        return nodes, edges

    def expire(self) -> None:
        """Drop what is older than `ttl` (also called for other tickets, so an idle cache empties)."""
        with self._lock:
            self._expire_locked(self.clock())

    def _expire_locked(self, now: float) -> None:
        # entries are in the order they were stored, which is the order of their stamps
        while self._entries and now - next(iter(self._entries.values()))[0] > self.ttl:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[1]


RECENT_TOPOLOGIES = RecentTopologies()


def _topology(lake_url: str, t: Ticket, scope: tenancy.Scope) -> pl.DataFrame:
    start, end = _range(lake_url, t)
    q = topology.TopologyQuery(
        start_ms=start, end_ms=end, filters=t.get("filters", ""), scope_level=t.get("scope", "namespace"),
        groups=t.get("groups", "none"), type=t.get("type", "Bytes"), function=t.get("function", "sum"),
        top=int(t.get("top", 50)), packet_loss=t.get("packet_loss", "all"),
        record_type=t.get("record_type", "flowLog"))

    def compute() -> tuple[pl.DataFrame, pl.DataFrame]:
        nodes, edges, _ = topology.run_topology(lake_url, q, scope)
        return nodes, edges

    nodes, edges = RECENT_TOPOLOGIES.get(lake_url, q, scope, compute)
    return nodes if t.get("part", "edges") == "nodes" else edges


def arrow_schema(frame_schema: pl.Schema) -> pa.Schema:
    """The Arrow schema of a stream of this frame: Polars' own, with 32-bit offsets (`string`, `list`), so
    flow columns arrive exactly as docs/flows-format.md types them (batches are far below 2 GiB)."""
    wide = pl.DataFrame(schema=frame_schema).to_arrow(compat_level=_COMPAT).schema
    return pa.schema([f.with_type(_narrow(f.type)) for f in wide], metadata=wide.metadata)


def _narrow(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_map(t):
        return pa.map_(_narrow(t.key_type), _narrow(t.item_type))
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_narrow(t.value_type)))
    if pa.types.is_struct(t):
        return pa.struct([t.field(i).with_type(_narrow(t.field(i).type)) for i in range(t.num_fields)])
    return t


def lake_span(lake_url: str) -> tuple[int, int] | None:
    """[first hour, last hour + 1 h) holding data, from partition paths only; None for an empty lake."""
    fs, root = layout.open_root(lake_url)
    hours = [h for p in layout.data_files(fs, root) if (h := layout.hour_of_path(p)) is not None]
    return (min(hours), max(hours) + layout.HOUR_MS) if hours else None


def _in_range(frame: pl.LazyFrame, t: Ticket) -> pl.LazyFrame:
    """The ticket's [start, end) on TimeFlowEndMs, as `lake.open_scan` applies it to its combined scan."""
    if t.start_ms is not None:
        frame = frame.filter(pl.col("TimeFlowEndMs") >= t.start_ms)
    if t.end_ms is not None:
        frame = frame.filter(pl.col("TimeFlowEndMs") < t.end_ms)
    return frame


# Engine query field names -> ticket keys, so errors name what the client sent.
_PARAMETER: dict[str, str] = {"start_ms": "start_time", "end_ms": "end_time", "step_s": "step",
                               "scope_level": "scope"}
