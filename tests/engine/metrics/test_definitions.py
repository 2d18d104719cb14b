"""Definition validation: each bad definition is a ConfigError naming the metric, the key and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flowlake.engine import config
from flowlake.engine.config import MetricsConfig
from flowlake.engine.errors import ConfigError
from flowlake.engine.metrics import predefined
from flowlake.engine.sinks.metrics import MetricsSink


def good(**spec: Any) -> dict[str, Any]:
    return {"metricName": "m_total", "type": "Counter", **spec}


BAD: list[tuple[str, dict[str, Any], list[str]]] = [
    ("type", good(type="Summary"), ["'m_total'", "type", "Counter, Histogram, Gauge"]),
    ("direction", good(direction="Up"), ["direction", "Any, Egress, Ingress"]),
    ("match-type", good(filters=[{"field": "Proto", "matchType": "Like"}]), ["matchType", "Equal, NotEqual"]),
    ("unknown-field", good(labels=["SrcNamespace"]), ["labels", "'SrcNamespace' is not a flow field",
                                                      "flows-format.md"]),
    ("value-not-numeric", good(valueField="SrcAddr"), ["valueField", "not a numeric flow field", "Bytes"]),
    ("list-label", good(labels=["Interfaces"]), ["labels", "add it to flatten"]),
    ("subfield-unflattened", good(labels=["NetworkEvents>Type"]), ["add 'NetworkEvents' to flatten"]),
    ("map-label", good(labels=["NetworkEvents"], flatten=["NetworkEvents"]), ["use NetworkEvents>Key"]),
    ("label-name", good(labels=["NetworkEvents>Type"], flatten=["NetworkEvents"]),
     ["not a valid Prometheus label name", "remap it", "'networkevents_type'"]),
    ("remap-stray", good(remap={"Proto": "p"}), ["remap", "['Proto'] are not in labels"]),
    ("remap-clash", good(labels=["Proto", "Dscp"], remap={"Dscp": "Proto"}), ["exposed as ['Proto']"]),
    ("flatten-scalar", good(flatten=["Proto"]), ["flatten", "not a list field", "Interfaces"]),
    ("equal-on-list", good(filters=[{"field": "Interfaces", "value": "eth0"}]), ["add 'Interfaces' to flatten"]),
    ("numeric-value", good(filters=[{"field": "Proto", "value": "tcp"}]), ["Proto is numeric", "'tcp'"]),
    ("bad-regex", good(filters=[{"field": "SrcAddr", "value": "(", "matchType": "MatchRegex"}]), ["bad regex"]),
    ("bad-variable", good(filters=[{"field": "SrcAddr", "value": "$(Nope)"}]), ["$(Nope) is not a flow field"]),
    ("buckets-counter", good(buckets=["1"]), ["only a Histogram has buckets"]),
    ("buckets-text", good(type="Histogram", metricName="h", valueField="Bytes", buckets=["1", "ten"]),
     ["buckets", "must all be numbers"]),
    ("buckets-order", good(type="Histogram", metricName="h", valueField="Bytes", buckets=["2", "1"]),
     ["strictly increasing"]),
    ("divider-zero", good(valueField="Bytes", divider="0"), ["divider", "non-zero"]),
    ("divider-text", good(valueField="Bytes", divider="ms"), ["divider", "not a number"]),
    ("counter-suffix", good(metricName="bytes"), ["Counter names end in _total", "'bytes_total'"]),
    ("metric-name", good(metricName="9bad_total"), ["metricName", "not starting with a digit"]),
    ("unknown-key", good(valuefield="Bytes"), ["valuefield", "Extra inputs are not permitted"]),
    ("histogram-le", good(type="Histogram", metricName="h", valueField="Bytes", labels=["Proto"],
                          remap={"Proto": "le"}), ["'le' is the bucket label"]),
]


@pytest.mark.parametrize(("spec", "needles"), [(s, n) for _, s, n in BAD], ids=[i for i, _, _ in BAD])
def test_bad_definition_is_a_config_error_naming_metric_key_and_fix(spec: dict[str, Any], needles: list[str],
                                                                    tmp_path: Path) -> None:
    path = tmp_path / "processor.yaml"
    path.write_text(yaml.safe_dump({"sinks": ["metrics"], "metrics": {"definitions": [spec]}}))
    with pytest.raises(ConfigError) as err:
        config.load(path)
    message = str(err.value)
    assert spec["metricName"] in message
    for needle in needles:
        assert needle in message, message
    with pytest.raises(ConfigError, match=spec["metricName"]):
        predefined.parse([spec])


def test_regex_the_engine_cannot_run_fails_when_the_sink_is_built() -> None:
    cfg = MetricsConfig.model_validate({"include": [], "definitions": [
        good(filters=[{"field": "SrcAddr", "value": "(?=10)", "matchType": "MatchRegex"}])]})
    with pytest.raises(ConfigError, match=r"'m_total'.*look-around"):
        MetricsSink(cfg)


@pytest.mark.parametrize(("metrics", "needle"), [
    ({"include": ["node_bytes_total"]}, "unknown metric(s) ['node_bytes_total']; predefined names are"),
    ({"additional_include": ["nope"]}, "unknown metric(s) ['nope']"),
    ({"definitions": [good(metricName="namespace_flows_total")]}, "defined more than once"),
    ({"include": [], "definitions": [good(metricName="x_total"), {"metricName": "x", "type": "Gauge"}]},
     "'netobserv_x' and 'netobserv_x_total' both expose 'netobserv_x'"),
    ({"prefix": "my-", "include": ["namespace_flows_total"]}, "makes invalid names"),
    ({"expiry": 0}, "metrics.expiry"),
    ({"max_series": -1}, "metrics.max_series"),
], ids=["include", "additional-include", "duplicate", "family-clash", "prefix", "expiry", "max-series"])
def test_bad_selection_is_a_config_error(metrics: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load(None, **{f"metrics.{k}": v for k, v in metrics.items()})
    assert needle in str(err.value)


def test_a_flowmetric_crd_spec_pastes_unchanged() -> None:
    crd_spec = yaml.safe_load("""
        metricName: cluster_external_ingress_bytes_total
        type: Counter
        valueField: Bytes
        direction: Ingress
        labels: [DstK8S_HostName, DstK8S_Namespace]
        filters:
          - field: SrcSubnetLabel
            matchType: Absence
        charts:
          - dashboardName: Main
            title: External ingress traffic
            unit: Bps
            type: SingleStat
            queries: [{promQL: "sum(rate($METRIC[2m]))", legend: ""}]
    """)
    (spec,) = predefined.parse([crd_spec])
    assert spec.kind == "counter" and spec.flow_direction == "Ingress"


def test_defaults_follow_the_reference() -> None:
    cfg = config.load(None).metrics
    assert cfg.prefix == "netobserv_" and cfg.expiry == 120 and cfg.scale_by_sampling is False
    assert cfg.include == list(predefined.DEFAULT_INCLUDE)
