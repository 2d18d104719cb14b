"""Flight query service answers (flows, SQL, metrics, topology, list_flights) against the generator's truth.

The server runs in this process on loopback; the client is `flowlake.engine.client` over real gRPC.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pyarrow.flight as flight
import pytest

import flowlake.engine as fl
from flowlake.api import flight_plan
from flowlake.engine import schema
from flowlake.engine.client import QueryError
from flowlake.engine.query import timeseries, topology
from tests.flight.conftest import END_MS, START_MS


def by_pair(frame: pl.DataFrame, src: str, dst: str, value: str) -> dict[tuple[Any, Any], int]:
    return {(s, d): int(v) for s, d, v in frame.select(src, dst, value).iter_rows()}


def test_list_flights_describes_the_flows_table(url: str) -> None:
    tables = fl.connect(url).tables()
    assert list(tables) == ["flows"]
    assert tables["flows"].equals(schema.SCHEMA)


def test_sql_aggregation_matches_generator_truth(url: str, world: dict[str, Any]) -> None:
    got = fl.connect(url).sql(
        "SELECT SrcK8S_Namespace AS src, DstK8S_Namespace AS dst, count(*) AS n, sum(Bytes) AS b "
        "FROM flows GROUP BY SrcK8S_Namespace, DstK8S_Namespace")
    want = world["truth"].group_by("src_ns", "dst_ns").agg(pl.len().alias("n"), pl.col("bytes").sum())
    assert by_pair(got, "src", "dst", "b") == by_pair(want, "src_ns", "dst_ns", "bytes")
    assert by_pair(got, "src", "dst", "n") == by_pair(want, "src_ns", "dst_ns", "n")
    assert int(got["n"].sum()) == world["synth"].num_rows


def test_sql_time_range_bounds_the_table(url: str, world: dict[str, Any]) -> None:
    mid = START_MS + 3_600_000
    got = fl.connect(url).sql("SELECT count(*) AS n FROM flows", start=mid / 1000, end=END_MS / 1000)
    ends = world["synth"].batch.column("TimeFlowEndMs").to_numpy()
    assert got["n"][0] == int((ends >= mid).sum())


def test_flows_stream_every_matching_row_with_chosen_columns(url: str, world: dict[str, Any]) -> None:
    client = fl.connect(url)
    everything = client.flows(columns=["SrcK8S_Namespace", "Bytes"])
    assert everything.columns == ["SrcK8S_Namespace", "Bytes"]
    assert everything.height == world["synth"].num_rows
    shop = client.flows(filters='namespace="shop"', columns=["SrcK8S_Namespace", "DstK8S_Namespace"])
    t = world["truth"]
    assert shop.height == t.filter((pl.col("src_ns") == "shop") | (pl.col("dst_ns") == "shop")).height


def test_flows_limit_returns_the_newest(url: str, world: dict[str, Any]) -> None:
    got = fl.connect(url).flows(limit=7, columns=["TimeFlowEndMs"])
    ends = sorted(world["synth"].batch.column("TimeFlowEndMs").to_pylist(), reverse=True)[:7]
    assert got["TimeFlowEndMs"].to_list() == ends


def test_metrics_equal_the_engine_query(url: str, world: dict[str, Any]) -> None:
    got = fl.connect(url).metrics(aggregate_by="namespace", function="sum", step=3600,
                                  start=START_MS / 1000, end=END_MS / 1000, top=10)
    want, _ = timeseries.run_metrics(world["lake"], timeseries.MetricQuery(
        start_ms=START_MS, end_ms=END_MS, aggregate_by="namespace", function="sum", step_s=3600, top=10))
    assert got.equals(want)
    assert got.height > 0


def test_metrics_without_a_range_cover_the_whole_lake(url: str, world: dict[str, Any]) -> None:
    got = fl.connect(url).metrics(aggregate_by="app", type="Flows", function="count", step=3600)
    assert int(got["value"].sum()) == world["synth"].num_rows


def test_topology_nodes_and_edges_equal_the_engine_query(url: str, world: dict[str, Any]) -> None:
    got = fl.connect(url).topology(scope="namespace", start=START_MS / 1000, end=END_MS / 1000)
    nodes, edges, _ = topology.run_topology(world["lake"], topology.TopologyQuery(
        start_ms=START_MS, end_ms=END_MS, scope_level="namespace"))
    assert got.nodes.equals(nodes)
    assert got.edges.equals(edges)
    assert edges.height > 0


def test_a_graph_is_computed_once_for_its_nodes_and_edges(url: str, world: dict[str, Any]) -> None:
    """Two tickets (nodes, edges) and the `get_flight_info` of each: one lake query, the same graph."""
    recent = flight_plan.RECENT_TOPOLOGIES
    client = fl.connect(url)
    before = recent.computed
    got = client.topology(scope="owner", start=START_MS / 1000, end=END_MS / 1000, top=7)
    assert recent.computed == before + 1
    raw = flight.FlightClient(url)
    for part in ("nodes", "edges"):
        cmd = json.dumps({"kind": "topology", "scope": "owner", "top": 7, "part": part,
                          "start_time": START_MS / 1000, "end_time": END_MS / 1000}).encode()
        info = raw.get_flight_info(flight.FlightDescriptor.for_command(cmd))
        table = pl.DataFrame(pl.from_arrow(raw.do_get(info.endpoints[0].ticket).read_all()))
        assert table.equals(got.nodes if part == "nodes" else got.edges)
    assert recent.computed == before + 1
    client.topology(scope="owner", time_range=3600, top=7)  # relative: both parts get one absolute start
    assert recent.computed == before + 2
    everything = client.topology(scope="owner", time_range=2e9, top=7)  # before 1970: the whole lake
    assert everything.edges.equals(client.topology(scope="owner", top=7).edges)
    for bad in (0, -5):
        with pytest.raises(QueryError, match="time_range"):
            client.topology(time_range=bad)
    before = recent.computed - 2
    client.topology(scope="namespace", start=START_MS / 1000, end=END_MS / 1000, top=7)  # another graph
    assert recent.computed == before + 3


def test_recent_topologies_expire_keep_tenants_apart_and_stay_bounded() -> None:
    now = [0.0]
    one = pl.DataFrame({"id": ["x" * 10]}).estimated_size() * 2  # bytes of one graph below
    recent = flight_plan.RecentTopologies(ttl=10, max_bytes=int(one * 2.5), clock=lambda: now[0])
    calls: list[str] = []

    def graph(name: str, seconds: float = 0.0) -> tuple[pl.DataFrame, pl.DataFrame]:
        calls.append(name)
        now[0] += seconds  # the time computing takes
        return pl.DataFrame({"id": [name.ljust(10)]}), pl.DataFrame({"id": [name.ljust(10)]})

    def names(got: tuple[pl.DataFrame, pl.DataFrame]) -> str:
        return str(got[0]["id"][0]).strip()

    q = topology.TopologyQuery(start_ms=0, end_ms=1000)
    assert names(recent.get("lake", q, None, lambda: graph("admin"))) == "admin"
    assert names(recent.get("lake", q, frozenset({"shop"}), lambda: graph("shop"))) == "shop"  # not admin's
    assert names(recent.get("lake", q, frozenset({"shop"}), lambda: graph("again"))) == "shop"
    assert calls == ["admin", "shop"]
    now[0] = 10.5  # past the ttl: computed again
    assert names(recent.get("lake", q, None, lambda: graph("later"))) == "later"
    # a graph slower than the ttl is stamped when done: its other part still finds it
    slow = topology.TopologyQuery(start_ms=0, end_ms=5000)
    recent.get("lake", slow, None, lambda: graph("slow", seconds=12))
    assert names(recent.get("lake", slow, None, lambda: graph("slow twice"))) == "slow"
    # bounded by bytes (room for 2): "later" has expired, "slow" and "b" fill it, "later2" pushes out "slow"
    recent.get("lake", topology.TopologyQuery(start_ms=0, end_ms=2000), None, lambda: graph("b"))
    assert names(recent.get("lake", q, None, lambda: graph("later2"))) == "later2"
    assert names(recent.get("lake", slow, None, lambda: graph("slow again"))) == "slow again"  # still fresh
    assert calls == ["admin", "shop", "later", "slow", "b", "later2", "slow again"]
    # too big to keep: served, not kept
    big = flight_plan.RecentTopologies(ttl=10, max_bytes=1, clock=lambda: now[0])
    big.get("lake", q, None, lambda: graph("huge"))
    big.get("lake", q, None, lambda: graph("huge"))
    assert big.computed == 2


def test_get_flight_info_gives_schema_and_a_ticket(url: str) -> None:
    client = flight.FlightClient(url)
    cmd = b'{"kind": "sql", "sql": "SELECT SrcAddr, Bytes FROM flows LIMIT 3"}'
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd))
    assert info.schema.names == ["SrcAddr", "Bytes"]
    table = client.do_get(info.endpoints[0].ticket).read_all()
    assert table.num_rows == 3
    whole = client.get_flight_info(flight.FlightDescriptor.for_path("flows"))
    assert whole.schema.equals(schema.SCHEMA)
    # what SELECT * streams has the flow schema's names and types too
    star = client.do_get(flight.Ticket(b'{"kind": "sql", "sql": "SELECT * FROM flows LIMIT 5"}')).read_all()
    assert [(f.name, f.type) for f in star.schema] == [(f.name, f.type) for f in schema.SCHEMA]
    assert star.num_rows == 5


def test_camel_case_keys_are_accepted(url: str, world: dict[str, Any]) -> None:
    got = fl.connect(url).query({"kind": "flows", "startTime": START_MS / 1000, "endTime": END_MS / 1000,
                                 "columns": ["Bytes"], "packetLoss": "all"})
    assert got.height == world["synth"].num_rows


@pytest.mark.parametrize(("ticket", "parameter"), [
    ({"kind": "nope"}, "kind"),
    ({"kind": "flows", "colums": ["Bytes"]}, "colums"),
    ({"kind": "flows", "columns": ["NotAField"]}, "columns"),
    ({"kind": "flows", "start_time": 10, "end_time": 5}, "end_time"),
    ({"kind": "flows", "filters": "namespace="}, "filters"),
    ({"kind": "metrics", "type": "Bogus"}, "type"),
    ({"kind": "topology", "scope": "galaxy"}, "scope"),
    ({"kind": "sql"}, "sql"),
], ids=["kind", "unknown-key", "column", "range", "filters", "metric-type", "scope", "no-sql"])
def test_bad_tickets_name_the_parameter(url: str, ticket: dict[str, Any], parameter: str) -> None:
    with pytest.raises(QueryError) as err:
        fl.connect(url).query(ticket)
    assert err.value.parameter == parameter
    assert str(err.value)


def test_flows_over_part_of_the_hours(url: str, world: dict[str, Any]) -> None:
    # streamed file by file: the range must still cut inside the hour partitions it opens
    start, end = START_MS + 90 * 60_000, START_MS + 150 * 60_000
    got = fl.connect(url).flows(start=start / 1000, end=end / 1000, columns=["TimeFlowEndMs"])
    ends = world["synth"].batch.column("TimeFlowEndMs").to_numpy()
    assert got.height == int(((ends >= start) & (ends < end)).sum())
    assert got["TimeFlowEndMs"].min() >= start and got["TimeFlowEndMs"].max() < end
