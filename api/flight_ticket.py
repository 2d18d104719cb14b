"""Flight tickets: the JSON query a Flight client sends, parsed and checked; used by `api.flight_service`.

A ticket (and a `get_flight_info` command) is one JSON object: `{"kind": "flows" | "metrics" |
"topology" | "sql", ...}` plus the HTTP API's query parameters. Keys are snake_case (`start_time`,
`aggregate_by`); the HTTP API's camelCase spelling (`startTime`, `aggregateBy`) is accepted too, so a
query copied from a console URL works. docs/flight.md lists every key.

Unlike `GET /api/flows`, a ticket without a time range means the whole lake (a notebook usually wants
all of it), and `flows` without `limit` streams every matching row.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

KINDS = ("flows", "metrics", "topology", "sql")
TOPOLOGY_PARTS = ("nodes", "edges")
MAX_TICKET_BYTES = 64 * 1024
# Keys each kind accepts (after camelCase -> snake_case); `kind` and the time range are common.
_COMMON = {"kind", "start_time", "end_time", "time_range"}
_FILTERED = {"filters", "packet_loss", "record_type"}
MAX_SECONDS = 4_102_444_800  # 2100-01-01 in unix seconds, as the HTTP API: larger values overflow ms in int64
MAX_ROWS = 2**62
KEYS: dict[str, set[str]] = {
    "flows": _COMMON | _FILTERED | {"limit", "sort_by", "sort_order", "columns"},
    "metrics": _COMMON | _FILTERED | {"aggregate_by", "type", "function", "step", "top"},
    "topology": _COMMON | _FILTERED | {"scope", "groups", "type", "function", "top", "part"},
    "sql": _COMMON | {"sql"},
}
ALL_KEYS: frozenset[str] = frozenset().union(*KEYS.values())
_CAMEL = re.compile(r"(?<=[a-z])([A-Z])")


class TicketError(ValueError):
    """A bad ticket: `parameter` names the key at fault, `position` an offset inside it (SQL, filters)."""

    def __init__(self, message: str, parameter: str | None, position: int | None = None) -> None:
        self.parameter = parameter
        self.position = position
        super().__init__(message)


@dataclass(frozen=True)
class Ticket:
    """A parsed query: `kind`, the time range in ms ([start_ms, end_ms), None = open) and the other keys."""

    kind: str
    start_ms: int | None
    end_ms: int | None
    params: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)

    def to_json(self) -> bytes:
        """The ticket bytes for this query (what `get_flight_info` hands back in its endpoints)."""
        body: dict[str, Any] = {"kind": self.kind, **self.params}
        if self.start_ms is not None:
            body["start_time"] = self.start_ms / 1000
        if self.end_ms is not None:
            body["end_time"] = self.end_ms / 1000
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def snake(key: str) -> str:
    """`startTime` -> `start_time`; snake_case keys pass unchanged."""
    return _CAMEL.sub(lambda m: "_" + m.group(1).lower(), key)


def parse(raw: bytes, now_ms: int | None = None) -> Ticket:
    """Parse and check a ticket; raises TicketError naming the key and the fix."""
    if len(raw) > MAX_TICKET_BYTES:
        raise TicketError(f"ticket is {len(raw)} bytes; the limit is {MAX_TICKET_BYTES}", None)
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        pos = getattr(exc, "pos", None)
        raise TicketError(f"ticket is not a JSON object ({exc}); send e.g. "
                          '{"kind": "sql", "sql": "SELECT count(*) FROM flows"}', None, pos) from exc
    if not isinstance(body, dict):
        raise TicketError("ticket must be a JSON object with a `kind` key", None)
    params = {snake(str(k)): v for k, v in body.items()}
    kind = params.pop("kind", None)
    if kind not in KINDS:
        raise TicketError(f"kind {kind!r} is not one of {', '.join(KINDS)}", "kind")
    unknown = sorted(set(params) - KEYS[kind])
    if unknown:
        raise TicketError(f"unknown key {unknown[0]!r} for kind {kind}; valid keys: "
                          f"{', '.join(sorted(KEYS[kind] - {'kind'}))}", unknown[0])
    start_ms, end_ms = _time_range(params.pop("start_time", None), params.pop("end_time", None),
                                   params.pop("time_range", None),
                                   int(time.time() * 1000) if now_ms is None else now_ms)
    if kind == "sql" and not isinstance(params.get("sql"), str):
        raise TicketError('a sql ticket needs "sql": "SELECT ... FROM flows"', "sql")
    if kind == "topology" and params.get("part", "edges") not in TOPOLOGY_PARTS:
        raise TicketError(f"part must be one of {', '.join(TOPOLOGY_PARTS)}", "part")
    _check_types(params)
    return Ticket(kind, start_ms, end_ms, params)


def _seconds(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0
            or value > MAX_SECONDS):
        raise TicketError(f"{key} must be a number of seconds from 0 to {MAX_SECONDS} (unix time for "
                          f"start/end), got {value!r}", key)
    return float(value)


def _time_range(start: Any, end: Any, time_range: Any, now_ms: int) -> tuple[int | None, int | None]:
    """[start_ms, end_ms): start/end are unix seconds, time_range seconds back from now; none = everything."""
    s, e, r = _seconds(start, "start_time"), _seconds(end, "end_time"), _seconds(time_range, "time_range")
    if r is not None:
        if s is not None or e is not None:
            raise TicketError("give either time_range or start_time/end_time, not both", "time_range")
        if r <= 0:
            raise TicketError(f"time_range must be a number of seconds above 0 (how far back from now), got {r:g}",
                              "time_range")
        return max(0, now_ms - int(r * 1000)), None
    if s is not None and e is not None and e < s:
        raise TicketError(f"end_time {e:g} is before start_time {s:g}; swap them", "end_time")
    return (None if s is None else int(s * 1000)), (None if e is None else int(e * 1000))


def _check_types(params: dict[str, Any]) -> None:
    for key, most in (("limit", MAX_ROWS), ("top", MAX_ROWS), ("step", MAX_SECONDS)):
        v = params.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= most):
            raise TicketError(f"{key} must be a number above 0 and at most {most}, got {v!r}", key)
    for key in ("filters", "packet_loss", "record_type", "sort_by", "sort_order", "aggregate_by", "type",
                "function", "scope", "groups", "sql"):
        if key in params and not isinstance(params[key], str):
            raise TicketError(f"{key} must be a string, got {params[key]!r}", key)
    cols = params.get("columns")
    if cols is not None and (not isinstance(cols, list) or not all(isinstance(c, str) for c in cols)):
        raise TicketError('columns must be a list of field names, e.g. ["SrcAddr", "Bytes"]', "columns")
    if params.get("sort_order", "desc") not in ("asc", "desc"):
        raise TicketError("sort_order must be asc or desc", "sort_order")
