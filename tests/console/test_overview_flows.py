"""The overview's "Top N distribution" Sankey and "Inbound traffic by region" panels in a real browser
against `flowlake api` over the generated lake: every drawn link, node and bar equals a Polars
computation over the lake's Parquet files (exact bytes), for the chosen N, scope, filters and range;
auto-refresh re-queries them; an empty range and a missing endpoint are shown as such."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import polars as pl
import pytest

from tests.console.conftest import END_S, START_S, Lake, dedup, loads, node_ids, open_view, screenshot, wait_loaded

if TYPE_CHECKING:
    from playwright.sync_api import Page

SANKEY = "#panel-top_sankey"
INBOUND = "#panel-inbound_region"
Link = tuple[str, str, float]


def top_links(frame: pl.DataFrame, level: str, n: int) -> list[Link]:
    """The N largest source -> destination byte sums, each flow once (the API's order: bytes, then ids)."""
    edges = (dedup(frame).group_by(node_ids("Src", level).alias("s"), node_ids("Dst", level).alias("t"))
             .agg(pl.col("Bytes").sum().alias("b"))
             .sort(["b", "s", "t"], descending=[True, False, False]).head(n))
    return [(s, t, float(b)) for s, t, b in edges.rows()]


def drawn_links(page: Page) -> list[Link]:
    rows = page.locator(f"{SANKEY} path.link").evaluate_all(
        "(ps) => ps.map((p) => [p.dataset.src, p.dataset.dst, Number(p.dataset.bytes)])")
    return [(s, t, b) for s, t, b in rows]


def check_proportions(page: Page, links: list[Link]) -> None:
    """Nodes hold the bytes of their drawn links; heights and widths follow one bytes-to-pixels scale."""
    nodes = page.locator(f"{SANKEY} rect.node").evaluate_all(
        "(rs) => rs.map((r) => [r.dataset.node, r.dataset.side, Number(r.dataset.bytes), Number(r.dataset.height)])")
    want: dict[tuple[str, str], float] = {}
    for s, t, b in links:
        want[(s, "src")] = want.get((s, "src"), 0.0) + b
        want[(t, "dst")] = want.get((t, "dst"), 0.0) + b
    assert {(n, side): b for n, side, b, _ in nodes} == want
    scale = nodes[0][3] / nodes[0][2]
    assert scale > 0
    for _, _, b, h in nodes:
        assert h == pytest.approx(b * scale, rel=1e-9)
    widths = page.locator(f"{SANKEY} path.link").evaluate_all(
        "(ps) => ps.map((p) => [Number(p.dataset.bytes), Number(p.dataset.width)])")
    for b, w in widths:
        assert w == pytest.approx(b * scale, rel=1e-9)


def choose(page: Page, select: str, value: str) -> None:
    before = loads(page)
    page.select_option(select, value)
    wait_loaded(page, before)
    assert page.get_attribute(SANKEY, "data-status") == "ready"


def test_sankey_draws_the_lakes_top_links_for_each_n_and_scope(page: Page, server: str, lake: Lake) -> None:
    open_view(page, server, "overview")
    frame = lake.in_range()
    assert page.input_value("#sankey-scope") == "namespace" and page.input_value("#sankey-top") == "10"
    links = drawn_links(page)
    assert links == top_links(frame, "namespace", 10)
    check_proportions(page, links)
    assert float(page.get_attribute(f"{SANKEY} .total", "data-total") or "nan") == sum(b for _, _, b in links)
    # Hover: "src → dst: bytes" for the link under the pointer.
    first = page.locator(f"{SANKEY} path.link").first
    box = first.bounding_box()
    assert box is not None
    first.dispatch_event("mouseover", {"clientX": box["x"] + box["width"] / 2, "clientY": box["y"] + box["height"] / 2})
    src, dst = first.get_attribute("data-src-name"), first.get_attribute("data-dst-name")
    assert re.fullmatch(rf"{re.escape(f'{src} → {dst}: ')}[\d.]+ [kMG]?B", page.inner_text(f"{SANKEY} .sankey-tip"))
    screenshot(page, "overview-sankey", full_page=False)

    choose(page, "#sankey-top", "5")
    assert drawn_links(page) == top_links(frame, "namespace", 5)
    choose(page, "#sankey-scope", "owner")
    owners = drawn_links(page)
    assert owners == top_links(frame, "owner", 5)
    assert all(s.startswith("owner:") and t.startswith("owner:") for s, t, _ in owners)
    choose(page, "#sankey-top", "20")
    links = drawn_links(page)
    assert links == top_links(frame, "owner", 20) and len(links) == 20
    check_proportions(page, links)
    assert "sankeyScope=owner" in page.evaluate("location.hash")
    assert "sankeyTop=20" in page.evaluate("location.hash")


def has(name: str) -> pl.Expr:
    """The field holds a value ("" and missing alike, as the API's `k!=""` filter)."""
    return pl.col(name).fill_null("") != ""


def inbound_by_region(frame: pl.DataFrame) -> tuple[dict[tuple[str, str], float], float]:
    """{(label, kind): bytes} and the total: flows into the cluster reported at the destination's node."""
    inbound = frame.filter(pl.col("FlowDirection").is_in([0, 2]) & has("DstK8S_Type"))
    label = (pl.when(has("SrcK8S_Type") & has("SrcK8S_Zone")).then(pl.col("SrcK8S_Zone"))
             .when(has("SrcK8S_Type")).then(pl.lit("in the cluster (no zone)"))
             .when(has("SrcSubnetLabel")).then(pl.col("SrcSubnetLabel"))
             .otherwise(pl.lit("external")))
    kind = (pl.when(has("SrcK8S_Type") & has("SrcK8S_Zone")).then(pl.lit("zone"))
            .when(has("SrcK8S_Type")).then(pl.lit("cluster"))
            .when(has("SrcSubnetLabel")).then(pl.lit("subnet"))
            .otherwise(pl.lit("external")))
    sums = inbound.group_by(label.alias("label"), kind.alias("kind")).agg(pl.col("Bytes").sum())
    return {(n, k): float(b) for n, k, b in sums.rows()}, float(inbound["Bytes"].sum())


def drawn_bars(page: Page) -> list[tuple[str, str, float, float]]:
    rows = page.locator(f"{INBOUND} li").evaluate_all(
        "(lis) => lis.map((li) => [li.dataset.name, li.dataset.kind, Number(li.dataset.bytes), "
        "Number(li.dataset.share)])")
    return [(n, k, b, s) for n, k, b, s in rows]


def check_inbound(page: Page, frame: pl.DataFrame) -> set[str]:
    want, total = inbound_by_region(frame)
    bars = drawn_bars(page)
    assert {(n, k): b for n, k, b, _ in bars} == want
    assert len(bars) == len(want)
    assert [b for _, _, b, _ in bars] == sorted((b for _, _, b, _ in bars), reverse=True)
    assert [s for _, _, _, s in bars] == [b / total for _, _, b, _ in bars]
    assert float(page.get_attribute(f"{INBOUND} .total", "data-total") or "nan") == total
    return {k for _, k, _, _ in bars}


def test_inbound_by_region_equals_the_lake(page: Page, server: str, lake: Lake) -> None:
    open_view(page, server, "overview")
    kinds = check_inbound(page, lake.in_range())
    assert kinds == {"zone", "cluster", "subnet", "external"}  # the lake has sources of every kind
    names = page.locator(f"{INBOUND} li").evaluate_all("(lis) => lis.map((li) => li.dataset.name)")
    assert {"EXT:aws", "EXT:internet-eu", "external"} <= set(names)
    assert "FlowDirection" in page.inner_text(f"{INBOUND} .help")  # says what "inbound" counts


def test_both_panels_follow_filters_and_the_time_range(page: Page, server: str, lake: Lake) -> None:
    start, end = START_S + 600, START_S + 1800
    open_view(page, server, "overview", start=start, end=end, filters='namespace="payments"',
              sankeyScope="owner", sankeyTop=5)
    ns = pl.col("SrcK8S_Namespace").eq("payments").fill_null(False) \
        | pl.col("DstK8S_Namespace").eq("payments").fill_null(False)
    frame = lake.in_range(start, end).filter(ns)
    assert drawn_links(page) == top_links(frame, "owner", 5)
    check_inbound(page, frame)
    # A range without flows: an empty panel, not an error.
    open_view(page, server, "overview", start=END_S + 7200, end=END_S + 10800)
    assert page.inner_text(f"{SANKEY} .empty") == "No flows in this range"
    assert page.inner_text(f"{INBOUND} .empty") == "No inbound flows in this range"
    assert page.get_attribute(SANKEY, "data-status") == page.get_attribute(INBOUND, "data-status") == "ready"


def test_auto_refresh_queries_both_panels_again(page: Page, server: str) -> None:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))

    def count() -> tuple[int, int]:
        return (sum("/api/topology?" in u for u in asked),
                sum("/api/flows/metrics?" in u and "aggregateBy=SrcSubnetLabel" in u for u in asked))

    page.clock.install()
    open_view(page, server, "overview", refresh=15)
    first = count()
    assert first == (1, 1)
    before = loads(page)
    page.clock.run_for(15_000)
    wait_loaded(page, before)
    assert count() == (2, 2)


@pytest.mark.parametrize(("path", "panel", "other"), [
    ("/api/topology", SANKEY, INBOUND),
    ("/api/flows/metrics", INBOUND, SANKEY),
])
def test_a_missing_endpoint_shows_not_available(page: Page, server: str, path: str, panel: str, other: str) -> None:
    page.route(f"**{path}?*", lambda route: route.fulfill(status=404, content_type="application/json",
                                                         body='{"detail": "Not Found"}'))
    open_view(page, server, "overview")
    assert page.inner_text(f"{panel} .unavailable") == f"Not available: this flowlake API does not serve {path}."
    assert page.get_attribute(panel, "data-status") == "unavailable"
    assert page.get_attribute(other, "data-status") == "ready"  # the other panel does not depend on it
