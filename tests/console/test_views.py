"""Every console view in a real browser against the API serving a generated lake: overview charts whose
totals equal the API's, the topology graph drawn with exactly the lake's nodes and edges (and step into),
network health, filter autocomplete, refresh, and the "not available" state of a server without an endpoint."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

from tests.console.conftest import END_S, START_S, Lake, api, dedup, loads, node_ids, open_view, screenshot, wait_loaded

if TYPE_CHECKING:
    from playwright.sync_api import Page

RANGE = {"startTime": START_S, "endTime": END_S}


def test_overview_totals_equal_the_api(page: Page, server: str, lake: Lake) -> None:
    open_view(page, server, "overview", scope="namespace", top=10)
    panels: dict[str, Any] = page.evaluate("window.__flowlake.overview")
    assert {p["status"] for p in panels.values()} == {"ready"}, panels
    for panel, kind in (("byte_rates", "Bytes"), ("packet_rates", "Packets"),
                        ("dropped_packet_rates", "PktDropPackets")):
        want = api(server, "/api/flows/metrics", aggregateBy="app", type=kind, function="rate", **RANGE)
        shown = page.get_attribute(f"#panel-{panel} .total", "data-total")
        assert shown is not None and float(shown) == want["metrics"][0]["total"], panel
    # The API's total rate is the deduplicated byte count over the range: check it against the lake too.
    total = api(server, "/api/flows/metrics", aggregateBy="app", type="Bytes", function="sum", **RANGE)
    assert total["metrics"][0]["total"] == dedup(lake.in_range())["Bytes"].sum()
    # Top talkers: one bar per API series, in the API's order, with its total.
    want = api(server, "/api/flows/metrics", aggregateBy="namespace", type="Bytes", function="rate", top=10, **RANGE)
    bars = page.locator("#panel-top_avg_byte_rates li").evaluate_all(
        "(lis) => lis.map((li) => Number(li.dataset.total))")
    assert bars == [s["total"] for s in want["metrics"]]
    drops = page.locator("#panel-cause_dropped_packet_rates li").evaluate_all(
        "(lis) => lis.map((li) => li.dataset.name)")
    causes = set(lake.in_range().filter(pl.col("PktDropPackets") > 0)["PktDropLatestDropCause"].drop_nulls())
    assert set(drops) == causes
    rcodes = page.locator("#panel-rcode_dns_latency_flows li").evaluate_all("(lis) => lis.map((li) => li.dataset.name)")
    assert set(rcodes) == set(lake.in_range()["DnsFlagsResponseCode"].drop_nulls())
    assert page.locator("#panel-byte_rates canvas").count() >= 1  # uPlot drew the chart
    screenshot(page, "overview")
    # Another scope: the talkers become owners, still the API's series.
    before = loads(page)
    page.select_option("#overview-scope", "owner")
    wait_loaded(page, before)
    want = api(server, "/api/flows/metrics", aggregateBy="owner", type="Bytes", function="rate", top=10, **RANGE)
    names = page.locator("#panel-top_avg_byte_rates li").evaluate_all("(lis) => lis.map((li) => li.dataset.name)")
    assert len(names) == len(want["metrics"]) == 10
    assert all("→" in n for n in names)
    series = page.evaluate("window.__flowlake.overview.top_avg_byte_rates.series")
    assert [s["metric"] for s in series] == [m["metric"] for m in want["metrics"]]


def expected_graph(frame: pl.DataFrame, level: str) -> tuple[set[str], set[tuple[str, str]]]:
    pairs = dedup(frame).select(node_ids("Src", level).alias("s"), node_ids("Dst", level).alias("t")).unique()
    edges = set(pairs.rows())
    return {n for e in edges for n in e}, edges


def drawn(page: Page) -> tuple[set[str], set[tuple[str, str]]]:
    d = page.evaluate("window.__flowlake.topology.drawn")
    return set(d["nodes"]), {(e["source"], e["target"]) for e in d["edges"]}


def test_topology_draws_the_lake_and_steps_into_a_node(page: Page, server: str, lake: Lake) -> None:
    open_view(page, server, "topology", scope="namespace", edges=500)
    nodes, edges = expected_graph(lake.in_range(), "namespace")
    assert drawn(page) == (nodes, edges)
    assert page.get_attribute("#topology-summary", "data-edges") == str(len(edges))
    screenshot(page, "topology")

    page.evaluate("window.__flowlake.topology.select('namespace:payments')")
    side = page.locator("#side-panel")
    side.wait_for(state="visible")
    node = next(n for n in page.evaluate("window.__flowlake.topology.nodes") if n["id"] == "namespace:payments")
    assert side.locator("h3").inner_text() == "payments"
    assert float(side.locator("#side-stats td").first.get_attribute("data-value") or "nan") == node["in"]
    page.locator("#side-chart canvas").first.wait_for()
    screenshot(page, "topology-side-panel")

    before = loads(page)
    page.click("#step-into")
    wait_loaded(page, before)
    assert page.evaluate("window.__flowlake.topology.scope") == "owner"
    assert page.locator("[data-testid=filter-chips] .chip").first.get_attribute("data-filter") == 'namespace="payments"'
    ns = pl.col("SrcK8S_Namespace").eq("payments").fill_null(False) \
        | pl.col("DstK8S_Namespace").eq("payments").fill_null(False)
    assert drawn(page) == expected_graph(lake.in_range().filter(ns), "owner")


def test_topology_groups(page: Page, server: str, lake: Lake) -> None:
    open_view(page, server, "topology", scope="namespace", groups="hosts", edges=500)
    want = api(server, "/api/topology", scope="namespace", groups="hosts", top=500, **RANGE)
    groups = {n["group"] for n in want["nodes"] if n["group"] is not None}
    assert groups
    d = page.evaluate("window.__flowlake.topology.drawn")
    assert set(d["groups"]) == {f"group:{g}" for g in groups}
    assert set(d["nodes"]) == {n["id"] for n in want["nodes"]}
    hosts = set(lake.in_range()["SrcK8S_HostName"].drop_nulls()) | set(lake.in_range()["DstK8S_HostName"].drop_nulls())
    assert {g.split(":", 1)[-1] for g in groups} <= hosts | {""}


def test_network_health(page: Page, server: str, lake: Lake) -> None:
    open_view(page, server, "health", groupBy="namespace")
    want = api(server, "/api/health", groupBy="namespace", **RANGE)
    assert float(page.get_attribute("#health-score", "data-score") or "nan") == want["score"]
    assert page.locator("#health-rules tbody tr").count() == len(want["rules"])
    rows = page.locator("#health-items tbody tr")
    assert rows.count() == len(want["items"])
    # The lake's injected ServFail answers (a third of them) make DNSErrors fire for some namespace.
    assert "DNSErrors" in rows.evaluate_all("(trs) => trs.map((tr) => tr.dataset.rule)")
    screenshot(page, "health")
    row = page.locator("#health-items tbody tr[data-rule=DNSErrors]").first
    group = row.locator("td").nth(2).inner_text()
    assert group.startswith("K8S_Namespace=")
    ns = group.split("=", 1)[1]
    assert any(i["rule"] == "DNSErrors" and i["group"] == {"K8S_Namespace": ns} for i in want["items"])
    before = loads(page)
    row.locator("button").click()
    wait_loaded(page, before)
    assert page.evaluate("window.__flowlake.state.view") == "table"
    chips = page.locator("[data-testid=filter-chips] .chip").evaluate_all("(cs) => cs.map((c) => c.dataset.filter)")
    assert chips == [f'namespace="{ns}"']
    frame = lake.in_range()
    n = frame.filter((pl.col("SrcK8S_Namespace") == ns) | (pl.col("DstK8S_Namespace") == ns)).height
    assert page.get_attribute("#table-stats", "data-rows") == str(min(n, 100))


def test_filter_autocomplete_from_resources(page: Page, server: str, lake: Lake) -> None:
    open_view(page, server, "table")
    page.fill("#filter-key", "namespace")
    page.dispatch_event("#filter-key", "change")
    page.focus("#filter-value")
    page.wait_for_selector("#filter-value[data-suggestions-for=namespace]", state="attached")
    options = page.locator("#filter-values option").evaluate_all("(os) => os.map((o) => o.value)")
    frame = lake.in_range()
    namespaces = set(frame["SrcK8S_Namespace"].drop_nulls()) | set(frame["DstK8S_Namespace"].drop_nulls())
    assert options == [f'"{n}"' for n in sorted(namespaces)]
    # Names are suggested for the kind and namespace already filtered on.
    page.fill("#filter-key", "namespace")
    page.fill("#filter-value", '"shop"')
    before = loads(page)
    page.click("#filter-add")
    wait_loaded(page, before)
    page.fill("#filter-key", "src_name")
    page.dispatch_event("#filter-key", "change")
    page.wait_for_selector("#filter-value[data-suggestions-for=src_name]", state="attached")
    options = page.locator("#filter-values option").evaluate_all("(os) => os.map((o) => o.value)")
    pods = set()
    for side in ("Src", "Dst"):
        mine = frame.filter((pl.col(f"{side}K8S_Namespace") == "shop") & (pl.col(f"{side}K8S_Type") == "Pod"))
        pods |= set(mine[f"{side}K8S_Name"].drop_nulls())
    assert options == [f'"{n}"' for n in sorted(pods)]


def test_refresh_now_and_auto_refresh(page: Page, server: str) -> None:
    page.clock.install()  # the page's timers run on a clock the test moves
    open_view(page, server, "table")
    before = loads(page)
    page.click("#reload")
    wait_loaded(page, before)
    before = loads(page)
    page.select_option("#refresh", "15")
    wait_loaded(page, before)
    assert re.search(r"[?&]refresh=15\b", page.evaluate("location.hash"))
    for _ in range(2):  # every 15 s the view queries again, by itself
        before = loads(page)
        page.clock.run_for(15_000)
        wait_loaded(page, before)
    page.reload()
    wait_loaded(page, 0)
    assert page.input_value("#refresh") == "15"
    before = loads(page)
    page.select_option("#refresh", "0")
    wait_loaded(page, before)
    before = loads(page)
    page.clock.run_for(60_000)
    page.wait_for_timeout(300)
    assert loads(page) == before  # off: nothing more


@pytest.mark.parametrize(("view", "path", "selector"), [
    ("topology", "/api/topology", "#topology-message"),
    ("health", "/api/health", "#health-message"),
    ("overview", "/api/flows/metrics", "#panel-byte_rates .unavailable"),
])
def test_a_missing_endpoint_shows_not_available(page: Page, server: str, view: str, path: str, selector: str) -> None:
    # An older or partial API answers 404: the view must say so rather than break.
    page.route(f"**{path}?*", lambda route: route.fulfill(status=404, content_type="application/json",
                                                         body='{"detail": "Not Found"}'))
    open_view(page, server, view)
    assert page.inner_text(selector).startswith("Not available")


def test_export_not_available_on_a_server_without_it(page: Page, server: str) -> None:
    schema = api(server, "/openapi.json")
    del schema["paths"]["/api/export"]
    page.route("**/openapi.json", lambda route: route.fulfill(json=schema))
    open_view(page, server, "table")
    assert page.is_disabled("#export")
    assert page.inner_text("#export-error").startswith("Export not available")


def test_page_loads_every_view_from_the_api_origin_only(page: Page, server: str) -> None:
    # The `page` fixture fails the test on any request outside the API's origin (no CDN: works offline).
    for view in ("overview", "topology", "table", "health"):
        open_view(page, server, view)
        assert page.locator("#tabs a.active").get_attribute("data-view") == view
