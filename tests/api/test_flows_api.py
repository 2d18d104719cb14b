"""`GET /api/flows` and the operational routes, over a real 4-hour lake written by `LakeSink`."""

from __future__ import annotations

import argparse
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

import flowlake.api
import flowlake.engine.query
from flowlake.api import cli as api_cli
from flowlake.api import create_app
from flowlake.engine.query import FlowQuery, QueryError, run_flows
from tests.api.conftest import FILES_PER_HOUR, HOUR, HOURS, PER_HOUR, ROWS
from tests.conftest import BASE_MS

H0 = BASE_MS // 1000  # the lake's first hour, unix seconds
Row = dict[str, Any]


def flows(client: TestClient, **params: Any) -> dict[str, Any]:
    r = client.get("/api/flows", params={"limit": 100_000, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def flow_log(r: Row) -> bool:
    return r["_RecordType"] in (None, "flowLog")


def expected(start_s: int, end_s: int, keep: Callable[[Row], bool] = flow_log) -> list[int]:
    """Bytes (unique per flow) of the model rows the API must return, newest first."""
    lo, hi = start_s * 1000, (end_s + 1) * 1000  # the API rounds endTime up by one second
    rows = [r for r in ROWS if lo <= r["TimeFlowEndMs"] < hi and keep(r)]
    rows.sort(key=lambda r: r["TimeFlowEndMs"], reverse=True)
    return [100 + (r["TimeFlowEndMs"] - BASE_MS) // 60_000 for r in rows]


def files_overlapping(start_s: int, end_s: int) -> int:
    lo, hi = start_s * 1000, (end_s + 1) * 1000
    return sum(n for h, n in enumerate(FILES_PER_HOUR)
               if BASE_MS + h * HOUR < hi and BASE_MS + (h + 1) * HOUR > lo)


ALL = (H0, H0 + HOURS * 3600 - 1)

RANGES = [
    ("all-four-hours", *ALL),
    ("inside-hour-2", H0 + 2 * 3600 + 600, H0 + 2 * 3600 + 1199),
    ("across-hours-1-and-2", H0 + 3600 + 1800, H0 + 2 * 3600 + 1799),
    ("hour-1-has-two-files", H0 + 3600, H0 + 2 * 3600 - 1),
    ("before-the-data", H0 - 7200, H0 - 3601),
    ("one-second-end-rounded-up", H0 + 3 * 3600 + 150, H0 + 3 * 3600 + 150),
]


@pytest.mark.parametrize(("start", "end"), [r[1:] for r in RANGES], ids=[r[0] for r in RANGES])
def test_time_range_rows_and_partition_pruning(client: TestClient, start: int, end: int) -> None:
    body = flows(client, startTime=start, endTime=end)
    want = expected(start, end)
    assert [f["Bytes"] for f in body["flows"]] == want
    stats = body["stats"]
    assert stats["numRows"] == len(want)
    assert stats["filesScanned"] == files_overlapping(start, end)
    hours_opened = sum(1 for h in range(HOURS) if BASE_MS + h * HOUR < (end + 1) * 1000
                       and BASE_MS + (h + 1) * HOUR > start * 1000)
    assert stats["rowsScanned"] == hours_opened * PER_HOUR
    assert stats["limitReached"] is False and stats["queryTimeMs"] >= 0


def test_one_second_range_holds_exactly_one_flow(client: TestClient) -> None:
    t = H0 + 3 * 3600 + 150  # flow 2 of hour 3 ends exactly here; its neighbours are 60 s away
    assert len(flows(client, startTime=t, endTime=t)["flows"]) == 1


FILTERS: list[tuple[str, str, Callable[[Row], bool]]] = [
    ("exact-src-namespace", 'src_namespace="frontend"', lambda r: r["SrcK8S_Namespace"] == "frontend"),
    ("common-key-partial", "namespace=db",
     lambda r: "db" in r["SrcK8S_Namespace"] or "db" in r["DstK8S_Namespace"]),
    ("list-and-flags", 'interfaces="eth0"&tcp_flags=SYN',
     lambda r: "eth0" in r["Interfaces"] and r["Flags"] is not None),
    ("or-groups", 'dst_namespace="db"|src_namespace=kube',
     lambda r: r["DstK8S_Namespace"] == "db" or "kube" in r["SrcK8S_Namespace"]),
    ("negated-regex", 'src_namespace!~"^(frontend|backend)$"',
     lambda r: r["SrcK8S_Namespace"] not in ("frontend", "backend")),
]


@pytest.mark.parametrize(("text", "keep"), [f[1:] for f in FILTERS], ids=[f[0] for f in FILTERS])
def test_filters(client: TestClient, text: str, keep: Callable[[Row], bool]) -> None:
    body = flows(client, startTime=ALL[0], endTime=ALL[1], filters=text)
    assert [f["Bytes"] for f in body["flows"]] == expected(*ALL, lambda r: flow_log(r) and keep(r))


def test_filters_url_encoded_twice_like_the_console(client: TestClient) -> None:
    text = 'src_namespace="frontend"&dst_namespace=db'
    plain = flows(client, startTime=ALL[0], endTime=ALL[1], filters=text)
    twice = flows(client, startTime=ALL[0], endTime=ALL[1], filters=urllib.parse.quote(text))
    assert plain["flows"] == twice["flows"] and plain["flows"]


def test_encoded_regex_filter_is_decoded(client: TestClient) -> None:
    text = "src_namespace~^front"  # encodeURIComponent leaves ~ alone but encodes ^ as %5E
    plain = flows(client, startTime=ALL[0], endTime=ALL[1], filters=text)
    encoded = flows(client, startTime=ALL[0], endTime=ALL[1], filters=urllib.parse.quote(text, safe="~"))
    assert plain["flows"] and encoded["flows"] == plain["flows"]


@pytest.mark.parametrize(("limit", "reached"), [(52, False), (51, True), (1, True)],
                         ids=["exactly-all", "one-less", "one"])
def test_limit_and_limit_reached(client: TestClient, limit: int, reached: bool) -> None:
    start, end = H0, H0 + 3599  # hour 0 holds 52 flow logs
    assert len(expected(start, end)) == 52
    body = flows(client, startTime=start, endTime=end, limit=limit)
    assert body["stats"]["limitReached"] is reached
    assert body["stats"]["numRows"] == limit
    assert [f["Bytes"] for f in body["flows"]] == expected(start, end)[:limit]  # the newest ones


def test_sorted_newest_first(client: TestClient) -> None:
    ends = [f["TimeFlowEndMs"] for f in flows(client, startTime=ALL[0], endTime=ALL[1])["flows"]]
    assert ends == sorted(ends, reverse=True) and ends[0] == max(r["TimeFlowEndMs"] for r in ROWS)


def _drops(r: Row) -> int:
    return r["PktDropPackets"] or 0


PACKET_LOSS: list[tuple[str, Callable[[Row], bool]]] = [
    ("all", lambda r: True),
    ("dropped", lambda r: r["Packets"] == 0 and _drops(r) >= 1),
    ("hasDrops", lambda r: _drops(r) >= 1),
    ("sent", lambda r: _drops(r) == 0),
]


@pytest.mark.parametrize(("mode", "keep"), PACKET_LOSS, ids=[p[0] for p in PACKET_LOSS])
def test_packet_loss_modes(client: TestClient, mode: str, keep: Callable[[Row], bool]) -> None:
    body = flows(client, startTime=ALL[0], endTime=ALL[1], packetLoss=mode)
    want = expected(*ALL, lambda r: flow_log(r) and keep(r))
    assert want, "the model must hold rows for every mode"
    assert [f["Bytes"] for f in body["flows"]] == want


RECORD_TYPES: list[tuple[str, Callable[[Row], bool]]] = [
    ("flowLog", flow_log),
    ("newConnection", lambda r: r["_RecordType"] == "newConnection"),
    ("endConnection", lambda r: r["_RecordType"] == "endConnection"),
    ("heartbeat", lambda r: False),
    ("allConnections", lambda r: r["_RecordType"] in ("newConnection", "heartbeat", "endConnection")),
]


@pytest.mark.parametrize(("kind", "keep"), RECORD_TYPES, ids=[k[0] for k in RECORD_TYPES])
def test_record_types(client: TestClient, kind: str, keep: Callable[[Row], bool]) -> None:
    body = flows(client, startTime=ALL[0], endTime=ALL[1], recordType=kind)
    assert [f["Bytes"] for f in body["flows"]] == expected(*ALL, keep)


def test_default_and_relative_time_range(recent_client: TestClient) -> None:
    names = [f["SrcK8S_Namespace"] for f in flows(recent_client)["flows"]]
    assert names == ["recent"]  # default: the last 300 s
    names = [f["SrcK8S_Namespace"] for f in flows(recent_client, timeRange=3 * 3600)["flows"]]
    assert names == ["recent", "old"]


def test_record_shape(client: TestClient) -> None:
    records = flows(client, startTime=H0, endTime=H0 + 3599)["flows"]
    assert all("DnsName" not in f for f in records)  # null in every returned flow: left out
    assert all("PktDropPackets" in f for f in records)  # null in some: kept, as null
    assert {f["PktDropPackets"] for f in records} == {None, 2}
    assert {tuple(f["Flags"]) if f["Flags"] else None for f in records} == {None, ("SYN", "ACK")}
    assert {"TimeFlowStartMs", "TimeFlowEndMs", "SrcAddr", "DstAddr", "Bytes", "Packets"} <= set(records[0])


BAD = [
    # (id, query parameters, parameter named in the answer, position in the filter)
    ("limit-zero", {"limit": 0}, "limit", None),
    ("limit-too-big", {"limit": 100_001}, "limit", None),
    ("limit-not-a-number", {"limit": "ten"}, "limit", None),
    ("start-not-a-number", {"startTime": "yesterday"}, "startTime", None),
    ("end-not-a-number", {"startTime": 1, "endTime": "later"}, "endTime", None),
    ("start-infinite", {"startTime": "inf"}, "startTime", None),
    ("end-before-start", {"startTime": 10, "endTime": 5}, "endTime", None),
    ("time-range-zero", {"timeRange": 0}, "timeRange", None),
    ("time-range-with-start", {"timeRange": 300, "startTime": 1}, "timeRange", None),
    ("packet-loss-unknown", {"packetLoss": "lost"}, "packetLoss", None),
    ("record-type-unknown", {"recordType": "flows"}, "recordType", None),
    ("filter-unknown-key", {"filters": "namspace=x"}, "filters", 0),
    ("filter-not-a-number", {"filters": "namespace=a&src_port>=ten"}, "filters", 22),
    ("filter-bad-regex", {"filters": "name~(a"}, "filters", 5),
    ("start-huge", {"startTime": -1e300}, "startTime", None),
    ("end-huge", {"startTime": 0, "endTime": 1e300}, "endTime", None),
    ("time-range-huge", {"timeRange": 1e300}, "timeRange", None),
]


@pytest.mark.parametrize(("params", "parameter", "position"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_a_400_naming_the_parameter(client: TestClient, params: dict[str, Any],
                                                 parameter: str, position: int | None) -> None:
    r = client.get("/api/flows", params=params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["parameter"] == parameter and body["position"] == position
    assert "Traceback" not in body["error"]
    if parameter != "filters":  # filter errors name the filter key instead
        assert parameter in body["error"]


def test_flow_query_validates_without_http(lake_url: str) -> None:
    frame, stats = run_flows(lake_url, FlowQuery(start_ms=BASE_MS, end_ms=BASE_MS + HOUR, limit=5))
    assert frame.height == 5 and stats.limit_reached and stats.files_scanned == FILES_PER_HOUR[0]
    with pytest.raises(QueryError) as info:
        FlowQuery(filters="port=80&nope=1")
    assert (info.value.parameter, info.value.position) == ("filters", 8)
    for kwargs, parameter in (({"limit": 0}, "limit"), ({"start_ms": 2, "end_ms": 1}, "end_ms"),
                              ({"sort_by": "Nope"}, "sort_by")):
        with pytest.raises(QueryError) as info:
            FlowQuery(**kwargs)
        assert info.value.parameter == parameter


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True


def test_not_ready_when_the_lake_cannot_exist() -> None:
    with TestClient(create_app("/nonexistent-flowlake-dir/sub/lake")) as c:
        r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["ready"] is False and "--lake" in r.json()["reason"]


def test_status_reports_version_lake_and_feed(client: TestClient, lake_url: str) -> None:
    body = client.get("/api/status").json()
    assert body["lakeUrl"] == lake_url and body["info"] == {"feed": "synthetic"} and body["version"]


def test_metrics_count_requests_and_bad_requests(client: TestClient) -> None:
    client.get("/api/flows", params={"startTime": H0, "endTime": H0 + 60})
    client.get("/api/flows", params={"limit": 0})
    text = client.get("/metrics").text
    assert 'flowlake_api_requests_total{route="/api/flows",status="200"}' in text
    assert 'flowlake_api_requests_total{route="/api/flows",status="400"}' in text
    assert 'flowlake_api_bad_requests_total{parameter="limit",route="/api/flows"}' in text
    assert 'flowlake_api_request_seconds_count{route="/api/flows"}' in text
    assert 'flowlake_api_rows_scanned_total{route="/api/flows"}' in text


def test_openapi_documents_the_flows_parameters(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/api/flows"]["get"]["parameters"]}
    assert set(params) == {"startTime", "endTime", "timeRange", "limit", "filters", "packetLoss",
                           "recordType", "sortBy", "sortOrder"}
    assert all(p.get("description") for p in params.values())
    assert "400" in spec["paths"]["/api/flows"]["get"]["responses"]
    assert client.get("/docs").status_code == 200


def test_empty_lake_answers_no_flows(tmp_path: Path) -> None:
    with TestClient(create_app(str(tmp_path / "lake"))) as c:
        body = c.get("/api/flows", params={"timeRange": 3600}).json()
    assert body["flows"] == [] and body["stats"]["filesScanned"] == 0 and body["stats"]["numRows"] == 0


def test_cli_parser_defaults_and_lazy_imports() -> None:
    parser = argparse.ArgumentParser(prog="flowlake")
    api_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["api"])
    assert (args.lake, args.host, args.port, args.log_level, args.feed) == (
        "./flowlake-data/lake", "127.0.0.1", 8080, "info", None)
    assert parser.parse_args(["api", "--feed", "synthetic"]).feed == "synthetic"  # as `flowlake up` runs it
    # `flowlake --help` imports the CLI modules: they must not pull in FastAPI, uvicorn or Polars.
    code = "import sys, flowlake.api.cli; print(sorted({'fastapi', 'uvicorn', 'polars'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", [flowlake.api, flowlake.engine.query], ids=lambda m: m.__name__)
def test_front_door_all_is_sorted_and_importable(module: ModuleType) -> None:
    assert module.__all__ == sorted(module.__all__)
    assert all(getattr(module, name) is not None for name in module.__all__)
