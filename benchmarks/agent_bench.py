"""Agent benchmarks against the real kernel: drain rate, per-packet cost, CPU/RSS, throughput impact.

Usage (root): .venv/bin/python -P benchmarks/agent_bench.py [--quick]
Prints one JSON line per measurement; numbers go to docs/performance.md. `bench_agent.py` runs the
quick variant in CI so this stays runnable.
"""

from __future__ import annotations

import argparse
import ctypes as ct
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.agent.netns (a test helper)

from flowlake.agent import drain, program, records
from flowlake.agent.bccload import import_bcc
from flowlake.agent.run import Agent, AgentConfig
from tests.agent.netns import Host, Lab


def drain_rate(n: int, rounds: int = 5) -> dict[str, Any]:
    """Fill the flow map with `n` flows from user space, then time the agent's drain to Arrow batches.

    Realistic shape: 20k source and 2k destination addresses, flows distinct by port, as a busy node
    sees them. One agent drains `rounds` times (a running agent drains every interval, so the first,
    cold drain is reported apart); wall time and the process CPU time per drain are both given,
    because other work on a shared machine stretches the wall time.
    """
    _bcc, bpf = program.load(program.ProgramConfig(cache_max_flows=n))
    lib = import_bcc().libbcc.lib
    keys = np.zeros(n, records.KEY)
    ips = np.arange(n, dtype=np.uint32)
    raw = keys.view(np.uint8).reshape(n, records.KEY.itemsize)
    raw[:, 10:12] = 0xFF  # v4-mapped source 10.x.y.z with z, y varying
    src, dst = ips % 20_000, (ips // 20_000) % 2_000
    raw[:, 12] = 10
    raw[:, 13:16] = src.view(np.uint8).reshape(n, 4)[:, :3][:, ::-1]
    raw[:, 26:28] = 0xFF
    raw[:, 28] = 172
    raw[:, 29:32] = dst.view(np.uint8).reshape(n, 4)[:, :3][:, ::-1]
    keys["src_port"] = 1024 + ips // 40_000_000 + (ips // 20_000)  # distinct per (src, dst) pair
    keys["dst_port"] = 443
    keys["proto"] = 6
    stats = np.zeros(n, records.STATS)
    stats["bytes"], stats["packets"], stats["eth_proto"] = 1500, 1, 0x0800
    stats["first_ns"] = stats["last_ns"] = time.monotonic_ns()
    stats["n_ifaces"], stats["ifaces"][:, 0], stats["sampling"] = 1, 2, 1
    fd = bpf[b"flows"].get_fd()
    agent = _FilledAgent(bpf, n)
    walls, cpus = [], []
    try:
        for _ in range(rounds):
            count = ct.c_uint32(n)
            if lib.bpf_update_batch(fd, ct.c_void_p(keys.ctypes.data), ct.c_void_p(stats.ctypes.data),
                                    ct.byref(count)):
                raise OSError(ct.get_errno(), "bpf_update_batch")
            t0, c0 = time.perf_counter(), time.process_time()
            batches = agent.drain()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            assert sum(b.num_rows for b in batches) == n
    finally:
        agent._convert.shutdown()
        bpf.cleanup()
    warm, warm_cpu = sorted(walls[1:]) or walls, sorted(cpus[1:]) or cpus
    median, median_cpu = warm[len(warm) // 2], warm_cpu[len(warm_cpu) // 2]
    return {"bench": "drain_to_arrow", "flows": n, "rounds": rounds, "cold_seconds": round(walls[0], 4),
            "seconds": round(median, 4), "flows_per_s": round(n / median), "best_flows_per_s": round(n / warm[0]),
            "cpu_seconds": round(median_cpu, 4), "flows_per_cpu_s": round(n / median_cpu),
            "batches": len(batches)}


class _FilledAgent(Agent):
    """The real drain path (chunked reader thread + conversion) over a map filled from user space."""

    def __init__(self, bpf: Any, n: int) -> None:  # no interfaces, no exporter: just the maps
        super().__init__(AgentConfig(agent_ip="10.0.0.1", cache_max_flows=n))
        self.bpf = bpf
        bpf[b"flow_events"].open_ring_buffer(self._on_event)
        self._drainers = {"flows": drain.MapDrainer("flows", bpf[b"flows"].get_fd(), records.KEY, records.STATS, n)}


def _iperf(client: Host, server: Host, seconds: int, udp_pps: int = 0) -> float:
    """Throughput in Gbit/s (TCP), or the received packet rate for UDP at `udp_pps` small packets."""
    srv = subprocess.Popen(["ip", "netns", "exec", server.name, "iperf3", "-s", "-1", "-J"],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    args = ["-u", "-l", "64", "-b", str(udp_pps * 64 * 8)] if udp_pps else []
    out = subprocess.run(["ip", "netns", "exec", client.name, "iperf3", "-c", server.ip, "-t", str(seconds), "-J",
                          *args], capture_output=True, text=True, check=True).stdout
    srv.wait(30)
    if srv.stdout:
        srv.stdout.close()
    end = json.loads(out)["end"]
    if udp_pps:
        return float(end["sum"]["packets"]) / seconds
    return float(end["sum_received"]["bits_per_second"]) / 1e9


def start_agent(host: Host, features: str = "", sampling: int = 1) -> subprocess.Popen[str]:
    proc = subprocess.Popen(["ip", "netns", "exec", host.name, sys.executable, "-P", "-m", "flowlake.engine.cli",
                             "--log-level", "WARNING", "agent", "--target", "file:///tmp/flowlake-bench-agent",
                             "--metrics-address", "", "--agent-ip", host.ip, "--features", features,
                             "--sampling", str(sampling), "--cache-max-flows", "100000"], text=True)
    for _ in range(200):
        if "flowlake" in host.run(f"tc filter show dev {host.dev} egress", check=False).stdout:
            return proc
        time.sleep(0.1)
    raise RuntimeError("agent did not attach")


def stop_agent(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(30)


def prog_stats(pid: int) -> dict[str, tuple[int, int]]:
    """(run_time_ns, run_cnt) of the agent's TC programs, from its fdinfo."""
    out: dict[str, tuple[int, int]] = {}
    for fd in Path(f"/proc/{pid}/fdinfo").iterdir():
        text = fd.read_text()
        if "prog_type:\t3" in text:  # BPF_PROG_TYPE_SCHED_CLS
            info = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
            out[info["prog_id"]] = (int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0)))
    return out


def agent_pid(proc: subprocess.Popen[str]) -> int:
    """The Python process under `ip netns exec` (which execs, so it is the same pid)."""
    return proc.pid


def per_packet_cost(lab: Lab, features: str, seconds: int) -> dict[str, Any]:
    a, b = lab.pair(offload=True)
    subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)
    agent = start_agent(a, features)
    try:
        before = prog_stats(agent_pid(agent))
        gbps = _iperf(a, b, seconds)
        after = prog_stats(agent_pid(agent))
    finally:
        stop_agent(agent)
        subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=0"], check=True)
    ns = sum(after[k][0] - before[k][0] for k in after)
    runs = sum(after[k][1] - before[k][1] for k in after)
    return {"bench": "per_packet", "features": features or "none", "runs": runs,
            "ns_per_run": round(ns / runs, 1) if runs else None, "iperf_gbps": round(gbps, 2)}


def throughput_impact(lab: Lab, seconds: int, rounds: int = 3) -> dict[str, Any]:
    """iperf3 TCP with and without the agent, alternated so background load hits both alike."""
    a, b = lab.pair(offload=True)
    base, with_agent = [], []
    for _ in range(rounds):
        base.append(_iperf(a, b, seconds))
        agent = start_agent(a, "")
        try:
            with_agent.append(_iperf(a, b, seconds))
        finally:
            stop_agent(agent)
    b0, b1 = float(np.median(base)), float(np.median(with_agent))
    return {"bench": "throughput", "baseline_gbps": round(b0, 2), "with_agent_gbps": round(b1, 2),
            "loss_pct": round(100 * (b0 - b1) / b0, 1), "rounds": rounds}


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_at_rate(lab: Lab, pps: int, seconds: int) -> dict[str, Any]:
    """Agent process CPU and kernel program CPU while `pps` small UDP packets cross the interface."""
    a, b = lab.pair(offload=True)
    subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)
    agent = start_agent(a, "DNSTracking,FlowRTT")
    pid = agent_pid(agent)
    try:
        c0, k0, t0 = _cpu(pid), prog_stats(pid), time.monotonic()
        got_pps = _iperf(a, b, seconds, udp_pps=pps)
        c1, k1, t1 = _cpu(pid), prog_stats(pid), time.monotonic()
        rss_kb = int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                          if line.startswith("VmRSS")))
    finally:
        stop_agent(agent)
        subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=0"], check=True)
    kernel_ns = sum(k1[p][0] - k0[p][0] for p in k1)
    return {"bench": "cpu_rss", "target_pps": pps, "measured_pps": round(got_pps),
            "agent_process_cores": round((c1 - c0) / (t1 - t0), 4),
            "bpf_program_cores": round(kernel_ns / 1e9 / (t1 - t0), 4), "agent_rss_mb": round(rss_kb / 1024, 1)}


FLOW_SENDER = r"""
import socket, sys, time
dst, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(50)]
end, sent = time.monotonic() + seconds, 0
while time.monotonic() < end:
    t = time.monotonic()
    for i in range(rate // 10):  # a new 5-tuple per datagram: 50 source ports x 60000 destination ports
        socks[sent % 50].sendto(b"x", (dst, 1024 + (sent // 50) % 60000)); sent += 1
    time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))
print(sent)
"""


def cpu_per_flow_rate(lab: Lab, flows_per_s: int, seconds: int) -> dict[str, Any]:
    """Agent process CPU per 1k new flows/s (the reference's agent costs ~0.01 core per 1k flows/s)."""
    a, b = lab.pair(offload=True)
    agent = subprocess.Popen(["ip", "netns", "exec", a.name, sys.executable, "-P", "-m", "flowlake.engine.cli",
                              "--log-level", "WARNING", "agent", "--target", "file:///tmp/flowlake-bench-agent",
                              "--metrics-address", "", "--agent-ip", a.ip, "--cache-active-timeout", "1",
                              "--cache-max-flows", str(4 * flows_per_s)], text=True)
    try:
        for _ in range(200):
            if "flowlake" in a.run(f"tc filter show dev {a.dev} egress", check=False).stdout:
                break
            time.sleep(0.1)
        c0, t0 = _cpu(agent.pid), time.monotonic()
        sent = int(a.run(f"{sys.executable} -P -c '{FLOW_SENDER}' {b.ip} {flows_per_s} {seconds}").stdout)
        time.sleep(1.5)  # the last drain
        c1, t1 = _cpu(agent.pid), time.monotonic()
    finally:
        stop_agent(agent)
    rate = sent / seconds
    cores = (c1 - c0) / (t1 - t0)
    return {"bench": "cpu_per_flows", "flows_per_s": round(rate), "agent_cores": round(cores, 4),
            "cores_per_1k_flows_s": round(cores / (rate / 1000), 5)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, short runs (CI)")
    args = p.parse_args()
    seconds = 2 if args.quick else 8
    print(json.dumps(drain_rate(20_000 if args.quick else 500_000)), flush=True)
    for features in ("", "DNSTracking", "FlowRTT", "PacketDrop", "DNSTracking,FlowRTT,PacketDrop"):
        lab = Lab()
        try:
            print(json.dumps(per_packet_cost(lab, features, seconds)), flush=True)
        finally:
            lab.close()
        if args.quick:
            break
    runs = [lambda lab: throughput_impact(lab, seconds, rounds=1 if args.quick else 3),
            lambda lab: cpu_at_rate(lab, 100_000, seconds),
            lambda lab: cpu_per_flow_rate(lab, 2_000 if args.quick else 10_000, seconds)]
    for bench in runs:
        lab = Lab()
        try:
            print(json.dumps(bench(lab)), flush=True)
        finally:
            lab.close()


if __name__ == "__main__":
    main()
