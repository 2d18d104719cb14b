"""The sink in the processor: registry wiring, the predefined set, and the package's front door."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry

from flowlake.engine import config, selfmetrics
from flowlake.engine.config import MetricsConfig
from flowlake.engine.errors import ConfigError
from flowlake.engine.metadata import static
from flowlake.engine.metrics import predefined
from flowlake.engine.processor import SINKS, Processor
from flowlake.engine.sinks.base import Sink
from flowlake.engine.sinks.metrics import MetricsSink
from tests.conftest import make_batch
from tests.engine.metrics.conftest import by_label, scrape


def test_sink_is_registered_and_follows_the_sink_protocol() -> None:
    sink = SINKS["metrics"](config.load(None, sinks=["metrics"]))
    try:
        assert isinstance(sink, Sink)
        assert sink.output == "Metrics"  # type: ignore[attr-defined]
        assert sink.flush() == 0  # nothing buffered: series are live once write returns
    finally:
        sink.close()
    sink.close()  # twice is harmless


def test_a_second_sink_on_one_registry_is_a_config_error() -> None:
    registry = CollectorRegistry()
    first = MetricsSink(MetricsConfig(), registry=registry)
    with pytest.raises(ConfigError, match="another metrics sink in this process"):
        MetricsSink(MetricsConfig(), registry=registry)
    first.close()
    MetricsSink(MetricsConfig(), registry=registry).close()  # closing unregistered the first


def test_processor_serves_flow_metrics_on_the_self_metrics_registry(tmp_path: Path) -> None:
    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps({"format": static.FORMAT, "cluster": "c1", "entries": [
        {"ip": "10.0.0.0", "namespace": "shop", "hostName": "node-1"},
        {"ip": "10.1.0.0", "namespace": "data", "hostName": "node-2"}]}))
    cfg = config.load(None, sinks=["metrics"], metadata=str(meta), **{"metrics.prefix": "proc_"})
    proc = Processor(cfg)
    try:
        proc.ingest(make_batch(10, FlowDirection=pa.array([0, 1] * 5, pa.uint8())), "test")
        series = scrape(selfmetrics.REGISTRY)
        flows = by_label(series, "proc_namespace_flows_total", "SrcK8S_Namespace")
        assert flows == {"shop": 1, "": 9}  # only 10.0.0.0 is known; nodes have no namespace
        ingress = by_label(series, "proc_node_ingress_bytes_total", "DstK8S_HostName")
        assert ingress == {"node-2": 100, "": sum(range(102, 110, 2))}
        assert all(dict(k[1]).get("K8S_ClusterName") == "c1" for k in series if k[0].startswith("proc_"))
    finally:
        proc.close()
    assert not any(k[0].startswith("proc_") for k in scrape(selfmetrics.REGISTRY))


def test_predefined_set_has_the_reference_names_and_labels() -> None:
    names = set(predefined.PREDEFINED)
    for group in ("node", "namespace", "workload"):
        assert {f"{group}_{d}_{u}_total" for d in ("ingress", "egress") for u in ("bytes", "packets")} <= names
        assert {f"{group}_{m}" for m in ("flows_total", "sampling", "rtt_seconds", "drop_packets_total",
                                         "drop_bytes_total", "dns_latency_seconds",
                                         "network_policy_events_total", "ipsec_flows_total")} <= names
    assert len(names) == 37 and "node_to_node_ingress_flows_total" in names
    assert set(predefined.DEFAULT_INCLUDE) <= names
    drops = predefined.PREDEFINED["namespace_drop_packets_total"]
    assert drops.labels[-2:] == ["PktDropLatestState", "PktDropLatestDropCause"]
    assert predefined.PREDEFINED["node_ingress_bytes_total"].labels == [
        "K8S_ClusterName", "SrcK8S_Zone", "DstK8S_Zone", "SrcK8S_HostName", "DstK8S_HostName", "TLSVersion"]
    rtt = predefined.PREDEFINED["workload_rtt_seconds"]
    assert rtt.bucket_bounds() == (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 1.0)
    assert rtt.divisor() == 1e9


def test_package_all_is_sorted_and_resolvable() -> None:
    module = importlib.import_module("flowlake.engine.metrics")
    assert list(module.__all__) == sorted(module.__all__)
    assert all(hasattr(module, n) for n in module.__all__)
    with pytest.raises(AttributeError):
        module.nope  # noqa: B018
