"""`flowlake synth`: the synthetic cluster, the flow generator's realism and ground truth, and the CLI."""

from __future__ import annotations

import argparse
import ipaddress
import itertools
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from flowlake.engine import schema, selfmetrics
from flowlake.engine.errors import ConfigError
from flowlake.engine.metadata import static
from flowlake.engine.synth import cli, flows, live
from flowlake.engine.synth.cluster import Cluster, make_cluster

HOUR = 3_600_000
DAY0 = 1_764_028_800_000  # 2025-11-25T00:00:00Z
START, END = DAY0 + 10 * HOUR, DAY0 + 11 * HOUR
K8S = [f.name for f in schema.FIELDS if "K8S_" in f.name or "SubnetLabel" in f.name]


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return make_cluster(seed=1)


@pytest.fixture(scope="module")
def synth(cluster: Cluster) -> flows.SynthFlows:
    return flows.generate(cluster, START, END, 200_000, seed=42)


@pytest.fixture(scope="module")
def frame(synth: flows.SynthFlows, cluster: Cluster) -> pl.DataFrame:
    """The batch joined with the metadata table, the way an enrich stage would."""
    meta = cluster.metadata_table()
    df = pl.from_arrow(synth.batch)
    assert isinstance(df, pl.DataFrame)
    df = df.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    for side in ("Src", "Dst"):
        ids = meta.select(pl.col("ip").alias(f"{side}Addr"), pl.col("Namespace").alias(f"{side}_ns"),
                          pl.col("HostIP").alias(f"{side}_host"), pl.col("Type").alias(f"{side}_type"))
        df = df.join(ids, on=f"{side}Addr", how="left")
    return df.sort("row")


# -- the cluster

def test_cluster_is_deterministic_by_seed(cluster: Cluster) -> None:
    assert make_cluster(seed=1).endpoints.equals(cluster.endpoints)
    assert make_cluster(seed=1).edges.equals(cluster.edges)
    other = make_cluster(seed=2)
    assert set(other.nodes["ip"]) != set(cluster.nodes["ip"])


def test_cluster_addresses_names_and_placement(cluster: Cluster) -> None:
    nodes = cluster.nodes
    assert nodes.height == 6 and nodes["role"].to_list().count("control-plane") == 1
    assert sorted(set(nodes["zone"])) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    for ip, name in nodes.select("ip", "name").iter_rows():
        assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.0.0.0/16")
        assert name == "ip-" + ip.replace(".", "-")
    ent = cluster.entities
    assert ent["ip"].is_unique().all()
    pods = ent.filter(pl.col("Type") == "Pod")
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.128.0.0/14") for ip in pods["ip"])
    assert set(pods["HostIP"]) <= set(nodes["ip"]) and pods["Zone"].null_count() == 0
    for name, owner, kind in pods.select("Name", "OwnerName", "OwnerType").iter_rows():
        pattern = {"Deployment": rf"{owner}-[a-z0-9]{{10}}-[a-z0-9]{{5}}", "StatefulSet": rf"{owner}-\d+",
                   "DaemonSet": rf"{owner}-[a-z0-9]{{5}}"}[kind]
        assert re.fullmatch(pattern, name), name
    services = ent.filter(pl.col("Type") == "Service")
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("172.30.0.0/16") for ip in services["ip"])
    dns = services.filter(pl.col("Name") == "kube-dns").row(0, named=True)
    assert (dns["ip"], dns["Namespace"]) == ("172.30.0.10", "kube-system")
    assert pods.filter(pl.col("OwnerName") == "coredns")["Namespace"].to_list() == ["kube-system"] * 2
    assert {"kube-system", "ingress-nginx", "monitoring", "shop", "payments", "auth", "analytics",
            "search"} <= set(ent["Namespace"].drop_nulls())
    # Host-network DaemonSets (node-exporter) carry the node's IP: they have no pod entry of their own.
    assert "node-exporter" not in set(pods["OwnerName"])
    hn = cluster.workloads.filter(pl.col("host_network"))
    assert set(hn["name"]) == {"kube-proxy", "node-exporter"} and set(hn["pods"]) == {6}
    external = cluster.endpoints.filter(pl.col("kind") == "External")
    assert external.height > 250 and not set(external["ip"]) & set(ent["ip"])
    assert {ip.split(".")[0] for ip in external["ip"]} >= {"52", "34", "151"}


def test_communication_graph(cluster: Cluster) -> None:
    edges = cluster.edges
    assert edges["weight"].sum() == pytest.approx(1.0)
    w = edges["weight"].to_list()
    assert w == sorted(w, reverse=True) and w[0] > 1.5 * w[1]  # a clear heaviest edge
    pairs = set(edges.select("client", "server").iter_rows())
    workloads = cluster.workloads.filter(~pl.col("host_network") & (pl.col("name") != "coredns"))
    app = [f"{ns}/{n}" for ns, n in workloads.select("namespace", "name").iter_rows()]
    assert all((a, "kube-system/coredns") in pairs for a in app)  # every pod resolves via CoreDNS
    to_dns = edges.filter(pl.col("server") == "kube-system/coredns")
    assert to_dns[["proto", "port"]].unique().rows() == [(17, 53)]
    assert ("ingress-nginx/ingress-nginx-controller", "shop/frontend") in pairs
    assert ("@internet", "ingress-nginx/ingress-nginx-controller") in pairs
    egress = edges.filter(pl.col("server").str.starts_with("ext:") & (pl.col("proto") == 6))
    assert set(egress["port"]) == {443}
    assert ("@nodes", "@apiserver") in pairs  # kubelets -> API server: node to node
    assert ("monitoring/prometheus-k8s", "monitoring/node-exporter") in pairs


def test_cluster_rejects_bad_sizes() -> None:
    with pytest.raises(ConfigError, match="zones"):
        make_cluster(seed=1, zones=0)
    one = make_cluster(seed=1, nodes=1, zones=1)
    assert ("@nodes", "@apiserver") not in set(one.edges.select("client", "server").iter_rows())


def test_metadata_file_round_trip(cluster: Cluster, tmp_path: Path) -> None:
    path = str(tmp_path / "cluster.json")
    static.dump(path, cluster.metadata_table(), cluster.name)
    name, table = static.load(path)
    assert name == "synth"
    assert table.sort("ip").equals(cluster.metadata_table().sort("ip"))


# -- the flows

def test_generate_is_deterministic_by_seed(cluster: Cluster, synth: flows.SynthFlows) -> None:
    again = flows.generate(cluster, START, END, 200_000, seed=42)
    assert again.batch.equals(synth.batch)
    assert np.array_equal(again.src_endpoint, synth.src_endpoint)
    other = flows.generate(cluster, START, END, 200_000, seed=43)
    assert not other.batch.equals(synth.batch)
    assert other.batch.column("SrcPort").to_pylist()[:50] != synth.batch.column("SrcPort").to_pylist()[:50]


def test_chunks_cover_the_range_in_order(cluster: Cluster) -> None:
    (single,) = flows.generate_chunks(cluster, START, END, 5_000, seed=3, chunk_flows=10_000)
    assert single.batch.equals(flows.generate(cluster, START, END, 5_000, seed=3).batch)
    parts = list(flows.generate_chunks(cluster, START, END, 30_001, seed=3, chunk_flows=10_000))
    assert [p.num_rows for p in parts] == [7_500, 7_500, 7_500, 7_501]  # ceil(30001 / 10000) chunks
    ends = [p.batch.column("TimeFlowEndMs").to_numpy() for p in parts]
    assert all(a.max() <= b.min() + 3 for a, b in itertools.pairwise(ends))  # replies end <= 2 ms later


def test_batch_is_in_the_flow_schema(synth: flows.SynthFlows, frame: pl.DataFrame) -> None:
    assert synth.batch.schema.equals(schema.SCHEMA)
    assert schema.validate(synth.batch) is synth.batch
    assert synth.num_rows == frame.height == 200_000  # rows, as reported; distinct flows are fewer
    assert 120_000 < synth.num_flows < 160_000
    assert [c for c in K8S if synth.batch.column(c).null_count != synth.num_rows] == []
    assert frame["TimeFlowEndMs"].min() >= START and frame["TimeFlowEndMs"].max() < END
    span = frame["TimeFlowEndMs"] - frame["TimeFlowStartMs"]
    assert span.min() == 0 and span.max() <= 5_000
    assert set(frame["Etype"]) == {2048} and set(frame["Sampling"]) == {1}
    assert frame["Packets"].min() >= 1 and (frame["Bytes"] >= frame["Packets"] * 40).all()
    assert set(frame["Proto"]) == {1, 6, 17}
    by_proto = frame.group_by("Proto").agg(pl.len(), pl.col("SrcPort").null_count().alias("no_port"),
                                           pl.col("Flags").null_count().alias("no_flags"),
                                           pl.col("IcmpType").null_count().alias("no_icmp")).sort("Proto")
    # ICMP: no ports, no flags; TCP: ports and flags; UDP: ports only.
    assert by_proto.rows() == [(1, by_proto["len"][0], by_proto["len"][0], by_proto["len"][0], 0),
                               (6, by_proto["len"][1], 0, 0, by_proto["len"][1]),
                               (17, by_proto["len"][2], 0, by_proto["len"][2], by_proto["len"][2])]
    assert 0.7 < by_proto["len"][1] / frame.height < 0.9 and by_proto["len"][0] / frame.height < 0.02
    assert set(frame.filter(pl.col("Proto") == 1)["IcmpType"]) <= {0, 3, 8}
    tcp = frame.filter(pl.col("Proto") == 6)
    requests = tcp.filter(pl.col("SrcPort") >= 32768)
    assert requests["SrcPort"].max() <= 60999 and {443, 5432, 6379, 8080, 9092} <= set(requests["DstPort"])
    # Only FIN, SYN, RST, PSH, ACK and the agent's SYN_ACK / FIN_ACK / RST_ACK bits are used.
    assert ((tcp["Flags"] & 0xF8E0) == 0).all() and tcp["Flags"].n_unique() >= 8
    assert (frame["Interfaces"].list.len() == frame["IfDirections"].list.len()).all()
    assert "genev_sys_6081" in set(frame["Interfaces"].explode())
    assert set(frame["AgentIP"]) <= set(synth.cluster.nodes["ip"])
    assert frame["SrcMac"].str.contains(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$").all()
    assert frame["Dscp"].eq(0).mean() > 0.9 and frame["Dscp"].n_unique() > 1


def test_truth_matches_a_metadata_join(synth: flows.SynthFlows, frame: pl.DataFrame) -> None:
    truth = synth.truth_by_namespace_pair()
    joined = (frame.group_by(pl.col("Src_ns").alias("src_ns"), pl.col("Dst_ns").alias("dst_ns"))
              .agg(pl.len().cast(pl.UInt64).alias("flows"), pl.col("Bytes").sum().alias("bytes"),
                   pl.col("Packets").sum().alias("packets")))
    key = ["src_ns", "dst_ns"]
    assert truth.sort(key, nulls_last=True).equals(joined.sort(key, nulls_last=True).select(truth.columns))
    assert truth["flows"].sum() == synth.num_rows and truth["bytes"].sum() == frame["Bytes"].sum()
    assert truth.height > 30 and truth.filter(pl.col("src_ns").is_null() & pl.col("dst_ns").is_null()).height
    assert synth.src_namespace.to_list() == frame["Src_ns"].to_list()
    deduped = synth.truth_by_namespace_pair(dedup=True)
    assert deduped["flows"].sum() == synth.num_flows < 200_000


def test_flows_between_nodes_are_reported_by_both(synth: flows.SynthFlows, frame: pl.DataFrame) -> None:
    cross = (frame["Src_host"].is_not_null() & frame["Dst_host"].is_not_null()
             & (frame["Src_host"] != frame["Dst_host"]))
    egress = frame.filter(cross & (pl.col("FlowDirection") == 1))
    ingress = frame.filter(cross & (pl.col("FlowDirection") == 0))
    assert egress.height == ingress.height == int(synth.duplicate.sum()) > 40_000
    assert (egress["AgentIP"] == egress["Src_host"]).all()
    assert (ingress["AgentIP"] == ingress["Dst_host"]).all()
    # The destination node's report follows the source node's, with the same 5-tuple and counters.
    marked = frame.with_columns(cross=cross)
    pair = marked.filter(pl.col("cross") & (pl.col("FlowDirection") == 1)).join(
        marked.with_columns(pl.col("row") - 1), on="row", suffix="_next")
    assert pair.height == egress.height
    for c in ("SrcAddr", "DstAddr", "SrcPort", "DstPort", "Proto", "Bytes", "Packets", "TimeFlowEndMs"):
        assert pair[c].equals(pair[f"{c}_next"], null_equal=True), c
    assert (pair["FlowDirection_next"] == 0).all() and (pair["AgentIP_next"] == pair["Dst_host"]).all()
    key = ["SrcAddr", "DstAddr", "SrcPort", "DstPort", "Proto", "TimeFlowStartMs", "Bytes"]
    counts = frame.filter(cross & (pl.col("Proto") != 1)).group_by(key).len()
    assert set(counts["len"]) == {2}
    # Same-node flows once (inner); flows with an external end once, by the cluster-side node.
    same = frame.filter(pl.col("Src_host") == pl.col("Dst_host"))
    assert set(same["FlowDirection"]) == {2} and (same["AgentIP"] == same["Src_host"]).all()
    ext_out = frame.filter(pl.col("Src_host").is_not_null() & pl.col("Dst_type").is_null())
    ext_in = frame.filter(pl.col("Src_type").is_null() & pl.col("Dst_host").is_not_null())
    assert ext_out.height > 1000 and ext_in.height > 1000
    assert (ext_out["AgentIP"] == ext_out["Src_host"]).all() and set(ext_out["FlowDirection"]) == {1}
    assert (ext_in["AgentIP"] == ext_in["Dst_host"]).all() and set(ext_in["FlowDirection"]) == {0}
    assert not synth.duplicate[ext_out["row"].to_numpy()].any()


def test_dns_fields(frame: pl.DataFrame) -> None:
    dns = frame.filter(pl.col("DnsId").is_not_null())
    assert 0.08 < dns.height / frame.height < 0.3
    assert set(dns["Proto"]) == {17} and ((dns["SrcPort"] == 53) | (dns["DstPort"] == 53)).all()
    responses = dns.filter(pl.col("SrcPort") == 53)
    codes = responses["DnsFlagsResponseCode"].value_counts(normalize=True)
    share = dict(codes.iter_rows())
    assert set(share) == {"NoError", "NXDomain", "ServFail"} and share["NoError"] > 0.85
    assert 0.04 < share["NXDomain"] < 0.15 and 0 < share["ServFail"] < 0.02
    rcode = {"NoError": 0, "ServFail": 2, "NXDomain": 3}
    assert ((responses["DnsFlags"] & 0xF) == responses["DnsFlagsResponseCode"].replace_strict(rcode)).all()
    assert (responses["DnsFlags"] & 0x8000 == 0x8000).all()
    assert responses["DnsLatencyMs"].null_count() == 0 and dns.filter(pl.col("DstPort") == 53)[
        "DnsLatencyMs"].null_count() == dns.height - responses.height
    assert responses.filter(pl.col("DnsFlagsResponseCode") == "NoError")["DnsLatencyMs"].median() <= 3
    assert responses.filter(pl.col("DnsFlagsResponseCode") == "ServFail")["DnsLatencyMs"].min() >= 1000
    names = set(dns["DnsName"])
    assert all(n.endswith(".") for n in names)
    assert "kafka.analytics.svc.cluster.local." in names and "api.stripe.com." in names
    nx = responses.filter(pl.col("DnsFlagsResponseCode") == "NXDomain")["DnsName"]
    assert nx.str.contains(r"\.(svc\.cluster\.local|cluster\.local|eu-west-1\.compute\.internal)\.$").all()


def test_rtt_fields(frame: pl.DataFrame) -> None:
    rtt = frame.filter(pl.col("TimeFlowRttNs").is_not_null())
    assert set(rtt["Proto"]) == {6}
    assert 0.5 < rtt.height / frame.filter(pl.col("Proto") == 6).height < 0.9
    inside = rtt.filter(pl.col("Src_host").is_not_null() & pl.col("Dst_host").is_not_null())
    outside = rtt.filter(pl.col("Src_type").is_null() | pl.col("Dst_type").is_null())
    assert 50_000 <= inside["TimeFlowRttNs"].median() <= 500_000  # tens to hundreds of µs
    assert inside["TimeFlowRttNs"].max() <= 2_000_000
    assert outside["TimeFlowRttNs"].min() >= 5_000_000 and outside["TimeFlowRttNs"].max() <= 80_000_000


def test_drop_fields(frame: pl.DataFrame) -> None:
    drops = frame.filter(pl.col("PktDropPackets").is_not_null())
    assert 0.003 < drops.height / frame.height < 0.03
    assert (drops["PktDropPackets"] >= 1).all() and (drops["PktDropPackets"] <= drops["Packets"]).all()
    assert (drops["PktDropBytes"] <= drops["Bytes"]).all()
    assert drops["PktDropLatestDropCause"].str.starts_with("SKB_DROP_REASON_").all()
    assert drops["PktDropLatestState"].str.starts_with("TCP_").all()
    causes = set(drops["PktDropLatestDropCause"])
    assert {"SKB_DROP_REASON_NO_SOCKET", "SKB_DROP_REASON_TCP_INVALID_SEQUENCE"} <= causes
    assert "TCP_ESTABLISHED" in set(drops.filter(pl.col("Proto") == 6)["PktDropLatestState"])


def test_heavy_tailed_bytes(synth: flows.SynthFlows) -> None:
    sizes = np.sort(synth.batch.column("Bytes").to_numpy()[~synth.duplicate])[::-1]
    assert sizes[: len(sizes) // 100].sum() > 0.2 * sizes.sum()
    assert np.median(sizes) < 5_000 < sizes.max()


def test_diurnal_rate(cluster: Cluster) -> None:
    day = flows.generate(cluster, DAY0, DAY0 + 24 * HOUR, 100_000, seed=5)
    hours = np.bincount((day.batch.column("TimeFlowEndMs").to_numpy() - DAY0) // HOUR, minlength=24)
    assert hours.argmax() in (12, 13, 14, 15) and hours.argmin() in (0, 1, 2, 3, 4)
    assert hours[14] > 3 * hours[2]  # 1.6 vs 0.4: about 4x


def test_sampling_thins_counters(cluster: Cluster, synth: flows.SynthFlows) -> None:
    sampled = flows.generate(cluster, START, END, 200_000, seed=42, sampling=10)
    assert set(sampled.batch.column("Sampling").to_numpy()) == {10}
    full, thin = synth.batch.column("Packets").to_numpy(), sampled.batch.column("Packets").to_numpy()
    assert (thin <= full).all() and thin.min() >= 1 and thin.sum() < 0.3 * full.sum()


def test_batches_slice_without_losing_rows(synth: flows.SynthFlows) -> None:
    parts = list(synth.batches(max_rows=65_536))
    assert [p.num_rows for p in parts[:-1]] == [65_536] * (len(parts) - 1)
    assert pa.Table.from_batches(parts).equals(pa.Table.from_batches([synth.batch]))
    assert flows.generate(synth.cluster, START, END, 0, seed=1).num_rows == 0


class _FakeTime:
    """A clock that only moves when the generator waits, so ticks are exact."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def is_set(self) -> bool:
        return False

    def wait(self, seconds: float) -> bool:
        self.now += seconds
        return False


def test_live_stream_follows_the_clock(cluster: Cluster) -> None:
    fake = _FakeTime(START / 1000)
    ticks = list(live.stream(cluster, rate=500, seed=9, ticks=4, clock=fake,
                             stop=fake))  # type: ignore[arg-type]
    assert [t.num_rows for t in ticks] == [500] * 4
    for k, t in enumerate(ticks):
        ends = t.batch.column("TimeFlowEndMs").to_numpy()
        assert START + (k - 1) * 1000 <= ends.min() and ends.max() < START + k * 1000 + 1
        assert schema.validate(t.batch) is t.batch
    assert not ticks[1].batch.column("SrcPort").equals(ticks[2].batch.column("SrcPort"))
    stop = threading.Event()
    stop.set()
    assert list(live.stream(cluster, rate=500, seed=9, stop=stop)) == []


# -- the CLI

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowlake")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser


def _args(*argv: str) -> argparse.Namespace:
    return _parser().parse_args(["synth", *argv])


def test_cli_parses_counts_times_and_durations() -> None:
    assert [cli.parse_count(t) for t in ("1000000", "1_000_000", "250k", "1M", "1e6")] == [
        1_000_000, 1_000_000, 250_000, 1_000_000, 1_000_000]
    assert [cli.parse_duration(t) for t in ("90s", "15m", "1h30m", "2d", "3600", "250ms")] == [
        90_000, 900_000, 5_400_000, 172_800_000, 3_600_000, 250]
    assert cli.parse_time("2025-11-25T00:00:00Z") == DAY0 == cli.parse_time("2025-11-25T00:00:00")
    assert cli.parse_time(str(DAY0 // 1000)) == DAY0
    assert cli.time_range(_args("--stdout"), now_ms=END) == (END - HOUR, END)
    assert cli.time_range(_args("--start", "2025-11-25T00:00:00Z", "--duration", "24h"), 0) == (
        DAY0, DAY0 + 24 * HOUR)
    assert cli.time_range(_args("--end", str(END // 1000), "--duration", "2h"), 0) == (END - 2 * HOUR, END)
    with pytest.raises(ConfigError, match="at most two"):
        cli.time_range(_args("--start", "0", "--end", "10", "--duration", "1h"), 0)
    with pytest.raises(ConfigError, match="empty"):
        cli.time_range(_args("--start", "100", "--end", "10"), 0)
    with pytest.raises(SystemExit):
        _parser().parse_args(["synth", "--flows", "lots"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["synth", "--stdout", "--out", "x"])  # one output only


def test_cli_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["synth", "--help"])
    text = capsys.readouterr().out
    assert "--target grpc://127.0.0.1:2055" in text and "--metadata-out" in text and "--live" in text


def test_cli_requires_an_output() -> None:
    with pytest.raises(ConfigError, match="--target grpc://HOST:PORT, --out URL or --stdout"):
        cli.run(_args("--flows", "10"))


def test_cli_writes_a_lake_and_metadata(tmp_path: Path) -> None:
    before = selfmetrics.REGISTRY.get_sample_value("flowlake_synth_flows_total", {"output": "lake"}) or 0.0
    lake, meta = tmp_path / "lake", tmp_path / "cluster.json"
    rc = cli.run(_args("--flows", "20k", "--seed", "4", "--start", str(START // 1000), "--duration", "2h",
                       "--out", str(lake), "--metadata-out", str(meta)))
    assert rc == 0
    stored = pl.read_parquet(sorted(lake.rglob("*.parquet")))
    expected = flows.generate(make_cluster(seed=4), START, START + 2 * HOUR, 20_000, seed=4)
    assert stored.height == expected.num_rows == 20_000
    assert stored["Bytes"].sum() == pa.compute.sum(expected.batch.column("Bytes")).as_py()
    assert len({p.parent.name for p in lake.rglob("*.parquet")}) == 2  # two hour partitions
    name, table = static.load(str(meta))
    assert name == "synth" and set(stored["SrcAddr"]) & set(table["ip"])
    after = selfmetrics.REGISTRY.get_sample_value("flowlake_synth_flows_total", {"output": "lake"})
    assert after == before + expected.num_rows


def test_cli_metadata_only(tmp_path: Path) -> None:
    meta = tmp_path / "only.json"
    assert cli.run(_args("--metadata-out", str(meta), "--nodes", "3", "--cluster-name", "edge")) == 0
    name, table = static.load(str(meta))
    assert name == "edge" and table.filter(pl.col("Type") == "Node").height == 3


def test_cli_sends_to_a_memory_target() -> None:
    from flowlake.engine.transport import memory

    got: list[pa.RecordBatch] = []
    memory.register("synth-test", lambda batch, transport: got.append(batch))
    assert cli.run(_args("--flows", "5000", "--batch-rows", "1000", "--target", "memory://synth-test")) == 0
    assert [b.num_rows for b in got] == [1000] * 5
    assert all(b.schema.equals(schema.SCHEMA) for b in got)


@pytest.fixture
def flight_server() -> Iterator[tuple[str, list[pa.RecordBatch]]]:
    from flowlake.engine.transport.flight import FlowFlightServer

    got: list[pa.RecordBatch] = []
    lock = threading.Lock()

    def ingest(batch: pa.RecordBatch, transport: str) -> None:
        with lock:
            got.append(schema.validate(batch))  # type: ignore[arg-type]

    server = FlowFlightServer("grpc://127.0.0.1:0", ingest)
    yield f"grpc://127.0.0.1:{server.port}", got
    server.shutdown()


def test_cli_sends_over_flight(flight_server: tuple[str, list[pa.RecordBatch]]) -> None:
    url, got = flight_server
    assert cli.run(_args("--flows", "30k", "--seed", "8", "--target", url)) == 0
    assert sum(b.num_rows for b in got) == 30_000
    assert max(b.num_rows for b in got) <= 65_536 and len(got) == 1


def test_cli_live_streams_until_stopped(flight_server: tuple[str, list[pa.RecordBatch]]) -> None:
    url, got = flight_server
    assert cli.run(_args("--live", "--rate", "2000", "--stop-after", "2500ms", "--target", url)) == 0
    rows = sum(b.num_rows for b in got)
    # Ticks at 0 s (covering the second before), 1 s and 2 s, about 2000 rows each.
    assert len(got) >= 3 and 5_000 <= rows <= 9_000


def test_cli_stdout_is_an_arrow_stream() -> None:
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    proc = subprocess.run([sys.executable, "-P", "-m", "flowlake.engine.cli", "synth", "--flows", "3000",
                           "--seed", "2", "--stdout"], capture_output=True, env=env, timeout=120, check=True)
    table = pa.ipc.open_stream(proc.stdout).read_all()
    assert table.schema.equals(schema.SCHEMA)
    assert table.num_rows == 3000 and "wrote 3000 flow records" in proc.stderr.decode()


def test_cli_module_imports_no_heavy_dependencies() -> None:
    code = ("import sys; import flowlake.engine.synth.cli; "
            "print(sorted(m for m in ('numpy', 'polars', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 1001])
def test_row_counts_are_exact_for_any_size(cluster: Cluster, n: int) -> None:
    synth = flows.generate(cluster, START, END, n, seed=n)
    assert synth.num_rows == n and synth.truth_by_namespace_pair()["flows"].sum() == n
    assert synth.num_flows == n - int(synth.duplicate.sum())
