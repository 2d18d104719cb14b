"""The Python client: flows, metrics, topology and SQL from `flowlake api`'s Flight service as Polars frames.

Used from notebooks and scripts (`import flowlake.engine as fl; fl.connect(...)`, `fl.open_lake(...)`).
It speaks Arrow Flight only (never imports the API package): each call sends a JSON ticket
(docs/flight.md) and decodes the answer batch by batch as it streams in. `open_lake` skips the server
and reads the Parquet lake directly (a directory, file:// or s3://), pruning hour partitions by time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import polars as pl
import pyarrow as pa

from flowlake.engine.errors import FlowlakeError

if TYPE_CHECKING:
    import pyarrow.flight as flight

DEFAULT_URL = "grpc://127.0.0.1:8815"
TimeArg = datetime | float | int | str | None  # datetime, unix seconds or ISO 8601 ("2026-11-26T10:00:00Z")


class ClientError(FlowlakeError):
    """A query the server refused, or a server the client could not use; the message says what to do."""


class QueryError(ClientError):
    """Bad input (ticket key, filter, SQL): `parameter` names the key, `position` the offset inside it."""

    def __init__(self, message: str, parameter: str | None = None, position: int | None = None) -> None:
        self.parameter = parameter
        self.position = position
        super().__init__(message)


class AuthenticationError(ClientError):
    """The token was missing, unknown or expired."""


class Topology(NamedTuple):
    nodes: pl.DataFrame
    edges: pl.DataFrame


def _seconds(value: TimeArg, name: str) -> float | None:
    """Unix seconds from a datetime (naive = local time, Python's rule), an ISO string (no zone = UTC) or a number."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise QueryError(f"{name}: {value!r} is not ISO 8601; try 2026-11-26T10:00:00Z", name) from None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return float(value)


def _times(start: TimeArg, end: TimeArg, time_range: float | None) -> dict[str, float]:
    out = {"start_time": _seconds(start, "start"), "end_time": _seconds(end, "end"), "time_range": time_range}
    return {k: v for k, v in out.items() if v is not None}


class Client:
    """A connection to a Flight query service; make one with `connect`. Usable as a context manager."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, *, timeout: float = 300.0) -> None:
        import pyarrow.flight as flight  # lazy: `import flowlake.engine` stays cheap

        self.url = url
        self._flight = flight
        self._client = flight.FlightClient(_location(url))
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        self._options = flight.FlightCallOptions(headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def close(self) -> None:
        self._client.close()

    # -- queries ----------------------------------------------------------------------------------

    def flows(self, *, start: TimeArg = None, end: TimeArg = None, time_range: float | None = None,
              filters: str = "", columns: list[str] | None = None, limit: int | None = None,
              packet_loss: str = "all", record_type: str = "flowLog", sort_by: str | None = None,
              sort_order: str | None = None) -> pl.DataFrame:
        """Flow records in [start, end) matching the console `filters`; all of them unless `limit` (then the
        newest first). No time given = the whole lake."""
        ticket: dict[str, Any] = {"kind": "flows", **_times(start, end, time_range), "filters": filters,
                                  "packet_loss": packet_loss, "record_type": record_type}
        extra = {"columns": columns, "limit": limit, "sort_by": sort_by, "sort_order": sort_order}
        return self.query({**ticket, **{k: v for k, v in extra.items() if v is not None}})

    def metrics(self, *, aggregate_by: str = "namespace", type: str = "Bytes", function: str = "rate",
                step: int | None = None, top: int = 50, start: TimeArg = None, end: TimeArg = None,
                time_range: float | None = None, filters: str = "", packet_loss: str = "all",
                record_type: str = "flowLog") -> pl.DataFrame:
        """Time series, long format: label columns, `t` (unix s, bucket start), `value`, `total` (docs/api.md)."""
        ticket: dict[str, Any] = {"kind": "metrics", **_times(start, end, time_range), "filters": filters,
                                  "aggregate_by": aggregate_by, "type": type, "function": function,
                                  "top": top, "packet_loss": packet_loss, "record_type": record_type}
        if step is not None:
            ticket["step"] = step
        return self.query(ticket)

    def topology(self, *, scope: str = "namespace", groups: str = "none", type: str = "Bytes",
                 function: str = "sum", top: int = 100, start: TimeArg = None, end: TimeArg = None,
                 time_range: float | None = None, filters: str = "", packet_loss: str = "all",
                 record_type: str = "flowLog") -> Topology:
        """The graph at `scope`: `nodes` (id, label, in, out, ...) and the `top` `edges` (source, target, value)."""
        if time_range is not None and time_range > 0 and start is None and end is None:
            # one absolute start for both parts (the end stays open, as for time_range), so the server
            # computes the graph once (api.flight_plan.RecentTopologies); bad ranges go as they are, to
            # be refused naming time_range
            start, time_range = max(0.0, time.time() - time_range), None
        ticket: dict[str, Any] = {"kind": "topology", **_times(start, end, time_range), "filters": filters,
                                  "scope": scope, "groups": groups, "type": type, "function": function,
                                  "top": top, "packet_loss": packet_loss, "record_type": record_type}
        return Topology(self.query({**ticket, "part": "nodes"}), self.query({**ticket, "part": "edges"}))

    def sql(self, query: str, *, start: TimeArg = None, end: TimeArg = None,
            time_range: float | None = None) -> pl.DataFrame:
        """Polars SQL over the `flows` table (cut to [start, end) when given, and to your tenant's namespaces)."""
        return self.query({"kind": "sql", "sql": query, **_times(start, end, time_range)})

    def tables(self) -> dict[str, pa.Schema]:
        """Table name -> Arrow schema, from the server's `list_flights` (today: `flows`)."""
        with self._errors():
            return {"/".join(p.decode() if isinstance(p, bytes) else p for p in info.descriptor.path): info.schema
                    for info in self._client.list_flights(options=self._options)}

    # -- streaming --------------------------------------------------------------------------------

    def query(self, ticket: Mapping[str, Any]) -> pl.DataFrame:
        """Any ticket (docs/flight.md) as one DataFrame, decoded batch by batch while it streams in."""
        reader = self._reader(ticket)
        with self._errors():
            frames = [pl.DataFrame(pl.from_arrow(b)) for b in _chunks(reader)]
            empty = pl.DataFrame(pl.from_arrow(reader.schema.empty_table()))
        return pl.concat(frames, how="vertical", rechunk=False) if frames else empty

    def stream(self, ticket: Mapping[str, Any]) -> Iterator[pa.RecordBatch]:
        """Any ticket's record batches as they arrive, for results too big to hold at once."""
        reader = self._reader(ticket)
        with self._errors():
            yield from _chunks(reader)

    def _reader(self, ticket: Mapping[str, Any]) -> flight.FlightStreamReader:
        with self._errors():
            raw = json.dumps(dict(ticket), separators=(",", ":")).encode()
            return self._client.do_get(self._flight.Ticket(raw), options=self._options)

    def _errors(self) -> _Translate:
        return _Translate(self)


def _chunks(reader: flight.FlightStreamReader) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            chunk = reader.read_chunk()
        except StopIteration:
            return
        if chunk.data is not None:
            yield chunk.data


class _Translate:
    """Turns Flight/gRPC exceptions into ClientError subclasses that say what to do next."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            return
        fl = self.client._flight
        url = self.client.url
        if isinstance(exc, fl.FlightUnauthenticatedError | fl.FlightUnauthorizedError):
            raise AuthenticationError(f"{url} refused the token: {_detail(exc)}") from exc
        if isinstance(exc, fl.FlightUnavailableError):
            raise ClientError(f"cannot reach a flowlake Flight query service at {url} ({_detail(exc)}); is "
                              "`flowlake api --flight-port PORT` (default 8815) or `flowlake up` running "
                              "there?") from exc
        if isinstance(exc, fl.FlightServerError):
            body = _body(exc)
            if body is not None:
                raise QueryError(str(body.get("error")), body.get("parameter"), body.get("position")) from exc
            raise ClientError(f"{url}: {_detail(exc)}") from exc
        if isinstance(exc, fl.FlightError | pa.ArrowException):
            raise ClientError(f"{url}: {_detail(exc)}") from exc


def _detail(exc: BaseException) -> str:
    # gRPC appends transport detail ("... Detail: Unavailable"); the server's sentence comes first.
    return str(exc).split(". Detail:")[0].split(". gRPC client debug context")[0].strip()


def _body(exc: BaseException) -> dict[str, Any] | None:
    raw = getattr(exc, "extra_info", b"")
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _location(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("grpc", "grpc+tcp", "grpc+tls"):
        raise ClientError(f"not a Flight URL: {url!r}; use grpc://HOST:PORT (e.g. {DEFAULT_URL})")
    if ":" not in rest.rsplit("]", 1)[-1]:
        rest = f"{rest}:8815"
    return f"{'grpc+tls' if scheme == 'grpc+tls' else 'grpc+tcp'}://{rest.rstrip('/')}"


def connect(url: str = DEFAULT_URL, token: str | None = None, *, timeout: float = 300.0) -> Client:
    """A client for the Flight query service at `url` (`flowlake api --flight-port`, default 8815).

    `token` is a bearer token from `flowlake api --tokens`; omit it when the server runs without auth.
    Nothing is sent until the first query, so a wrong URL shows up there, with the fix in the message.
    """
    return Client(url, token, timeout=timeout)


def open_lake(url: str, *, start: TimeArg = None, end: TimeArg = None,
              storage_options: Mapping[str, Any] | None = None) -> pl.LazyFrame:
    """The lake at `url` (path, file://, s3://) as a LazyFrame of flows with start <= TimeFlowEndMs < end.

    Hour partitions outside [start, end) are never listed or opened; filters on other columns are
    pushed into the Parquet scan. For s3://, credentials come from `storage_options` or AWS_* variables.
    """
    from flowlake.engine.store import lake

    s, e = _seconds(start, "start"), _seconds(end, "end")
    return lake.scan(url, None if s is None else int(s * 1000), None if e is None else int(e * 1000),
                     storage_options)
