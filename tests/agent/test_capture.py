"""Flow capture against the real kernel: exact counts for UDP, TCP, ICMP and IPv6 at sampling 1.

Bytes are L2 (Ethernet header included), as NetObserv counts them. Offloads are off on the test
veths, so one skb is one wire packet and an AF_PACKET tap gives independent ground truth.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.agent.conftest import Tap, flush
from tests.agent.netns import Host, Lab

pytestmark = pytest.mark.kernel


def rows(table: pa.Table, **match: Any) -> list[dict[str, Any]]:
    mask = None
    for k, v in match.items():
        m = pc.equal(table.column(k), v)
        mask = m if mask is None else pc.and_(mask, m)
    return table.filter(mask).to_pylist() if mask is not None else table.to_pylist()


def udp_send(src: Host, dst_ip: str, port: int, count: int, size: int, family: int = socket.AF_INET) -> int:
    with src.enter():
        s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
    for _ in range(count):
        s.sendto(b"x" * size, (dst_ip, port))
    sport = s.getsockname()[1]
    s.close()
    return int(sport)


def udp_sink(host: Host, port: int, family: int = socket.AF_INET) -> socket.socket:
    with host.enter():
        s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    s.settimeout(5)
    return s


def received(sink: socket.socket, count: int) -> None:
    """Wait until every datagram arrived (neighbour discovery may hold the first ones back)."""
    for _ in range(count):
        sink.recv(65536)
    sink.close()


def test_udp_exact_packets_and_l2_bytes(lab: Lab, start_agent: Any) -> None:
    a, b = lab.pair()
    agent, captured = start_agent(a)
    sink = udp_sink(b, 9999)
    sport = udp_send(a, b.ip, 9999, count=10, size=100)
    received(sink, 10)
    table = flush(agent, captured)
    [flow] = rows(table, SrcAddr=a.ip, DstAddr=b.ip, Proto=17)
    assert (flow["Packets"], flow["Bytes"]) == (10, 10 * (14 + 20 + 8 + 100))
    assert (flow["SrcPort"], flow["DstPort"]) == (sport, 9999)
    assert flow["Interfaces"] == [a.dev] and flow["IfDirections"] == [1] and flow["FlowDirection"] == 1
    assert flow["AgentIP"] == a.ip and flow["Sampling"] == 1 and flow["Etype"] == 0x0800
    assert flow["Flags"] is None and flow["IcmpType"] is None
    assert flow["TimeFlowStartMs"] <= flow["TimeFlowEndMs"]


def test_tcp_transfer_matches_an_independent_tap(lab: Lab, start_agent: Any) -> None:
    a, b = lab.pair()
    agent, captured = start_agent(a)
    tap = Tap(a, a.dev)
    with b.enter():
        server = socket.create_server(("0.0.0.0", 8080))
    received = bytearray()

    def serve() -> None:
        conn, _ = server.accept()
        while chunk := conn.recv(65536):
            received.extend(chunk)
        conn.sendall(b"y" * 50_000)
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    with a.enter():
        client = socket.create_connection((b.ip, 8080))
    client.sendall(b"x" * 300_000)
    client.shutdown(socket.SHUT_WR)
    reply = b""
    while chunk := client.recv(65536):
        reply += chunk
    client.close()
    t.join()
    server.close()
    assert len(received) == 300_000 and len(reply) == 50_000
    truth = tap.close()
    table = flush(agent, captured)
    sport = next(k[2] for k in truth if k[0] == a.ip and k[3] == 8080)
    for src, dst, sp, dp in ((a.ip, b.ip, sport, 8080), (b.ip, a.ip, 8080, sport)):
        [flow] = rows(table, SrcAddr=src, DstAddr=dst, SrcPort=sp, DstPort=dp)
        packets, nbytes = truth[(src, dst, sp, dp, 6)]
        assert (flow["Packets"], flow["Bytes"]) == (packets, nbytes), (src, dst)
    out = rows(table, SrcAddr=a.ip, DstAddr=b.ip, SrcPort=sport)[0]
    back = rows(table, SrcAddr=b.ip, DstAddr=a.ip, DstPort=sport)[0]
    assert out["Bytes"] > 300_000 and back["Bytes"] > 50_000
    flags = {n for n, bit in (("SYN", 2), ("ACK", 16), ("FIN", 1), ("PSH", 8)) if out["Flags"] & bit}
    assert flags == {"SYN", "ACK", "FIN", "PSH"}
    assert back["Flags"] & 256  # SYN_ACK on the reply direction
    assert out["FlowDirection"] == 1 and back["FlowDirection"] == 0


def test_icmp_type_and_code_in_the_key(lab: Lab, start_agent: Any) -> None:
    a, b = lab.pair()
    agent, captured = start_agent(a)
    # A UDP datagram to a closed port: B answers ICMP port unreachable (type 3, code 3).
    udp_send(a, b.ip, 9, count=1, size=10)
    table = flush(agent, captured)
    [icmp] = rows(table, SrcAddr=b.ip, DstAddr=a.ip, Proto=1)
    assert (icmp["IcmpType"], icmp["IcmpCode"], icmp["Packets"]) == (3, 3, 1)
    assert icmp["SrcPort"] is None and icmp["DstPort"] is None and icmp["FlowDirection"] == 0


def test_ipv6_udp(lab: Lab, start_agent: Any) -> None:
    a, b = lab.pair()
    agent, captured = start_agent(a)
    sink = udp_sink(b, 9998, socket.AF_INET6)
    udp_send(a, b.ip6, 9998, count=4, size=60, family=socket.AF_INET6)
    received(sink, 4)
    table = flush(agent, captured)
    [flow] = rows(table, SrcAddr=a.ip6, DstAddr=b.ip6, Proto=17)
    assert (flow["Packets"], flow["Bytes"]) == (4, 4 * (14 + 40 + 8 + 60))
    assert flow["Etype"] == 0x86DD


def test_nothing_left_attached_after_close(lab: Lab, start_agent: Any) -> None:
    from flowlake.agent.run import Agent, AgentConfig

    a, _ = lab.pair()
    agent = Agent(AgentConfig(target="file:///tmp/flowlake-agent-test", agent_ip=a.ip))
    with a.enter():
        agent.start()
    assert "clsact" in a.run(f"tc qdisc show dev {a.dev}").stdout
    assert "flowlake" in a.run(f"tc filter show dev {a.dev} ingress").stdout
    agent.close()
    assert "clsact" not in a.run(f"tc qdisc show dev {a.dev}").stdout
    assert a.run(f"tc filter show dev {a.dev} egress").stdout.strip() == ""


def test_three_hosts_on_a_bridge(lab: Lab, start_agent: Any) -> None:
    h1, h2, h3 = lab.bridged(3)
    agent, captured = start_agent(h1)
    sinks = {h.ip: udp_sink(h, 9100) for h in (h2, h3)}
    udp_send(h1, h2.ip, 9100, count=2, size=50)
    udp_send(h1, h3.ip, 9100, count=5, size=50)
    received(sinks[h2.ip], 2)
    received(sinks[h3.ip], 5)
    table = flush(agent, captured)
    got = {(f["DstAddr"], f["Packets"], f["Bytes"]) for f in rows(table, SrcAddr=h1.ip, Proto=17)}
    assert got == {(h2.ip, 2, 2 * (14 + 20 + 8 + 50)), (h3.ip, 5, 5 * (14 + 20 + 8 + 50))}
    macs = {f["DstAddr"]: f["DstMac"] for f in rows(table, SrcAddr=h1.ip, Proto=17)}
    assert macs[h2.ip] != macs[h3.ip]  # a real L2 segment: each host has its own MAC
