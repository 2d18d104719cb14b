"""Fixtures for the web console tests: an enriched lake of generated flows, a real `flowlake api` process
serving it on a free loopback port, and Debian's Chromium driven by Playwright.

The lake is made the way a deployment makes it: `engine.synth` flows of a generated cluster go through the
real processor (enrich, direction, layer, subnets, decode) into the Parquet lake sink. Some external
networks get `EXT:` subnet labels (`SUBNET_LABELS`), others none. Tests compute what the console must show
with Polars straight from the lake's Parquet files (`Lake.frame`); `dedup` and `node_ids` are the
Polars forms of the API's reporter merge and topology node ids.

Browser tests skip when Playwright, `/usr/bin/chromium` or the vendored front-end libraries (`make
console`) are missing, and fail instead under FLOWLAKE_REQUIRE_BROWSER=1 (CI). No browser is downloaded.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from flowlake.api import routes_console
from flowlake.engine import config
from flowlake.engine.metadata import static
from flowlake.engine.processor import Processor
from flowlake.engine.synth import generate, make_cluster

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REQUIRE_BROWSER = os.environ.get("FLOWLAKE_REQUIRE_BROWSER") == "1"
CHROMIUM = "/usr/bin/chromium"
LOOPBACK = "http://127.0.0.1:"  # every server the tests start listens there
ARTIFACTS = Path(__file__).parent / "artifacts"
START_S = 1_795_600_800  # 2026-11-25T10:00:00Z, an hour boundary
END_S = START_S + 3600
N_FLOWS = 5_000
# External sources of the generated cluster (engine.synth.catalog): cloud APIs get one label, some internet
# client ranges another; the rest (24.x, 73.x, 203.x, CDNs, GitHub) stay unlabelled, i.e. "external".
SUBNET_LABELS = [
    {"name": "EXT:aws", "cidrs": ["52.0.0.0/8", "34.0.0.0/8"]},
    {"name": "EXT:internet-eu", "cidrs": ["81.0.0.0/8", "86.0.0.0/8", "92.0.0.0/8", "176.0.0.0/8", "185.0.0.0/8"]},
]


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the Python package playwright is missing: pip install 'flowlake[console]'"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: apt-get install chromium (make install does it)"
    if not routes_console.vendored():
        return "the console's front-end libraries are missing: run make console"
    return None


def need_browser() -> None:
    why = browser_missing()
    if why is None:
        return
    if REQUIRE_BROWSER:
        pytest.fail(f"browser test cannot run under FLOWLAKE_REQUIRE_BROWSER=1: {why}")
    pytest.skip(why)


@dataclass(frozen=True)
class Lake:
    url: str
    frame: pl.DataFrame  # every row of the lake, read back from its Parquet files

    def in_range(self, start_s: int = START_S, end_s: int = END_S) -> pl.DataFrame:
        """Rows the API returns for startTime/endTime (end rounded up by one second, as the console does)."""
        t = pl.col("TimeFlowEndMs")
        return self.frame.filter((t >= start_s * 1000) & (t < end_s * 1000 + 1000))


def with_dns_errors(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Every third DNS response becomes ServFail, so network health has a DNSErrors item to show."""
    i = batch.schema.get_field_index("DnsFlagsResponseCode")
    rcode = batch.column(i)
    every_third = pa.array(np.arange(batch.num_rows) % 3 == 0)
    changed = pc.if_else(pc.and_(pc.is_valid(rcode), every_third), pa.scalar("ServFail", rcode.type), rcode)
    return batch.set_column(i, batch.schema.field(i), changed)


@pytest.fixture(scope="session")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    tmp = tmp_path_factory.mktemp("console")
    cluster = make_cluster(seed=3, nodes=4, zones=2)
    metadata = str(tmp / "metadata.json")
    static.dump(metadata, cluster.metadata_table(), cluster.name)
    url = str(tmp / "lake")
    proc = Processor(config.load(None, metadata=metadata, sinks=["lake"],
                                 **{"lake.url": url, "subnets.labels": SUBNET_LABELS}))
    proc.ingest(with_dns_errors(generate(cluster, START_S * 1000, END_S * 1000, N_FLOWS, seed=3).batch), "test")
    proc.close()
    frame = pl.read_parquet(f"{url}/**/*.parquet", hive_partitioning=False)
    assert frame.height == N_FLOWS
    return Lake(url, frame)


def dedup(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows Bytes/Packets count (NetObserv's reporter merge, netobserv.md §5.2): ingress or inner reports, or
    egress reports whose destination is not a Kubernetes workload."""
    fd, dst_type = pl.col("FlowDirection"), pl.col("DstK8S_Type").fill_null("")
    return frame.filter(fd.is_in([0, 2]) | ((fd == 1) & dst_type.is_in(["", "Service"])))


def node_ids(side: str, level: str) -> pl.Expr:
    """The topology's node id of one side ("Src"/"Dst") at namespace or owner scope."""
    if level == "namespace":
        return pl.lit("namespace:") + pl.col(f"{side}K8S_Namespace").fill_null("")
    parts = [pl.col(f"{side}K8S_{f}") for f in ("Namespace", "OwnerType", "OwnerName")]
    value = pl.when(pl.any_horizontal(p.is_not_null() for p in parts)).then(
        pl.concat_str([p.fill_null("") for p in parts], separator="/")).otherwise(pl.lit(""))
    return pl.lit("owner:") + value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(lake: Lake) -> Iterator[str]:
    """Base URL of a real `flowlake api` process serving the lake."""
    with flowlake_api(lake.url) as base:
        yield base


@contextlib.contextmanager
def flowlake_api(lake_url: str, *args: str) -> Iterator[str]:
    """`flowlake api` on a free loopback port (no Flight service); yields its base URL, stops it after."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-P", "-m", "flowlake.engine.cli", "api", "--lake", lake_url,
                             "--port", str(port), "--flight-port", "0", "--log-level", "warning", *args])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"flowlake api exited with {proc.returncode}"
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "flowlake api did not answer /healthz within 60 s"
                time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def api(base: str, path: str, **params: Any) -> Any:
    """GET a JSON endpoint of the server as any client would."""
    q = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    with urllib.request.urlopen(f"{base}{path}?{q}", timeout=30) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (empty local storage) whose page may only talk to loopback (the APIs under test)."""
    context = browser.new_context(viewport={"width": 1400, "height": 950}, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    foreign: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("request", lambda r: None if r.url.startswith((LOOPBACK, "data:", "blob:")) else foreign.append(r.url))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors in the console: {errors}"
    assert not foreign, f"the console fetched from outside the API (it must work offline): {foreign}"


def loads(page: Page) -> int:
    return int(page.evaluate("Number(document.body.dataset.loads || 0)"))


def wait_loaded(page: Page, after: int, status: str = "ready") -> None:
    """Wait until the view finished a refresh that started after `after` completed ones, then check its status."""
    page.wait_for_function(f"Number(document.body.dataset.loads || 0) > {after}", timeout=20_000)
    got = page.evaluate("document.body.dataset.status")
    assert got == status, f"view status {got!r}; banner: {page.inner_text('#banner')!r}"


def open_view(page: Page, base: str, view: str, **opts: str | int) -> None:
    """Open a view on the lake's hour with no quick filter active (each test adds its own filters)."""
    q = urllib.parse.urlencode({"start": START_S, "end": END_S, "quick": "", **opts})
    before = loads(page)  # 0 on a new page; a hash change on an open console keeps counting
    page.goto(f"{base}/#/{view}?{q}")
    wait_loaded(page, before)


def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)
