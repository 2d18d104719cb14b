"""Write throughput per sink (flows/s): lake, metrics, Kafka exporter, IPFIX, OTLP, on the same enriched flows.

Run `python -P benchmarks/bench_sinks.py [--flows 200000]` for the table in docs/performance.md: wall time
and the process's CPU time (user+sys, every thread: on a shared machine the steadier figure) of
`write` + `flush` of one sink, each on a fresh destination. Destinations are real: a temporary lake
folder; the Prometheus collector; a Kafka broker (tests/kafka/broker.py; skipped without java or jars);
an IPFIX collector that only drains its TCP socket (what is measured is the exporter, not a decoder);
the OTLP test receiver (gRPC, decoding every request in this same process, so its CPU is counted too).
Loki pushes are measured by benchmarks/bench_loki.py. Under pytest (CI, timing disabled) each sink
runs once on 20k flows and the test checks every flow arrived.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest

from flowlake.engine import selfmetrics
from flowlake.engine.config import IpfixConfig, KafkaExportConfig, MetricsConfig, OtlpConfig
from flowlake.engine.sinks.base import Sink
from flowlake.engine.sinks.ipfix import IpfixSink
from flowlake.engine.sinks.kafka import KafkaExportSink
from flowlake.engine.sinks.lake import LakeSink
from flowlake.engine.sinks.metrics import MetricsSink
from flowlake.engine.synth import generate, make_cluster

ROOT = Path(__file__).parents[1]


def _load(relative: str, name: str) -> ModuleType:
    """A tests/ module by path: the repo root cannot go on sys.path (its operator/ folder would shadow the
    standard library's operator module)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class Drain:
    """A TCP listener on loopback that reads and discards everything (an IPFIX collector that keeps up)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.bytes = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                while chunk := conn.recv(1 << 20):
                    self.bytes += len(chunk)

    def close(self) -> None:
        self.server.close()


def timed(sink: Sink, frame: pl.DataFrame, batch: int = 50_000) -> tuple[float, float]:
    """(wall s, process CPU s) of writing `frame` in batches and one flush."""
    wall, cpu = time.perf_counter(), time.process_time()
    for part in frame.iter_slices(batch):
        sink.write(part)
    sink.flush()
    return time.perf_counter() - wall, time.process_time() - cpu


def rows(name: str) -> float:
    return selfmetrics.SINK_ROWS.labels(sink=name)._value.get()  # type: ignore[no-any-return]


def cases(tmp: Path) -> Iterator[tuple[str, Callable[[], Sink], Callable[[], None]]]:
    """(name, make the sink, clean up) for every sink whose destination can run here."""
    yield "lake", lambda: LakeSink(str(tmp / "lake")), lambda: None
    yield "metrics (predefined set)", lambda: MetricsSink(MetricsConfig()), lambda: None
    drain = Drain()
    yield "ipfix tcp", lambda: IpfixSink(IpfixConfig(target_host="127.0.0.1", target_port=drain.port)), drain.close
    receiver = _load("tests/sinks/otlp_receiver.py", "bench_otlp_receiver").Receiver("grpc")
    from flowlake.engine.sinks.otlp import OtlpSink

    yield ("otlp logs grpc", lambda: OtlpSink(OtlpConfig(target_host="127.0.0.1", target_port=receiver.port,
                                                          metrics=False), MetricsConfig()), receiver.close)
    broker_mod = _load("tests/kafka/broker.py", "bench_kafka_broker")
    broker = broker_mod.KafkaBroker(tmp / "kafka")
    try:
        broker.start()
    except broker_mod.BrokerUnavailable as exc:
        print(f"kafka: skipped ({exc})")
        return
    topic = broker.create_topic("bench-export", 4)
    yield ("kafka json", lambda: KafkaExportSink(KafkaExportConfig(address=broker.bootstrap, topic=topic)),
           broker.stop)


def measure(frame: pl.DataFrame, tmp: Path, repeats: int = 3, only: str = "") -> list[dict[str, Any]]:
    out = []
    for name, make, cleanup in cases(tmp):
        if only and only not in name:
            cleanup()
            continue
        try:
            best: tuple[float, float] | None = None
            for _ in range(repeats):
                sink = make()
                before = rows(sink.name)
                wall, cpu = timed(sink, frame)
                sink.close()
                assert rows(sink.name) - before == frame.height or sink.name == "metrics", name
                best = (wall, cpu) if best is None or wall < best[0] else best
            assert best is not None
            out.append({"sink": name, "flows": frame.height, "wall_s": best[0], "cpu_s": best[1],
                        "flows_per_s": frame.height / best[0], "flows_per_cpu_s": frame.height / best[1]})
        finally:
            cleanup()
    return out


def flows(n: int) -> pl.DataFrame:
    here = str(Path(__file__).parent)
    if here not in sys.path:  # run as a script under -P; pytest puts benchmarks/ on sys.path itself
        sys.path.append(here)
    from bench_lake import enriched
    from conftest import START_MS

    return enriched(generate(make_cluster(seed=3), START_MS, START_MS + 4 * 3_600_000, n, seed=3))


@pytest.mark.slow
def test_every_sink_takes_every_flow(tmp_path: Path) -> None:
    result = measure(flows(20_000), tmp_path, repeats=1)
    assert {r["sink"] for r in result} >= {"lake", "metrics (predefined set)", "ipfix tcp", "otlp logs grpc"}
    if os.environ.get("FLOWLAKE_REQUIRE_KAFKA") == "1":
        assert "kafka json" in {r["sink"] for r in result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="run the sinks whose name contains this")
    args = parser.parse_args()
    frame = flows(args.flows)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(frame, Path(tmp), args.repeats, args.only)
    print(f"| sink | flows | wall (best of {args.repeats}) | flows/s | process CPU | flows per CPU-second |")
    print("|---|---|---|---|---|---|")
    for r in result:
        print(f"| {r['sink']} | {r['flows']:,} | {r['wall_s']:.2f} s | {r['flows_per_s']:,.0f} | {r['cpu_s']:.2f} s "
              f"| {r['flows_per_cpu_s']:,.0f} |")


if __name__ == "__main__":
    main()
