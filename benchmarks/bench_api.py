"""Query API latency over a lake of generated flows: flow table, topology, metrics, export rate.

Two ways to run it:
- `python -P benchmarks/bench_api.py --flows 10M` builds (once, then reuses) a 24-hour lake of enriched
  flows: `engine.synth` flows of a generated cluster through the real processor (enrich, direction,
  layer, subnets, decode) into the Parquet lake sink, compacted to one file per hour as `flowlake lake
  compact` leaves a day-old lake; then times each query through the real FastAPI app in process
  (routing, the Polars query, JSON encoding; no network) and prints p50/p90 wall time and p50 process CPU
  time (all threads) per request. The numbers go to docs/performance.md.
- pytest (`pytest benchmarks/bench_api.py`, which CI runs once with timing disabled) runs the same
  queries on a 60k-flow lake and checks their answers are sane.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowlake.api import create_app

DAY_MS = 24 * 3_600_000
END_MS = 1_795_651_200_000  # 2026-11-25T22:00:00Z, an hour boundary
START_MS = END_MS - DAY_MS
SEED = 3


def build_lake(root: Path, flows: int) -> str:
    """A compacted 24-hour lake of `flows` enriched flow records at `root/lake` (reused when present)."""
    from flowlake.engine import config
    from flowlake.engine.metadata import static
    from flowlake.engine.processor import Processor
    from flowlake.engine.store import maintenance
    from flowlake.engine.synth import generate_chunks, make_cluster

    url = str(root / "lake")
    done = root / f"built-{flows}"
    if done.exists():
        return url
    root.mkdir(parents=True, exist_ok=True)
    cluster = make_cluster(seed=SEED)
    metadata = str(root / "metadata.json")
    static.dump(metadata, cluster.metadata_table(), cluster.name)
    proc = Processor(config.load(None, metadata=metadata, sinks=["lake"], **{"lake.url": url}))
    for chunk in generate_chunks(cluster, START_MS, END_MS, flows, seed=SEED, chunk_flows=500_000):
        for batch in chunk.batches(500_000):
            proc.ingest(batch, "bench")
    proc.close()
    maintenance.compact(url, grace_seconds=0)  # the day is in the past: every hour is closed
    maintenance.compact(url, grace_seconds=0)  # deletes the merged files
    done.touch()
    return url


def _namespace(client: TestClient) -> str:
    """An application namespace of the generated cluster (the filter of the flow-table query)."""
    names = client.get("/api/resources/namespaces", params=_range(3600)).json()
    apps = [n for n in names if not n.startswith(("kube", "openshift"))]
    return str(apps[len(apps) // 2])


def _range(seconds: int) -> dict[str, int]:
    return {"startTime": (END_MS // 1000) - seconds, "endTime": (END_MS // 1000) - 1}


def queries(client: TestClient) -> dict[str, tuple[str, dict[str, Any]]]:
    ns = _namespace(client)
    return {
        "flow table, filters, limit 100, last 1 h": (
            "/api/flows", {**_range(3600), "limit": 100, "filters": f'src_namespace="{ns}"&dst_port=443,53'}),
        "flow table, filters, limit 100, 24 h": (
            "/api/flows", {**_range(86_400), "limit": 100, "filters": f'namespace="{ns}"&protocol=TCP'}),
        "flow table, no filter, limit 100, last 5 min": ("/api/flows", {**_range(300), "limit": 100}),
        "topology, namespace scope, 1 h": ("/api/topology", {**_range(3600), "scope": "namespace"}),
        "topology, owner scope grouped by namespace, 1 h": (
            "/api/topology", {**_range(3600), "scope": "owner", "groups": "namespaces"}),
        "metrics, namespace bytes rate, 24 h (600 s step)": (
            "/api/flows/metrics", {**_range(86_400), "aggregateBy": "namespace", "type": "Bytes"}),
        "metrics, p99 DNS latency by namespace, 24 h": (
            "/api/flows/metrics", {**_range(86_400), "type": "DnsLatencyMs", "function": "p99"}),
        "health, namespace grouping, 1 h (+1 h baseline)": (
            "/api/health", {**_range(3600), "groupBy": "namespace"}),
    }


def timed(call: Callable[[], Any], repeat: int) -> dict[str, float]:
    call()  # warm: first Parquet footers, Polars thread pool
    wall, cpu = [], []
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        call()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    wall.sort()
    return {"p50_ms": statistics.median(wall) * 1000, "p90_ms": wall[int(0.9 * (len(wall) - 1))] * 1000,
            "cpu_p50_ms": statistics.median(cpu) * 1000}


def export_rate(client: TestClient, fmt: str, seconds: int) -> tuple[int, float, float]:
    """(rows, wall seconds, CPU seconds) of streaming one export to the end."""
    c0, w0 = time.process_time(), time.perf_counter()
    with client.stream("GET", "/api/export", params={**_range(seconds), "format": fmt}) as r:
        assert r.status_code == 200, r.read()
        size = sum(len(chunk) for chunk in r.iter_bytes())
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    rows = client.get("/api/flows/metrics", params={**_range(seconds), "aggregateBy": "app", "type": "Flows",
                                                    "function": "count", "step": seconds}).json()
    assert size > 0
    return int(rows["metrics"][0]["total"]) if rows["metrics"] else 0, wall, cpu


def main(argv: list[str] | None = None) -> int:
    from flowlake.engine.synth.cli import parse_count

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flows", type=parse_count, default=10_000_000, help="flow records in the lake (10M)")
    p.add_argument("--dir", type=Path, default=Path("/tmp/flowlake-bench-api"), help="where the lake is kept")
    p.add_argument("--repeat", type=int, default=20, help="timed runs per query (20)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    url = build_lake(args.dir / f"{args.flows}", args.flows)
    print(f"lake {url} ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    with TestClient(create_app(url)) as client:
        print("| query | p50 | p90 | CPU p50 (all threads) |\n|---|---|---|---|")
        for name, (path, params) in queries(client).items():
            def call(path: str = path, params: dict[str, Any] = params) -> None:
                assert client.get(path, params=params).status_code == 200
            t = timed(call, args.repeat)
            print(f"| {name} | {t['p50_ms']:.0f} ms | {t['p90_ms']:.0f} ms | {t['cpu_p50_ms']:.0f} ms |")
        for fmt, seconds in (("csv", 3600), ("ndjson", 3600), ("parquet", 3600), ("arrow", 3600),
                             ("arrow", 86_400)):
            rows, wall, cpu = export_rate(client, fmt, seconds)
            print(f"| export {fmt}, {seconds // 3600} h, all columns: {rows} rows | {wall:.2f} s → "
                  f"**{rows / wall / 1000:.0f}k rows/s** | | {cpu:.2f} s CPU → {rows / cpu / 1000:.0f}k rows/CPU-s |")
    return 0


# -- pytest (CI: once, timing disabled) ------------------------------------------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    url = build_lake(Path(tmp_path_factory.mktemp("bench-api")), 60_000)
    with TestClient(create_app(url)) as c:
        yield c


def test_queries(benchmark: Any, small: TestClient) -> None:
    qs = queries(small)

    def run_all() -> dict[str, Any]:
        out = {}
        for name, (path, params) in qs.items():
            r = small.get(path, params=params)
            assert r.status_code == 200, r.text
            out[name] = r.json()
        return out

    answers = benchmark(run_all)
    assert answers["flow table, no filter, limit 100, last 5 min"]["flows"]
    assert answers["topology, namespace scope, 1 h"]["edges"]
    metrics = answers["metrics, namespace bytes rate, 24 h (600 s step)"]
    assert metrics["step"] == 600 and metrics["metrics"]


def test_export(benchmark: Any, small: TestClient) -> None:
    rows, _, _ = benchmark(export_rate, small, "arrow", 3600)
    assert rows > 0


if __name__ == "__main__":
    sys.exit(main())
