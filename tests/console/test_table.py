"""Flow table in a real browser: filters typed into the filter bar show exactly the lake's matching rows
(read across every page), quick filters, sorting, the time range picker, and export of the same query."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import polars as pl

from tests.console.conftest import START_S, Lake, loads, open_view, screenshot, wait_loaded

if TYPE_CHECKING:
    from playwright.sync_api import Page

KEY = ["TimeFlowEndMs", "SrcAddr", "SrcPort", "DstAddr", "DstPort", "Bytes", "Packets"]


def add_filter(page: Page, key: str, op: str, value: str) -> None:
    before = loads(page)
    page.fill("#filter-key", key)
    page.select_option("#filter-op", op)
    page.fill("#filter-value", value)
    page.click("#filter-add")
    wait_loaded(page, before)


def shown_rows(page: Page) -> list[tuple[str, ...]]:
    """Every row of the table, page by page, as the cells' raw values of the KEY columns."""
    rows: list[tuple[str, ...]] = []
    while True:
        rows += map(tuple, page.evaluate("""(cols) => [...document.querySelectorAll('#flows-table tbody tr')].map(
            (tr) => cols.map((c) => tr.querySelector(`td[data-column="${c}"]`).dataset.value))""", KEY))
        if page.is_disabled("#page-next"):
            return rows
        page.click("#page-next")


def expected(frame: pl.DataFrame) -> list[tuple[str, ...]]:
    rows = frame.sort("TimeFlowEndMs", descending=True).select(KEY).rows()
    return [tuple("" if v is None else str(v) for v in r) for r in rows]


def test_filters_show_exactly_the_matching_rows(page: Page, server: str, lake: Lake) -> None:
    open_view(page, server, "table", limit=1000, pageSize=25)
    add_filter(page, "src_namespace", "=", '"payments"')
    add_filter(page, "dst_port", "=", "5432")
    want = expected(lake.in_range().filter((pl.col("SrcK8S_Namespace") == "payments") & (pl.col("DstPort") == 5432)))
    assert 25 < len(want) < 1000  # more than one page, less than the limit
    got = shown_rows(page)
    assert Counter(got) == Counter(want)
    assert [int(r[0]) for r in got] == sorted((int(r[0]) for r in got), reverse=True)  # newest first
    assert page.inner_text("#page-info").startswith(f"page {-(-len(want) // 25)} of {-(-len(want) // 25)}")
    assert page.locator("[data-testid=filter-chips] .chip").all_inner_texts()[0].startswith('src_namespace="payments"')
    screenshot(page, "table")


def test_quick_filter_and_match_any(page: Page, server: str, lake: Lake) -> None:
    open_view(page, server, "table", limit=1000, pageSize=100)
    before = loads(page)
    page.check("input[data-quick='Infrastructure']")
    wait_loaded(page, before)
    infra = lake.in_range().filter(pl.col("K8S_FlowLayer") == "infra")
    assert Counter(shown_rows(page)) == Counter(expected(infra))
    add_filter(page, "dst_namespace", "=", '"kube-system"')
    before = loads(page)
    page.select_option("#match", "any")
    wait_loaded(page, before)
    either = lake.in_range().filter((pl.col("K8S_FlowLayer") == "infra")
                                    | (pl.col("DstK8S_Namespace") == "kube-system"))
    assert len(either) < 1000
    assert Counter(shown_rows(page)) == Counter(expected(either))


def test_match_both_directions(page: Page, server: str, lake: Lake) -> None:
    open_view(page, server, "table", limit=1000, pageSize=100, match="bidirectional",
              filters='src_namespace="shop"&dst_namespace="analytics"')
    src, dst = pl.col("SrcK8S_Namespace"), pl.col("DstK8S_Namespace")
    both = lake.in_range().filter(((src == "shop") & (dst == "analytics")) | ((src == "analytics") & (dst == "shop")))
    assert both.filter(src == "analytics").height > 0 and both.filter(src == "shop").height > 0
    assert Counter(shown_rows(page)) == Counter(expected(both))


def test_bad_filter_shows_the_api_message(page: Page, server: str) -> None:
    open_view(page, server, "table")
    before = loads(page)
    page.fill("#filter-key", "no_such_key")
    page.fill("#filter-value", "1")
    page.click("#filter-add")
    wait_loaded(page, before)
    assert "unknown filter key 'no_such_key'" in page.inner_text("#table-message")


def test_sort_by_bytes(page: Page, server: str, lake: Lake) -> None:
    open_view(page, server, "table", limit=50, filters='namespace="shop"')
    before = loads(page)
    page.click("th[data-column=Bytes]")
    wait_loaded(page, before)
    shop = lake.in_range().filter((pl.col("SrcK8S_Namespace") == "shop") | (pl.col("DstK8S_Namespace") == "shop"))
    want = shop.sort("Bytes", descending=True)["Bytes"].head(50).to_list()
    got = page.locator("#flows-table td[data-column=Bytes]").evaluate_all(
        "(tds) => tds.map((td) => Number(td.dataset.value))")
    assert got == want[: len(got)] and len(got) == 50


def test_time_range_picker(page: Page, server: str) -> None:
    open_view(page, server, "table")
    assert int(page.get_attribute("#table-stats", "data-rows") or 0) == 100
    before = loads(page)
    page.select_option("#range", "300")  # the last five minutes: the lake is a year older
    wait_loaded(page, before)
    assert "range=300" in page.evaluate("location.hash")
    assert page.get_attribute("#table-stats", "data-rows") == "0"
    assert "No flows match" in page.inner_text(".table-wrap")


def test_custom_time_range(page: Page, server: str, lake: Lake) -> None:
    open_view(page, server, "table", limit=1000)
    assert page.is_visible("#custom-range") and page.input_value("#range") == "custom"
    before = loads(page)
    page.fill("#start", "2026-11-25T10:10:00")
    page.dispatch_event("#start", "change")
    wait_loaded(page, before)
    before = loads(page)
    page.fill("#end", "2026-11-25T10:15:00")
    page.dispatch_event("#end", "change")
    wait_loaded(page, before)
    assert f"start={START_S + 600}&end={START_S + 900}" in page.evaluate("location.hash")
    want = lake.in_range(START_S + 600, START_S + 900)
    assert 0 < want.height < 1000
    assert page.get_attribute("#table-stats", "data-rows") == str(want.height)


def test_columns_are_configurable(page: Page, server: str) -> None:
    open_view(page, server, "table", limit=50)
    page.click("#columns summary")
    page.uncheck("input[data-column=SrcK8S_Name]")
    page.check("input[data-column=FlowDirection]")
    headers = page.locator("#flows-table th").evaluate_all("(ths) => ths.map((th) => th.dataset.column)")
    assert "SrcK8S_Name" not in headers and headers[-1] == "FlowDirection"
    page.reload()
    wait_loaded(page, 0)
    headers = page.locator("#flows-table th").evaluate_all("(ths) => ths.map((th) => th.dataset.column)")
    assert "SrcK8S_Name" not in headers and "FlowDirection" in headers  # kept in this browser


def test_export_button_downloads_the_same_rows(page: Page, server: str, lake: Lake) -> None:
    open_view(page, server, "table", limit=1000, filters='src_namespace="shop"')
    with page.expect_download() as info:
        page.click("#export")
    download = info.value
    assert download.suggested_filename == "flows.csv"
    path = download.path()
    assert path is not None
    got = pl.read_csv(path)
    want = lake.in_range().filter(pl.col("SrcK8S_Namespace") == "shop")
    assert got.height == want.height
    cols = ("SrcAddr", "DstAddr", "Bytes")
    assert Counter(got.select(cols).rows()) == Counter(want.select(cols).rows())
