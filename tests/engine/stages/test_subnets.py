"""Subnets stage: longest-prefix labels for IPv4 and IPv6, overlaps, private ranges, the synthetic cluster."""

from __future__ import annotations

import ipaddress

import polars as pl
import pytest

from flowlake.engine import config
from flowlake.engine.errors import ConfigError
from flowlake.engine.stages.subnets import SubnetsStage, address_int
from flowlake.engine.synth import SynthFlows
from tests.conftest import make_batch

LABELS = [
    ("cluster", ["10.0.0.0/8", "fd00:10::/32"], False),
    ("EXT:vpn", ["10.1.0.0/16", "2001:db8::/32"], False),  # inside cluster's /8: more specific wins
    ("EXT:vpn-gw", ["10.1.2.3/32"], False),
    ("v6-lab", ["2001:db8:0:1::/64"], False),
    ("EXT:internet", ["0.0.0.0/0"], False),
    ("private", [], True),  # only for private addresses nothing else names: none here (0/0 is IPv4-wide)
]


def labels_of(addresses: list[str | None], labels: list[tuple[str, list[str], bool]]) -> list[str | None]:
    stage = SubnetsStage(labels)
    df = pl.from_arrow(make_batch(len(addresses), SrcAddr=addresses, DstAddr=["8.8.8.8"] * len(addresses)))
    assert isinstance(df, pl.DataFrame)
    return stage.process(df)["SrcSubnetLabel"].to_list()


@pytest.mark.parametrize(("address", "want"), [
    pytest.param("10.9.9.9", "cluster", id="v4"),
    pytest.param("10.1.200.1", "EXT:vpn", id="v4-longest-prefix"),
    pytest.param("10.1.2.3", "EXT:vpn-gw", id="v4-host-route"),
    pytest.param("10.1.2.4", "EXT:vpn", id="v4-next-to-host-route"),
    pytest.param("11.0.0.1", "EXT:internet", id="v4-default-route"),
    pytest.param("::ffff:10.1.200.1", "EXT:vpn", id="v4-mapped-v6"),
    pytest.param("fd00:10::1", "cluster", id="v6"),
    pytest.param("FD00:10:0:0:0:0:0:1", "cluster", id="v6-uncompressed-uppercase"),
    pytest.param("2001:db8:0:1::abcd", "v6-lab", id="v6-longest-prefix"),
    pytest.param("2001:db8:0:2::1", "EXT:vpn", id="v6-outer"),
    pytest.param("fd00:11::1", "private", id="v6-private-fallback"),
    pytest.param("2002::1", None, id="v6-unlabelled"),
    pytest.param("not-an-ip", None, id="garbage"),
    pytest.param(None, None, id="null"),
])
def test_longest_prefix(address: str | None, want: str | None) -> None:
    assert labels_of([address], LABELS) == [want]


def test_both_sides_and_upstream_labels_are_kept() -> None:
    stage = SubnetsStage(LABELS)
    df = pl.from_arrow(make_batch(2, SrcAddr=["10.9.9.9", "10.9.9.9"], DstAddr=["10.1.2.3", "2002::1"],
                                  SrcSubnetLabel=["preset", None]))
    assert isinstance(df, pl.DataFrame)
    out = stage.process(df)
    assert out["SrcSubnetLabel"].to_list() == ["preset", "cluster"]
    assert out["DstSubnetLabel"].to_list() == ["EXT:vpn-gw", None]
    assert out.columns == df.columns and out["Bytes"].to_list() == [100, 101]


def test_same_cidr_in_two_lists_the_later_wins() -> None:
    assert labels_of(["10.0.0.1"], [("a", ["10.0.0.0/8"], False), ("b", ["10.0.0.0/8"], False)]) == ["b"]


def test_private_fallback_is_below_every_cidr() -> None:
    labels = [("internal", [], True), ("dc", ["192.168.10.0/24"], False)]
    got = labels_of(["192.168.10.5", "192.168.11.5", "172.20.0.1", "172.32.0.1", "8.8.8.8"], labels)
    assert got == ["dc", "internal", "internal", None, None]


def test_no_labels_is_a_no_op() -> None:
    assert labels_of(["10.0.0.1"], []) == [None]


def test_address_int_matches_ipaddress() -> None:
    texts = ["0.0.0.0", "255.255.255.255", "10.1.2.3", "::", "::1", "1::", "fe80::1:2:3:4",
             "2001:db8:85a3::8a2e:370:7334", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "1:2:3:4:5:6:7:8"]
    got = pl.DataFrame({"a": texts}).select(address_int(pl.col("a"))).to_series().to_list()
    want = [int(ipaddress.ip_address(t)) + ((0xFFFF << 32) if "." in t else 0) for t in texts]
    assert got == want
    bad = ["1.2.3", "1.2.3.256", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", ":", "", "g::1"]
    assert pl.DataFrame({"a": bad}).select(address_int(pl.col("a"))).to_series().null_count() == len(bad)


def test_synthetic_cluster_labels(synth: SynthFlows) -> None:
    labels = [("nodes-and-pods", ["10.0.0.0/8"], False), ("services", ["172.30.0.0/16"], False),
              ("EXT:internet", ["0.0.0.0/0"], False)]
    df = pl.from_arrow(synth.batch)
    assert isinstance(df, pl.DataFrame)
    out = SubnetsStage(labels).process(df)

    def truth(ip: str) -> str:  # the generator's address plan (synth.cluster): ground truth per address
        addr = ipaddress.ip_address(ip)
        if addr in ipaddress.ip_network("10.0.0.0/8"):
            return "nodes-and-pods"
        return "services" if addr in ipaddress.ip_network("172.30.0.0/16") else "EXT:internet"

    plan = {ip: truth(ip) for ip in synth.cluster.endpoints["ip"].to_list()}
    assert out["SrcSubnetLabel"].to_list() == [plan[ip] for ip in df["SrcAddr"].to_list()]
    assert out["DstSubnetLabel"].to_list() == [plan[ip] for ip in df["DstAddr"].to_list()]
    assert set(plan.values()) == {"nodes-and-pods", "services", "EXT:internet"}


def test_bad_cidr_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"subnets\.labels\.0\.cidrs: .*entry 1, '10\.0\.0\.0/33'"):
        config.load(None, **{"subnets.labels": [{"name": "x", "cidrs": ["10.0.0.0/8", "10.0.0.0/33"]}]})
    with pytest.raises(ConfigError, match=r"subnets\.labels\.0\.name"):
        config.load(None, **{"subnets.labels": [{"name": "", "cidrs": []}]})
