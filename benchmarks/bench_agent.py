"""Keeps benchmarks/agent_bench.py runnable in CI: the quick variant against the real kernel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel


def test_agent_bench_quick_runs_and_reports_every_measurement() -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root for BPF")
    out = subprocess.run([sys.executable, "-P", str(Path(__file__).with_name("agent_bench.py")), "--quick"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    results = {r["bench"]: r for r in map(json.loads, out.splitlines())}
    assert set(results) == {"drain_to_arrow", "per_packet", "throughput", "cpu_rss", "cpu_per_flows"}
    assert results["drain_to_arrow"]["flows"] == 20_000
    assert results["per_packet"]["runs"] > 0 and results["per_packet"]["ns_per_run"] > 0
    assert results["throughput"]["baseline_gbps"] > 0 and results["cpu_rss"]["agent_rss_mb"] > 0
    assert results["cpu_per_flows"]["flows_per_s"] > 0
