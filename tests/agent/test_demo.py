"""`flowlake demo` end to end: namespace cluster, real agents, processor enrichment, API, cleanup."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.agent.netns import kernel_ready
from tests.procs import finish, free_port

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def flows(port: int, filters: str) -> list[dict[str, Any]]:
    q = urllib.parse.urlencode({"timeRange": 300, "limit": 1000, "filters": filters})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/flows?{q}", timeout=10) as resp:
        return json.loads(resp.read())["flows"]  # type: ignore[no-any-return]


def test_demo_captures_enriches_serves_and_cleans_up(tmp_path: Path) -> None:
    why = kernel_ready()
    if why:
        pytest.skip(why)
    port = free_port()
    before = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    proc = subprocess.Popen([sys.executable, "-P", "-m", "flowlake.engine.cli", "demo", "--data-dir",
                             str(tmp_path), "--api-port", str(port), "--duration", "70"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        calls: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(2)
            try:
                calls = flows(port, 'SrcK8S_OwnerName="loadgen"&DstK8S_OwnerName="backend"&DstPort=8080')
                drops = flows(port, "PktDropLatestDropCause=NETFILTER_DROP")
                dns = flows(port, 'DstK8S_OwnerName="coredns"&DstPort=53')
            except OSError:
                continue
            if calls and drops and dns:
                break
        assert calls, "no loadgen -> backend flow reached the API"
        assert all(f["SrcK8S_Namespace"] == "shop" and f["DstK8S_OwnerType"] == "StatefulSet" for f in calls)
        assert {f["AgentIP"] for f in calls} == {"10.80.0.2"}  # same-node flow: node2's agent
        assert drops and all(f["DstPort"] == 9090 and f["DstK8S_Name"] == "backend-0" for f in drops)
        assert dns and any(f.get("DnsId") is not None for f in dns)
        cross = flows(port, 'SrcK8S_OwnerName="frontend"&DstK8S_OwnerName="backend"')
        assert {f["AgentIP"] for f in cross} == {"10.80.0.1", "10.80.0.2"}  # both nodes report it
        proc.send_signal(signal.SIGINT)  # stop early: the checks are done
        out, err = proc.communicate(timeout=60)
    finally:
        finish(proc)
    assert proc.returncode == 0, err
    assert "flowlake demo is running" in out
    after = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    assert not {n for n in after - before if n.startswith("fl")}, "demo left namespaces behind"
