"""`flowlake up` as a user runs it: everything starts, flows reach the API enriched, Ctrl-C stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.procs import finish, free_port, wait_port

pytestmark = pytest.mark.slow


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def test_up_serves_live_enriched_flows_and_stops_cleanly(tmp_path: Path) -> None:
    api, flight, metrics, query = free_port(), free_port(), free_port(), free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-P", "-m", "flowlake.engine.cli", "up", "--data-dir", str(data),
                             "--api-port", str(api), "--flight-port", str(flight), "--metrics-port", str(metrics),
                             "--query-port", str(query),
                             "--flush-seconds", "1", "--rate", "500", "--feed", "synthetic"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(api, proc, timeout=60)
        status = get(f"http://127.0.0.1:{api}/api/status")
        assert status["info"] == {"feed": "synthetic (--feed synthetic)", "auth": "off",
                                  "flight": f"grpc://127.0.0.1:{query}"}
        flows: list[dict[str, Any]] = []
        deadline = time.monotonic() + 40
        while not flows and time.monotonic() < deadline:
            time.sleep(1)
            flows = get(f"http://127.0.0.1:{api}/api/flows?timeRange=120&limit=50")["flows"]
        assert flows, "no flow reached the API within 40 s"
        assert any(f.get("SrcK8S_Namespace") for f in flows)  # enriched from the generated cluster
        assert all(f["K8S_ClusterName"] == "synth" for f in flows)
        kids = children_of(proc.pid)
        assert len(kids) == 3  # processor, api, feed
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        finish(proc)
    assert proc.returncode == 0, err
    assert "feeds: synthetic" in out and f"http://127.0.0.1:{api}/docs" in out
    assert "processor: stopped" in err
    for pid in kids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"child {pid} still running"
    lake = data / "lake"
    files = list(lake.rglob("date=*/hour=*/*.parquet"))
    assert files and sum(pq.ParquetFile(f).metadata.num_rows for f in files) >= len(flows)
    assert not os.listdir(lake / "_staging")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.kernel
def test_up_runs_the_real_agent_when_it_can(tmp_path: Path) -> None:
    """In a namespace of its own (so the host's interfaces are left alone), `up` picks the agent."""
    from tests.agent.netns import Lab, kernel_ready
    from tests.agent.test_capture import received, udp_send, udp_sink

    if kernel_ready():
        pytest.skip(kernel_ready() or "")
    lab = Lab()
    try:
        a, b = lab.pair()
        a.run("ip link set lo up")
        api = free_port()
        proc = subprocess.Popen(["ip", "netns", "exec", a.name, sys.executable, "-P", "-m", "flowlake.engine.cli",
                                 "up", "--data-dir", str(tmp_path / "data"), "--api-port", str(api),
                                 "--flush-seconds", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(300):
                if "flowlake" in a.run(f"tc filter show dev {a.dev} egress", check=False).stdout:
                    break
                time.sleep(0.2)
            found: list[dict[str, Any]] = []
            for _ in range(40):
                sink = udp_sink(b, 7777)
                udp_send(a, b.ip, 7777, count=3, size=10)
                received(sink, 3)
                time.sleep(1)
                body = a.run(f"{sys.executable} -P -c \"import urllib.request;print(urllib.request.urlopen("
                             f"'http://127.0.0.1:{api}/api/flows?timeRange=120&filters=DstPort=7777').read().decode())"
                             f"\"", check=False).stdout
                found = json.loads(body)["flows"] if body.strip() else []
                if found:
                    break
            assert found and found[0]["DstAddr"] == b.ip and found[0]["Interfaces"] == [a.dev]
            proc.send_signal(signal.SIGINT)
            out, _err = proc.communicate(timeout=60)
        finally:
            finish(proc)
        assert "feeds: agent (the eBPF agent can run here)" in out, out
        assert "clsact" not in a.run(f"tc qdisc show dev {a.dev}").stdout  # the agent cleaned up
    finally:
        lab.close()
