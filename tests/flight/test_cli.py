"""`flowlake api --flight-port`: the Flight service runs beside uvicorn in one process and stops with it."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest

import flowlake.engine as fl
from flowlake.engine.client import ClientError
from tests.procs import finish, free_port

pytestmark = pytest.mark.slow


def api(lake: str, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-P", "-m", "flowlake.engine.cli", "--log-level", "WARNING", "api",
                             "--lake", lake, "--port", str(port), "--log-level", "warning", *extra],
                            stderr=subprocess.PIPE)
    return proc, port


def wait_http(port: int, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1].decode()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2) as resp:
                return json.loads(resp.read())  # type: ignore[no-any-return]
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("flowlake api never answered")


def test_flight_runs_beside_http_and_stops_on_sigterm(world: dict[str, Any]) -> None:
    flight_port = free_port()
    proc, port = api(world["lake"], "--flight-port", str(flight_port))
    try:
        status = wait_http(port, proc)["info"]
        assert status["flight"] == f"grpc://127.0.0.1:{flight_port}"
        got = fl.connect(f"grpc://127.0.0.1:{flight_port}").sql("SELECT count(*) AS n FROM flows")
        assert got["n"][0] == world["synth"].num_rows
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert b"Traceback" not in proc.communicate()[1]
        with pytest.raises(ClientError, match="flowlake api --flight-port"):
            fl.connect(f"grpc://127.0.0.1:{flight_port}").sql("SELECT 1 AS x FROM flows")
    finally:
        finish(proc)


def test_flight_port_zero_disables_it(world: dict[str, Any]) -> None:
    proc, port = api(world["lake"], "--flight-port", "0")
    try:
        assert wait_http(port, proc)["info"]["flight"] == "disabled (--flight-port 0)"
    finally:
        finish(proc)


def test_a_taken_flight_port_given_explicitly_fails_with_the_fix(world: dict[str, Any]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc, _ = api(world["lake"], "--flight-port", str(taken.getsockname()[1]))
        try:
            _, err = proc.communicate(timeout=30)
        finally:
            finish(proc)
    assert proc.returncode == 2
    assert "pass another --flight-port, or --flight-port 0" in err.decode()


def test_flowlake_up_serves_flight_queries(tmp_path: Any) -> None:
    api_port, ingest, metrics, query = free_port(), free_port(), free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-P", "-m", "flowlake.engine.cli", "--log-level", "WARNING", "up",
                             "--data-dir", str(tmp_path / "data"), "--feed", "synthetic", "--rate", "2000",
                             "--flush-seconds", "1", "--api-port", str(api_port), "--flight-port", str(ingest),
                             "--metrics-port", str(metrics), "--query-port", str(query)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = fl.connect(f"grpc://127.0.0.1:{query}")
        deadline = time.monotonic() + 60
        count = 0
        while time.monotonic() < deadline and not count:
            assert proc.poll() is None
            with contextlib.suppress(ClientError):  # not up yet, or nothing published yet
                count = int(client.sql("SELECT count(*) AS n FROM flows")["n"][0])
            time.sleep(0.5)
        assert count > 0
        shop = client.flows(filters='namespace="shop"', columns=["SrcK8S_Namespace", "DstK8S_Namespace"])
        assert shop.height > 0  # enriched by the processor from the synthetic cluster's identities
    finally:
        finish(proc)


def test_a_taken_default_port_only_logs(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    # a second `flowlake api` on one machine still serves HTTP when 8815 is held by the first
    import argparse

    from flowlake.api import cli, flight_service

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setattr(flight_service, "DEFAULT_PORT", taken.getsockname()[1])
        info: dict[str, Any] = {}
        args = argparse.Namespace(flight_port=None, host="127.0.0.1", lake=world["lake"])
        assert cli._start_flight(args, info, None) is None
    assert info["flight"].startswith("not running: the Flight query service cannot listen")
    assert "--flight-port 0 to disable it" in caplog.text
