"""Agent features against the real kernel: FlowRTT, DNSTracking (dnsmasq), PacketDrop (reasons).

Latency is made known with a userspace delay line (10 ms each way, so 20 ms round trip): this
kernel has no netem.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import threading
from typing import Any

import pytest

from tests.agent.conftest import flush, flush_until
from tests.agent.netns import Lab
from tests.agent.test_capture import rows, udp_send

pytestmark = pytest.mark.kernel
ONE_WAY_MS = 10


@pytest.mark.parametrize("timestamps", [True, False], ids=["tcp-timestamps", "handshake-only"])
def test_rtt_from_the_handshake_and_timestamps(lab: Lab, start_agent: Any, timestamps: bool) -> None:
    a, b = lab.delayed_pair(ONE_WAY_MS)
    if not timestamps:  # RFC 7323 off on both ends: only the handshake can be timed
        for host in (a, b):
            host.run("sysctl -qw net.ipv4.tcp_timestamps=0")
    agent, captured = start_agent(a, features=("FlowRTT",))
    with b.enter():
        server = socket.create_server(("0.0.0.0", 8081))

    def serve() -> None:
        conn, _ = server.accept()
        for _ in range(5):
            conn.sendall(conn.recv(100))
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    with a.enter():
        client = socket.create_connection((b.ip, 8081), timeout=5)
    for _ in range(5):  # request/response exchanges: timestamp echoes
        client.sendall(b"ping")
        client.recv(100)
    client.close()
    t.join()
    server.close()
    table = flush_until(agent, captured, lambda t: bool(rows(t, SrcAddr=a.ip, DstPort=8081)))
    out = rows(table, SrcAddr=a.ip, DstAddr=b.ip, DstPort=8081)[0]
    back = rows(table, SrcAddr=b.ip, DstAddr=a.ip, SrcPort=8081)[0]
    for flow in (out, back):
        rtt_ms = flow["TimeFlowRttNs"] / 1e6
        assert 2 * ONE_WAY_MS * 0.9 <= rtt_ms <= 2 * ONE_WAY_MS + 15, rtt_ms


def test_rtt_seen_from_the_server_side_too(lab: Lab, start_agent: Any) -> None:
    a, b = lab.delayed_pair(ONE_WAY_MS)
    agent, captured = start_agent(b, features=("FlowRTT",))  # the agent sits on the server
    with b.enter():
        server = socket.create_server(("0.0.0.0", 8082))
    with a.enter():
        client = socket.create_connection((b.ip, 8082), timeout=5)
    conn, _ = server.accept()
    client.sendall(b"x" * 100)
    conn.recv(100)
    for s in (client, conn, server):
        s.close()
    table = flush_until(agent, captured, lambda t: bool(rows(t, SrcAddr=a.ip, DstPort=8082)))
    flow = rows(table, SrcAddr=a.ip, DstAddr=b.ip, DstPort=8082)[0]
    assert 2 * ONE_WAY_MS * 0.9 <= flow["TimeFlowRttNs"] / 1e6 <= 2 * ONE_WAY_MS + 15


def dns_query(name: str, qid: int) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 1, 1)


@pytest.fixture
def dnsmasq(lab: Lab) -> Any:
    if not shutil.which("dnsmasq"):
        pytest.skip("dnsmasq is not installed (Debian package dnsmasq-base; `make test` installs it)")

    def start(host: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", host.name, "dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts",
             "--bind-interfaces", f"--listen-address={host.ip}", "--port=53", "--user=root",
             "--address=/api.shop.test/10.1.2.3", "--address=/nx.test/", "--pid-file="],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lab.processes.append(proc)  # type: ignore[arg-type]
        return proc

    return start


def test_dns_latency_id_name_and_nxdomain(lab: Lab, start_agent: Any, dnsmasq: Any) -> None:
    a, b = lab.delayed_pair(ONE_WAY_MS)
    dnsmasq(b)
    agent, captured = start_agent(a, features=("DNSTracking",))
    with a.enter():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    answers = {}
    for qid, name in ((0x1234, "api.shop.test"), (0x4321, "nope.nx.test")):
        for _ in range(20):  # dnsmasq may need a moment to listen
            s.sendto(dns_query(name, qid), (b.ip, 53))
            try:
                answers[qid] = s.recv(512)
                break
            except TimeoutError:
                continue
    sport = s.getsockname()[1]
    s.close()
    assert answers[0x1234][3] & 0x0F == 0 and answers[0x4321][3] & 0x0F == 3  # NoError, NXDomain
    table = flush_until(agent, captured, lambda t: bool(rows(t, SrcAddr=b.ip, DstPort=sport)))
    response = rows(table, SrcAddr=b.ip, DstAddr=a.ip, SrcPort=53, DstPort=sport)[0]
    query = rows(table, SrcAddr=a.ip, DstAddr=b.ip, SrcPort=sport, DstPort=53)[0]
    # The last exchange on this 5-tuple was the NXDOMAIN one.
    assert response["DnsId"] == 0x4321 and response["DnsFlags"] & 0x0F == 3
    assert response["DnsName"] == "nope.nx.test" and query["DnsName"] == "nope.nx.test"
    assert 2 * ONE_WAY_MS * 0.9 <= response["DnsLatencyMs"] <= 2 * ONE_WAY_MS + 20
    assert query["DnsId"] == 0x4321 and query["DnsFlags"] & 0x8000 == 0 and query["DnsLatencyMs"] == 0


def test_drops_no_socket_and_netfilter(lab: Lab, start_agent: Any) -> None:
    a, b = lab.pair()
    agent, captured = start_agent(b, features=("PacketDrop",))
    b.run("nft add table inet fltest")
    b.run("nft 'add chain inet fltest input { type filter hook input priority 0 ; }'")
    b.run("nft add rule inet fltest input tcp dport 5555 drop")
    sport = udp_send(a, b.ip, 9, count=3, size=30)  # closed port: NO_SOCKET
    with a.enter():
        c = socket.socket()
    c.settimeout(1.5)
    with contextlib.suppress(OSError):
        c.connect((b.ip, 5555))  # SYNs dropped by the nft rule: NETFILTER_DROP
    c.close()
    table = flush_until(agent, captured, lambda t: bool(rows(t, DstPort=5555)) and bool(rows(t, SrcPort=sport)))
    udp = rows(table, SrcAddr=a.ip, DstAddr=b.ip, SrcPort=sport, DstPort=9)[0]
    assert udp["PktDropPackets"] == 3 and udp["PktDropLatestDropCause"] == "SKB_DROP_REASON_NO_SOCKET"
    assert udp["PktDropBytes"] == 3 * (14 + 20 + 8 + 30)  # counted like Bytes: L2
    assert udp["Packets"] == 3  # also counted by TC on the way in
    tcp = rows(table, SrcAddr=a.ip, DstAddr=b.ip, DstPort=5555)[0]
    assert tcp["PktDropPackets"] >= 1 and tcp["PktDropLatestDropCause"] == "SKB_DROP_REASON_NETFILTER_DROP"
    assert tcp["PktDropLatestFlags"] & 2  # SYN


def test_dns_through_a_router_is_matched_once(lab: Lab, start_agent: Any, dnsmasq: Any) -> None:
    """Query and response each cross both router interfaces: still one latency, no unmatched response."""
    a, r, b = lab.routed()
    dnsmasq(b)
    agent, captured = start_agent(r, features=("DNSTracking",))
    with a.enter():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    answer = b""
    for _ in range(20):
        s.sendto(dns_query("api.shop.test", 0x0777), (b.ip, 53))
        try:
            answer = s.recv(512)
            break
        except TimeoutError:
            continue
    sport = s.getsockname()[1]
    s.close()
    assert answer
    table = flush_until(agent, captured, lambda t: bool(rows(t, SrcAddr=b.ip, DstPort=sport)))
    response = rows(table, SrcAddr=b.ip, DstAddr=a.ip, SrcPort=53, DstPort=sport)[0]
    assert response["DnsId"] == 0x0777 and response["DnsName"] == "api.shop.test"
    assert response["Interfaces"] == [r.extra[0], r.dev]
    assert agent.kernel_counters()["dns_no_request"] == 0


def test_vlan_tagged_frames_are_parsed(lab: Lab, start_agent: Any) -> None:
    """This kernel has no 802.1Q support, so tagged frames are written raw onto the wire."""
    a, _b = lab.pair()
    agent, captured = start_agent(a)
    payload = b"v" * 20
    udp = struct.pack("!HHHH", 40000, 7700, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     socket.inet_aton("10.75.0.1"), socket.inet_aton("10.75.0.2"))
    frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!HHH", 0x8100, 10, 0x0800) + ip + udp
    with a.enter():
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    raw.bind((a.dev, 0))
    for _ in range(3):
        raw.send(frame)
    raw.close()
    table = flush(agent, captured)
    [flow] = rows(table, SrcAddr="10.75.0.1", DstAddr="10.75.0.2", Proto=17)
    assert (flow["SrcPort"], flow["DstPort"], flow["Packets"]) == (40000, 7700, 3)
    assert flow["Bytes"] == 3 * len(frame)  # the 802.1Q tag is L2 and counted
    assert flow["Etype"] == 0x0800
