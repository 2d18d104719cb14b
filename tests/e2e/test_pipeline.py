"""End to end with real processes: synth -> Arrow Flight -> processor -> Parquet lake -> HTTP API.

The processor and the API run as separate `flowlake` processes on loopback; the flows the API returns
must equal, per namespace pair, the generator's own ground truth (row count, bytes, packets).
"""

from __future__ import annotations

import json
import signal
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flowlake.engine import transport
from flowlake.engine.metadata import static
from flowlake.engine.synth import generate, make_cluster
from tests.procs import flowlake, free_port, wait_port

pytestmark = pytest.mark.slow

START_MS = int(datetime(2026, 11, 26, 6, tzinfo=UTC).timestamp() * 1000)
END_MS = START_MS + 3 * 3_600_000
N_FLOWS = 30_000


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("e2e")
    cluster = make_cluster(seed=7)
    metadata = tmp / "metadata.json"
    static.dump(str(metadata), cluster.metadata_table(), cluster.name)
    flows = generate(cluster, START_MS, END_MS, N_FLOWS, seed=7)
    lake = tmp / "lake"
    flight_port, metrics_port, api_port = free_port(), free_port(), free_port()
    proc = flowlake("processor", "--listen", f"grpc://127.0.0.1:{flight_port}", "--lake", str(lake),
                    "--metadata", str(metadata), "--metrics-address", f"127.0.0.1:{metrics_port}",
                    "--flush-seconds", "60")
    api = None
    try:
        wait_port(flight_port, proc)
        batches = list(flows.batches(max_rows=4_000))
        errors: list[BaseException] = []

        def send(part: list[Any]) -> None:
            try:
                sender = transport.open_sender(f"grpc://127.0.0.1:{flight_port}")
                sender.send(part)
                sender.close()
            except BaseException as exc:
                errors.append(exc)

        # three concurrent clients, as three agents would be
        threads = [threading.Thread(target=send, args=(batches[i::3],)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as resp:
            metrics_text = resp.read().decode()
        proc.send_signal(signal.SIGTERM)  # a clean stop must publish everything buffered
        assert proc.wait(30) == 0
        api = flowlake("api", "--lake", str(lake), "--port", str(api_port))
        wait_port(api_port, api)
        yield {"flows": flows, "lake": lake, "api": f"http://127.0.0.1:{api_port}", "metrics": metrics_text}
    finally:
        for p in (api, proc):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


def query(world: dict[str, Any], **params: Any) -> dict[str, Any]:
    params = {"startTime": START_MS // 1000, "endTime": END_MS // 1000, "limit": 100_000, **params}
    return get(f"{world['api']}/api/flows?{urllib.parse.urlencode(params)}")  # type: ignore[no-any-return]


def test_processor_counted_every_flow(world: dict[str, Any]) -> None:
    line = next(x for x in world["metrics"].splitlines()
                if x.startswith('flowlake_ingest_flows_total{transport="grpc"}'))
    assert float(line.split()[-1]) == world["flows"].num_rows  # every report, both reporters included


def test_api_returns_exactly_the_flows_sent(world: dict[str, Any]) -> None:
    body = query(world)
    got = pl.DataFrame(body["flows"], infer_schema_length=None)
    assert got.height == world["flows"].num_rows
    assert world["flows"].duplicate.sum() > 0  # node-to-node flows come from both nodes
    assert body["stats"]["limitReached"] is False
    by_pair = (got.group_by(pl.col("SrcK8S_Namespace").alias("src_ns"), pl.col("DstK8S_Namespace").alias("dst_ns"))
               .agg(pl.len().cast(pl.UInt64).alias("flows"), pl.col("Bytes").sum().cast(pl.UInt64).alias("bytes"),
                    pl.col("Packets").sum().cast(pl.UInt64).alias("packets")))
    truth = world["flows"].truth_by_namespace_pair()
    keys = ["src_ns", "dst_ns"]
    joined = truth.join(by_pair, on=keys, how="full", nulls_equal=True, suffix="_api")
    mismatch = joined.filter((pl.col("flows") != pl.col("flows_api")) | (pl.col("bytes") != pl.col("bytes_api"))
                             | (pl.col("packets") != pl.col("packets_api"))
                             | pl.col("flows").is_null() | pl.col("flows_api").is_null())
    assert mismatch.height == 0, mismatch
    assert truth.height > 10  # many namespace pairs, not a trivial match


def test_filter_by_namespace_matches_ground_truth(world: dict[str, Any]) -> None:
    truth = world["flows"].truth_by_namespace_pair()
    top = truth.filter(pl.col("src_ns").is_not_null()).row(0, named=True)
    body = query(world, filters=f'SrcK8S_Namespace="{top["src_ns"]}"')
    expected = truth.filter(pl.col("src_ns") == top["src_ns"])
    assert len(body["flows"]) == expected["flows"].sum()
    assert sum(f["Bytes"] for f in body["flows"]) == expected["bytes"].sum()


def test_time_range_prunes_partitions(world: dict[str, Any]) -> None:
    one_hour = query(world, startTime=START_MS // 1000 + 3600, endTime=START_MS // 1000 + 7199)
    ends = world["flows"].batch.column("TimeFlowEndMs").to_numpy()
    assert len(one_hour["flows"]) == int(((ends >= START_MS + 3_600_000) & (ends < START_MS + 7_200_000)).sum())
    files = sorted(p.parent.name for p in Path(world["lake"]).rglob("*.parquet"))
    assert set(files) >= {"hour=06", "hour=07", "hour=08"}
    assert one_hour["stats"]["filesScanned"] == files.count("hour=07")
