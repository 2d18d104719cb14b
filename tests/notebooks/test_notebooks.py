"""The notebooks in notebooks/ run headless (nbclient) against real processes, and agree with the generator.

`flowlake synth` sends a generated cluster's flows (sampled 1 in 4) to a `flowlake processor`, which
enriches them into a lake; `flowlake api --flight-port` serves it. Each notebook runs top to bottom in
a fresh kernel pointed at that server by FLOWLAKE_FLIGHT_URL; then a probe cell appended by this test
prints the notebook's key results, which must equal the ground truth computed here from the
generator's own rows (same seed, so the same flows), never from the code under test.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flowlake.engine.synth import generate, make_cluster
from tests.procs import finish, flowlake, free_port, wait_port

nbformat = pytest.importorskip("nbformat", reason="pip install 'flowlake[notebooks]'")
nbclient = pytest.importorskip("nbclient", reason="pip install 'flowlake[notebooks]'")
pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
START = datetime(2026, 11, 24, 9, tzinfo=UTC)
END = datetime(2026, 11, 24, 12, tzinfo=UTC)
N_FLOWS, SEED, SAMPLING = 60_000, 5, 4
Server = tuple[str, str]  # (Flight URL, lake path)


@pytest.fixture(scope="module")
def flight_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("notebooks")
    lake, metadata = str(tmp / "lake"), str(tmp / "cluster.json")
    seed = ["--seed", str(SEED)]
    assert flowlake("synth", *seed, "--metadata-out", metadata).wait(60) == 0
    ingest, metrics = free_port(), free_port()
    processor = flowlake("processor", "--listen", f"grpc://127.0.0.1:{ingest}", "--lake", lake, "--metadata",
                         metadata, "--metrics-address", f"127.0.0.1:{metrics}", "--flush-seconds", "60")
    api = None
    try:
        wait_port(ingest, processor)
        synth = flowlake("synth", *seed, "--flows", str(N_FLOWS), "--sampling", str(SAMPLING), "--start",
                         START.isoformat(), "--end", END.isoformat(), "--target", f"grpc://127.0.0.1:{ingest}")
        assert synth.wait(120) == 0
        processor.send_signal(signal.SIGTERM)  # publishes everything buffered
        assert processor.wait(30) == 0
        http, flight = free_port(), free_port()
        api = flowlake("api", "--lake", lake, "--port", str(http), "--flight-port", str(flight),
                       "--log-level", "warning")
        wait_port(flight, api)
        yield f"grpc://127.0.0.1:{flight}", lake
    finally:
        for p in (api, processor):
            if p is not None:
                finish(p)


@pytest.fixture(scope="module")
def truth() -> pl.DataFrame:
    """One row per flow record the generator sent, with both ends' identities as the cluster defines them."""
    cluster = make_cluster(seed=SEED)
    flows = generate(cluster, int(START.timestamp() * 1000), int(END.timestamp() * 1000), N_FLOWS, seed=SEED,
                     sampling=SAMPLING)
    ep = cluster.endpoints.select("Namespace", "OwnerName", "Zone", "Type")
    src = ep[flows.src_endpoint].rename(lambda c: f"src_{c}")
    dst = ep[flows.dst_endpoint].rename(lambda c: f"dst_{c}")
    cols = pl.DataFrame(flows.batch.select(["Bytes", "Sampling", "DstPort", "DnsFlagsResponseCode",
                                            "PktDropPackets", "PktDropLatestDropCause"]))
    return pl.concat([src, dst, cols, pl.DataFrame({"duplicate": flows.duplicate})], how="horizontal")


def run(name: str, server: Server, probe: str,
        monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any]]:
    """Execute a notebook plus a probe cell printing JSON; returns (the executed notebook, the probe's JSON)."""
    monkeypatch.setenv("FLOWLAKE_FLIGHT_URL", server[0])
    monkeypatch.setenv("FLOWLAKE_LAKE", server[1])
    monkeypatch.setenv("PYTHONSAFEPATH", "1")  # the kernel must never import the repo's operator/ as `operator`
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    cells = len(book.cells)
    book.cells.append(nbformat.v4.new_code_cell(f"import json\nprint('PROBE ' + json.dumps({probe}, default=str))"))
    nbclient.NotebookClient(book, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    for cell in book.cells[:cells]:
        if cell.cell_type == "code":
            assert cell.execution_count is not None, f"{name}: a cell did not run:\n{cell.source}"
            assert not [o for o in cell.outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in book.cells[-1].outputs if o.output_type == "stream")
    return book, json.loads(text.split("PROBE ", 1)[1])


def images(book: Any) -> int:
    return sum("image/png" in o.get("data", {}) for c in book.cells if c.cell_type == "code" for o in c.outputs)


def test_01_getting_started(flight_url: Server, truth: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    book, got = run("01-getting-started", flight_url,
                    '{"top": top_talker, "per_ns": dict(namespace_totals.iter_rows()), "flows": overview["flows"][0],'
                    ' "direct": direct.row(0)}', monkeypatch)
    by_owner = (truth.filter(pl.col("src_OwnerName").is_not_null())
                .group_by("src_Namespace", "src_OwnerName").agg(pl.col("Bytes").sum()).sort("Bytes", descending=True))
    heaviest = by_owner.row(0, named=True)
    assert (got["top"]["namespace"], got["top"]["workload"], got["top"]["bytes"]) == (
        heaviest["src_Namespace"], heaviest["src_OwnerName"], heaviest["Bytes"])
    per_ns = truth.filter(pl.col("src_Namespace").is_not_null()).group_by("src_Namespace").agg(pl.col("Bytes").sum())
    assert got["per_ns"] == dict(per_ns.iter_rows())
    assert got["flows"] == N_FLOWS
    assert got["direct"] == [heaviest["src_Namespace"], heaviest["src_OwnerName"], heaviest["Bytes"]]  # open_lake
    assert images(book) == 2


def test_02_topology(flight_url: Server, truth: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    book, got = run("02-topology", flight_url, "heaviest_edge", monkeypatch)
    once = truth.filter(~pl.col("duplicate"))  # each flow once, as the topology counts it
    pairs = (once.group_by("src_Namespace", "dst_Namespace").agg(pl.col("Bytes").sum())
             .sort("Bytes", descending=True))
    src, dst, value = pairs.row(0)
    assert (got["source"], got["target"], got["value"]) == (f"namespace:{src or ''}", f"namespace:{dst or ''}",
                                                            value)
    assert images(book) == 2


def test_03_latency_and_drops(flight_url: Server, truth: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    book, got = run("03-latency-and-drops", flight_url,
                    '{"nx": top_nx_hunter, "drops": dict(drops_by_cause.iter_rows()),'
                    ' "rtt": rtt_by_workload.height, "dns": dns_by_workload.height}', monkeypatch)
    client_side = pl.col("DstPort") == 53
    nx = (truth.filter(pl.col("DnsFlagsResponseCode") == "NXDomain")
          .select(pl.when(client_side).then("src_Namespace").otherwise("dst_Namespace").alias("ns"),
                  pl.when(client_side).then("src_OwnerName").otherwise("dst_OwnerName").alias("owner"))
          .group_by("ns", "owner").len().sort(["len", "owner"], descending=[True, False]))
    assert (got["nx"]["namespace"], got["nx"]["workload"], got["nx"]["nxdomain"]) == nx.row(0)
    drops = truth.filter(pl.col("PktDropPackets") > 0).group_by("PktDropLatestDropCause").agg(
        pl.col("PktDropPackets").sum())
    assert got["drops"] == dict(drops.iter_rows())
    assert len(got["drops"]) > 1
    assert got["rtt"] > 0 and got["dns"] > 0
    assert images(book) == 3


def test_04_cost_and_zones(flight_url: Server, truth: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    book, got = run("04-cost-and-zones", flight_url,
                    '{"cross": {f"{n}/{w}": b for n, w, b in cross_zone_by_workload.select("namespace", "workload", '
                    '"bytes").iter_rows()}, "external": {f"{n}/{w}": b for n, w, b in external.select("namespace", '
                    '"workload", "bytes").iter_rows()}}', monkeypatch)
    once = truth.filter(~pl.col("duplicate")).with_columns((pl.col("Bytes") * pl.col("Sampling")).alias("paid"))
    cross = once.filter(pl.col("src_Zone").is_not_null() & pl.col("dst_Zone").is_not_null()
                        & (pl.col("src_Zone") != pl.col("dst_Zone")))
    cross = cross.group_by("src_Namespace", "src_OwnerName").agg(pl.col("paid").sum())
    assert got["cross"] == {f"{n}/{o}": int(v) for n, o, v in cross.iter_rows()}
    external = (once.filter(pl.col("src_OwnerName").is_not_null() & pl.col("dst_Type").is_null())
                .group_by("src_Namespace", "src_OwnerName").agg(pl.col("paid").sum()))
    assert got["external"] == {f"{n}/{o}": int(v) for n, o, v in external.iter_rows()}
    assert len(got["cross"]) > 3 and len(got["external"]) > 1
    assert images(book) == 2
