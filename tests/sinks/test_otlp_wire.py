"""The columnar OTLP logs encoder: its bytes, decoded by opentelemetry-proto's generated classes, hold
every non-null value of every row with the AnyValue type the SDK would have chosen."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from flowlake.engine.sinks import otlp_fields, otlp_wire
from tests.conftest import make_batch

logs_service_pb2 = pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")


def value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def decode(raw: bytes) -> tuple[dict[str, Any], str, list[Any]]:
    req = logs_service_pb2.ExportLogsServiceRequest.FromString(raw)
    (rl,) = req.resource_logs
    (sl,) = rl.scope_logs
    resource = {kv.key: value(kv.value) for kv in rl.resource.attributes}
    return resource, sl.scope.name, list(sl.log_records)


def test_every_type_null_and_edge_value_round_trips() -> None:
    n = 400  # more rows than distinct values: the dictionary paths are taken too
    frame = pl.DataFrame({
        "text": (["a", None, "héllo" * 40, ""] * n)[:n],
        "int": ([0, -5, 2**62, 127, 128, 16_383, 16_384, None] * n)[:n],
        "small": ([1, 2, None, 255] * n)[:n],
        "float": ([1.5, None, -2.0, 1e300] * n)[:n],
        "names": ([["SYN", "ACK"], [], None, ["FIN"]] * n)[:n],
        "numbers": ([[1, 2], [3], [300, 2**40], None] * n)[:n],
        "flag": ([True, False, None, True] * n)[:n],
        "k" * 150: ([7, None, 9, 10] * n)[:n],  # a key too long for the one-byte fast path
    }, schema_overrides={"small": pl.UInt8}, strict=False)
    stamps = pl.Series(range(n), dtype=pl.Int64) * 1_000_000 + 1_795_651_200_000_000_000
    records = otlp_wire.encode_records(frame, stamps, 42)
    resource, scope, got = decode(otlp_wire.logs_request(records, {"service.name": "flowlake", "n": 3}, "s"))
    assert resource == {"service.name": "flowlake", "n": 3} and scope == "s" and len(got) == n
    for rec, row, stamp in zip(got, frame.to_dicts(), stamps.to_list(), strict=True):
        assert rec.time_unix_nano == stamp and rec.observed_time_unix_nano == 42
        assert {kv.key: value(kv.value) for kv in rec.attributes} == {k: v for k, v in row.items() if v is not None}


def test_requests_slice_the_records_of_real_flows() -> None:
    frame = pl.from_arrow(make_batch(1_000, seed=5))
    assert isinstance(frame, pl.DataFrame)
    prepared = otlp_fields.prepare(frame, otlp_fields.mapping([]))
    records = otlp_wire.encode_records(prepared, frame.get_column("TimeFlowEndMs") * 1_000_000, 0)
    seen: list[Any] = []
    for start in range(0, 1_000, 300):  # 300, 300, 300, 100
        seen += decode(otlp_wire.logs_request(records.slice(start, 300), {}, "flowlake.flows"))[2]
    assert len(seen) == 1_000
    for rec, row in zip(seen, prepared.to_dicts(), strict=True):
        assert {kv.key: value(kv.value) for kv in rec.attributes} == {k: v for k, v in row.items() if v is not None}


def test_empty_frame_is_an_empty_request() -> None:
    empty = pl.DataFrame({"a": []}, schema={"a": pl.Int64})
    records = otlp_wire.encode_records(empty, pl.Series([], dtype=pl.Int64), 0)
    assert decode(otlp_wire.logs_request(records, {}, "s"))[2] == []
