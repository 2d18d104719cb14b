"""Flight query service and open_lake rates: do_get streaming, SQL aggregation, lake scans with/without pruning.

Script (the numbers in docs/performance.md): `.venv/bin/python -P benchmarks/bench_flight.py --rows 10M`
builds an enriched lake of that many synthetic flows over 24 h (generator -> processor stages -> lake sink),
serves it with a real `flowlake api --flight-port` process and measures from a client in this process:
wall time, rows/s, MB/s (Arrow bytes received), CPU seconds of server and client, and the server's peak
RSS (bounded: results stream). In CI, pytest runs `test_flight_small` once on 100k rows (timing off).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.flight as flight

from flowlake.engine.config import LakeConfig, ProcessorConfig
from flowlake.engine.metadata import static
from flowlake.engine.processor import Processor
from flowlake.engine.synth import generate_chunks, make_cluster
from flowlake.engine.synth.cli import parse_count

START_MS = 1_795_651_200_000  # 2026-11-25T22:00:00Z, an hour boundary
HOUR = 3_600_000
AGG_SQL = ("SELECT SrcK8S_Namespace, DstK8S_Namespace, count(*) AS flows, sum(Bytes) AS bytes "
           "FROM flows GROUP BY SrcK8S_Namespace, DstK8S_Namespace")


def build_lake(root: Path, rows: int, hours: int = 24) -> str:
    cluster = make_cluster(seed=3)
    static.dump(str(root / "cluster.json"), cluster.metadata_table(), cluster.name)
    url = str(root / "lake")
    proc = Processor(ProcessorConfig(metadata=str(root / "cluster.json"),
                                     lake=LakeConfig(url=url, flush_rows=2_000_000)))
    for chunk in generate_chunks(cluster, START_MS, START_MS + hours * HOUR, rows, seed=3, chunk_flows=1_000_000):
        for batch in chunk.batches(262_144):
            proc.ingest(batch, "bench")
    proc.close()
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_api(lake_url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-P", "-m", "flowlake.engine.cli", "--log-level", "WARNING", "api",
                             "--lake", lake_url, "--port", str(free_port()), "--flight-port", str(port),
                             "--log-level", "warning"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise TimeoutError("flowlake api did not open its Flight port")


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, clock ticks (USER_HZ = 100)


def _proc_hwm_mb(pid: int) -> float:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def measure(name: str, server_pid: int | None, fn: Callable[[], tuple[int, int]]) -> dict[str, Any]:
    """Run fn() -> (rows, arrow bytes); wall time, rates, CPU seconds of each side, server peak RSS."""
    s0 = _proc_cpu(server_pid) if server_pid else 0.0
    idle_mb = _proc_hwm_mb(server_pid) if server_pid else 0.0
    c0, t0 = time.process_time(), time.perf_counter()
    rows, nbytes = fn()
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"what": name, "rows": rows, "wall_s": round(wall, 3), "rows_per_s": round(rows / wall),
                           "MB_per_s": round(nbytes / wall / 1e6, 1), "MB": round(nbytes / 1e6),
                           "client_cpu_s": round(time.process_time() - c0, 2)}
    if server_pid:
        out["server_cpu_s"] = round(_proc_cpu(server_pid) - s0, 2)
        out["server_rss_idle_MB"] = round(idle_mb)
        out["server_peak_rss_MB"] = round(_proc_hwm_mb(server_pid))
    return out


def do_get(client: flight.FlightClient, ticket: dict[str, Any]) -> tuple[int, int]:
    reader = client.do_get(flight.Ticket(json.dumps(ticket).encode()))
    rows = nbytes = 0
    for chunk in reader:
        rows += chunk.data.num_rows
        nbytes += chunk.data.nbytes
    return rows, nbytes


def scan(lake_url: str, start_ms: int | None, end_ms: int | None) -> tuple[int, int]:
    from flowlake.engine.client import open_lake

    lf = open_lake(lake_url, start=None if start_ms is None else start_ms / 1000,
                   end=None if end_ms is None else end_ms / 1000)
    out = lf.select("SrcK8S_Namespace", "DstK8S_Namespace", "Bytes", "TimeFlowEndMs").collect()
    return out.height, int(out.estimated_size())


def run_all(lake_url: str, hours: int) -> list[dict[str, Any]]:
    """Each Flight measurement on a fresh `flowlake api` process, so its peak RSS belongs to that query."""
    flight_cases: list[tuple[str, dict[str, Any]]] = [
        ("do_get SQL SELECT * (all 86 columns)", {"kind": "sql", "sql": "SELECT * FROM flows"}),
        ("do_get flows, all 86 columns (file by file)", {"kind": "flows"}),
        ("do_get flows, 6 columns", {"kind": "flows", "columns": [
            "TimeFlowEndMs", "SrcK8S_Namespace", "DstK8S_Namespace", "DstPort", "Bytes", "Packets"]}),
        ("SQL aggregation (group by namespace pair)", {"kind": "sql", "sql": AGG_SQL}),
    ]
    results = []
    for name, ticket in flight_cases:
        proc, port = start_api(lake_url)
        try:
            client = flight.FlightClient(f"grpc://127.0.0.1:{port}")
            results.append(measure(name, proc.pid, lambda t=ticket, c=client: do_get(c, t)))  # type: ignore[misc]
        finally:
            proc.terminate()
            proc.wait(30)
    mid = START_MS + hours // 2 * HOUR
    for name, start, end in ((f"open_lake scan, 4 columns, all {hours} h", None, None),
                             ("open_lake scan, 4 columns, 1 h (pruned)", mid, mid + HOUR)):
        results.append(measure(name, None, lambda s=start, e=end: scan(lake_url, s, e)))  # type: ignore[misc]
    return results


def test_flight_small(tmp_path: Path) -> None:
    lake_url = build_lake(tmp_path, 100_000, hours=4)
    results = run_all(lake_url, 4)
    assert [r["rows"] for r in results[:3]] == [100_000, 100_000, 100_000]
    assert results[3]["rows"] > 1
    assert results[4]["rows"] == 100_000 and 0 < results[5]["rows"] < 100_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=parse_count, default=10_000_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--lake", help="reuse a lake built by an earlier run (its path is printed)")
    args = parser.parse_args()
    lake_url = args.lake
    if lake_url is None:
        root = Path(tempfile.mkdtemp(prefix="flowlake-bench-flight-"))
        t0 = time.perf_counter()
        lake_url = build_lake(root, args.rows, args.hours)
        print(f"built {lake_url} ({args.rows} rows) in {time.perf_counter() - t0:.0f} s", flush=True)
    for r in run_all(lake_url, args.hours):
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
