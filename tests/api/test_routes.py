"""The new HTTP routes over the model lake (tests/api/model.py), checked against plain-Python answers:
/api/flows/metrics, /api/topology, /api/export, /api/resources/*, /api/health, and sortBy on /api/flows."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from flowlake.engine import schema
from tests.api import model
from tests.api.model import Row
from tests.api.test_query_engine import expected_graph, expected_series, got_series
from tests.conftest import BASE_MS

H0 = BASE_MS // 1000
ALL = {"startTime": H0, "endTime": H0 + 7199}  # the API rounds endTime up by 1 s: exactly the two hours


def get(client: TestClient, path: str, **params: Any) -> Any:
    r = client.get(path, params={**ALL, **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_metrics_matrix(model_client: TestClient) -> None:
    body = get(model_client, "/api/flows/metrics", aggregateBy="namespace", function="sum", step=600, top=1000)
    labels = ["SrcK8S_Namespace", "DstK8S_Namespace"]
    rows = [{**s["metric"], "t": t, "value": v, "total": s["total"]} for s in body["metrics"] for t, v in s["values"]]
    want = expected_series(labels, "Bytes", "sum", 600)
    got = got_series(rows, labels)
    assert set(got) == set(want)
    for key, (total, values) in want.items():
        assert got[key][0] == pytest.approx(total)
        assert got[key][1] == pytest.approx(values)
    totals = [s["total"] for s in body["metrics"]]
    assert totals == sorted(totals, reverse=True)
    assert body["step"] == 600 and body["function"] == "sum" and body["stats"]["numRows"] == len(rows)
    assert all(isinstance(t, int) for s in body["metrics"] for t, _ in s["values"])


def test_metrics_defaults(model_client: TestClient) -> None:
    body = get(model_client, "/api/flows/metrics")
    assert body["function"] == "rate" and body["aggregateBy"] == "namespace" and body["step"] == 30
    assert len(body["metrics"]) <= 50
    body = get(model_client, "/api/flows/metrics", type="DnsLatencyMs", aggregateBy="app", step=7200)
    assert body["function"] == "avg"  # a latency has no rate: the default becomes avg
    lat = [r["DnsLatencyMs"] for r in model.ROWS if r["DnsLatencyMs"] is not None]
    assert body["metrics"][0]["metric"] == {} and body["metrics"][0]["total"] == pytest.approx(sum(lat) / len(lat))


def test_topology_json(model_client: TestClient) -> None:
    body = get(model_client, "/api/topology", scope="owner", top=1000)
    want_edges, want_in, want_out = expected_graph("owner", "Bytes", "sum")
    assert {(e["source"], e["target"]): e["value"] for e in body["edges"]} == pytest.approx(want_edges)
    nodes = {n["id"]: n for n in body["nodes"]}
    assert set(nodes) == set(want_in) | set(want_out)
    shop_cart = nodes["owner:shop/Deployment/cart"]
    assert shop_cart["fields"] == {"K8S_Namespace": "shop", "K8S_OwnerType": "Deployment", "K8S_OwnerName": "cart"}
    assert (shop_cart["in"], shop_cart["out"]) == pytest.approx(
        (want_in["owner:shop/Deployment/cart"], want_out["owner:shop/Deployment/cart"]))
    assert shop_cart["scope"] == "owner" and shop_cart["group"] is None and shop_cart["label"] == "cart"
    assert body["stepInto"] == "resource"


def test_topology_groups_and_step_into(model_client: TestClient) -> None:
    body = get(model_client, "/api/topology", scope="namespace", groups="hosts", top=1000)
    want_edges, _, _ = expected_graph("namespace", "Bytes", "sum", group="host")
    assert {(e["source"], e["target"]): e["value"] for e in body["edges"]} == pytest.approx(want_edges)
    assert all(n["id"].startswith(f"{n['group']}|") for n in body["nodes"])
    # stepping into namespace shop: its fields as a filter, one scope deeper
    inner = get(model_client, "/api/topology", scope="owner", filters='namespace="shop"', top=1000)
    want_edges, _, _ = expected_graph("owner", "Bytes", "sum")
    shop = {k: v for k, v in want_edges.items() if "shop/" in k[0] or "shop/" in k[1]}
    assert {(e["source"], e["target"]): e["value"] for e in inner["edges"]} == pytest.approx(shop)


def _export_rows(start: int = H0, end: int = H0 + 7200) -> list[Row]:
    return model.in_range(start * 1000, end * 1000)


COLUMNS = ["TimeFlowEndMs", "SrcK8S_Namespace", "DstAddr", "Bytes", "DnsLatencyMs", "Interfaces"]


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "parquet", "arrow"])
def test_export_formats_hold_every_row(model_client: TestClient, fmt: str) -> None:
    r = model_client.get("/api/export", params={**ALL, "format": fmt, "columns": ",".join(COLUMNS)})
    assert r.status_code == 200, r.text
    ext = {"arrow": "arrows"}.get(fmt, fmt)
    assert r.headers["content-disposition"] == f"attachment; filename=flows.{ext}"
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(r.text))
        assert reader.fieldnames == COLUMNS
        got = [(int(x["TimeFlowEndMs"]), x["SrcK8S_Namespace"] or None, int(x["Bytes"])) for x in reader]
    elif fmt == "ndjson":
        lines = [json.loads(x) for x in r.text.splitlines()]
        assert all(list(x) == COLUMNS for x in lines)
        got = [(x["TimeFlowEndMs"], x["SrcK8S_Namespace"], x["Bytes"]) for x in lines]
    else:
        table = (pq.read_table(io.BytesIO(r.content)) if fmt == "parquet"
                 else pa.ipc.open_stream(r.content).read_all())
        assert table.schema.names == COLUMNS
        assert table.schema.field("Bytes").type == schema.SCHEMA.field("Bytes").type
        got = list(zip(table["TimeFlowEndMs"].to_pylist(), table["SrcK8S_Namespace"].to_pylist(),
                       table["Bytes"].to_pylist(), strict=True))
    want = [(x["TimeFlowEndMs"], x.get("SrcK8S_Namespace"), x["Bytes"]) for x in _export_rows()]
    assert sorted(got, key=lambda t: t[0]) == sorted(want, key=lambda t: t[0])


def test_export_filters_limit_and_all_columns(model_client: TestClient) -> None:
    r = model_client.get("/api/export", params={**ALL, "format": "ndjson", "filters": 'dst_namespace="db"',
                                                "limit": 7})
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert len(lines) == 7 and all(x["DstK8S_Namespace"] == "db" for x in lines)
    assert list(lines[0]) == list(schema.BY_NAME)  # default: every field, in schema order
    empty = model_client.get("/api/export", params={"startTime": 1, "endTime": 2, "columns": "Bytes,Packets"})
    assert empty.status_code == 200 and empty.text == "Bytes,Packets\n"


def _distinct(rows: list[Row], *cols: str) -> list[str]:
    return sorted({r[c] for r in rows for c in cols if r.get(c)})


def test_resources(model_client: TestClient) -> None:
    rows = _export_rows()
    assert get(model_client, "/api/resources/namespaces") == _distinct(rows, "SrcK8S_Namespace", "DstK8S_Namespace")
    assert get(model_client, "/api/resources/clusters") == ["c1"]
    assert get(model_client, "/api/resources/zones") == _distinct(rows, "SrcK8S_Zone", "DstK8S_Zone")
    assert get(model_client, "/api/resources/hosts") == _distinct(rows, "SrcK8S_HostName", "DstK8S_HostName")
    pods = sorted({r[f"{s}K8S_Name"] for r in rows for s in ("Src", "Dst")
                   if r.get(f"{s}K8S_Type") == "Pod" and r.get(f"{s}K8S_Namespace") == "shop"})
    assert get(model_client, "/api/resources/kinds/Pod/names", namespace="shop") == pods
    owners = sorted({r[f"{s}K8S_OwnerName"] for r in rows for s in ("Src", "Dst")
                     if r.get(f"{s}K8S_OwnerType") == "Deployment"})
    assert get(model_client, "/api/resources/kinds/Deployment/names") == owners
    assert get(model_client, "/api/resources/kinds/Gadget/names") == []


# -- health, recomputed from the rows ---------------------------------------------------------------

CUR = (H0 + 3600, H0 + 7200)  # the second hour; the first is the trend baseline


def _health_sums(rows: list[Row], group_of: dict[str, Any]) -> dict[Any, dict[str, float]]:
    sums: dict[Any, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        cur = r["TimeFlowEndMs"] >= CUR[0] * 1000
        both = {g for g in (group_of["Src"](r), group_of["Dst"](r)) if g is not None}
        internal = {s: r.get(f"{s}K8S_Namespace") is not None or r.get(f"{s}K8S_HostName") is not None
                    for s in ("Src", "Dst")}
        for g in both:
            s = sums[g]
            if cur:
                s["packets"] += r["Packets"] if model.dedup(r) else 0
                s["drops"] += r["PktDropPackets"] or 0
                rc = r["DnsFlagsResponseCode"]
                s["dns"] += rc is not None
                s["err"] += rc is not None and rc not in ("NoError", "NXDomain")
                s["nx"] += rc == "NXDomain"
            if r["TimeFlowRttNs"] is not None:
                s["rtt" if cur else "rtt_prev"] += r["TimeFlowRttNs"] / 1e6
                s["n" if cur else "n_prev"] += 1
        key = "egress" if cur else "egress_prev"
        if model.dedup(r) and internal["Src"] and not internal["Dst"] and group_of["Src"](r) is not None:
            sums[group_of["Src"](r)][key] += r["Bytes"]
        key = "ingress" if cur else "ingress_prev"
        if model.dedup(r) and internal["Dst"] and not internal["Src"] and group_of["Dst"](r) is not None:
            sums[group_of["Dst"](r)][key] += r["Bytes"]
    return sums


def _health_values(s: dict[str, float]) -> dict[str, float | None]:
    def trend(cur: float, prev: float) -> float | None:
        return 100 * (cur / prev - 1) if prev > 0 else None

    out: dict[str, float | None] = {
        "PacketDropsByKernel": 100 * s["drops"] / (s["packets"] + s["drops"])
        if s["packets"] + s["drops"] >= 100 else None,
        "DNSErrors": 100 * s["err"] / s["dns"] if s["dns"] >= 10 else None,
        "DNSNxDomain": 100 * s["nx"] / s["dns"] if s["dns"] >= 10 else None,
        "LatencyHighTrend": trend(s["rtt"] / s["n"], s["rtt_prev"] / s["n_prev"])
        if min(s["n"], s["n_prev"]) >= 10 else None,
        "ExternalEgressHighTrend": trend(s["egress"], s["egress_prev"]) if s["egress"] >= 100_000 else None,
        "ExternalIngressHighTrend": trend(s["ingress"], s["ingress_prev"]) if s["ingress"] >= 100_000 else None,
    }
    return out


THRESHOLDS = {"PacketDropsByKernel": (5, 10, 20), "DNSErrors": (5, 10, 20), "DNSNxDomain": (10, 20, 40),
              "LatencyHighTrend": (50, 100, 200), "ExternalEgressHighTrend": (100, 200, 500),
              "ExternalIngressHighTrend": (100, 200, 500)}


def _severity(rule: str, v: float) -> str | None:
    info, warning, critical = THRESHOLDS[rule]
    return "critical" if v >= critical else "warning" if v >= warning else "info" if v >= info else None


def expected_health(group_by: str, scope: frozenset[str] | None = None) -> tuple[int, set[tuple[Any, ...]]]:
    rows = model.visible(model.in_range((CUR[0] - 3600) * 1000, CUR[1] * 1000), scope)
    group_of = {"global": {s: (lambda r: ()) for s in ("Src", "Dst")},
                "namespace": {s: (lambda r, s=s: (r.get(f"{s}K8S_Namespace"),) if r.get(f"{s}K8S_Namespace")
                                  else None) for s in ("Src", "Dst")}}[group_by]
    items = set()
    for g, s in _health_sums(rows, group_of).items():
        if scope is not None and g and g[0] not in scope:
            continue
        for rule, v in _health_values(s).items():
            sev = None if v is None else _severity(rule, v)
            if sev:
                assert v is not None
                items.add((rule, sev, g, round(v, 3)))
    if not any(r["TimeFlowEndMs"] >= CUR[0] * 1000 for r in rows):
        items.add(("NoFlows", "critical", (), 0.0))
    worst: dict[str, int] = {}
    for rule, sev, _, _ in items:
        worst[rule] = max(worst.get(rule, 0), {"critical": 30, "warning": 15, "info": 5}[sev])
    return max(0, 100 - sum(worst.values())), items


def got_health(body: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {(i["rule"], i["severity"], tuple(i["group"].values()), round(i["value"], 3)) for i in body["items"]}


@pytest.mark.parametrize("group_by", ["global", "namespace"])
def test_health_matches_the_rows(model_client: TestClient, group_by: str) -> None:
    body = get(model_client, "/api/health", startTime=CUR[0], endTime=CUR[1] - 1, groupBy=group_by)
    score, items = expected_health(group_by)
    assert items, "the model must trip some rule"
    assert got_health(body) == items
    assert body["score"] == score
    assert {r["name"] for r in body["rules"]} == {*THRESHOLDS, "NoFlows"}
    for it in body["items"]:
        assert it["threshold"] == THRESHOLDS[it["rule"]][("info", "warning", "critical").index(it["severity"])]
        assert it["rule"] in it["message"]


def test_health_no_flows_and_node_grouping(model_client: TestClient) -> None:
    body = get(model_client, "/api/health", startTime=1, endTime=2)
    assert [(i["rule"], i["severity"]) for i in body["items"]] == [("NoFlows", "critical")]
    assert body["score"] == 70
    body = get(model_client, "/api/health", groupBy="node")
    assert all(set(i["group"]) <= {"K8S_HostName"} for i in body["items"])
    body = get(model_client, "/api/health", groupBy="workload")
    assert {tuple(i["group"]) for i in body["items"] if i["rule"] != "NoFlows"} <= {
        ("K8S_Namespace", "K8S_OwnerType", "K8S_OwnerName")}


@pytest.mark.parametrize(("sort_by", "order"), [("Bytes", "asc"), ("Bytes", "desc"), ("DnsLatencyMs", "desc"),
                                                ("DnsLatencyMs", "asc"), ("SrcK8S_Namespace", "asc"),
                                                ("TimeFlowEndMs", "asc"), ("TimeFlowEndMs", "desc")])
def test_flows_sort_by(model_client: TestClient, sort_by: str, order: str) -> None:
    body = get(model_client, "/api/flows", sortBy=sort_by, sortOrder=order, limit=20)
    values = [r[sort_by] for r in _export_rows() if r.get(sort_by) is not None]
    values.sort(reverse=order == "desc")
    assert [f.get(sort_by) for f in body["flows"]] == values[:20]  # nulls sort last


BAD = [
    ("/api/flows", {"sortBy": "Bites"}, "sortBy"),
    ("/api/flows", {"sortOrder": "up"}, "sortOrder"),
    ("/api/flows/metrics", {"aggregateBy": "nope"}, "aggregateBy"),
    ("/api/flows/metrics", {"aggregateBy": "Interfaces"}, "aggregateBy"),
    ("/api/flows/metrics", {"type": "Octets"}, "type"),
    ("/api/flows/metrics", {"function": "median"}, "function"),
    ("/api/flows/metrics", {"type": "TimeFlowRttNs", "function": "rate"}, "function"),
    ("/api/flows/metrics", {"step": 0}, "step"),
    ("/api/flows/metrics", {"step": 1, "startTime": 0, "endTime": 86_400 * 30}, "step"),
    ("/api/flows/metrics", {"top": 0}, "top"),
    ("/api/flows/metrics", {"top": "many"}, "top"),
    ("/api/flows/metrics", {"groups": "racks"}, "groups"),
    ("/api/flows/metrics", {"filters": "namespace~("}, "filters"),
    ("/api/flows/metrics", {"startTime": 10, "endTime": 5}, "endTime"),
    ("/api/topology", {"scope": "pod"}, "scope"),
    ("/api/topology", {"scope": "zone", "groups": "hosts"}, "groups"),
    ("/api/topology", {"groups": "teams"}, "groups"),
    ("/api/topology", {"function": "p50"}, "function"),
    ("/api/topology", {"packetLoss": "most"}, "packetLoss"),
    ("/api/topology", {"timeRange": -5}, "timeRange"),
    ("/api/export", {"format": "xlsx"}, "format"),
    ("/api/export", {"columns": "Bytes,Nope"}, "columns"),
    ("/api/export", {"columns": "Bytes,Bytes"}, "columns"),
    ("/api/export", {"limit": 0}, "limit"),
    ("/api/export", {"filters": "port=http"}, "filters"),
    ("/api/export", {"recordType": "all"}, "recordType"),
    ("/api/resources/namespaces", {"startTime": "soon"}, "startTime"),
    ("/api/resources/kinds/Pod/names", {"timeRange": 5, "endTime": 9}, "timeRange"),
    ("/api/health", {"groupBy": "team"}, "groupBy"),
    ("/api/health", {"filters": "&"}, "filters"),
]


@pytest.mark.parametrize(("path", "params", "parameter"), BAD, ids=[f"{b[0]}-{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_is_a_400_naming_the_parameter(model_client: TestClient, path: str, params: dict[str, Any],
                                                 parameter: str) -> None:
    r = model_client.get(path, params=params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["parameter"] == parameter and "Traceback" not in body["error"]
    metrics = model_client.get("/metrics").text
    assert f'parameter="{parameter}"' in metrics


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_time_sorted_flows_read_only_the_hours_they_need(model_client: TestClient, order: str) -> None:
    per_hour = len(model.in_range(BASE_MS, BASE_MS + 3_600_000))
    small = get(model_client, "/api/flows", sortOrder=order, limit=10)
    assert small["stats"]["filesScanned"] == 1 and small["stats"]["limitReached"]
    assert small["stats"]["rowsScanned"] < model.N
    both = get(model_client, "/api/flows", sortOrder=order, limit=per_hour + 5)  # spills into the second hour
    assert both["stats"]["filesScanned"] == 2 and both["stats"]["numRows"] == per_hour + 5
    ends = [f["TimeFlowEndMs"] for f in both["flows"]]
    assert ends == sorted(ends, reverse=order == "desc")
    every = sorted((r["TimeFlowEndMs"] for r in _export_rows()), reverse=order == "desc")
    assert ends == every[:per_hour + 5]


def _sample(text: str, name: str, route: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and f'route="{route}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_self_metrics_count_requests_latency_and_rows(model_client: TestClient) -> None:
    before = model_client.get("/metrics").text
    get(model_client, "/api/topology")
    r = model_client.get("/api/export", params={**ALL, "format": "csv", "columns": "Bytes"})
    exported = len(r.text.splitlines()) - 1
    after = model_client.get("/metrics").text
    for route in ("/api/topology", "/api/export"):
        assert _sample(after, "flowlake_api_requests_total", route) == _sample(before, "flowlake_api_requests_total",
                                                                               route) + 1
        assert _sample(after, "flowlake_api_request_seconds_count", route) == _sample(
            before, "flowlake_api_request_seconds_count", route) + 1
        assert _sample(after, "flowlake_api_rows_scanned_total", route) - _sample(
            before, "flowlake_api_rows_scanned_total", route) == model.N
    assert _sample(after, "flowlake_api_rows_returned_total", "/api/export") - _sample(
        before, "flowlake_api_rows_returned_total", "/api/export") == exported == len(_export_rows())


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort_by", ["DnsLatencyMs", "TimeFlowEndMs"])
def test_sort_with_few_keys_nulls_last_and_no_match(model_client: TestClient, sort_by: str, order: str) -> None:
    pair = 'src_namespace="shop"&dst_namespace="db"'
    rows = [r for r in _export_rows() if r.get("SrcK8S_Namespace") == "shop" and r.get("DstK8S_Namespace") == "db"]
    body = get(model_client, "/api/flows", sortBy=sort_by, sortOrder=order, limit=len(rows) + 10, filters=pair)
    keyed = sorted((r[sort_by] for r in rows if r[sort_by] is not None), reverse=order == "desc")
    got = [f.get(sort_by) for f in body["flows"]]
    assert got == keyed + [None] * (len(rows) - len(keyed))  # every match, nulls last
    assert not body["stats"]["limitReached"]
    small = get(model_client, "/api/flows", sortBy=sort_by, sortOrder=order, limit=3, filters=pair)
    assert [f.get(sort_by) for f in small["flows"]] == keyed[:3] and small["stats"]["limitReached"]
    none = get(model_client, "/api/flows", sortBy=sort_by, sortOrder=order, filters='src_namespace="nope"')
    assert none["flows"] == [] and none["stats"]["numRows"] == 0
