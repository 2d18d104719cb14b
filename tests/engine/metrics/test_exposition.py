"""The column-wise /metrics text (engine/metrics/exposition.py) against prometheus_client's own, and its server.

Every scrape of the other metrics tests already compares the two texts (conftest.scrape); these add what
hand-made batches there do not reach: label values that need escaping, `name[]` selection, and HTTP.
"""

from __future__ import annotations

import gzip
import urllib.request

import pyarrow as pa
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


def test_name_selection_keeps_the_asked_families_only(harness: type[Harness]) -> None:
    h = harness(prefix="sel_", definitions=[
        {"metricName": "a_total", "type": "Counter", "labels": ["DstAddr"]},
        {"metricName": "b_seconds", "type": "Histogram", "valueField": "TimeFlowRttNs", "labels": ["DstAddr"]}])
    h.write(frame(4, TimeFlowRttNs=pa.array([1, 2, 3, 4])))
    only_a, _ = parse(exposition.generate(h.registry, ["sel_a_total"]).decode())
    assert {k[0] for k in only_a} == {"sel_a_total"}
    only_b, _ = parse(exposition.generate(h.registry, ["sel_b_seconds_bucket"]).decode())
    assert {k[0] for k in only_b} == {"sel_b_seconds_bucket", "sel_b_seconds_count", "sel_b_seconds_sum"}


def test_server_answers_plain_and_gzip(harness: type[Harness]) -> None:
    h = harness(prefix="http_", definitions=[{"metricName": "flows_total", "type": "Counter",
                                              "labels": ["DstAddr"]}])
    h.write(frame(5))
    server = exposition.serve("127.0.0.1", 0, h.registry)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        with urllib.request.urlopen(url, timeout=10) as plain:
            assert plain.headers["Content-Type"] == CONTENT_TYPE_LATEST
            text = plain.read()
        request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=10) as zipped:
            assert zipped.headers["Content-Encoding"] == "gzip"
            unzipped = gzip.decompress(zipped.read())
    finally:
        server.shutdown()
        server.server_close()
    assert parse(text.decode()) == parse(unzipped.decode()) == parse(generate_latest(h.registry).decode())
    assert sum(v for k, v in scrape(h.registry).items() if k[0] == "http_flows_total") == 5
