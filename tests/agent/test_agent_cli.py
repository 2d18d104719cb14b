"""`flowlake agent` as an operator runs it: --print-bpf, struct contract, SIGTERM cleanup, clear errors."""

from __future__ import annotations

import ctypes as ct
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flowlake.agent import bccload, program, records
from flowlake.engine.errors import ConfigError
from tests.agent.netns import Lab
from tests.agent.test_capture import received, udp_send, udp_sink
from tests.procs import finish


def flowlake(*argv: str) -> list[str]:
    return [sys.executable, "-P", "-m", "flowlake.engine.cli", *argv]


def test_print_bpf_shows_the_configuration_compiled_in() -> None:
    out = subprocess.run(flowlake("agent", "--print-bpf", "--sampling", "50", "--cache-max-flows", "1234",
                                  "--features", "DNSTracking,FlowRTT"), capture_output=True, text=True, check=True)
    text = out.stdout
    assert "#define SAMPLING 50" in text and "#define CACHE_MAX_FLOWS 1234" in text
    assert "#define ENABLE_DNS 1" in text and "#define ENABLE_RTT 1" in text and "ENABLE_DROPS" not in text
    assert "int flowlake_tc_ingress(struct __sk_buff *skb)" in text and '#include "' not in text


@pytest.mark.kernel
def test_numpy_mirrors_match_the_kernel_structs() -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root for BPF")
    _bcc, bpf = program.load(program.ProgramConfig(dns=True))
    for table, key, value in ((b"flows", records.KEY, records.STATS), (b"dns_flows", records.KEY, records.DNS)):
        assert ct.sizeof(bpf[table].Key) == key.itemsize
        assert ct.sizeof(bpf[table].Leaf) == value.itemsize
        for name, (_dtype, offset) in value.fields.items():
            if not name.startswith("pad"):
                assert getattr(bpf[table].Leaf, name).offset == offset, name
    bpf.cleanup()


@pytest.mark.kernel
def test_sigterm_removes_everything_and_flushes(lab: Lab, tmp_path: Path) -> None:
    a, b = lab.pair()
    out_dir = tmp_path / "flows"
    proc = subprocess.Popen(["ip", "netns", "exec", a.name, *flowlake(
        "agent", "--target", f"file://{out_dir}", "--cache-active-timeout", "60", "--metrics-address", "",
        "--agent-ip", a.ip)], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if "flowlake" in a.run(f"tc filter show dev {a.dev} ingress").stdout:
                break
            time.sleep(0.1)
        sink = udp_sink(b, 7400)
        udp_send(a, b.ip, 7400, count=4, size=10)
        received(sink, 4)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        finish(proc)
    assert proc.returncode == 0, err
    assert "clsact" not in a.run(f"tc qdisc show dev {a.dev}").stdout
    files = list(out_dir.glob("flows-*.arrow"))
    table = pa.concat_tables([pa.ipc.open_stream(f.read_bytes()).read_all() for f in files])
    flows = [r for r in table.to_pylist() if r["DstPort"] == 7400]
    assert len(flows) == 1 and flows[0]["Packets"] == 4  # the final drain on SIGTERM was exported


def test_not_root_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *flowlake(
        "agent", "--target", "file:///tmp/x")], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "needs root" in res.stderr


def test_missing_bcc_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    def fail(name: str) -> Any:
        raise ImportError(name)

    monkeypatch.setattr(importlib, "import_module", fail)
    with pytest.raises(bccload.BccUnavailable, match="install the Debian package python3-bpfcc"):
        bccload.import_bcc()


@pytest.mark.parametrize(("kwargs", "message"), [
    pytest.param({"features": ("Telepathy",)}, "unknown feature", id="feature"),
    pytest.param({"filter_rules": "[{\"ip_cidr\": \"10.0.0.0/33\"}]"}, "ip_cidr", id="cidr"),
    pytest.param({"filter_rules": "[{\"ip_cidr\": \"10.0.0.0/8\", \"port\": \"99999\"}]"}, "port", id="port"),
    pytest.param({"filter_rules": "[{\"ip_cidr\": \"10.0.0.0/8\", \"colour\": 1}]"}, "unknown field", id="field"),
])
def test_bad_configuration_is_named(kwargs: dict[str, Any], message: str) -> None:
    from flowlake.agent.run import Agent, AgentConfig

    with pytest.raises(ConfigError, match=message):
        Agent(AgentConfig(agent_ip="10.0.0.1", **kwargs))
