"""The IPFIX exporter against goflow2 (UDP) and the RFC 7011 test decoder (TCP, UDP): every flow and field.

IPv4 and IPv6 flows, ICMP, TCP flags and long strings (the 3-octet length) are compared with the Python
oracle of `ipfix_view`; the decoder also checks the message headers (sequence numbers count data records,
export time), the templates (element numbers of docs/sinks.md) and when they are sent: first on every
TCP connection, and again every `template_interval_seconds`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flowlake.engine import config, selfmetrics
from flowlake.engine.config import IpfixConfig
from flowlake.engine.errors import ConfigError
from flowlake.engine.processor import Processor
from flowlake.engine.sinks.ipfix import IpfixSink
from tests.conftest import BASE_MS, make_batch
from tests.sinks import goflow2, ipfix_collector, ipfix_view
from tests.sinks.harnesses import GOFLOW2_PACE


def mixed() -> pl.DataFrame:
    """IPv4 and IPv6 flows (with v4-mapped and missing addresses), ICMP, flags, MACs, long names."""
    v6 = pl.from_arrow(make_batch(
        6, start_ms=BASE_MS, seed=3, Etype=[34525] * 6, SrcAddr=["fd00::1", "2001:db8::5", "::ffff:10.0.0.9",
                                                                  "fe80::1", None, "::1"],
        DstAddr=["fd00::2", "10.1.0.1", "fd00::3", "ff02::1:ff00:1", "fd00::9", "::1"],
        Proto=[58, 6, 17, 58, 6, 6], IcmpType=[128, None, None, 135, None, None],
        IcmpCode=[0, None, None, 0, None, None],
        SrcPort=[None, 443, 53, None, 1, 65535], Flags=[None, 0x12, None, None, 0x1FF, 2],
        SrcMac=["0A:58:0A:80:00:01", None, "ff:ff:ff:ff:ff:ff", None, None, "00:00:00:00:00:01"],
        IfDirections=[[1, 0], None, [0], [], None, [1]],
        Interfaces=[["eth0", "br-ex"], None, ["ens3"], [], None, ["lo"]],
        Sampling=[50, None, 1, 0, None, 400], FlowDirection=[0, 1, 2, None, 1, 0],
        DstK8S_Name=["x" * 300, "pod-ü", None, "", "a" * 254, "b" * 255],
        SrcK8S_Namespace=['ns "q"', "default", None, "kube-system", "", "ns"]))
    v4 = pl.from_arrow(make_batch(
        5, start_ms=BASE_MS + 60_000, seed=4, Proto=[1, 1, 6, 17, 132], IcmpType=[8, 0, None, None, None],
        IcmpCode=[0, 3, None, None, None], SrcAddr=["10.0.0.1", "192.168.1.1", None, "::ffff:10.9.9.9", "1.2.3.4"],
        Dscp=[0, 46, 10, None, 63], DstMac=["aa:bb:cc:dd:ee:ff"] * 5, K8S_FlowLayer=["app", "infra", None, "app", ""],
        SrcK8S_HostIP=["10.0.1.1"] * 5, DstK8S_Zone=["eu-west-1a", None, "z", "", "q"], K8S_ClusterName=["c1"] * 5))
    assert isinstance(v6, pl.DataFrame) and isinstance(v4, pl.DataFrame)
    return pl.concat([v6, v4])


@pytest.fixture
def tcp_collector() -> Iterator[ipfix_collector.Collector]:
    c = ipfix_collector.Collector("tcp")
    yield c
    c.close()


def same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert_frame_equal(ipfix_view.sort(got), ipfix_view.sort(want))


def test_goflow2_decodes_every_field(goflow2_server: goflow2.GoFlow2) -> None:
    frame = mixed()
    mark = goflow2_server.mark()
    sink = IpfixSink(IpfixConfig(target_host="127.0.0.1", target_port=goflow2_server.port, transport="udp",
                                 udp_messages_per_second=GOFLOW2_PACE))
    sink.write(frame)
    assert sink.flush() == frame.height
    sink.close()
    got = ipfix_view.from_goflow2(goflow2_server.lines_since(mark, want=frame.height))
    same(got, ipfix_view.expected(frame))


def test_tcp_records_headers_and_templates(tcp_collector: ipfix_collector.Collector) -> None:
    frame = mixed()
    sink = IpfixSink(IpfixConfig(target_host="127.0.0.1", target_port=tcp_collector.port, max_message_bytes=600,
                                 observation_domain_id=7))
    before = time.time()
    for part in frame.iter_slices(4):
        sink.write(part)
    assert sink.flush() == frame.height
    sink.close()
    same(ipfix_view.from_records(tcp_collector.settled()), ipfix_view.expected(frame))
    assert not tcp_collector.errors
    messages = tcp_collector.messages
    assert messages[0].templates and not messages[0].records  # templates open the session
    assert all(m.length <= 600 and m.domain == 7 and before - 1 <= m.export_time <= time.time() + 1
               for m in messages)
    data = [m for m in messages if m.records]
    assert len(data) > 2  # 600-octet messages: the 300-octet name forces splits
    counted = 0
    for m in data:  # RFC 7011 §3.1: data records sent before this message, in this session
        assert m.sequence == counted
        counted += len(m.records)
    v4, v6 = messages[0].templates[256], messages[0].templates[257]
    assert [k for k, _ in v4[:6]] == [(0, 152), (0, 153), (0, 1), (0, 2), (0, 8), (0, 12)]
    assert [k for k, _ in v6[:6]] == [(0, 152), (0, 153), (0, 1), (0, 2), (0, 27), (0, 28)]
    assert {k for k, _ in v4 if k[0]} == {(2, ie) for ie in [*ipfix_view.ENTERPRISE_STRINGS, 23]}
    assert all(n == 0xFFFF for k, n in v4 if k[0] == 2 and k[1] != 23)


def test_templates_on_every_connection_and_interval() -> None:
    udp = ipfix_collector.Collector("udp")
    tcp = ipfix_collector.Collector("tcp")
    try:
        frame = mixed()
        usink = IpfixSink(IpfixConfig(target_host="127.0.0.1", target_port=udp.port, transport="udp",
                                      template_interval_seconds=0.2))
        tsink = IpfixSink(IpfixConfig(target_host="127.0.0.1", target_port=tcp.port, template_interval_seconds=3600))
        for _ in range(3):
            for sink in (usink, tsink):
                sink.write(frame)
                sink.flush()
            time.sleep(0.25)
            tsink.transport.close()  # the next flush opens a new TCP connection: a new Transport Session
        usink.close()
        tsink.close()
        assert len(udp.wait_records(3 * frame.height)) == 3 * frame.height
        assert sum(1 for m in udp.messages if m.templates) == 3  # re-sent after each 0.2 s interval
        assert len(tcp.wait_records(3 * frame.height)) == 3 * frame.height
        assert tcp.sessions == 3 and sum(1 for m in tcp.messages if m.templates) == 3
        assert not udp.errors and not tcp.errors  # a data set before its session's template would fail
    finally:
        udp.close()
        tcp.close()


def test_processor_exports_to_ipfix(tcp_collector: ipfix_collector.Collector) -> None:
    cfg = config.load(None, sinks=["memory", "ipfix"], metrics_address="",
                      **{"ipfix.target_host": "127.0.0.1", "ipfix.target_port": tcp_collector.port})
    processor = Processor(cfg)
    rows = selfmetrics.SINK_ROWS.labels(sink="ipfix")._value.get()
    batch = make_batch(1_000, seed=9)
    processor.ingest(batch, "test")
    processor.flush(strict=True)
    processor.close()
    assert selfmetrics.SINK_ROWS.labels(sink="ipfix")._value.get() - rows == 1_000
    got = ipfix_view.from_records(tcp_collector.wait_records(1_000))
    sent = processor.sinks[0].frame()  # type: ignore[attr-defined]
    same(got, ipfix_view.expected(sent))


def test_missing_target_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"ipfix\.target_host"):
        IpfixSink(IpfixConfig())
    with pytest.raises(ConfigError, match=r"ipfix\.transport"):
        config.load(None, **{"ipfix.transport": "sctp"})
