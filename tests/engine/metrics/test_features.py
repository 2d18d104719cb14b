"""Every definition feature, on small hand-made batches: values, filters, flatten, remap, divider, buckets,
direction, gauges, sampling, and what the scrape shows."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from tests.engine.metrics.conftest import Harness, by_label, frame


def counter(name: str = "test_total", **spec: Any) -> dict[str, Any]:
    return {"metricName": name, "type": "Counter", **spec}


def test_counter_adds_up_across_batches(harness: type[Harness]) -> None:
    h = harness(prefix="t_", definitions=[counter("bytes_total", valueField="Bytes", labels=["DstAddr"])])
    first = h.write(frame(10))  # Bytes 100..109, DstAddr 10.1.0.{i % 5}
    assert by_label(first, "t_bytes_total", "DstAddr") == {f"10.1.0.{k}": 100 + k + 105 + k for k in range(5)}
    second = h.write(frame(10))
    assert by_label(second, "t_bytes_total", "DstAddr") == {f"10.1.0.{k}": 2 * (205 + 2 * k) for k in range(5)}


def test_empty_value_field_counts_flows_and_null_values_are_skipped(harness: type[Harness]) -> None:
    h = harness(prefix="t_", definitions=[counter("flows_total", labels=["Proto"]),
                                          counter("rtt_total", valueField="TimeFlowRttNs")])
    series = h.write(frame(6, TimeFlowRttNs=[1, None, 3, None, 5, None]))
    assert by_label(series, "t_flows_total", "Proto") == {"6": 6}
    assert by_label(series, "t_rtt_total", "") == {"": 9}  # FLP ignores a flow without the value field


@pytest.mark.parametrize(("flt", "expected"), [
    ({"field": "DstAddr", "value": "10.1.0.1"}, {"10.1.0.1"}),
    ({"field": "DstAddr", "value": "10.1.0.1", "matchType": "NotEqual"}, {"10.1.0.0", "10.1.0.2"}),
    ({"field": "DnsId", "matchType": "Presence"}, {"10.1.0.0"}),
    ({"field": "DnsId", "matchType": "Absence"}, {"10.1.0.1", "10.1.0.2"}),
    ({"field": "DstAddr", "value": "0\\.[12]$", "matchType": "MatchRegex"}, {"10.1.0.1", "10.1.0.2"}),
    ({"field": "DstAddr", "value": "0\\.[12]$", "matchType": "NotMatchRegex"}, {"10.1.0.0"}),
    ({"field": "DstPort", "value": "443"}, {"10.1.0.0", "10.1.0.1", "10.1.0.2"}),  # numbers as numbers
    ({"field": "DstPort", "value": "443.5"}, set()),
    ({"field": "DnsId", "value": "7", "matchType": "NotEqual"}, {"10.1.0.1", "10.1.0.2"}),  # missing != 7
    ({"field": "SrcAddr", "value": "$(DstAddr)"}, {"10.1.0.2"}),  # $(Field) injection
    ({"field": "SrcAddr", "value": "$(DstAddr)", "matchType": "NotEqual"}, {"10.1.0.0", "10.1.0.1"}),
], ids=["equal", "not-equal", "presence", "absence", "regex", "not-regex", "numeric", "numeric-fraction",
        "not-equal-missing", "injection", "injection-not-equal"])
def test_filter_match_types(harness: type[Harness], flt: dict[str, str], expected: set[str]) -> None:
    h = harness(prefix="t_", definitions=[counter(labels=["DstAddr"], filters=[flt])])
    f = frame(3, DstAddr=["10.1.0.0", "10.1.0.1", "10.1.0.2"], SrcAddr=["a", "b", "10.1.0.2"],
              DnsId=pa.array([7, None, None], pa.uint16()))
    assert set(by_label(h.write(f), "t_test_total", "DstAddr")) == expected


def test_filters_on_one_field_are_ored_and_fields_are_anded(harness: type[Harness]) -> None:
    filters = [{"field": "DstAddr", "value": "10.1.0.1"}, {"field": "DstAddr", "value": "10.1.0.2"},
               {"field": "SrcAddr", "value": "10.0.0.2", "matchType": "NotEqual"}]
    h = harness(prefix="t_", definitions=[counter(labels=["DstAddr", "SrcAddr"], filters=filters)])
    got = h.write(frame(10))  # rows i: src 10.0.0.i, dst 10.1.0.(i % 5)
    pairs = {(dict(k[1])["DstAddr"], dict(k[1])["SrcAddr"]) for k in got if k[0] == "t_test_total"}
    assert pairs == {("10.1.0.1", "10.0.0.1"), ("10.1.0.1", "10.0.0.6"), ("10.1.0.2", "10.0.0.7")}


@pytest.mark.parametrize(("direction", "kept"), [("Ingress", {"0", "2"}), ("Egress", {"1", "2"}),
                                                 ("Any", {"0", "1", "2", ""}), ("ingress", {"0", "2"})])
def test_direction_keeps_inner_both_ways(harness: type[Harness], direction: str, kept: set[str]) -> None:
    h = harness(prefix="t_", definitions=[counter(labels=["FlowDirection"], direction=direction)])
    f = frame(4, FlowDirection=pa.array([0, 1, 2, None], pa.uint8()))
    assert set(by_label(h.write(f), "t_test_total", "FlowDirection")) == kept


def test_remap_renames_labels(harness: type[Harness]) -> None:
    h = harness(prefix="t_", definitions=[counter(labels=["DstAddr"], remap={"DstAddr": "destination"})])
    got = h.write(frame(2))
    assert {dict(k[1])["destination"] for k in got if k[0] == "t_test_total"} == {"10.1.0.0", "10.1.0.1"}
    assert all("DstAddr" not in dict(k[1]) for k in got)


def test_flatten_gives_one_series_per_item_and_counts_empty_lists_once(harness: type[Harness]) -> None:
    h = harness(prefix="t_", definitions=[counter(valueField="Bytes", labels=["Interfaces"], flatten=["Interfaces"])])
    f = frame(4, Interfaces=[["eth0", "genev"], ["eth0"], [], None])  # Bytes 100, 101, 102, 103
    assert by_label(h.write(f), "t_test_total", "Interfaces") == {"eth0": 201, "genev": 100, "": 205}


def test_flatten_zips_parallel_lists(harness: type[Harness]) -> None:
    h = harness(prefix="t_", definitions=[counter(labels=["Interfaces", "IfDirections"],
                                                  flatten=["Interfaces", "IfDirections"])])
    f = frame(3, Interfaces=[["veth1", "genev"], ["ens5"], None],
              IfDirections=pa.array([[0, 1], [1, 0], [1]], pa.list_(pa.uint8())))
    got = {(dict(k[1]).get("Interfaces", ""), dict(k[1]).get("IfDirections", "")): v
           for k, v in h.write(f).items() if k[0] == "t_test_total"}
    # item i goes with item i; a shorter list is padded with an empty label
    assert got == {("veth1", "0"): 1, ("genev", "1"): 1, ("ens5", "1"): 1, ("", "0"): 1, ("", "1"): 1}


def test_flatten_filter_applies_to_items(harness: type[Harness]) -> None:
    h = harness(prefix="t_", definitions=[counter(labels=["Interfaces"], flatten=["Interfaces"],
                                                  filters=[{"field": "Interfaces", "value": "^veth",
                                                            "matchType": "MatchRegex"}])])
    f = frame(3, Interfaces=[["veth1", "genev"], ["ens5"], ["veth2"]])
    assert by_label(h.write(f), "t_test_total", "Interfaces") == {"veth1": 1, "veth2": 1}


def test_network_policy_events_flatten_maps(harness: type[Harness]) -> None:
    h = harness(prefix="t_", include=["namespace_network_policy_events_total"])
    acl = [("Feature", "acl"), ("Type", "NetworkPolicy"), ("Namespace", "shop"), ("Name", "deny-all"),
           ("Action", "drop"), ("Direction", "Ingress")]
    other = [("Feature", "multicast"), ("Type", "x")]
    events = pa.array([[acl, other], [acl], [other], None], pa.list_(pa.map_(pa.string(), pa.string())))
    got = h.write(frame(4, NetworkEvents=events))
    samples = {k: v for k, v in got.items() if k[0] == "t_namespace_network_policy_events_total"}
    assert list(samples.values()) == [2.0]
    (labels,) = [dict(k[1]) for k in samples]
    assert labels == {"type": "NetworkPolicy", "namespace": "shop", "name": "deny-all", "action": "drop",
                      "direction": "Ingress"}


def test_histogram_buckets_sum_count_and_divider(harness: type[Harness]) -> None:
    h = harness(prefix="t_", definitions=[{"metricName": "rtt_seconds", "type": "Histogram",
                                           "valueField": "TimeFlowRttNs", "divider": "1000000000",
                                           "buckets": [".01", ".1", "1"]}])
    ns = [5_000_000, 10_000_000, 50_000_000, 2_000_000_000, None]  # 5 ms, 10 ms (on a bound), 50 ms, 2 s
    got = h.write(frame(5, TimeFlowRttNs=pa.array(ns, pa.int64())))
    assert by_label(got, "t_rtt_seconds_bucket", "le") == {"0.01": 2, "0.1": 3, "1.0": 3, "+Inf": 4}
    assert by_label(got, "t_rtt_seconds_count", "") == {"": 4}
    assert by_label(got, "t_rtt_seconds_sum", "")[""] == pytest.approx(2.065)
    again = h.write(frame(1, TimeFlowRttNs=pa.array([20_000_000], pa.int64())))
    assert by_label(again, "t_rtt_seconds_bucket", "le") == {"0.01": 2, "0.1": 4, "1.0": 4, "+Inf": 5}


def test_histogram_without_buckets_uses_the_client_defaults(harness: type[Harness]) -> None:
    h = harness(prefix="t_", definitions=[{"metricName": "b", "type": "Histogram", "valueField": "Bytes"}])
    got = h.write(frame(3))
    assert set(by_label(got, "t_b_bucket", "le")) == {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                                                       "1.0", "2.5", "5.0", "10.0", "+Inf"}


def test_gauge_keeps_the_latest_value(harness: type[Harness]) -> None:
    h = harness(prefix="t_", definitions=[{"metricName": "sampling", "type": "Gauge", "valueField": "Sampling",
                                           "labels": ["DstPort"]}])
    assert by_label(h.write(frame(3, Sampling=pa.array([1, 50, 10], pa.uint32()))), "t_sampling", "DstPort") \
        == {"443": 10}
    assert by_label(h.write(frame(1, Sampling=pa.array([400], pa.uint32()))), "t_sampling", "DstPort") \
        == {"443": 400}


@pytest.mark.parametrize("scale", [False, True], ids=["reference", "scaled"])
def test_scale_by_sampling_multiplies_counter_values_only(harness: type[Harness], scale: bool) -> None:
    h = harness(prefix="t_", scale_by_sampling=scale, definitions=[
        counter("bytes_total", valueField="Bytes"), counter("flows_total"),
        {"metricName": "b", "type": "Histogram", "valueField": "Bytes", "buckets": ["101"]}])
    got = h.write(frame(3, Sampling=pa.array([1, 10, None], pa.uint32())))  # Bytes 100, 101, 102
    assert by_label(got, "t_bytes_total", "") == {"": 100 + 1010 + 102 if scale else 303}
    assert by_label(got, "t_flows_total", "") == {"": 3}  # a flow count is not an extensive quantity
    assert by_label(got, "t_b_bucket", "le") == {"101.0": 2, "+Inf": 3}


def test_empty_labels_are_left_out_of_the_exposition(harness: type[Harness]) -> None:
    h = harness(prefix="t_", definitions=[counter(labels=["DstAddr", "SrcK8S_Zone"])])
    got = h.write(frame(1))
    assert [dict(k[1]) for k in got if k[0] == "t_test_total"] == [{"DstAddr": "10.1.0.0"}]


def test_labels_of_every_type_render_as_text(harness: type[Harness]) -> None:
    h = harness(prefix="t_", definitions=[counter(labels=["Proto", "QuicSeenLongHdr", "DstPort"])])
    got = h.write(frame(1, QuicSeenLongHdr=[True]))
    assert [dict(k[1]) for k in got if k[0] == "t_test_total"] == [
        {"Proto": "6", "QuicSeenLongHdr": "true", "DstPort": "443"}]


def test_batch_without_optional_columns(harness: type[Harness]) -> None:
    h = harness(prefix="t_", definitions=[counter(labels=["SrcK8S_Namespace"], direction="Ingress")])
    h.sink.write(frame(3, FlowDirection=pa.array([0, 0, 1], pa.uint8())).select("Bytes", "FlowDirection"))
    assert by_label(h.write(), "t_test_total", "SrcK8S_Namespace") == {"": 2}
