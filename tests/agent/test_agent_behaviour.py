"""Agent behaviour against the real kernel: dedup, sampling, filters, interface churn, map-full fallback."""

from __future__ import annotations

import json
import socket
from typing import Any

import pyarrow.compute as pc
import pytest

from flowlake.agent import metrics
from tests.agent.conftest import flush, flush_until
from tests.agent.netns import Lab
from tests.agent.test_capture import received, rows, udp_send, udp_sink

pytestmark = pytest.mark.kernel


def total(table: Any, column: str, **match: Any) -> int:
    return sum(r[column] for r in rows(table, **match))


def test_flow_crossing_two_interfaces_is_counted_once(lab: Lab, start_agent: Any) -> None:
    a, r, b = lab.routed()
    agent, captured = start_agent(r)  # the router sees the flow on both of its interfaces
    sink = udp_sink(b, 7000)
    udp_send(a, b.ip, 7000, count=5, size=200)
    received(sink, 5)
    table = flush(agent, captured)
    [flow] = rows(table, SrcAddr=a.ip, DstAddr=b.ip, Proto=17)
    assert (flow["Packets"], flow["Bytes"]) == (5, 5 * (14 + 20 + 8 + 200))  # not 10, not doubled
    assert flow["Interfaces"] == [r.dev, r.extra[0]]
    assert flow["IfDirections"] == [0, 1]  # in on the A side, out on the B side
    assert flow["FlowDirection"] == 0


def test_sampling_is_per_packet_within_statistical_bounds(lab: Lab, start_agent: Any) -> None:
    a, b = lab.pair()
    agent, captured = start_agent(a, sampling=10)
    sink = udp_sink(b, 7001)
    n = 5000
    udp_send(a, b.ip, 7001, count=n, size=20)
    sink.close()
    table = flush(agent, captured)
    counted = total(table, "Packets", SrcAddr=a.ip, DstAddr=b.ip, Proto=17)
    # Binomial(5000, 0.1): mean 500, sd 21.2; 5 sd either side fails once in ~3.5 million runs.
    assert 394 <= counted <= 606, counted
    assert set(pc.unique(table.column("Sampling")).to_pylist()) == {10}


@pytest.mark.parametrize(("rules", "accepted"), [
    pytest.param([{"ip_cidr": "10.77.0.2/32", "action": "Accept", "protocol": "UDP",
                   "destination_port": "7100-7109"}], [7100, 7105], id="range"),
    pytest.param([{"ip_cidr": "10.77.0.2/32", "action": "Accept", "protocol": "UDP",
                   "destination_port": "7100,7110"}], [7100, 7110], id="pair-is-two-ports"),
    # The source's rule is evaluated first; when its conditions fail, the destination's rule is.
    pytest.param([{"ip_cidr": "10.77.0.1/32", "action": "Reject", "protocol": "UDP", "destination_port": "7105"},
                  {"ip_cidr": "10.77.0.2/32", "action": "Accept"}], [7100, 7110], id="source-first-then-dest"),
    pytest.param([{"ip_cidr": "10.77.0.2/32", "action": "Accept", "peer_cidr": "10.77.0.0/30",
                   "destination_port": "7110"}], [7110], id="peer-cidr"),
    pytest.param([{"ip_cidr": "10.77.0.2/32", "action": "Accept", "peer_cidr": "10.77.0.8/30"}], [],
                 id="peer-cidr-other"),
])
def test_filter_rules(lab: Lab, start_agent: Any, rules: list[dict[str, Any]], accepted: list[int]) -> None:
    a, b = lab.pair()
    agent, captured = start_agent(a, filter_rules=json.dumps(rules))
    sinks = [udp_sink(b, p) for p in (7100, 7105, 7110)]
    for port in (7100, 7105, 7110):
        udp_send(a, b.ip, port, count=3, size=10)
    for s in sinks:
        received(s, 3)
    table = flush(agent, captured)
    ports = sorted(r["DstPort"] for r in rows(table, SrcAddr=a.ip, DstAddr=b.ip, Proto=17))
    assert ports == accepted
    counters = agent.kernel_counters()
    assert counters["filter_accept"] >= 3 * len(accepted) and counters["filter_reject"] >= 3 * (3 - len(accepted))


def test_interfaces_added_and_removed_while_running(lab: Lab, start_agent: Any) -> None:
    a, _b = lab.pair()
    agent, captured = start_agent(a, exclude_interfaces=["lo", "/^dummy-skip/"])
    before = len(agent.attacher.attached)
    a.run("ip link add extra0 type veth peer name dummy-skip0")  # the peer is excluded by /regex/
    flush_until(agent, captured, lambda _t: len(agent.attacher.attached) == before + 1)
    names = {att.name for att in agent.attacher.attached.values()}
    assert "extra0" in names and "dummy-skip0" not in names
    assert "flowlake" in a.run("tc filter show dev extra0 ingress").stdout
    a.run("ip link del extra0")
    flush_until(agent, captured, lambda _t: len(agent.attacher.attached) == before)
    assert "extra0" not in {att.name for att in agent.attacher.attached.values()}


def test_full_map_falls_back_to_the_ring_buffer_without_losing_packets(lab: Lab, start_agent: Any) -> None:
    a, b = lab.pair()
    agent, captured = start_agent(a, cache_max_flows=8)
    sinks = [udp_sink(b, 7200 + i) for i in range(30)]
    for i in range(30):
        udp_send(a, b.ip, 7200 + i, count=2, size=50)
    for s in sinks:
        received(s, 2)
    table = flush(agent, captured)
    flows = rows(table, SrcAddr=a.ip, DstAddr=b.ip, Proto=17)
    assert len(flows) == 30
    assert all((f["Packets"], f["Bytes"]) == (2, 2 * (14 + 20 + 8 + 50)) for f in flows)
    assert agent.kernel_counters()["ringbuf_fallback"] > 0
    assert agent.kernel_counters()["ringbuf_lost"] == 0


def test_agent_self_metrics(lab: Lab, start_agent: Any) -> None:
    a, b = lab.pair()
    agent, captured = start_agent(a)
    sink = udp_sink(b, 7300)
    udp_send(a, b.ip, 7300, count=3, size=10)
    received(sink, 3)
    flush(agent, captured)
    text = _scrape()
    assert "flowlake_agent_evictions_total" in text
    assert 'flowlake_agent_kernel_counter_total{counter="ringbuf_fallback"}' in text
    assert 'flowlake_agent_bpf_runs_total{program="tc_ingress"}' in text
    assert metrics.REGISTRY.get_sample_value("flowlake_agent_attached_interfaces") == len(agent.attacher.attached)


def _scrape() -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.REGISTRY).decode()


def test_filter_rule_sampling(lab: Lab, start_agent: Any) -> None:
    a, b = lab.pair()
    rules = [{"ip_cidr": "10.77.0.0/24", "action": "Accept", "protocol": "UDP", "sample": 4}]
    agent, captured = start_agent(a, filter_rules=json.dumps(rules))
    sink = udp_sink(b, 7500)
    udp_send(a, b.ip, 7500, count=2000, size=10)
    sink.close()
    table = flush(agent, captured)
    udp = rows(table, SrcAddr=a.ip, DstAddr=b.ip, DstPort=7500)
    assert [f["Sampling"] for f in udp] == [4]
    assert 500 - 5 * 19.4 <= udp[0]["Packets"] <= 500 + 5 * 19.4  # Binomial(2000, 1/4), 5 sd


def test_filter_rule_icmp_type_and_code(lab: Lab, start_agent: Any) -> None:
    a, b = lab.pair()
    rules = [{"ip_cidr": "10.77.0.0/24", "action": "Accept", "protocol": "ICMP", "icmp_type": 3, "icmp_code": 3}]
    agent, captured = start_agent(a, filter_rules=json.dumps(rules))
    udp_send(a, b.ip, 9, count=1, size=10)  # closed port: b answers ICMP 3/3 (the UDP itself is filtered)
    table = flush_until(agent, captured, lambda t: bool(rows(t, Proto=1)))
    assert [(f["SrcAddr"], f["IcmpType"], f["IcmpCode"]) for f in table.to_pylist()] == [(b.ip, 3, 3)]


def test_filter_rule_tcp_flags(lab: Lab, start_agent: Any) -> None:
    a, b = lab.pair()
    rules = [{"ip_cidr": "10.77.0.0/24", "action": "Accept", "protocol": "TCP", "tcp_flags": "SYN"}]
    agent, captured = start_agent(a, filter_rules=json.dumps(rules))
    with b.enter():
        server = socket.create_server(("0.0.0.0", 8088))
    with a.enter():
        client = socket.create_connection((b.ip, 8088), timeout=5)
    client.sendall(b"x" * 1000)
    client.close()
    server.close()
    table = flush_until(agent, captured, lambda t: len(rows(t, Proto=6)) >= 1)
    tcp = rows(table, Proto=6)
    # Flags must be exactly SYN: only the client's SYN passes (not the SYN-ACK, nothing after).
    assert [(f["SrcAddr"], f["Packets"], f["Flags"]) for f in tcp] == [(a.ip, 1, 2)]
