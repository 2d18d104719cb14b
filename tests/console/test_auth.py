"""The console against an API with bearer tokens: it asks for a token once, sends it on every call, and a
tenant's table shows exactly the flows of its namespaces (netobserv.md multi-tenancy)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import polars as pl
import pytest
import yaml

from tests.console.conftest import END_S, START_S, Lake, flowlake_api, loads, screenshot, wait_loaded

if TYPE_CHECKING:
    from playwright.sync_api import Browser

TENANT_TOKEN = "t-search-012345"


@pytest.fixture(scope="module")
def auth_server(lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tokens = tmp_path_factory.mktemp("auth") / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [
        {"name": "admin", "token": "t-admin-0123456", "role": "admin"},
        {"name": "search-team", "token": TENANT_TOKEN, "role": "tenant", "namespaces": ["search"]}]}))
    with flowlake_api(lake.url, "--tokens", str(tokens)) as base:
        yield base


def test_tenant_token_is_asked_once_and_scopes_the_table(browser: Browser, auth_server: str, lake: Lake) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(f"{auth_server}/#/table?start={START_S}&end={END_S}&quick=&limit=1000")
        dialog = page.locator("#token-dialog")
        dialog.wait_for(state="visible")
        assert "bearer token" in dialog.inner_text()
        screenshot(page, "token-dialog")
        page.fill("#token-input", TENANT_TOKEN)
        page.click("#token-dialog button[value=ok]")
        wait_loaded(page, 0)
        rows = page.evaluate("window.__flowlake.table.rows")
        frame = lake.in_range()
        mine = frame.filter((pl.col("SrcK8S_Namespace") == "search") | (pl.col("DstK8S_Namespace") == "search"))
        assert 0 < mine.height < 1000
        assert len(rows) == mine.height
        assert all("search" in (r.get("SrcK8S_Namespace"), r.get("DstK8S_Namespace")) for r in rows)
        # Export with a token goes through fetch (a link cannot carry the header): same tenant scope.
        with page.expect_download() as info:
            page.click("#export")
        path = info.value.path()
        assert path is not None and pl.read_csv(path).height == mine.height
        # Every overview panel runs with the stored token: no second dialog, every panel ready.
        before = loads(page)
        page.click("#tabs a[data-view=overview]")
        wait_loaded(page, before)
        assert not dialog.is_visible()
        statuses = page.evaluate("Object.values(window.__flowlake.overview).map((p) => p.status)")
        assert set(statuses) == {"ready"}
    finally:
        context.close()


def test_cancelled_token_shows_the_api_message(browser: Browser, auth_server: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{auth_server}/#/table?start={START_S}&end={END_S}")
        page.locator("#token-dialog").wait_for(state="visible")
        page.click("#token-dialog button[value=cancel]")
        wait_loaded(page, 0)
        assert "bearer token" in page.inner_text("#table-message")
    finally:
        context.close()
