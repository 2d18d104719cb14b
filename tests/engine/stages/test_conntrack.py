"""Conntrack stage: conversation records, A/B splits, timeouts, TCP flags, log types, cap, ids, metrics.

Every test drives the stage with a fake clock (ms) and hand-built flows whose expected sums are written
out below, so nothing sleeps and every value is exact.
"""

from __future__ import annotations

import re
import struct
from typing import Any

import numpy as np
import polars as pl
import pytest

from flowlake.engine import config, selfmetrics
from flowlake.engine.config import ConntrackConfig
from flowlake.engine.errors import ConfigError
from flowlake.engine.processor import Processor
from flowlake.engine.sinks.memory import MemorySink
from flowlake.engine.stages import conntrack as conntrack_module
from flowlake.engine.stages.conntrack import ConntrackStage
from tests.conftest import BASE_MS, make_batch

T0 = BASE_MS
SYN, RST, PSH, ACK, SYN_ACK, FIN_ACK, RST_ACK = 2, 4, 8, 16, 256, 512, 1024
CLIENT, SERVER = ("10.0.0.1", 40000), ("10.1.0.1", 443)
CONN_COLUMNS = ["_RecordType", "_IsFirst", "SrcAddr", "SrcPort", "DstAddr", "DstPort", "Proto", "Bytes",
                "Bytes_AB", "Bytes_BA", "Packets", "Packets_AB", "Packets_BA", "numFlowLogs"]


class Clock:
    """The stage's "now" in ms, moved by the test."""

    def __init__(self, ms: int = T0) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms

    def at(self, seconds: float) -> Clock:
        self.ms = T0 + round(seconds * 1000)
        return self


def flow(src: tuple[str, int | None], dst: tuple[str, int | None], end_ms: int, nbytes: int, packets: int = 1,
         flags: int | None = None, proto: int = 6, **extra: Any) -> dict[str, Any]:
    """One flow report ending at `end_ms` that lasted 500 ms."""
    return {"SrcAddr": src[0], "SrcPort": src[1], "DstAddr": dst[0], "DstPort": dst[1], "Proto": proto,
            "TimeFlowStartMs": end_ms - 500, "TimeFlowEndMs": end_ms, "Bytes": nbytes, "Packets": packets,
            "Flags": flags, "AgentIP": "192.168.0.1", "FlowDirection": 1, **extra}


def frame(*rows: dict[str, Any]) -> pl.DataFrame:
    names = {k for r in rows for k in r}
    out = pl.from_arrow(make_batch(len(rows), **{k: [r.get(k) for r in rows] for k in names}))
    assert isinstance(out, pl.DataFrame)
    return out


def stage(clock: Clock, **settings: Any) -> ConntrackStage:
    return ConntrackStage(ConntrackConfig(**{"log_types": "All", **settings}), clock=clock)


def kind(out: pl.DataFrame | None, record_type: str) -> pl.DataFrame:
    assert out is not None
    return out.filter(pl.col("_RecordType") == record_type)


def metric(name: str, **labels: str) -> float:
    return selfmetrics.REGISTRY.get_sample_value(name, labels) or 0.0


def fnv1a64(data: bytes) -> int:
    """Reference FNV-1a 64, written from the spec, to pin the documented id layout."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


# One TCP conversation, client 10.0.0.1:40000 -> server 10.1.0.1:443, delivered in 11 batches:
# (seconds after T0 when the batch arrives, direction, Flags, Bytes, Packets, extra columns).
DROP_1 = {"PktDropBytes": 100, "PktDropPackets": 1, "PktDropLatestState": "TCP_ESTABLISHED",
          "PktDropLatestDropCause": "SKB_DROP_REASON_TCP_OLD_DATA"}
DROP_2 = {"PktDropBytes": 200, "PktDropPackets": 2, "PktDropLatestState": "TCP_CLOSE_WAIT",
          "PktDropLatestDropCause": "SKB_DROP_REASON_NO_SOCKET"}
SERVER_SIDE = {"AgentIP": "192.168.0.2", "FlowDirection": 0}
TCP_CONVERSATION = [
    (0, "AB", SYN, 74, 1, {}),
    (0, "BA", SYN_ACK | ACK, 74, 1, {"TimeFlowRttNs": 2_000_000, **SERVER_SIDE}),
    (8, "AB", ACK | PSH, 1000, 5, {"TimeFlowRttNs": 1_500_000}),
    (8, "BA", ACK | PSH, 20000, 15, {"TimeFlowRttNs": 3_000_000, **SERVER_SIDE}),
    (16, "AB", ACK | PSH, 500, 2, DROP_1),
    (24, "BA", ACK | PSH, 3000, 3, SERVER_SIDE),
    (31, "AB", ACK, 200, 1, {}),
    (39, "BA", ACK | PSH, 4000, 4, {**DROP_2, **SERVER_SIDE}),
    (47, "AB", ACK, 100, 1, {}),
    (55, "BA", ACK | PSH, 6000, 5, SERVER_SIDE),
    (62, "AB", ACK, 300, 2, {}),
    (66, "AB", FIN_ACK | ACK, 66, 1, {}),
    (68, "BA", FIN_ACK | ACK, 66, 1, SERVER_SIDE),
]


def run_tcp_conversation(st: ConntrackStage, clock: Clock) -> list[pl.DataFrame]:
    outputs = []
    for second in sorted({row[0] for row in TCP_CONVERSATION}):
        rows = [flow(*((CLIENT, SERVER) if d == "AB" else (SERVER, CLIENT)), T0 + second * 1000 - 200, b, p, f, **x)
                for s, d, f, b, p, x in TCP_CONVERSATION if s == second]
        clock.at(second)  # each batch is processed at its own second
        outputs.append(st.process(frame(*rows)))
    return outputs


def test_tcp_conversation_over_many_batches() -> None:
    clock = Clock()
    st = stage(clock)
    out = pl.concat(run_tcp_conversation(st, clock))
    clock.at(71)
    assert st.flush() is None  # the FIN at 66 s + 5 s terminating timeout: due strictly after 71 s
    clock.ms += 1
    out = pl.concat([out, kind(st.flush(), "endConnection")])

    assert dict(out["_RecordType"].value_counts().rows()) == {
        "flowLog": 13, "heartbeat": 2, "endConnection": 1, "newConnection": 1}
    assert out["_HashId"].n_unique() == 1 and out["_HashId"].null_count() == 0
    assert kind(out, "flowLog")["_IsFirst"].null_count() == 13
    conn = out.filter(pl.col("_RecordType") != "flowLog")
    assert conn.select(CONN_COLUMNS).rows() == [
        # the newConnection record holds the first flow only
        ("newConnection", True, *CLIENT, *SERVER, 6, 74, 74, 0, 1, 1, 0, 1),
        # heartbeats at 31 s (7 flows) and 62 s (11 flows): cumulative, A = client
        ("heartbeat", False, *CLIENT, *SERVER, 6, 24848, 1774, 23074, 28, 9, 19, 7),
        ("heartbeat", False, *CLIENT, *SERVER, 6, 35248, 2174, 33074, 40, 12, 28, 11),
        ("endConnection", False, *CLIENT, *SERVER, 6, 35380, 2240, 33140, 42, 13, 29, 13),
    ]
    end = kind(out, "endConnection").row(0, named=True)
    assert end["TimeFlowStartMs"] == T0 - 700 and end["TimeFlowEndMs"] == T0 + 68_000 - 200
    assert (end["PktDropBytes"], end["PktDropBytes_AB"], end["PktDropBytes_BA"]) == (300, 100, 200)
    assert (end["PktDropPackets"], end["PktDropPackets_AB"], end["PktDropPackets_BA"]) == (3, 1, 2)
    assert end["PktDropLatestState"] == "TCP_CLOSE_WAIT"  # last
    assert end["PktDropLatestDropCause"] == "SKB_DROP_REASON_NO_SOCKET"
    assert end["MaxTimeFlowRttNs"] == 3_000_000
    assert (end["FlowDirection"], end["AgentIP"], end["Etype"]) == (1, "192.168.0.1", 2048)  # first
    assert end["TimeReceived"] == (T0 + 71_001) // 1000
    assert st.state.height == 0


def test_heartbeats_come_every_interval_until_fin() -> None:
    clock = Clock()
    st = stage(clock, log_types="Conversations", heartbeat_interval_seconds=2, end_timeout_seconds=60)
    st.process(frame(flow(CLIENT, SERVER, T0, 100)))
    beats = []
    for second in (1, 2, 2.001, 3, 4.5, 5):
        clock.at(second)
        out = st.flush()
        beats += [second] * (0 if out is None else kind(out, "heartbeat").height)
    assert beats == [2.001, 4.5]  # due strictly after 2 s, then 2 s after the heartbeat was sent
    clock.at(5.5)
    st.process(frame(flow(CLIENT, SERVER, T0 + 5000, 10, flags=RST)))
    clock.at(7)
    assert st.flush() is None  # terminating: no heartbeat, and not ended before 5.5 + 5 s
    clock.at(10.501)
    assert kind(st.flush(), "endConnection")["Bytes"].to_list() == [110]


def test_timeout_and_fin_ends() -> None:
    clock = Clock()
    st = stage(clock)
    other = ("10.0.0.2", 50000)
    before = {r: metric("flowlake_conntrack_end_connections_total", reason=r) for r in ("tcp_flags", "timeout")}
    st.process(frame(flow(CLIENT, SERVER, T0, 100, flags=SYN), flow(other, SERVER, T0, 200, flags=SYN)))
    clock.at(3)
    st.process(frame(flow(CLIENT, SERVER, T0 + 3000, 50, flags=FIN_ACK | ACK)))
    clock.at(6)  # after FIN: later flows add to the conversation but do not extend its deadline
    st.process(frame(flow(SERVER, CLIENT, T0 + 6000, 40, flags=FIN_ACK | ACK)))
    clock.at(8.001)
    ended = kind(st.flush(), "endConnection")
    assert ended.select("SrcAddr", "Bytes", "Bytes_BA", "numFlowLogs").rows() == [("10.0.0.1", 190, 40, 3)]
    clock.at(10)
    assert st.flush() is None  # the other conversation's last flow came at 0 s: due after 10 s
    clock.at(10.001)
    assert kind(st.flush(), "endConnection")["SrcAddr"].to_list() == ["10.0.0.2"]
    assert metric("flowlake_conntrack_end_connections_total", reason="tcp_flags") == before["tcp_flags"] + 1
    assert metric("flowlake_conntrack_end_connections_total", reason="timeout") == before["timeout"] + 1


def test_flow_after_the_timeout_starts_a_new_conversation() -> None:
    clock = Clock()
    st = stage(clock, log_types="Conversations")
    st.process(frame(flow(CLIENT, SERVER, T0, 100)))
    clock.at(25)  # no flush ran in between: process ends the old conversation before tracking the new flow
    out = st.process(frame(flow(CLIENT, SERVER, T0 + 25_000, 7)))
    assert out.select("_RecordType", "Bytes", "_IsFirst").rows() == [
        ("endConnection", 100, False), ("newConnection", 7, True)]
    assert out["_HashId"].n_unique() == 1  # same 5-tuple, same id


@pytest.mark.parametrize("swap_ab", [True, False], ids=["swap", "no-swap"])
def test_syn_ack_first_makes_the_client_a(swap_ab: bool) -> None:
    clock = Clock()
    st = stage(clock, swap_ab=swap_ab, log_types="Conversations")
    ident = {"SrcK8S_Name": "db-0", "DstK8S_Name": "web-0"}  # as if enrich ran before conntrack
    out = st.process(frame(flow(SERVER, CLIENT, T0, 60, flags=SYN_ACK | ACK, **ident)))
    clock.at(1)
    st.process(frame(flow(CLIENT, SERVER, T0 + 1000, 500, flags=ACK, SrcK8S_Name="web-0", DstK8S_Name="db-0")))
    clock.at(11.001)
    end = kind(st.flush(), "endConnection")
    a, b = (CLIENT, SERVER) if swap_ab else (SERVER, CLIENT)
    a_name, ab, ba = ("web-0", 500, 60) if swap_ab else ("db-0", 60, 500)
    for record in (kind(out, "newConnection"), end):
        assert record.select("SrcAddr", "SrcPort", "DstAddr", "DstPort", "SrcK8S_Name").row(0) == (*a, *b, a_name)
    assert kind(out, "newConnection").select("Bytes_AB", "Bytes_BA").row(0) == ((0, 60) if swap_ab else (60, 0))
    assert end.select("Bytes_AB", "Bytes_BA").row(0) == (ab, ba)


def test_hash_id_is_fnv1a_of_the_ordered_endpoints() -> None:
    st = stage(Clock(), log_types="Flows")
    out = st.process(frame(flow(CLIENT, SERVER, T0, 1), flow(SERVER, CLIENT, T0, 1),
                           flow(CLIENT, SERVER, T0, 1, proto=17)))
    ends = sorted(fnv1a64(addr.encode() + struct.pack(">H", port)) for addr, port in (CLIENT, SERVER))
    tcp = format(fnv1a64(bytes([6]) + struct.pack(">QQ", *ends)), "016x")
    udp = format(fnv1a64(bytes([17]) + struct.pack(">QQ", *ends)), "016x")
    assert out["_HashId"].to_list() == [tcp, tcp, udp]
    assert out["_RecordType"].to_list() == ["flowLog"] * 3


def test_udp_dns_conversation() -> None:
    clock = Clock()
    st = stage(clock, log_types="EndedConversations")
    pod, dns = ("10.0.0.7", 53001), ("10.96.0.10", 53)
    st.process(frame(flow(pod, dns, T0, 80, proto=17, DnsId=7),
                     flow(dns, pod, T0 + 2, 120, proto=17, DnsId=7, DnsLatencyMs=2, DnsFlagsResponseCode="NoError")))
    clock.at(4)
    st.process(frame(flow(pod, dns, T0 + 4000, 80, proto=17, DnsId=8, Flags=None),
                     flow(dns, pod, T0 + 4009, 70, proto=17, DnsId=8, DnsLatencyMs=9,
                          DnsFlagsResponseCode="NXDomain")))
    clock.at(14.001)
    end = kind(st.flush(), "endConnection").row(0, named=True)
    assert (end["Proto"], end["SrcAddr"], end["Bytes_AB"], end["Bytes_BA"]) == (17, "10.0.0.7", 160, 190)
    assert (end["DnsLatencyMs"], end["DnsFlagsResponseCode"], end["numFlowLogs"]) == (9, "NXDomain", 4)
    assert end["_IsFirst"] is True  # the only record of this conversation
    assert end["PktDropBytes"] is None and end["PktDropBytes_AB"] is None  # no flow carried drops
    assert end["MaxTimeFlowRttNs"] is None


def test_icmp_and_portless_flows_are_not_tracked() -> None:
    clock = Clock()
    st = stage(clock)
    before = {c: metric("flowlake_conntrack_input_records_total", classification=c)
              for c in ("discarded", "rejected", "newConnection")}
    out = st.process(frame(flow(("10.0.0.1", None), ("10.1.0.1", None), T0, 98, proto=1, IcmpType=8),
                           flow(("10.0.0.1", None), ("10.1.0.1", 443), T0, 60),
                           flow(CLIENT, SERVER, T0, 10)))
    assert out.select("_RecordType", "Bytes", pl.col("_HashId").is_null()).rows() == [
        ("newConnection", 10, False), ("flowLog", 98, True), ("flowLog", 60, True), ("flowLog", 10, False)]
    assert metric("flowlake_conntrack_input_records_total", classification="discarded") == before["discarded"] + 1
    assert metric("flowlake_conntrack_input_records_total", classification="rejected") == before["rejected"] + 1
    assert metric("flowlake_conntrack_input_records_total",
                  classification="newConnection") == before["newConnection"] + 1
    assert st.state.height == 1


def test_same_flow_twice_in_a_batch_is_counted_once() -> None:
    clock = Clock()
    st = stage(clock)
    before = metric("flowlake_conntrack_input_records_total", classification="duplicate")
    egress = flow(CLIENT, SERVER, T0, 500, AgentIP="192.168.0.1", FlowDirection=1)
    ingress = dict(egress, AgentIP="192.168.0.2", FlowDirection=0)  # the destination node's report
    out = st.process(frame(egress, ingress, flow(CLIENT, SERVER, T0 + 1, 500)))
    assert kind(out, "flowLog").height == 3  # every report is still logged
    clock.at(10.001)
    assert kind(st.flush(), "endConnection").select("Bytes", "numFlowLogs").row(0) == (1000, 2)
    assert metric("flowlake_conntrack_input_records_total", classification="duplicate") == before + 1


def test_max_connections_tracked() -> None:
    clock = Clock()
    st = stage(clock, max_connections_tracked=3, log_types="All")
    overflow = metric("flowlake_conntrack_overflow_total")
    clients = [(f"10.0.0.{k}", 40000) for k in range(5)]
    out = st.process(frame(*[flow(c, SERVER, T0 + k, 100 + k) for k, c in enumerate(clients)],
                           flow(clients[4], SERVER, T0 + 9, 1)))
    assert kind(out, "newConnection")["SrcAddr"].to_list() == ["10.0.0.0", "10.0.0.1", "10.0.0.2"]
    assert kind(out, "flowLog")["_HashId"].null_count() == 0  # untracked flows still carry their id
    assert metric("flowlake_conntrack_overflow_total") == overflow + 3  # 10.0.0.3 once, 10.0.0.4 twice
    clock.at(1)  # full, yet a known conversation keeps being tracked
    st.process(frame(flow(clients[0], SERVER, T0 + 1000, 5)))
    clock.at(10.5)  # the two others ended: room for two new ones
    out = st.process(frame(flow(clients[3], SERVER, T0 + 10_000, 3), flow(clients[4], SERVER, T0 + 10_000, 4)))
    assert kind(out, "endConnection")["SrcAddr"].to_list() == ["10.0.0.1", "10.0.0.2"]
    assert kind(out, "newConnection")["SrcAddr"].to_list() == ["10.0.0.3", "10.0.0.4"]
    assert st.state.height == 3


@pytest.mark.parametrize(("log_types", "expected"), [
    ("Flows", {"flowLog": 2}),
    ("Conversations", {"newConnection": 1, "heartbeat": 1, "endConnection": 1}),
    ("EndedConversations", {"endConnection": 1}),
    ("All", {"flowLog": 2, "newConnection": 1, "heartbeat": 1, "endConnection": 1}),
])
def test_log_types(log_types: str, expected: dict[str, int]) -> None:
    clock = Clock()
    st = stage(clock, log_types=log_types, heartbeat_interval_seconds=1)
    parts = [st.process(frame(flow(CLIENT, SERVER, T0, 100)))]
    clock.at(1.5)
    parts.append(st.process(frame(flow(SERVER, CLIENT, T0 + 1500, 40))))
    clock.at(11.6)
    parts.append(st.flush())
    out = pl.concat([p for p in parts if p is not None])
    assert dict(out["_RecordType"].value_counts().rows()) == expected
    conn = out.filter(pl.col("_RecordType") != "flowLog")
    if conn.height:
        assert conn["_IsFirst"].to_list() == [True] + [False] * (conn.height - 1)  # only the first is first


def test_ten_thousand_conversations_add_up() -> None:
    n = 10_000
    i = np.arange(n)
    rng = np.random.default_rng(7)
    client_addr = [f"10.{k // 65536}.{k // 256 % 256}.{k % 256}" for k in range(n)]
    common = {"DstAddr": ["10.200.0.1"] * n, "DstPort": np.full(n, 8080), "Proto": np.full(n, 6)}
    requests = pl.DataFrame({"SrcAddr": client_addr, "SrcPort": 30000 + i % 1000, **common,
                             "Bytes": 100 + i, "Packets": 1 + i % 3, "Flags": np.full(n, SYN | ACK)})
    replies = requests.select(pl.col("DstAddr").alias("SrcAddr"), pl.col("DstPort").alias("SrcPort"),
                              pl.col("SrcAddr").alias("DstAddr"), pl.col("SrcPort").alias("DstPort"), "Proto",
                              Bytes=1000 + pl.lit(i), Packets=pl.lit(2, pl.Int64),
                              Flags=pl.lit(SYN_ACK | ACK, pl.Int64))
    # odd conversations show their reply first (swapAB must still make the client A)
    first = pl.concat([requests.filter(pl.lit(i % 2 == 0)), replies.filter(pl.lit(i % 2 == 1))])
    second = pl.concat([requests.filter(pl.lit(i % 2 == 1)), replies.filter(pl.lit(i % 2 == 0))])

    def batch(rows: pl.DataFrame, t: int) -> pl.DataFrame:
        rows = rows.sample(fraction=1.0, shuffle=True, seed=int(rng.integers(1 << 30)))
        return frame(*rows.with_columns(TimeFlowStartMs=pl.lit(t - 500), TimeFlowEndMs=pl.lit(t)).to_dicts())

    clock = Clock()
    st = stage(clock, log_types="EndedConversations")
    assert st.process(batch(first, T0)).height == 0
    clock.at(1)
    assert st.process(batch(second, T0 + 1000)).height == 0
    assert st.state.height == n
    clock.at(11.001)
    end = kind(st.flush(), "endConnection")
    assert end.height == n and end["_HashId"].n_unique() == n
    assert end["Bytes"].sum() == sum(range(100, 100 + n)) + sum(range(1000, 1000 + n))
    assert end["Packets"].sum() == int((1 + i % 3).sum()) + 2 * n
    want = pl.DataFrame({"SrcAddr": client_addr, "SrcPort": 30000 + i % 1000, "DstAddr": ["10.200.0.1"] * n,
                         "DstPort": np.full(n, 8080), "Bytes_AB": 100 + i, "Bytes_BA": 1000 + i,
                         "numFlowLogs": np.full(n, 2)})
    got = end.select(want.columns).sort("SrcAddr")
    assert got.equals(want.sort("SrcAddr").cast(dict(got.schema)))  # per conversation, A = the client


def test_conversation_records_pass_through_a_second_stage() -> None:
    clock = Clock()
    out = stage(clock).process(frame(flow(CLIENT, SERVER, T0, 100)))
    assert out["_RecordType"].to_list() == ["newConnection", "flowLog"]
    again = stage(clock, log_types="Flows").process(out)
    assert again["_RecordType"].to_list() == ["flowLog", "newConnection"]  # the record passes through as is
    assert again.sort("_RecordType").equals(out.sort("_RecordType"))


def test_event_clock_follows_flow_times(monkeypatch: pytest.MonkeyPatch) -> None:
    wall = Clock(5_000)  # the processor's wall clock, unrelated to the flows' times
    monkeypatch.setattr(conntrack_module, "_wall_ms", wall)
    st = ConntrackStage(ConntrackConfig(log_types="Conversations", clock="event"))
    st.process(frame(flow(CLIENT, SERVER, T0, 100)))
    out = st.process(frame(flow(("10.0.0.9", 1234), SERVER, T0 + 10_001, 1)))  # event time moved 10.001 s
    assert out["_RecordType"].to_list() == ["endConnection", "newConnection"]
    wall.ms += 9_000
    assert st.flush() is None
    wall.ms += 1_001  # no flows for 10.001 s of wall time: the stream is idle, the conversation ends
    assert kind(st.flush(), "endConnection")["SrcAddr"].to_list() == ["10.0.0.9"]


def test_processor_runs_conntrack_and_flushes_ended_conversations() -> None:
    cfg = config.load(None, stages=["conntrack", "enrich"], sinks=["memory"],
                      **{"conntrack.log_types": "All"})
    proc = Processor(cfg)
    clock = Clock()
    proc.stages[0] = ConntrackStage(cfg.conntrack, clock=clock)
    proc.ingest(make_batch(2, SrcAddr=[CLIENT[0], SERVER[0]], SrcPort=[CLIENT[1], SERVER[1]],
                           DstAddr=[SERVER[0], CLIENT[0]], DstPort=[SERVER[1], CLIENT[1]]), "test")
    clock.at(20)
    proc.flush()
    sink = proc.sinks[0]
    assert isinstance(sink, MemorySink)
    assert sink.frame()["_RecordType"].to_list() == ["newConnection", "flowLog", "flowLog", "endConnection"]
    assert sink.frame().filter(pl.col("_RecordType") == "endConnection")["Bytes"].to_list() == [201]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("conntrack.log_types", "Everything", "conntrack.log_types: Input should be 'Flows', 'Conversations'"),
    ("conntrack.end_timeout_seconds", -1, "conntrack.end_timeout_seconds: Input should be greater than or equal"),
    ("conntrack.max_connections", 5, "conntrack.max_connections: Extra inputs are not permitted"),
])
def test_bad_config_names_the_field(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.load(None, **{key: value})
