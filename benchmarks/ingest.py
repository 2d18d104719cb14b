"""Flight ingest rate into a separate `flowlake processor` process (flows/s and flows per CPU-second).

Usage: .venv/bin/python -P benchmarks/ingest.py [--flows 2000000] [--clients 2] [--sinks lake]
Generates realistic synthetic flows in this process, starts the processor as a child process, sends
from `--clients` concurrent Flight clients and reads the processor's CPU time from /proc. `flows_per_s`
is the rate at which the burst was accepted (the senders are done); `published_flows_per_s` counts until
the processor, stopped right after, has published everything (lake files written) and exited. Called by
`bench_ingest.py` (small, in CI) and by hand for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from flowlake.engine import transport
from flowlake.engine.metadata import static
from flowlake.engine.synth import generate, make_cluster

START_MS = 1_795_651_200_000


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(flows: int, clients: int, sinks: str, batch_rows: int = 65_536, *, nodes: int = 6,
        scale: int = 1) -> dict[str, Any]:
    cluster = make_cluster(seed=5, nodes=nodes, scale=scale)
    data = generate(cluster, START_MS, START_MS + 3_600_000, flows, seed=5)
    parts = [list(data.batches(batch_rows))[i::clients] for i in range(clients)]
    with tempfile.TemporaryDirectory() as tmp:
        metadata = f"{tmp}/metadata.json"
        static.dump(metadata, cluster.metadata_table(), cluster.name)
        cfg = Path(tmp) / "processor.yaml"
        port = _port()
        sink_list = [s for s in sinks.split(",") if s]
        cfg.write_text(f"listen: grpc://127.0.0.1:{port}\nmetrics_address: ''\nmetadata: {metadata}\n"
                       f"sinks: {sink_list}\nflush_seconds: 3600\nlake:\n  url: {tmp}/lake\n"
                       f"  flush_rows: 500000\nmetrics:\n  max_series: 1000000\n")  # 300 nodes: ~100k series
        proc = subprocess.Popen([sys.executable, "-P", "-m", "flowlake.engine.cli", "--log-level", "WARNING",
                                 "processor", "--config", str(cfg)])
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("processor did not start") from None
                    time.sleep(0.1)
            cpu0, t0 = _cpu_seconds(proc.pid), time.perf_counter()

            def send(part: list[Any]) -> None:
                sender = transport.open_sender(f"grpc://127.0.0.1:{port}")
                sender.send(part)
                sender.close()

            threads = [threading.Thread(target=send, args=(p,)) for p in parts]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall, cpu = time.perf_counter() - t0, _cpu_seconds(proc.pid) - cpu0
            proc.send_signal(signal.SIGTERM)  # the processor publishes what it still holds, then exits
            proc.wait(120)
            published = time.perf_counter() - t0
            lake_files = list(Path(tmp, "lake").rglob("*.parquet"))
            lake_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in lake_files)
        finally:
            if proc.poll() is None:
                proc.kill()
    pods = cluster.metadata_table().filter(pl.col("Type") == "Pod").height
    return {"flows": flows, "pods": pods, "clients": clients, "sinks": sinks or "none", "seconds": round(wall, 3),
            "flows_per_s": round(flows / wall), "published_seconds": round(published, 3),
            "published_flows_per_s": round(flows / published), "processor_cpu_s": round(cpu, 3),
            "flows_per_cpu_s": round(flows / cpu) if cpu else None, "lake_files": len(lake_files),
            "lake_rows": lake_rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flows", type=int, default=2_000_000)
    p.add_argument("--clients", type=int, default=2)
    p.add_argument("--sinks", default="lake", help="comma-separated sinks ('' for none)")
    p.add_argument("--nodes", type=int, default=6, help="synthetic cluster nodes (300 with --scale 540: 20k pods)")
    p.add_argument("--scale", type=int, default=1, help="replica multiplier of the synthetic cluster")
    args = p.parse_args()
    print(run(args.flows, args.clients, args.sinks, nodes=args.nodes, scale=args.scale))


if __name__ == "__main__":
    main()
