"""The Arrow Flight query service of `flowlake api` (`--flight-port`, default 8815): lake queries as Arrow streams.

`api.cli` starts `QueryFlightServer` beside uvicorn; the Python client (`flowlake.engine.client`) and
any Flight client talk to it. A ticket is JSON (`api.flight_ticket`): `flows`, `metrics`, `topology`
or `sql` (Polars SQL over a `flows` table, `api.flight_sql`). Callers authenticate with the HTTP
API's bearer tokens (`authorization: Bearer ...` header) and a tenant only ever sees its namespaces'
flows: the scope is applied to the lake scan before the query is built on top of it.

Results stream: flows and SQL run on Polars' streaming engine and leave the server batch by batch as
the client reads (gRPC flow control holds the producer back), so a 10M-row answer never sits in memory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.flight as flight

from flowlake.api import flight_sql, flight_ticket
from flowlake.api.flight_ticket import Ticket, TicketError
from flowlake.engine import schema, selfmetrics
from flowlake.engine.query import flows, tenancy, timeseries, topology
from flowlake.engine.store import lake, layout

if TYPE_CHECKING:
    from flowlake.api.auth import Authenticator, Principal

log = logging.getLogger(__name__)
DEFAULT_PORT = 8815
BATCH_ROWS = 65_536
TABLE_DESCRIPTOR = flight.FlightDescriptor.for_path("flows")
_COMPAT = pl.CompatLevel.oldest()  # plain string/large_string columns: readable by any Arrow client


class _Caller(flight.ServerMiddleware):  # type: ignore[misc]
    """Who made the call: a principal, or None when auth is off (everyone is admin)."""

    def __init__(self, principal: Principal | None) -> None:
        self.principal = principal

    @property
    def scope(self) -> tenancy.Scope:
        return None if self.principal is None else self.principal.scope


class _Auth(flight.ServerMiddlewareFactory):  # type: ignore[misc]
    """Checks `authorization: Bearer <token>` on every call with the HTTP API's authenticator."""

    def __init__(self, authenticator: Authenticator | None) -> None:
        self.authenticator = authenticator

    def start_call(self, info: flight.CallInfo, headers: dict[str, list[str]]) -> _Caller:
        if self.authenticator is None:
            return _Caller(None)
        from flowlake.api.auth import AuthError

        values = headers.get("authorization") or []
        raw = values[0] if values else None
        token = raw[7:].strip() if raw and raw[:7].lower() == "bearer " else None
        try:
            return _Caller(self.authenticator.authenticate(token))
        except AuthError as exc:
            selfmetrics.FLIGHT_REQUESTS.labels(kind=_method(info), status="unauthenticated").inc()
            raise flight.FlightUnauthenticatedError(f"{exc} (send the header `authorization: Bearer "
                                                    "<token>`; the client takes connect(url, token=...))") from exc


def _method(info: flight.CallInfo) -> str:
    return str(info.method.name).lower()  # do_get, list_flights, ...: the call refused


def bad_request(exc: TicketError, kind: str) -> flight.FlightServerError:
    """The Flight error for bad input: the message names the key and fix, `extra_info` holds the JSON body."""
    selfmetrics.FLIGHT_BAD_REQUESTS.labels(kind=kind, parameter=exc.parameter or "").inc()
    selfmetrics.FLIGHT_REQUESTS.labels(kind=kind, status="bad_request").inc()
    body = {"error": str(exc), "parameter": exc.parameter, "position": exc.position}
    return flight.FlightServerError(f"bad request: {exc}", extra_info=json.dumps(body).encode())


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


class QueryFlightServer(flight.FlightServerBase):  # type: ignore[misc]
    """Answers Flight tickets over the lake at `lake_url`; `authenticator=None` means auth is off."""

    def __init__(self, location: str, lake_url: str, authenticator: Authenticator | None = None,
                 batch_rows: int = BATCH_ROWS) -> None:
        super().__init__(location, middleware={"auth": _Auth(authenticator)})
        self.lake_url = lake_url
        self.batch_rows = batch_rows

    # -- Flight methods ---------------------------------------------------------------------------

    def list_flights(self, context: flight.ServerCallContext, criteria: bytes) -> Iterator[flight.FlightInfo]:
        """One flight: the `flows` table (every flow field; `sql` tickets query it by this name)."""
        yield flight.FlightInfo(schema.SCHEMA, TABLE_DESCRIPTOR, [self._endpoint(
            Ticket("sql", None, None, {"sql": "SELECT * FROM flows"}))], -1, -1)

    def get_flight_info(self, context: flight.ServerCallContext,
                        descriptor: flight.FlightDescriptor) -> flight.FlightInfo:
        """The result schema and ticket(s) of a query given as a command (ticket JSON) or the path `flows`."""
        if descriptor.descriptor_type == flight.DescriptorType.PATH:
            if [p.decode() if isinstance(p, bytes) else p for p in descriptor.path] != ["flows"]:
                raise flight.FlightServerError(f"unknown flight {descriptor.path!r}; the one table is `flows` "
                                               "(list_flights), or send a ticket JSON as a command")
            return next(self.list_flights(context, b""))
        ticket = self._parse(descriptor.command)
        try:  # flows and sql only resolve their plan here; metrics and topology run (they are small)
            result_schema, _ = self._plan(ticket, self._caller(context).scope)
        except TicketError as exc:
            raise bad_request(exc, ticket.kind) from exc
        return flight.FlightInfo(result_schema, descriptor, [self._endpoint(ticket)], -1, -1)

    def do_get(self, context: flight.ServerCallContext, ticket: flight.Ticket) -> flight.FlightDataStream:
        parsed = self._parse(ticket.ticket)
        caller = self._caller(context)
        t0 = time.perf_counter()
        try:
            result_schema, batches = self._plan(parsed, caller.scope)
        except TicketError as exc:
            raise bad_request(exc, parsed.kind) from exc
        except Exception as exc:
            log.exception("Flight %s query failed", parsed.kind)
            selfmetrics.FLIGHT_REQUESTS.labels(kind=parsed.kind, status="error").inc()
            raise flight.FlightInternalError(f"internal error ({type(exc).__name__}); see the flowlake api "
                                             "log") from exc
        who = caller.principal.name if caller.principal else "-"
        return flight.GeneratorStream(result_schema, self._counted(parsed, batches, who, t0))

    # -- helpers ----------------------------------------------------------------------------------

    def _endpoint(self, ticket: Ticket) -> flight.FlightEndpoint:
        return flight.FlightEndpoint(ticket.to_json(), [])  # no locations: fetch from this server

    def _parse(self, raw: bytes) -> Ticket:
        try:
            return flight_ticket.parse(raw)
        except TicketError as exc:
            raise bad_request(exc, "ticket") from exc

    def _caller(self, context: flight.ServerCallContext) -> _Caller:
        caller = context.get_middleware("auth")
        assert isinstance(caller, _Caller)
        return caller

    def _counted(self, t: Ticket, batches: Iterator[pa.RecordBatch], who: str,
                 t0: float) -> Iterator[pa.RecordBatch]:
        rows = 0
        try:
            for batch in batches:
                rows += batch.num_rows
                selfmetrics.FLIGHT_ROWS.labels(kind=t.kind).inc(batch.num_rows)
                yield batch
        except pl.exceptions.PolarsError as exc:  # found while running (e.g. comparing text with a number)
            err = flight_sql.sql_error(t.get("sql", ""), exc) if t.kind == "sql" else TicketError(str(exc), None)
            raise bad_request(err, t.kind) from exc
        selfmetrics.FLIGHT_REQUESTS.labels(kind=t.kind, status="ok").inc()
        log.info("Flight %s for %s: %d rows in %.3f s", t.kind, who, rows, time.perf_counter() - t0)

    def _plan(self, t: Ticket, scope: tenancy.Scope) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The result schema and its batches (lazily produced) for one ticket."""
        try:
            if t.kind == "flows":
                return self._stream(*self._flows(t, scope))
            if t.kind == "sql":
                table = tenancy.restrict(lake.scan(self.lake_url, t.start_ms, t.end_ms), scope)
                return self._stream(flight_sql.execute(table, t.get("sql")))
            result = self._metrics(t, scope) if t.kind == "metrics" else self._topology(t, scope)
        except flows.QueryError as exc:
            raise TicketError(str(exc), _PARAMETER.get(exc.parameter, exc.parameter), exc.position) from exc
        # metrics and topology are small aggregates, computed whole; they stream in slices all the same
        out = arrow_schema(result.schema)
        return out, iter(result.to_arrow(compat_level=_COMPAT).cast(out).to_batches(self.batch_rows))

    def _stream(self, *frames: pl.LazyFrame) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """Stream the frames one after the other (same schema), each on Polars' streaming engine."""
        result_schema = arrow_schema(frames[0].collect_schema())

        def batches() -> Iterator[pa.RecordBatch]:
            # nothing runs until the client reads, and a frame only starts once the one before is done
            for frame in frames:
                for chunk in frame.collect_batches(chunk_size=self.batch_rows, lazy=True):
                    if chunk.height:
                        yield from chunk.to_arrow(compat_level=_COMPAT).cast(result_schema).to_batches()

        return result_schema, batches()

    def _flows(self, t: Ticket, scope: tenancy.Scope) -> list[pl.LazyFrame]:
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

        def plan(frame: pl.LazyFrame) -> pl.LazyFrame:
            frame = tenancy.restrict(frame, scope).filter(q.predicate())
            if ordered:
                frame = frame.sort(q.sort_by, descending=q.descending, nulls_last=True)
            if limit is not None:
                frame = frame.head(int(limit))
            return frame.select(columns) if columns else frame

        if ordered:
            return [plan(lake.scan(self.lake_url, t.start_ms, t.end_ms))]
        scan = lake.open_scan(self.lake_url, t.start_ms, t.end_ms)
        if not scan.files:
            return [plan(scan.frame)]
        return [plan(_in_range(lake.read_files(scan.fs, [f]), t)) for f in scan.files]

    def _range(self, t: Ticket) -> tuple[int | None, int | None]:
        """The ticket's range, open ends closed at the lake's first/last hour (metrics need a real range)."""
        if t.start_ms is not None and t.end_ms is not None:
            return t.start_ms, t.end_ms
        span = lake_span(self.lake_url) or (t.start_ms or 0, t.end_ms or int(time.time() * 1000))
        start = t.start_ms if t.start_ms is not None else span[0]
        end = t.end_ms if t.end_ms is not None else max(span[1], start + 1)
        return start, end

    def _metrics(self, t: Ticket, scope: tenancy.Scope) -> pl.DataFrame:
        start, end = self._range(t)
        q = timeseries.MetricQuery(
            start_ms=start, end_ms=end, filters=t.get("filters", ""),
            aggregate_by=t.get("aggregate_by", "namespace"), type=t.get("type", "Bytes"),
            function=t.get("function", "rate"), step_s=None if t.get("step") is None else int(t.get("step")),
            top=int(t.get("top", 50)), packet_loss=t.get("packet_loss", "all"),
            record_type=t.get("record_type", "flowLog"))
        frame, _ = timeseries.run_metrics(self.lake_url, q, scope)
        return frame

    def _topology(self, t: Ticket, scope: tenancy.Scope) -> pl.DataFrame:
        start, end = self._range(t)
        q = topology.TopologyQuery(
            start_ms=start, end_ms=end, filters=t.get("filters", ""), scope_level=t.get("scope", "namespace"),
            groups=t.get("groups", "none"), type=t.get("type", "Bytes"), function=t.get("function", "sum"),
            top=int(t.get("top", 50)), packet_loss=t.get("packet_loss", "all"),
            record_type=t.get("record_type", "flowLog"))
        nodes, edges, _ = topology.run_topology(self.lake_url, q, scope)
        return nodes if t.get("part", "edges") == "nodes" else edges


def _in_range(frame: pl.LazyFrame, t: Ticket) -> pl.LazyFrame:
    """The ticket's [start, end) on TimeFlowEndMs, as `lake.open_scan` applies it to its combined scan."""
    if t.start_ms is not None:
        frame = frame.filter(pl.col("TimeFlowEndMs") >= t.start_ms)
    if t.end_ms is not None:
        frame = frame.filter(pl.col("TimeFlowEndMs") < t.end_ms)
    return frame


# Engine query field names -> ticket keys, so errors name what the client sent.
_PARAMETER: dict[str, Any] = {"start_ms": "start_time", "end_ms": "end_time", "step_s": "step",
                              "scope_level": "scope"}


def start(host: str, port: int, lake_url: str, authenticator: Authenticator | None = None) -> QueryFlightServer:
    """Start serving on grpc://host:port (gRPC threads; returns at once). Raises FlowlakeError naming the
    port when it cannot bind."""
    from flowlake.engine.errors import ConfigError

    try:
        server = QueryFlightServer(f"grpc://{host}:{port}", lake_url, authenticator)
    except (pa.ArrowException, OSError) as exc:
        raise ConfigError(f"the Flight query service cannot listen on {host}:{port} ({exc}); the port is "
                          "probably taken: pass another --flight-port, or --flight-port 0 to disable it") from exc
    log.info("Flight query service on grpc://%s:%d (tickets: docs/flight.md)", host, server.port)
    return server
