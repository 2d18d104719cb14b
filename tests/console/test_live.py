"""The console as a user first opens it: `/` with nothing in the URL, over a lake of flows from the last
ten minutes — the default view (overview), the default range (last hour) and the default quick filters
(Applications, Pods network) — then the flow table with those defaults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import polars as pl
import pytest

from flowlake.engine import config
from flowlake.engine.metadata import static
from flowlake.engine.processor import Processor
from flowlake.engine.synth import generate, make_cluster
from tests.console.conftest import flowlake_api, loads, wait_loaded

if TYPE_CHECKING:
    from playwright.sync_api import Page


@pytest.fixture(scope="module")
def recent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, pl.DataFrame]]:
    tmp = tmp_path_factory.mktemp("recent")
    cluster = make_cluster(seed=5, nodes=3, zones=1)
    metadata = str(tmp / "metadata.json")
    static.dump(metadata, cluster.metadata_table(), cluster.name)
    url = str(tmp / "lake")
    now = int(time.time() * 1000)
    proc = Processor(config.load(None, metadata=metadata, sinks=["lake"], **{"lake.url": url}))
    proc.ingest(generate(cluster, now - 600_000, now - 60_000, 800, seed=5).batch, "test")
    proc.close()
    with flowlake_api(url) as base:
        yield base, pl.read_parquet(f"{url}/**/*.parquet", hive_partitioning=False)


def test_first_visit_uses_the_defaults(page: Page, recent: tuple[str, pl.DataFrame]) -> None:
    base, frame = recent
    page.goto(f"{base}/")
    wait_loaded(page, 0)
    assert page.evaluate("location.hash").startswith("#/overview?range=3600")
    assert page.input_value("#range") == "3600"
    active = page.locator("[data-testid=quick-filters] input:checked").evaluate_all(
        "(es) => es.map((e) => e.dataset.quick)")
    assert active == ["Applications", "Pods network"]
    assert set(page.evaluate("Object.values(window.__flowlake.overview).map((p) => p.status)")) == {"ready"}
    before = loads(page)
    page.click("#tabs a[data-view=table]")
    wait_loaded(page, before)
    want = frame.filter((pl.col("K8S_FlowLayer") == "app") & (pl.col("SrcK8S_Type") == "Pod")
                        & (pl.col("DstK8S_Type") == "Pod"))
    assert want.height > 0
    assert page.get_attribute("#table-stats", "data-rows") == str(min(want.height, 100))
    shown = page.evaluate("window.__flowlake.table.rows.map((f) => f.TimeFlowEndMs)")
    assert shown == want.sort("TimeFlowEndMs", descending=True)["TimeFlowEndMs"].head(100).to_list()
