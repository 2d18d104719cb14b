"""Loki sink: both wire formats byte for byte, labels and tenants, batching, retries, a receiver killed mid-stream."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cramjam
import polars as pl
import pytest

from flowlake.engine import config, selfmetrics
from flowlake.engine.config import LokiConfig
from flowlake.engine.errors import ConfigError, SinkError
from flowlake.engine.processor import Processor
from flowlake.engine.sinks import loki_pb, loki_wire
from flowlake.engine.sinks.loki import LokiSink
from tests.conftest import make_batch
from tests.sinks import victorialogs
from tests.sinks.harnesses import LokiHarness, expected_entries, victorialogs_exe


def counter(name: str, **labels: str) -> float:
    return selfmetrics.REGISTRY.get_sample_value(name, {"sink": "loki", **labels}) or 0.0


class Receiver:
    """A scripted Loki push endpoint on loopback: answers each request with the next status of `script`."""

    def __init__(self, script: list[int]) -> None:
        self.script, self.bodies = list(script), []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.bodies.append((dict(self.headers), body))
                status = owner.script.pop(0) if owner.script else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/loki/api/v1/push"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([])
    yield r
    r.close()


def cfg(url: str, **kw: Any) -> LokiConfig:
    return LokiConfig(**{"url": url, "min_backoff_seconds": 0.01, "max_backoff_seconds": 0.02, **kw})


def test_protobuf_body_is_what_the_protobuf_package_encodes(flows: pl.DataFrame) -> None:
    labels = list(LokiConfig().labels)
    streams = loki_wire.group(loki_wire.prepare(flows, labels), labels, {"app": "netobserv-flowcollector"})
    raw = bytes(cramjam.snappy.decompress_raw(loki_wire.protobuf_body(streams)))
    reference = loki_pb.PushRequest()
    for i, stream_labels in enumerate(streams.labels):
        stream = reference.streams.add(labels=loki_wire.label_string(stream_labels))
        for row in range(streams.starts[i], streams.starts[i + 1]):
            entry = stream.entries.add(line=streams.lines[row].as_py())
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(int(streams.ts_ns[row]), 10**9)
    assert raw == reference.SerializeToString()
    decoded = loki_pb.PushRequest.FromString(raw)
    assert sum(len(s.entries) for s in decoded.streams) == flows.height
    assert decoded.streams[0].labels.startswith("{") and 'app="netobserv-flowcollector"' in decoded.streams[0].labels


def test_json_body_carries_every_flow_once(flows: pl.DataFrame) -> None:
    labels = list(LokiConfig().labels)
    streams = loki_wire.group(loki_wire.prepare(flows, labels), labels, {"app": "netobserv-flowcollector"})
    doc = json.loads(loki_wire.json_body(streams))
    got = sorted((json.dumps(s["stream"], sort_keys=True), int(ts), json.dumps(json.loads(line), sort_keys=True))
                 for s in doc["streams"] for ts, line in s["values"])
    want = sorted((json.dumps(lb, sort_keys=True), ts, json.dumps(json.loads(line), sort_keys=True))
                  for lb, ts, line in expected_entries(flows, LokiConfig()))
    assert got == want
    assert len(doc["streams"]) == len({g[0] for g in got})  # one stream per label set


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_extra_and_static_labels_and_tenants(victorialogs_server: victorialogs.VictoriaLogs, fmt: str) -> None:
    harness = LokiHarness(victorialogs_server, fmt)
    frame = pl.from_arrow(make_batch(6, _RecordType=["flowLog", "newConnection"] * 3, SrcK8S_Namespace=["a"] * 6))
    assert isinstance(frame, pl.DataFrame)
    sink = LokiSink(harness.config(extra_labels=["_RecordType"], static_labels={"app": "netobserv-flowcollector",
                                                                               "cluster": "c1"}))
    sink.write(frame)
    sink.close()
    got = victorialogs_server.query(harness.tenant)
    assert len(got) == 6
    assert {e["_RecordType"] for e in got} == {"flowLog", "newConnection"}
    assert all(e["cluster"] == "c1" and e["app"] == "netobserv-flowcollector" and e["SrcK8S_Namespace"] == "a"
               for e in got)
    assert all("_RecordType" not in json.loads(e["_msg"]) for e in got)  # a label leaves the line
    assert victorialogs_server.query(victorialogs.new_tenant()) == []  # X-Scope-OrgID kept it apart


def test_batches_by_size(receiver: Receiver, flows: pl.DataFrame) -> None:
    sink = LokiSink(cfg(receiver.url, format="json", batch_size_bytes=100_000))
    sink.write(flows)  # ~600 KB of lines: pushed at once, in bodies of at most ~100 KB of lines
    assert len(receiver.bodies) >= 5
    assert sink.flush() == 0
    entries = [v for _, body in receiver.bodies for s in json.loads(body)["streams"] for v in s["values"]]
    assert len(entries) == flows.height
    line_bytes = [sum(len(v[1].encode()) for s in json.loads(body)["streams"] for v in s["values"])
                  for _, body in receiver.bodies]
    longest = max(len(v[1].encode()) for e in (json.loads(b)["streams"] for _, b in receiver.bodies)
                  for s in e for v in s["values"])
    assert max(line_bytes) <= 100_000 + longest and sum(line_bytes) > 500_000  # at most one line over
    sink.close()


def test_batch_wait_pushes_without_an_explicit_flush(receiver: Receiver) -> None:
    proc = Processor(config.load(None, sinks=["loki"], stages=[], flush_seconds=3600,
                                 loki={"url": receiver.url, "batch_wait_seconds": 0.1, "tenant_id": "team-a"}))
    proc.ingest(make_batch(10), "test")
    deadline = time.monotonic() + 5
    while not receiver.bodies:
        assert time.monotonic() < deadline, "nothing pushed within the batch wait"
        time.sleep(0.02)
    headers, body = receiver.bodies[0]
    assert headers["Content-Type"] == "application/x-protobuf" and headers["X-Scope-OrgID"] == "team-a"
    assert sum(len(s.entries) for s in loki_pb.PushRequest.FromString(
        bytes(cramjam.snappy.decompress_raw(body))).streams) == 10
    proc.close()


def test_429_and_5xx_are_retried_with_backoff() -> None:
    receiver = Receiver([429, 503])
    sleeps: list[float] = []
    sink = LokiSink(cfg(receiver.url, min_backoff_seconds=0.5, max_backoff_seconds=0.8))
    sink.pusher._sleep = sleeps.append
    before = (counter("flowlake_sink_retries_total"), counter("flowlake_sink_requests_total", outcome="retry"),
              counter("flowlake_sink_rows_total"))
    frame = pl.from_arrow(make_batch(20))
    assert isinstance(frame, pl.DataFrame)
    sink.write(frame)
    assert sink.flush() == 20
    assert sleeps == [0.5, 0.8]  # doubling, capped at max_backoff
    assert counter("flowlake_sink_retries_total") == before[0] + 40
    assert counter("flowlake_sink_requests_total", outcome="retry") == before[1] + 2
    assert counter("flowlake_sink_rows_total") == before[2] + 20
    assert len(receiver.bodies) == 3 and receiver.bodies[0][1] == receiver.bodies[2][1]
    sink.close()
    receiver.close()


def test_a_permanent_error_drops_at_once() -> None:
    receiver = Receiver([400])
    sink = LokiSink(cfg(receiver.url))
    dropped = counter("flowlake_sink_dropped_rows_total")
    sink.write(pl.from_arrow(make_batch(7)))  # type: ignore[arg-type]
    with pytest.raises(SinkError, match=r"dropped 7 flows"):
        sink.flush()
    assert len(receiver.bodies) == 1 and counter("flowlake_sink_dropped_rows_total") == dropped + 7
    sink.close()
    receiver.close()


def test_receiver_killed_mid_stream(tmp_path: Path) -> None:
    """Pushes before the crash arrive, pushes while it is down are retried then dropped and counted, pushes
    after the restart arrive: the receiver holds exactly the flows the counters say were delivered."""
    server = victorialogs.VictoriaLogs(victorialogs_exe(), tmp_path / "data").start()
    tenant = victorialogs.new_tenant()
    sink = LokiSink(cfg(server.push_url, tenant_id=tenant, max_retries=2, timeout_seconds=2))
    batches = [pl.from_arrow(make_batch(100, start_ms=1_764_000_000_000 + k * 600_000, seed=k)) for k in range(3)]
    before = {m: counter(f"flowlake_sink_{m}_total") for m in ("rows", "retries", "dropped_rows")}
    try:
        sink.write(batches[0])  # type: ignore[arg-type]
        assert sink.flush() == 100
        assert len(server.query(tenant)) == 100
        time.sleep(victorialogs.PERSIST_SECONDS + 2)  # a crash must not take what it acknowledged with it
        server.kill()
        sink.write(batches[1])  # type: ignore[arg-type]
        with pytest.raises(SinkError, match="dropped 100 flows"):
            sink.flush()
        server.start()  # same port, same data
        sink.write(batches[2])  # type: ignore[arg-type]
        assert sink.flush() == 100
        got = server.query(tenant)
    finally:
        sink.close()
        server.kill()
    sent_ts = {victorialogs.time_ns(e["_time"]) for e in got}
    want = {int(t) * 1_000_000 for b in (batches[0], batches[2]) for t in b["TimeFlowEndMs"]}  # type: ignore[index]
    assert len(got) == 200 and sent_ts == want
    assert counter("flowlake_sink_rows_total") == before["rows"] + 200
    assert counter("flowlake_sink_retries_total") == before["retries"] + 200  # two retries of 100 rows
    assert counter("flowlake_sink_dropped_rows_total") == before["dropped_rows"] + 100


def test_lines_leave_out_nulls_however_many_null_patterns() -> None:
    """Over 256 null patterns the lines are encoded at once and the nulls cut from the text instead."""
    n = 1024
    cols = ["DnsId", "DnsFlags", "DnsLatencyMs", "Dscp", "IcmpType", "IcmpCode", "Sampling", "ZoneId", "XlatSrcPort"]
    frame = pl.from_arrow(make_batch(n, **{c: [None if (i >> b) & 1 else i % 200 for i in range(n)]
                                           for b, c in enumerate(cols)}))
    assert isinstance(frame, pl.DataFrame)
    labels = list(LokiConfig().labels)
    prepared = loki_wire.prepare(frame, labels)
    got = sorted(json.dumps(json.loads(line), sort_keys=True) for line in prepared[loki_wire.LINE])
    want = sorted(json.dumps(json.loads(line), sort_keys=True) for _, _, line in expected_entries(frame, LokiConfig()))
    assert got == want


@pytest.mark.parametrize(("key", "value", "match"), [
    pytest.param("url", "loki:3100", r"loki\.url: .*expected http\(s\)://", id="url"),
    pytest.param("labels", ["NoSuchField"], r"NoSuchField.*not flow fields", id="label"),
    pytest.param("format", "xml", r"loki\.format", id="format"),
])
def test_bad_loki_settings_are_config_errors(key: str, value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config.load(None, **{f"loki.{key}": value})
