"""The column-wise /metrics text (engine/metrics/exposition.py) against prometheus_client's own, and its server.

Every scrape of the other metrics tests already compares the two texts (conftest.scrape); these add what
hand-made batches there do not reach: label values that need escaping, `name[]` selection, and HTTP
(IPv4 and IPv6).
"""

from __future__ import annotations

import gzip
import urllib.request

import pyarrow as pa
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from flowlake.engine.metrics import exposition
from tests.engine.metrics.conftest import Harness, frame, parse, scrape

TRICKY = ['say "hi"', "back\\slash", "two\nlines", "ünïcode ✓", "", "plain"]


def test_label_values_that_need_escaping_read_back_unchanged(harness: type[Harness]) -> None:
    h = harness(prefix="esc_", definitions=[
        {"metricName": "names_total", "type": "Counter", "labels": ["DnsName", "DstAddr"]},
        {"metricName": "rtt_seconds", "type": "Histogram", "valueField": "TimeFlowRttNs", "divider": "1000",
         "buckets": ["0.5", "2"], "labels": ["DnsName"]},
        {"metricName": "sampling", "type": "Gauge", "valueField": "Sampling", "labels": ["DnsName"]}])
    n = len(TRICKY)
    series = h.write(frame(n, DnsName=pa.array(TRICKY), TimeFlowRttNs=pa.array([100, 1000, 3000, 1, 2, 4000]),
                           Sampling=pa.array(range(1, n + 1), pa.uint32())))  # scrape() compares both texts
    names = {dict(k[1]).get("DnsName", "") for k in series if k[0] == "esc_names_total"}
    assert names == set(TRICKY)
    buckets = {(dict(k[1]).get("DnsName", ""), dict(k[1])["le"]): v for k, v in series.items()
               if k[0] == "esc_rtt_seconds_bucket"}
    assert buckets[("two\nlines", "2.0")] == 0 and buckets[("two\nlines", "+Inf")] == 1  # 3 s
    assert buckets[("", "0.5")] == 1  # 2 ms: the series whose DnsName is empty has only `le`


@pytest.mark.parametrize("names", [
    ["sel_a_total"], ["sel_a"], ["sel_b_seconds_bucket"], ["sel_b_seconds_sum"], ["sel_b_seconds"],
    ["sel_b_seconds_count", "sel_a_total", "flowlake_metrics_series"], ["nothing_of_that_name"]])
def test_name_selection_keeps_what_prometheus_client_keeps(harness: type[Harness], names: list[str]) -> None:
    """`name[]` selects samples by name, as prometheus_client's restricted registry does: `x_bucket` alone
    is only the buckets, and a histogram's or counter's bare family name selects nothing."""
    h = harness(prefix="sel_", definitions=[
        {"metricName": "a_total", "type": "Counter", "labels": ["DstAddr"]},
        {"metricName": "b_seconds", "type": "Histogram", "valueField": "TimeFlowRttNs", "labels": ["DstAddr"]}])
    h.write(frame(4, TimeFlowRttNs=pa.array([1, 2, 3, 4])))
    ours = parse(exposition.generate(h.registry, names).decode())
    theirs = parse(generate_latest(h.registry.restricted_registry(names)).decode())
    assert ours[0] == theirs[0]
    assert {k[0] for k in ours[0]} <= set(names)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_server_answers_plain_and_gzip(harness: type[Harness], host: str) -> None:
    h = harness(prefix="http_", definitions=[{"metricName": "flows_total", "type": "Counter",
                                              "labels": ["DstAddr"]}])
    h.write(frame(5))
    server = exposition.serve(host, 0, h.registry)
    try:
        url = f"http://{host if ':' not in host else f'[{host}]'}:{server.server_address[1]}/metrics"
        with urllib.request.urlopen(url, timeout=10) as plain:
            assert plain.headers["Content-Type"] == CONTENT_TYPE_LATEST
            text = plain.read()
        request = urllib.request.Request(url, headers={"Accept-Encoding": "br, GZIP;q=0.8"})
        with urllib.request.urlopen(request, timeout=10) as zipped:
            assert zipped.headers["Content-Encoding"] == "gzip"
            unzipped = gzip.decompress(zipped.read())
    finally:
        server.shutdown()
        server.server_close()
    assert parse(text.decode()) == parse(unzipped.decode()) == parse(generate_latest(h.registry).decode())
    assert sum(v for k, v in scrape(h.registry).items() if k[0] == "http_flows_total") == 5
