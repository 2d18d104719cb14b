"""The OTLP sink against the loopback receiver: metrics vs group_by ground truth, field mapping, refusals.

The conformance suite covers the logs round trip over gRPC and HTTP; here: the metric set as OTLP
Sums and Histograms with exact values, the reference's OTel names and `fields_mapping` overrides with a
multiplier, the processor wiring, and a receiver that refuses (dropped and counted, then recovered).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl
import pytest

from flowlake.engine import config, selfmetrics
from flowlake.engine.config import MetricsConfig, OtlpConfig
from flowlake.engine.errors import ConfigError, SinkError
from flowlake.engine.processor import Processor
from flowlake.engine.sinks.otlp import OtlpSink
from tests.conftest import make_batch
from tests.sinks import otlp_receiver

BOUNDS = [200.0, 1000.0, 10000.0]
DEFINITIONS: list[dict[str, Any]] = [
    {"metricName": "ns_bytes_total", "type": "Counter", "valueField": "Bytes",
     "labels": ["SrcK8S_Namespace", "DstK8S_Namespace"]},
    {"metricName": "flow_bytes", "type": "Histogram", "valueField": "Bytes", "labels": ["K8S_FlowLayer"],
     "buckets": BOUNDS},
]


@pytest.fixture(params=["grpc", "http"])
def receiver(request: pytest.FixtureRequest) -> Iterator[otlp_receiver.Receiver]:
    r = otlp_receiver.Receiver(request.param)
    yield r
    r.close()


def sink_for(r: otlp_receiver.Receiver, **kw: Any) -> OtlpSink:
    cfg = OtlpConfig(target_host="127.0.0.1", target_port=r.port, protocol=r.protocol,  # type: ignore[arg-type]
                     timeout_seconds=2.0, **kw)
    metrics = MetricsConfig(prefix="otlptest_", include=[], definitions=DEFINITIONS)  # type: ignore[arg-type]
    return OtlpSink(cfg, metrics)


def test_metric_set_matches_group_by(receiver: otlp_receiver.Receiver, flows: pl.DataFrame) -> None:
    sink = sink_for(receiver, logs=False)
    for part in flows.iter_slices(700):
        sink.write(part)
    sink.close()  # pushes the metrics once more on close
    got = receiver.metrics()
    assert set(got) == {"otlptest_ns_bytes_total", "otlptest_flow_bytes"}
    counter = got["otlptest_ns_bytes_total"]
    assert counter.sum.is_monotonic and counter.sum.aggregation_temporality == 2  # CUMULATIVE
    points = {(otlp_receiver.attributes(p.attributes).get("source.k8s.namespace.name", ""),
               otlp_receiver.attributes(p.attributes).get("destination.k8s.namespace.name", "")): p.as_double
              for p in counter.sum.data_points}
    want = flows.group_by(pl.col("SrcK8S_Namespace").fill_null(""), pl.col("DstK8S_Namespace").fill_null("")) \
        .agg(pl.col("Bytes").sum())
    assert points == {(s, d): float(b) for s, d, b in want.iter_rows()}
    hist = got["otlptest_flow_bytes"].histogram
    for p in hist.data_points:
        layer = otlp_receiver.attributes(p.attributes).get("k8s.layer", "")
        values = flows.filter(pl.col("K8S_FlowLayer").fill_null("") == layer).get_column("Bytes").to_numpy()
        edges = np.searchsorted(np.array(BOUNDS), values, side="left")  # Prometheus `le`: v <= bound
        assert list(p.explicit_bounds) == BOUNDS
        assert list(p.bucket_counts) == np.bincount(edges, minlength=len(BOUNDS) + 1).tolist()
        assert p.count == len(values) and p.sum == float(values.sum())
    assert sum(p.count for p in hist.data_points) == flows.height


def test_logs_names_mapping_and_resource(receiver: otlp_receiver.Receiver) -> None:
    frame = pl.from_arrow(make_batch(50, seed=2, SrcK8S_Namespace=["ns-a"] * 50, Flags=[0x12] * 50))
    assert isinstance(frame, pl.DataFrame)
    mapping = [{"input": "Bytes", "output": "flow.bytes", "multiplier": 8.0}, {"input": "AgentIP", "output": "agent"}]
    sink = sink_for(receiver, metrics=False, fields_mapping=mapping)
    sink.write(frame)
    assert sink.flush() == 50
    sink.close()
    logs = receiver.wait_logs(50)
    assert len(logs) == 50
    by_port = {r["attributes"]["source.port"]: r for r in logs}
    for row in frame.to_dicts():
        got = by_port[row["SrcPort"]]
        assert got["time_ns"] == row["TimeFlowEndMs"] * 1_000_000 and got["body"] is None
        assert got["resource"]["service.name"] == "flowlake" and got["scope"] == "flowlake.flows"
        a = got["attributes"]
        assert a["flow.bytes"] == row["Bytes"] * 8.0 and "bytes" not in a and a["agent"] == row["AgentIP"]
        assert a["source.address"] == row["SrcAddr"] and a["destination.port"] == row["DstPort"]
        assert a["source.k8s.namespace.name"] == "ns-a" and a["tcp.flags"] == ["SYN", "ACK"]
        assert a["timeflowstart"] == row["TimeFlowStartMs"] and a["protocol"] == 6
        assert "DnsName" not in a  # null fields are left out


def test_refusing_receiver_drops_and_counts_then_recovers(receiver: otlp_receiver.Receiver) -> None:
    sink = sink_for(receiver, metrics=False, max_retries=1)
    dropped = selfmetrics.SINK_DROPPED.labels(sink="otlp")._value.get()
    receiver.refuse = True
    sink.write(pl.from_arrow(make_batch(30, seed=3)))  # type: ignore[arg-type]
    with pytest.raises(SinkError, match="dropped 30 flows"):
        sink.flush()
    assert selfmetrics.SINK_DROPPED.labels(sink="otlp")._value.get() - dropped == 30
    receiver.refuse = False
    sink.write(pl.from_arrow(make_batch(20, seed=4)))  # type: ignore[arg-type]
    assert sink.flush() == 20
    sink.close()
    assert len(receiver.logs()) == 20


def test_processor_exports_to_otlp(flows: pl.DataFrame) -> None:
    r = otlp_receiver.Receiver("grpc")
    try:
        cfg = config.load(None, sinks=["memory", "otlp"], metrics_address="",
                          **{"otlp.target_host": "127.0.0.1", "otlp.target_port": r.port, "metrics.include": []})
        processor = Processor(cfg)
        processor.ingest(flows.to_arrow(), "test")
        processor.flush(strict=True)
        processor.close()
        assert len(r.wait_logs(flows.height)) == flows.height
    finally:
        r.close()


def test_bad_config_is_named() -> None:
    with pytest.raises(ConfigError, match=r"otlp\.target_host"):
        OtlpSink(OtlpConfig(), MetricsConfig())
    with pytest.raises(ConfigError, match=r"otlp\.fields_mapping"):
        OtlpSink(OtlpConfig(target_host="x", fields_mapping=[{"input": "Nope", "output": "n"}]),  # type: ignore[list-item]
                 MetricsConfig())
