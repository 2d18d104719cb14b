"""End-to-end rate of deployment model Kafka: synth -> Kafka broker -> `flowlake processor --ingest kafka://` -> lake.

Usage: .venv/bin/python -P benchmarks/kafka_pipeline.py [--flows 2000000] [--replicas 1] [--partitions 4]
Starts a real broker (tests/kafka/broker.py, jars from tests/kafka/build_kafka.sh), then the processor
replicas as child processes; once they joined the group it produces the flows from this process and
waits until the group committed every offset (so the lake holds every flow). Reports the producer's rate,
the end-to-end rate (first send -> last commit) and the processors' CPU seconds. Called by
`bench_kafka.py` (small, in CI) and by hand for docs/performance.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from flowlake.engine import transport
from flowlake.engine.metadata import static
from flowlake.engine.synth import generate, make_cluster

START_MS = 1_795_651_200_000
_BROKER = Path(__file__).resolve().parent.parent / "tests" / "kafka" / "broker.py"


def broker_module() -> Any:
    """tests/kafka/broker.py, loaded by path (benchmarks/ is not a package and tests/ may not be importable)."""
    spec = importlib.util.spec_from_file_location("flowlake_kafka_broker", _BROKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _group_done(bootstrap: str, group: str, topic: str) -> bool:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    try:
        parts = [TopicPartition(topic, p) for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        try:
            done = {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=10)}
        except KafkaException:
            return False
        return all(end == 0 or done.get(p) == end for p, end in ends.items())
    finally:
        consumer.close()


def _members(bootstrap: str, group: str) -> int:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})  # alive until the result came
    try:
        result = admin.describe_consumer_groups([group])[group].result(10)
    except Exception:  # the group does not exist yet
        return 0
    return len(result.members) if str(result.state).endswith("STABLE") else 0


def run(flows: int, replicas: int = 1, partitions: int = 4, max_rows: int = 10_000, broker: Any = None,
        timeout: float = 600.0, flush_seconds: float = 1.0) -> dict[str, Any]:
    cluster = make_cluster(seed=5)
    data = generate(cluster, START_MS, START_MS + 3_600_000, flows, seed=5)
    batches = list(data.batches(65_536))
    with tempfile.TemporaryDirectory() as tmp:
        own = broker is None
        if own:
            broker = broker_module().KafkaBroker(Path(tmp) / "kafka")
            broker.start()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            topic, group = broker.create_topic(f"bench-{time.time_ns()}", partitions), "flowlake-bench"
            metadata = f"{tmp}/metadata.json"
            static.dump(metadata, cluster.metadata_table(), cluster.name)
            cfg = Path(tmp) / "processor.yaml"
            cfg.write_text(f"ingest: kafka://{broker.bootstrap}/{topic}?group={group}\nmetrics_address: ''\n"
                           f"metadata: {metadata}\nsinks: [lake]\nflush_seconds: {flush_seconds}\n"
                           f"lake:\n  url: {tmp}/lake\n  flush_rows: 500000\n")
            procs = [subprocess.Popen([sys.executable, "-P", "-m", "flowlake.engine.cli", "--log-level", "WARNING",
                                       "processor", "--config", str(cfg)]) for _ in range(replicas)]
            deadline = time.monotonic() + 120
            while _members(broker.bootstrap, group) < replicas:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError("the processors did not join the consumer group")
                time.sleep(0.2)
            cpu0 = sum(_cpu_seconds(p.pid) for p in procs)
            t0 = time.perf_counter()
            sender = transport.open_sender(f"kafka://{broker.bootstrap}/{topic}?max_rows={max_rows}")
            sender.send(batches)
            sender.close()
            produced = time.perf_counter() - t0
            deadline = time.monotonic() + timeout
            while not _group_done(broker.bootstrap, group, topic):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError("the processors did not commit every offset in time")
                time.sleep(0.1)
            wall = time.perf_counter() - t0
            cpu = sum(_cpu_seconds(p.pid) for p in procs) - cpu0
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(120)
            lake_files = list(Path(tmp, "lake").rglob("*.parquet"))
            lake_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in lake_files)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            if own:
                broker.stop()
    return {"flows": flows, "replicas": replicas, "partitions": partitions, "flush_seconds": flush_seconds,
            "produce_s": round(produced, 3),
            "produce_flows_per_s": round(flows / produced), "end_to_end_s": round(wall, 3),
            "end_to_end_flows_per_s": round(flows / wall), "processor_cpu_s": round(cpu, 3),
            "flows_per_processor_cpu_s": round(flows / cpu) if cpu else None, "lake_rows": lake_rows}


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--flows", type=int, default=2_000_000)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--max-rows", type=int, default=10_000, help="rows per Kafka message")
    p.add_argument("--flush-seconds", type=float, default=1.0, help="processor flush (and commit) interval")
    args = p.parse_args()
    print(run(args.flows, args.replicas, args.partitions, args.max_rows, flush_seconds=args.flush_seconds))


if __name__ == "__main__":
    main()
