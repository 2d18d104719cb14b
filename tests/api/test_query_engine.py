"""engine.query timeseries, topology and tenancy over a small enriched lake, checked against plain Python.

Expected answers come from `tests.api.model.ROWS` with dict loops and a hand-written percentile, never
from Polars, so the Polars plans are compared with an independent computation.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from flowlake.engine.query import QueryError
from flowlake.engine.query.flows import FlowQuery, run_flows
from flowlake.engine.query.timeseries import MetricQuery, auto_step_s, run_metrics
from flowlake.engine.query.topology import TopologyQuery, run_topology
from tests.api import model
from tests.api.model import Row
from tests.conftest import BASE_MS

START, END = BASE_MS, BASE_MS + model.SPAN_MS


@pytest.fixture(scope="module")
def lake(model_lake: str) -> str:
    return model_lake


def percentile(xs: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), written out."""
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def stat(function: str, xs: list[float], seconds: float) -> float:
    return {"sum": lambda: sum(xs), "rate": lambda: sum(xs) / seconds, "count": lambda: float(len(xs)),
            "avg": lambda: sum(xs) / len(xs), "min": lambda: min(xs), "max": lambda: max(xs),
            "p90": lambda: percentile(xs, 0.9), "p99": lambda: percentile(xs, 0.99)}[function]()


def label(r: Row, name: str) -> str:
    v = r.get(name)
    return "" if v is None else str(v)


# type -> (rows counted, value of a row)
MEASURES: dict[str, tuple[Callable[[Row], bool], Callable[[Row], float]]] = {
    "Bytes": (model.dedup, lambda r: float(r["Bytes"])),
    "Packets": (model.dedup, lambda r: float(r["Packets"])),
    "PktDropPackets": (lambda r: (r["PktDropPackets"] or 0) > 0, lambda r: float(r["PktDropPackets"])),
    "DnsLatencyMs": (lambda r: r["DnsLatencyMs"] is not None, lambda r: float(r["DnsLatencyMs"])),
    "TimeFlowRttNs": (lambda r: r["TimeFlowRttNs"] is not None, lambda r: r["TimeFlowRttNs"] / 1e6),
    "Flows": (lambda r: True, lambda r: 1.0),
    "DnsFlows": (lambda r: r["DnsId"] is not None, lambda r: 1.0),
}


def expected_series(labels: list[str], kind: str, function: str, step: int,
                    scope: frozenset[str] | None = None) -> dict[tuple[str, ...], tuple[float, dict[int, float]]]:
    keep, val = MEASURES[kind]
    buckets: dict[tuple[str, ...], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in model.visible(model.in_range(START, END), scope):
        if keep(r):
            t = r["TimeFlowEndMs"] // (step * 1000) * step
            buckets[tuple(label(r, n) for n in labels)][t].append(val(r))
    out = {}
    for key, by_t in buckets.items():
        every = [x for xs in by_t.values() for x in xs]
        out[key] = (stat(function, every, (END - START) / 1000),
                    {t: stat(function, xs, step) for t, xs in by_t.items()})
    return out


def got_series(frame_rows: list[dict[str, object]], labels: list[str]
               ) -> dict[tuple[str, ...], tuple[float, dict[int, float]]]:
    out: dict[tuple[str, ...], tuple[float, dict[int, float]]] = {}
    for r in frame_rows:
        key = tuple(str(r[n]) for n in labels)
        total, values = out.setdefault(key, (float(r["total"]), {}))  # type: ignore[arg-type]
        assert total == r["total"]
        values[int(r["t"])] = float(r["value"])  # type: ignore[arg-type]
    return out


def assert_close(got: dict[tuple[str, ...], tuple[float, dict[int, float]]],
                 want: dict[tuple[str, ...], tuple[float, dict[int, float]]]) -> None:
    assert set(got) == set(want)
    for key, (total, values) in want.items():
        assert got[key][0] == pytest.approx(total), key
        assert set(got[key][1]) == set(values), key
        for t, v in values.items():
            assert got[key][1][t] == pytest.approx(v), (key, t)


CASES = [
    ("namespace", ["SrcK8S_Namespace", "DstK8S_Namespace"], "Bytes", "sum", 600),
    ("namespace", ["SrcK8S_Namespace", "DstK8S_Namespace"], "Bytes", "rate", 300),
    ("app", [], "Packets", "rate", 900),
    ("zone", ["SrcK8S_Zone", "DstK8S_Zone"], "Flows", "count", 1800),
    ("host", ["SrcK8S_HostName", "DstK8S_HostName"], "PktDropPackets", "sum", 3600),
    ("app", [], "DnsLatencyMs", "p90", 600),
    ("DnsFlagsResponseCode", ["DnsFlagsResponseCode"], "DnsFlows", "count", 1200),
    ("namespace", ["SrcK8S_Namespace", "DstK8S_Namespace"], "TimeFlowRttNs", "avg", 600),
    ("cluster", ["K8S_ClusterName"], "TimeFlowRttNs", "p99", 7200),
    ("DstK8S_Type", ["DstK8S_Type"], "DnsLatencyMs", "max", 600),
    ("DstK8S_Type", ["DstK8S_Type"], "DnsLatencyMs", "min", 600),
]


@pytest.mark.parametrize(("aggregate_by", "labels", "kind", "function", "step"), CASES,
                         ids=[f"{c[0]}-{c[2]}-{c[3]}" for c in CASES])
def test_metrics_match_the_model(lake: str, aggregate_by: str, labels: list[str], kind: str,
                                 function: str, step: int) -> None:
    q = MetricQuery(start_ms=START, end_ms=END, aggregate_by=aggregate_by, type=kind, function=function,
                    step_s=step, top=1000)
    frame, stats = run_metrics(lake, q)
    assert list(frame.columns) == [*labels, "t", "value", "total"]
    want = expected_series(labels, kind, function, step)
    assert_close(got_series(frame.to_dicts(), labels), want)
    totals = [r["total"] for r in frame.unique([*labels, "total"], maintain_order=True).to_dicts()]
    assert totals == sorted(totals, reverse=True)  # series ordered by total, descending
    assert stats.files_scanned == 2 and stats.rows_scanned == model.N and not stats.limit_reached


def test_metrics_top_keeps_the_largest_totals(lake: str) -> None:
    labels = ["SrcK8S_Namespace", "DstK8S_Namespace"]
    want = expected_series(labels, "Bytes", "sum", 600)
    frame, stats = run_metrics(lake, MetricQuery(start_ms=START, end_ms=END, function="sum", step_s=600, top=3))
    biggest = sorted(want, key=lambda k: -want[k][0])[:3]
    assert list(got_series(frame.to_dicts(), labels)) == biggest
    assert stats.limit_reached


def test_metrics_groups_add_labels(lake: str) -> None:
    labels = ["SrcK8S_Namespace", "DstK8S_Namespace", "SrcK8S_HostName", "DstK8S_HostName"]
    q = MetricQuery(start_ms=START, end_ms=END, groups="hosts", function="sum", step_s=3600, top=1000)
    frame, _ = run_metrics(lake, q)
    assert_close(got_series(frame.to_dicts(), labels), expected_series(labels, "Bytes", "sum", 3600))


@pytest.mark.parametrize("tenant", [frozenset({"shop"}), frozenset({"payments", "db"}), frozenset()],
                         ids=["shop", "payments+db", "nothing"])
def test_metrics_tenant_sees_only_its_rows(lake: str, tenant: frozenset[str]) -> None:
    labels = ["SrcK8S_Namespace", "DstK8S_Namespace"]
    q = MetricQuery(start_ms=START, end_ms=END, function="sum", step_s=600, top=1000)
    frame, _ = run_metrics(lake, q, scope=tenant)
    got = got_series(frame.to_dicts(), labels)
    assert_close(got, expected_series(labels, "Bytes", "sum", 600, tenant))
    assert all(src in tenant or dst in tenant for src, dst in got)


def test_auto_step() -> None:
    assert auto_step_s(3_600_000) == 30
    assert auto_step_s(24 * 3_600_000) == 600
    assert auto_step_s(365 * 86_400_000) == math.ceil(365 * 86_400 / 240)


def node_key(r: Row, side: str, level: str) -> str:
    ns, kind, name = (r.get(f"{side}K8S_{f}") for f in ("Namespace", "Type", "Name"))
    if level == "namespace":
        return f"namespace:{ns or ''}"
    if level == "owner":
        parts = [ns, r.get(f"{side}K8S_OwnerType"), r.get(f"{side}K8S_OwnerName")]
        return "owner:" + ("/".join(p or "" for p in parts) if any(parts) else "")
    if level == "host":
        return f"host:{r.get(f'{side}K8S_HostName') or ''}"
    assert level == "resource"
    if name is None:
        return f"resource:{r[f'{side}Addr']}"
    return "resource:" + "/".join(p for p in (ns, kind, name) if p is not None)


def expected_graph(level: str, kind: str, function: str, scope: frozenset[str] | None = None,
                   group: str | None = None) -> tuple[dict[tuple[str, str], float], dict[str, float], dict[str, float]]:
    keep, val = MEASURES[kind]
    edges: dict[tuple[str, str], list[float]] = defaultdict(list)
    ins: dict[str, list[float]] = defaultdict(list)
    outs: dict[str, list[float]] = defaultdict(list)
    for r in model.visible(model.in_range(START, END), scope):
        if not keep(r):
            continue
        s, d = node_key(r, "Src", level), node_key(r, "Dst", level)
        if group:
            s, d = node_key(r, "Src", group) + "|" + s, node_key(r, "Dst", group) + "|" + d
        edges[(s, d)].append(val(r))
        outs[s].append(val(r))
        ins[d].append(val(r))
    sec = (END - START) / 1000
    return ({k: stat(function, v, sec) for k, v in edges.items()}, {k: stat(function, v, sec) for k, v in ins.items()},
            {k: stat(function, v, sec) for k, v in outs.items()})


GRAPHS = [("namespace", "Bytes", "sum", None), ("owner", "Packets", "rate", None),
          ("resource", "Flows", "count", None), ("namespace", "DnsLatencyMs", "p90", None),
          ("resource", "Bytes", "sum", "host"), ("host", "TimeFlowRttNs", "max", None)]


@pytest.mark.parametrize(("level", "kind", "function", "group"), GRAPHS,
                         ids=[f"{g[0]}-{g[1]}-{g[2]}-{g[3]}" for g in GRAPHS])
def test_topology_matches_the_model(lake: str, level: str, kind: str, function: str, group: str | None) -> None:
    q = TopologyQuery(start_ms=START, end_ms=END, scope_level=level, type=kind, function=function, top=1000,
                      groups={None: "none", "host": "hosts"}[group])
    nodes, edges, stats = run_topology(lake, q)
    want_edges, want_in, want_out = expected_graph(level, kind, function, group=group)
    got_edges = {(r["source"], r["target"]): r["value"] for r in edges.to_dicts()}
    assert set(got_edges) == set(want_edges)
    for k, v in want_edges.items():
        assert got_edges[k] == pytest.approx(v), k
    assert edges["value"].to_list() == sorted(edges["value"].to_list(), reverse=True)
    assert set(nodes["id"]) == set(want_in) | set(want_out)
    for n in nodes.to_dicts():
        assert n["scope"] == level
        for col, want in (("in", want_in), ("out", want_out)):
            if n["id"] in want:
                assert n[col] == pytest.approx(want[n["id"]]), (n["id"], col)
            else:
                assert n[col] == (0.0 if function in ("sum", "rate", "count") else None)
    assert stats.num_rows == len(want_edges) and not stats.limit_reached


def test_topology_top_and_node_fields(lake: str) -> None:
    want_edges, _, _ = expected_graph("owner", "Bytes", "sum")
    nodes, edges, stats = run_topology(lake, TopologyQuery(start_ms=START, end_ms=END, scope_level="owner", top=5))
    assert edges["value"].to_list() == pytest.approx(sorted(want_edges.values(), reverse=True)[:5])
    assert stats.limit_reached
    assert set(nodes["id"]) == set(edges["source"]) | set(edges["target"])
    for n in nodes.to_dicts():
        if n["id"] == "owner:":
            assert n["label"] == "unknown" and n["K8S_Namespace"] is None
        else:
            assert n["id"] == f"owner:{n['K8S_Namespace']}/{n['K8S_OwnerType']}/{n['K8S_OwnerName']}"
            assert n["label"] == n["K8S_OwnerName"]


@pytest.mark.parametrize("tenant", [frozenset({"shop"}), frozenset({"kube-system", "db"})], ids=["shop", "two"])
def test_topology_tenant(lake: str, tenant: frozenset[str]) -> None:
    nodes, edges, _ = run_topology(lake, TopologyQuery(start_ms=START, end_ms=END, top=1000), scope=tenant)
    want_edges, want_in, want_out = expected_graph("namespace", "Bytes", "sum", tenant)
    assert {(r["source"], r["target"]): pytest.approx(r["value"]) for r in edges.to_dicts()} == want_edges
    assert all(s.split(":")[1] in tenant or t.split(":")[1] in tenant for s, t in want_edges)
    assert {n["id"]: (n["in"], n["out"]) for n in nodes.to_dicts()} == {
        k: (pytest.approx(want_in.get(k, 0.0)), pytest.approx(want_out.get(k, 0.0)))
        for k in set(want_in) | set(want_out)}


def test_flows_tenant_scope(lake: str) -> None:
    tenant = frozenset({"payments"})
    frame, _ = run_flows(lake, FlowQuery(start_ms=START, end_ms=END, limit=100_000), scope=tenant)
    want = model.visible(model.in_range(START, END), tenant)
    assert sorted(frame["TimeFlowEndMs"].to_list()) == sorted(r["TimeFlowEndMs"] for r in want)
    frame, _ = run_flows(lake, FlowQuery(start_ms=START, end_ms=END, filters='namespace="shop"'), scope=tenant)
    assert all("payments" in (r["SrcK8S_Namespace"], r["DstK8S_Namespace"]) for r in frame.to_dicts())


BAD = [
    (MetricQuery, {"type": "Octets"}, "type"),
    (MetricQuery, {"function": "median"}, "function"),
    (MetricQuery, {"type": "DnsLatencyMs", "function": "rate"}, "function"),
    (MetricQuery, {"type": "Flows", "function": "p90"}, "function"),
    (MetricQuery, {"aggregate_by": "nope"}, "aggregate_by"),
    (MetricQuery, {"aggregate_by": "Interfaces"}, "aggregate_by"),
    (MetricQuery, {"groups": "hosts+racks"}, "groups"),
    (MetricQuery, {"top": 0}, "top"),
    (MetricQuery, {"step_s": 0}, "step_s"),
    (MetricQuery, {"start_ms": 0, "end_ms": 86_400_000_000, "step_s": 1}, "step_s"),
    (MetricQuery, {"start_ms": 10, "end_ms": 10}, "end_ms"),
    (MetricQuery, {"filters": "port="}, "filters"),
    (MetricQuery, {"packet_loss": "some"}, "packet_loss"),
    (TopologyQuery, {"scope_level": "pod"}, "scope_level"),
    (TopologyQuery, {"scope_level": "zone", "groups": "hosts"}, "groups"),
    (TopologyQuery, {"record_type": "x"}, "record_type"),
    (TopologyQuery, {"top": 100_000}, "top"),
]


@pytest.mark.parametrize(("cls", "kwargs", "parameter"), BAD,
                         ids=[f"{b[0].__name__}-{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_bad_queries_name_the_parameter(cls: type, kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(QueryError) as info:
        cls(**kwargs)
    assert info.value.parameter == parameter


@pytest.mark.parametrize("function", ["sum", "p90"])
def test_missing_and_empty_labels_are_one_series(tmp_path: Path, function: str) -> None:
    from flowlake.engine.sinks.lake import LakeSink
    from tests.conftest import make_batch

    url = str(tmp_path / "lake")
    sink = LakeSink(url)
    ns = [None, "", "shop", None, ""]
    sink.write(pl.from_arrow(make_batch(5, SrcK8S_Namespace=ns)))  # type: ignore[arg-type]
    sink.close()
    q = MetricQuery(start_ms=START, end_ms=START + 3_600_000, aggregate_by="SrcK8S_Namespace", function=function,
                    step_s=3600)
    frame, _ = run_metrics(url, q)
    assert sorted(frame["SrcK8S_Namespace"].to_list()) == ["", "shop"]
    blank = frame.filter(pl.col("SrcK8S_Namespace") == "")["value"].item()
    bytes_ = [100 + i for i in (0, 1, 3, 4)]  # make_batch: Bytes = 100 + i
    assert blank == pytest.approx(sum(bytes_) if function == "sum" else percentile(bytes_, 0.9))
