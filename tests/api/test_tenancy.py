"""Multi-tenancy: through every data endpoint, a tenant sees exactly the flows whose source or destination
namespace it owns, never a row, series, node, value or name from elsewhere.

The app runs with a real token file (`TokenStore.from_file`); answers are compared with
`tests.api.model.ROWS` restricted to the tenant's namespaces in plain Python.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowlake.api import create_app
from flowlake.api.auth import TokenStore
from tests.api import model
from tests.api.test_query_engine import expected_graph, expected_series, got_series
from tests.api.test_routes import ALL, CUR, expected_health, got_health

TENANTS: dict[str, frozenset[str]] = {
    "shop-team": frozenset({"shop"}),
    "pay-db": frozenset({"payments", "db"}),
    "system": frozenset({"kube-system"}),
    "ghost": frozenset({"not-in-the-lake"}),
}
TOKENS = {name: f"token-of-{name}-0123456789" for name in [*TENANTS, "root"]}
ENDPOINTS = ["/api/flows", "/api/flows/metrics", "/api/topology", "/api/export", "/api/resources/namespaces",
             "/api/resources/clusters", "/api/resources/zones", "/api/resources/hosts",
             "/api/resources/kinds/Pod/names", "/api/health", "/api/status"]


@pytest.fixture(scope="module")
def client(model_lake: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path = Path(tmp_path_factory.mktemp("auth")) / "tokens.yaml"
    lines = ["tokens:", f"  - {{name: root, token: {TOKENS['root']}, role: admin}}"]
    lines += [f"  - {{name: {n}, token: {TOKENS[n]}, role: tenant, namespaces: [{', '.join(sorted(ns))}]}}"
              for n, ns in TENANTS.items()]
    path.write_text("\n".join(lines) + "\n")
    with TestClient(create_app(model_lake, authenticator=TokenStore.from_file(path))) as c:
        yield c


def call(client: TestClient, who: str, path: str, **params: Any) -> Any:
    r = client.get(path, params={**ALL, **params}, headers={"Authorization": f"Bearer {TOKENS[who]}"})
    assert r.status_code == 200, r.text
    return r if path == "/api/export" else r.json()


def visible(tenant: str) -> list[model.Row]:
    return model.visible(model.in_range(ALL["startTime"] * 1000, (ALL["endTime"] + 1) * 1000), TENANTS[tenant])


def owns(tenant: str, *namespaces: Any) -> bool:
    return any(n in TENANTS[tenant] for n in namespaces)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_no_or_wrong_token_is_a_401_naming_the_header(client: TestClient, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-known-token"}, {"Authorization": "Basic abc"}):
        r = client.get(path, params=ALL, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["parameter"] == "Authorization" and r.headers["www-authenticate"] == "Bearer"


def test_operational_routes_need_no_token(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("tenant", TENANTS)
def test_flows(client: TestClient, tenant: str) -> None:
    body = call(client, tenant, "/api/flows", limit=100_000)
    assert all(owns(tenant, f.get("SrcK8S_Namespace"), f.get("DstK8S_Namespace")) for f in body["flows"])
    assert sorted(f["TimeFlowEndMs"] for f in body["flows"]) == sorted(r["TimeFlowEndMs"] for r in visible(tenant))
    assert body["stats"]["rowsScanned"] is None and body["stats"]["filesScanned"] is None
    # asking for another namespace only narrows the tenant's own flows
    other = call(client, tenant, "/api/flows", limit=100_000, filters='src_namespace="db"')
    assert sorted(f["TimeFlowEndMs"] for f in other["flows"]) == sorted(
        r["TimeFlowEndMs"] for r in visible(tenant) if r.get("SrcK8S_Namespace") == "db")


@pytest.mark.parametrize("tenant", TENANTS)
def test_metrics(client: TestClient, tenant: str) -> None:
    labels = ["SrcK8S_Namespace", "DstK8S_Namespace"]
    body = call(client, tenant, "/api/flows/metrics", function="sum", step=600, top=1000)
    rows = [{**s["metric"], "t": t, "value": v, "total": s["total"]} for s in body["metrics"] for t, v in s["values"]]
    got = got_series(rows, labels)
    want = expected_series(labels, "Bytes", "sum", 600, TENANTS[tenant])
    assert set(got) == set(want)
    for key, (total, values) in want.items():
        assert owns(tenant, *key)
        assert got[key][0] == pytest.approx(total) and got[key][1] == pytest.approx(values)
    app = call(client, tenant, "/api/flows/metrics", aggregateBy="app", function="sum", step=7200)
    want_total = sum(r["Bytes"] for r in visible(tenant) if model.dedup(r))
    assert (app["metrics"][0]["total"] if app["metrics"] else 0) == pytest.approx(want_total)
    per_host = call(client, tenant, "/api/flows/metrics", aggregateBy="host", function="count", type="Flows",
                    step=7200, top=1000)
    assert sum(s["total"] for s in per_host["metrics"]) == len(visible(tenant))


@pytest.mark.parametrize("tenant", TENANTS)
@pytest.mark.parametrize("scope", ["namespace", "owner", "host"])
def test_topology(client: TestClient, tenant: str, scope: str) -> None:
    body = call(client, tenant, "/api/topology", scope=scope, top=1000)
    want_edges, want_in, want_out = expected_graph(scope, "Bytes", "sum", TENANTS[tenant])
    assert {(e["source"], e["target"]): e["value"] for e in body["edges"]} == pytest.approx(want_edges)
    nodes = {n["id"]: (n["in"], n["out"]) for n in body["nodes"]}
    assert nodes == {k: (pytest.approx(want_in.get(k, 0.0)), pytest.approx(want_out.get(k, 0.0)))
                     for k in set(want_in) | set(want_out)}
    if scope == "namespace":
        assert all(owns(tenant, s.split(":", 1)[1], t.split(":", 1)[1]) for s, t in want_edges)


@pytest.mark.parametrize("tenant", TENANTS)
def test_export(client: TestClient, tenant: str) -> None:
    r = call(client, tenant, "/api/export", format="csv", columns="TimeFlowEndMs,SrcK8S_Namespace,DstK8S_Namespace")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert all(owns(tenant, x["SrcK8S_Namespace"], x["DstK8S_Namespace"]) for x in rows)
    assert sorted(int(x["TimeFlowEndMs"]) for x in rows) == sorted(x["TimeFlowEndMs"] for x in visible(tenant))


@pytest.mark.parametrize("tenant", TENANTS)
def test_resources(client: TestClient, tenant: str) -> None:
    rows = visible(tenant)

    def distinct(*cols: str) -> list[str]:
        return sorted({r[c] for r in rows for c in cols if r.get(c)})

    assert call(client, tenant, "/api/resources/namespaces") == distinct("SrcK8S_Namespace", "DstK8S_Namespace")
    assert call(client, tenant, "/api/resources/hosts") == distinct("SrcK8S_HostName", "DstK8S_HostName")
    assert call(client, tenant, "/api/resources/zones") == distinct("SrcK8S_Zone", "DstK8S_Zone")
    assert call(client, tenant, "/api/resources/clusters") == (["c1"] if rows else [])
    pods = sorted({r[f"{s}K8S_Name"] for r in rows for s in ("Src", "Dst") if r.get(f"{s}K8S_Type") == "Pod"})
    assert call(client, tenant, "/api/resources/kinds/Pod/names") == pods


@pytest.mark.parametrize("tenant", TENANTS)
@pytest.mark.parametrize("group_by", ["global", "namespace"])
def test_health(client: TestClient, tenant: str, group_by: str) -> None:
    body = call(client, tenant, "/api/health", startTime=CUR[0], endTime=CUR[1] - 1, groupBy=group_by)
    score, items = expected_health(group_by, TENANTS[tenant])
    assert got_health(body) == items and body["score"] == score
    if group_by == "namespace":
        assert all(i["group"]["K8S_Namespace"] in TENANTS[tenant] for i in body["items"] if i["rule"] != "NoFlows")


def test_admin_sees_everything(client: TestClient) -> None:
    body = call(client, "root", "/api/flows", limit=100_000)
    assert len(body["flows"]) == len(model.in_range(ALL["startTime"] * 1000, (ALL["endTime"] + 1) * 1000))
    assert body["stats"]["rowsScanned"] == model.N
    assert call(client, "root", "/api/resources/namespaces") == ["db", "kube-system", "payments", "shop"]


@pytest.mark.parametrize("path", ["/api/flows", "/api/flows/metrics", "/api/topology", "/api/export", "/api/health"])
def test_a_tenants_queries_do_not_move_the_rows_scanned_metric(client: TestClient, path: str) -> None:
    # /metrics is open: the lake-wide rows a tenant query opened would tell other tenants' volumes.
    from flowlake.engine import selfmetrics

    def scanned() -> float:
        return sum(s.value for m in selfmetrics.REGISTRY.collect() for s in m.samples
                   if s.name == "flowlake_api_rows_scanned_total")

    before = scanned()
    call(client, "shop-team", path)
    assert scanned() == before
    call(client, "root", path)
    assert scanned() > before
