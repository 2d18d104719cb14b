"""Loki sink rates: lines + bodies per wire format, and pushes into a real VictoriaLogs, for 200k enriched flows.

Run with timing: `pytest benchmarks/bench_loki.py --benchmark-enable -s`; the numbers go to
docs/performance.md. In CI it runs once with timing disabled and still checks every flow arrived.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from bench_lake import enriched  # benchmarks/ is on sys.path (no __init__.py), the repo root is not

from flowlake.engine.config import LokiConfig
from flowlake.engine.sinks import loki_wire
from flowlake.engine.sinks.loki import LokiSink
from flowlake.engine.synth import SynthFlows

N = 200_000


def _load_victorialogs() -> Any:
    """tests/sinks/victorialogs.py by path: the repo root cannot go on sys.path (its operator/ folder would
    shadow the standard library's operator module)."""
    path = Path(__file__).parents[1] / "tests" / "sinks" / "victorialogs.py"
    spec = importlib.util.spec_from_file_location("flowlake_bench_victorialogs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


victorialogs = _load_victorialogs()


@pytest.fixture(scope="module")
def frame(flows_1m: SynthFlows) -> pl.DataFrame:
    return enriched(flows_1m).head(N)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    vl = victorialogs.VictoriaLogs(victorialogs.binary(), tmp_path_factory.mktemp("vl") / "data").start()
    yield vl
    vl.kill()


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_loki_encode_200k(benchmark: Any, frame: pl.DataFrame, fmt: str) -> None:
    labels = LokiConfig().labels

    def encode() -> bytes:
        streams = loki_wire.group(loki_wire.prepare(frame, labels), labels, {"app": "netobserv-flowcollector"})
        return loki_wire.BODIES[fmt](streams)

    body = benchmark(encode)
    benchmark.extra_info["body_bytes_per_flow"] = round(len(body) / N, 1)
    print(f"\nloki {fmt}: {N} flows, {len(body)} body bytes, {len(body) / N:.1f} bytes/flow")


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_loki_push_200k_to_victorialogs(benchmark: Any, frame: pl.DataFrame, server: Any, fmt: str) -> None:
    tenants: list[str] = []

    def push() -> None:
        tenants.append(victorialogs.new_tenant())
        sink = LokiSink(LokiConfig(url=server.push_url, format=fmt, tenant_id=tenants[-1]))
        for part in frame.iter_slices(50_000):
            sink.write(part)
        sink.close()

    benchmark.pedantic(push, rounds=3, iterations=1)
    got = server.query(tenants[-1], "* | stats count() as n")
    assert int(got[0]["n"]) == N
