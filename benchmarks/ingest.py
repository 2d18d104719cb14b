"""Flight ingest rate into a separate `flowlake processor` process (flows/s and flows per CPU-second).

Usage: .venv/bin/python -P benchmarks/ingest.py [--flows 2000000] [--clients 2] [--sinks lake]
Generates realistic synthetic flows in this process, starts the processor as a child process, sends
`--bursts` bursts from `--clients` concurrent Flight clients and reads the processor's CPU time from
/proc. Per burst, `flows_per_s` is the rate at which it was accepted (the senders are done) and
`published_flows_per_s` counts until every flow is in lake files (the metrics sink has counted a flow
when the sender's `do_put` returns). Called by `bench_ingest.py` (small, in CI)
and by hand for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
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
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flowlake.engine import transport
from flowlake.engine.metadata import static
from flowlake.engine.synth import generate, make_cluster

START_MS = 1_795_651_200_000


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sys_seconds_and_faults(pid: int) -> tuple[float, int]:
    fields = _stat(pid)
    return int(fields[12]) / os.sysconf("SC_CLK_TCK"), int(fields[7])


def _lake_rows(lake: Path) -> int:
    rows = 0
    for f in lake.rglob("*.parquet"):
        if "_staging" not in f.parts:
            rows += pq.ParquetFile(f).metadata.num_rows
    return rows


def _wait_published(lake: Path, rows: int, deadline: float) -> None:
    """Until `rows` flows are in lake files (the metrics sink counts a flow before `do_put` returns)."""
    while _lake_rows(lake) < rows:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not published in time: lake holds {_lake_rows(lake)} of {rows} rows")
        time.sleep(0.02)


def run(flows: int, clients: int, sinks: str, batch_rows: int = 62_500, *, nodes: int = 6,
        scale: int = 1, bursts: int = 1) -> dict[str, Any]:
    """Send `bursts` bursts of `flows` flows (the same flows again, an hour later each time) and time
    each: accepted (senders done) and published (every flow in lake files; without the lake sink, the
    same as accepted: the metrics sink counts a flow before `do_put` returns)."""
    cluster = make_cluster(seed=5, nodes=nodes, scale=scale)
    data = generate(cluster, START_MS, START_MS + 3_600_000, flows, seed=5)
    batches = list(data.batches(batch_rows))
    sink_list = [s for s in sinks.split(",") if s]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        metadata = f"{tmp}/metadata.json"
        static.dump(metadata, cluster.metadata_table(), cluster.name)
        cfg = Path(tmp) / "processor.yaml"
        port = _port()
        # 62,500-flow batches fill the 500k-row lake buffer exactly, so a burst is published by full buffers
        # alone. The flusher (every 5 s) publishes a remainder: other sizes, or a publisher that took one
        # batch more than 500k so the tail never fills a buffer. max_series: 300 nodes hold ~100k series.
        flush_rows = min(500_000, flows)
        flush_seconds = 5
        cfg.write_text(f"listen: grpc://127.0.0.1:{port}\nmetrics_address: ''\nmetadata: {metadata}\n"
                       f"sinks: {sink_list}\nflush_seconds: {flush_seconds}\nlake:\n  url: {tmp}/lake\n"
                       f"  flush_rows: {flush_rows}\nmetrics:\n  max_series: 1000000\n")
        proc = subprocess.Popen([sys.executable, "-P", "-m", "flowlake.engine.cli", "--log-level", "WARNING",
                                 "processor", "--config", str(cfg)])
        lake = Path(tmp, "lake")
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
            for burst in range(bursts):
                shifted = [_shift(b, burst * 3_600_000) for b in batches] if burst else batches
                parts = [shifted[i::clients] for i in range(clients)]
                cpu0, t0 = _cpu_seconds(proc.pid), time.perf_counter()
                sys0, faults0 = _sys_seconds_and_faults(proc.pid)

                def send(part: list[Any]) -> None:
                    sender = transport.open_sender(f"grpc://127.0.0.1:{port}")
                    sender.send(part)
                    sender.close()

                threads = [threading.Thread(target=send, args=(p,)) for p in parts]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                accepted = time.perf_counter() - t0
                if "lake" in sink_list:
                    _wait_published(lake, flows * (burst + 1), time.monotonic() + 300)
                published, cpu = time.perf_counter() - t0, _cpu_seconds(proc.pid) - cpu0
                sys1, faults1 = _sys_seconds_and_faults(proc.pid)
                runs.append({"accepted_s": round(accepted, 3), "flows_per_s": round(flows / accepted),
                             "published_s": round(published, 3), "published_flows_per_s": round(flows / published),
                             "processor_cpu_s": round(cpu, 3), "kernel_cpu_s": round(sys1 - sys0, 3),
                             "page_faults": faults1 - faults0, "flows_per_cpu_s": round(flows / cpu) if cpu else None})
            proc.send_signal(signal.SIGTERM)  # the processor publishes what it still holds, then exits
            proc.wait(120)
            lake_rows = _lake_rows(lake)
        finally:
            if proc.poll() is None:
                proc.kill()
    pods = cluster.metadata_table().filter(pl.col("Type") == "Pod").height
    best = max(runs, key=lambda r: r["published_flows_per_s"])
    return {"flows": flows, "pods": pods, "clients": clients, "sinks": sinks or "none", **runs[0],
            "bursts": runs, "best_published_flows_per_s": best["published_flows_per_s"], "lake_rows": lake_rows}


def _shift(batch: Any, ms: int) -> Any:
    """The same flows `ms` later (a later burst lands in its own hour, as live traffic would)."""
    cols = {n: batch.column(n) for n in batch.schema.names}
    for name in ("TimeFlowStartMs", "TimeFlowEndMs"):
        cols[name] = pc.add(cols[name], ms)
    return pa.RecordBatch.from_arrays(list(cols.values()), schema=batch.schema)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flows", type=int, default=2_000_000)
    p.add_argument("--clients", type=int, default=2)
    p.add_argument("--sinks", default="lake", help="comma-separated sinks ('' for none)")
    p.add_argument("--nodes", type=int, default=6, help="synthetic cluster nodes (300 with --scale 540: 20k pods)")
    p.add_argument("--scale", type=int, default=1, help="replica multiplier of the synthetic cluster")
    p.add_argument("--bursts", type=int, default=1, help="bursts of --flows flows, one after another")
    args = p.parse_args()
    print(json.dumps(run(args.flows, args.clients, args.sinks, nodes=args.nodes, scale=args.scale,
                         bursts=args.bursts), indent=1))


if __name__ == "__main__":
    main()
