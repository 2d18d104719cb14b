"""The Arrow Flight query service of `flowlake api` (`--flight-port`, default 8815): lake queries as Arrow streams.

`api.cli` starts `QueryFlightServer` beside uvicorn; the Python client (`flowlake.engine.client`) and
any Flight client talk to it. A ticket is JSON (`api.flight_ticket`): `flows`, `metrics`, `topology`
or `sql` (Polars SQL over a `flows` table, `api.flight_sql`); `api.flight_plan` turns it into a stream.
Callers authenticate with the HTTP API's bearer tokens (`authorization: Bearer ...` header) and a
tenant only ever sees its namespaces' flows: the scope is applied to the lake scan before the query is
built on top of it.

Results stream: flows and SQL run on Polars' streaming engine and leave the server batch by batch as
the client reads (gRPC flow control holds the producer back), so a 10M-row answer never sits in memory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.flight as flight

from flowlake.api import flight_plan, flight_sql, flight_ticket
from flowlake.api.flight_ticket import Ticket, TicketError
from flowlake.engine import schema, selfmetrics
from flowlake.engine.query import tenancy

if TYPE_CHECKING:
    from flowlake.api.auth import Authenticator, Principal

log = logging.getLogger(__name__)
DEFAULT_PORT = 8815
TABLE_DESCRIPTOR = flight.FlightDescriptor.for_path("flows")


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
    # A key the ticket format does not know is labelled as such: label values never come from callers.
    known = exc.parameter in flight_ticket.ALL_KEYS or exc.parameter in (None, "", "kind", "sql", "ticket")
    selfmetrics.FLIGHT_BAD_REQUESTS.labels(kind=kind, parameter=(exc.parameter or "") if known else "unknown_key").inc()
    selfmetrics.FLIGHT_REQUESTS.labels(kind=kind, status="bad_request").inc()
    body = {"error": str(exc), "parameter": exc.parameter, "position": exc.position}
    return flight.FlightServerError(f"bad request: {exc}", extra_info=json.dumps(body).encode())


class QueryFlightServer(flight.FlightServerBase):  # type: ignore[misc]
    """Answers Flight tickets over the lake at `lake_url`; `authenticator=None` means auth is off."""

    def __init__(self, location: str, lake_url: str, authenticator: Authenticator | None = None,
                 batch_rows: int = flight_plan.BATCH_ROWS) -> None:
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
            result_schema, _ = flight_plan.plan(self.lake_url, ticket, self._caller(context).scope, self.batch_rows)
        except TicketError as exc:
            raise bad_request(exc, ticket.kind) from exc
        except Exception as exc:  # never a traceback to the client
            raise self._internal(ticket, exc) from exc
        return flight.FlightInfo(result_schema, descriptor, [self._endpoint(ticket)], -1, -1)

    def do_get(self, context: flight.ServerCallContext, ticket: flight.Ticket) -> flight.FlightDataStream:
        parsed = self._parse(ticket.ticket)
        caller = self._caller(context)
        t0 = time.perf_counter()
        try:
            result_schema, batches = flight_plan.plan(self.lake_url, parsed, caller.scope, self.batch_rows)
        except TicketError as exc:
            raise bad_request(exc, parsed.kind) from exc
        except Exception as exc:
            raise self._internal(parsed, exc) from exc
        who = caller.principal.name if caller.principal else "-"
        return flight.GeneratorStream(result_schema, self._counted(parsed, batches, who, t0))

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _internal(ticket: Ticket, exc: Exception) -> flight.FlightInternalError:
        """A failure that is not the caller's: logged with its traceback here, named only by type there."""
        log.error("Flight %s query failed", ticket.kind, exc_info=exc)
        selfmetrics.FLIGHT_REQUESTS.labels(kind=ticket.kind, status="error").inc()
        return flight.FlightInternalError(f"internal error ({type(exc).__name__}); see the flowlake api log")

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
