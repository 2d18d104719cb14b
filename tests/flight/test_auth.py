"""Flight uses the HTTP API's bearer tokens: a tenant's flows, SQL, metrics and topology see only its namespaces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

import flowlake.engine as fl
from flowlake.api.auth import TokenStore
from flowlake.api.flight_service import QueryFlightServer
from flowlake.engine import selfmetrics
from flowlake.engine.client import AuthenticationError

ADMIN, SHOP = "admin-token-0123", "shop-team-token-0123"
TENANT = frozenset({"shop", "payments"})


@pytest.fixture(scope="module")
def secured(world: dict[str, Any]) -> Iterator[str]:
    store = TokenStore.from_mapping({"tokens": [
        {"name": "alice", "token": ADMIN, "role": "admin"},
        {"name": "shop-team", "token": SHOP, "role": "tenant", "namespaces": sorted(TENANT)}]})
    srv = QueryFlightServer("grpc://127.0.0.1:0", world["lake"], store)
    yield f"grpc://127.0.0.1:{srv.port}"
    srv.shutdown()


def tenant_truth(world: dict[str, Any]) -> pl.DataFrame:
    t: pl.DataFrame = world["truth"]
    return t.filter(pl.col("src_ns").is_in(sorted(TENANT)).fill_null(False)
                    | pl.col("dst_ns").is_in(sorted(TENANT)).fill_null(False))


def test_admin_sees_everything(secured: str, world: dict[str, Any]) -> None:
    got = fl.connect(secured, token=ADMIN).sql("SELECT count(*) AS n FROM flows")
    assert got["n"][0] == world["synth"].num_rows


def test_tenant_sql_sees_only_its_flows(secured: str, world: dict[str, Any]) -> None:
    client = fl.connect(secured, token=SHOP)
    want = tenant_truth(world)
    got = client.sql("SELECT count(*) AS n, sum(Bytes) AS b FROM flows")
    assert (got["n"][0], got["b"][0]) == (want.height, want["bytes"].sum())
    assert 0 < want.height < world["synth"].num_rows
    # asking for another namespace's own traffic finds nothing
    other = client.sql("SELECT count(*) AS n FROM flows WHERE SrcK8S_Namespace = 'search' "
                       "AND DstK8S_Namespace = 'search'")
    assert other["n"][0] == 0
    # neither does a self-join, a CTE or a sub-select: each reads the same scoped table
    nested = client.sql("WITH a AS (SELECT * FROM flows) SELECT count(*) AS n FROM (SELECT * FROM a) "
                        "WHERE SrcK8S_Namespace NOT IN ('shop', 'payments') "
                        "AND DstK8S_Namespace NOT IN ('shop', 'payments')")
    assert nested["n"][0] == 0


def test_tenant_flows_metrics_topology_are_scoped(secured: str, world: dict[str, Any]) -> None:
    client = fl.connect(secured, token=SHOP)
    flows = client.flows(columns=["SrcK8S_Namespace", "DstK8S_Namespace"])
    assert flows.height == tenant_truth(world).height
    assert flows.filter(~pl.col("SrcK8S_Namespace").is_in(sorted(TENANT)).fill_null(False)
                        & ~pl.col("DstK8S_Namespace").is_in(sorted(TENANT)).fill_null(False)).height == 0
    series = client.metrics(aggregate_by="app", type="Flows", function="count", step=3600)
    assert int(series["value"].sum()) == tenant_truth(world).height
    edges = client.topology(scope="namespace").edges
    for src, dst in edges.select("source", "target").iter_rows():
        assert {src, dst} & {f"namespace:{n}" for n in TENANT}


@pytest.mark.parametrize("token", [None, "not-a-token"], ids=["missing", "wrong"])
def test_bad_token_is_refused_and_counted(secured: str, token: str | None) -> None:
    def refused() -> float:
        return sum(selfmetrics.REGISTRY.get_sample_value("flowlake_flight_requests_total",
                                                         {"kind": k, "status": "unauthenticated"}) or 0.0
                   for k in ("do_get", "list_flights"))

    before = refused()
    with pytest.raises(AuthenticationError, match="refused the token") as err:
        fl.connect(secured, token=token).sql("SELECT 1 AS x FROM flows")
    assert "Bearer" in str(err.value)
    with pytest.raises(AuthenticationError):
        fl.connect(secured, token=token).tables()
    assert refused() == before + 2
