"""Agent user-space pieces without the kernel: event folding, netlink parsing, filter rule parsing."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from flowlake.agent import filters, interfaces, merge, records
from flowlake.engine.errors import ConfigError


def events(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    """(key id, ifindex, first_ns, bytes) -> ring-buffer events of one packet each."""
    ev = np.zeros(len(rows), records.EVENT)
    for i, (key, ifindex, t, nbytes) in enumerate(rows):
        ev[i]["key"]["src_port"] = key
        ev[i]["stats"]["if_first"], ev[i]["stats"]["first_ns"] = ifindex, t
        ev[i]["stats"]["last_ns"], ev[i]["stats"]["bytes"], ev[i]["stats"]["packets"] = t, nbytes, 1
    return ev


def test_fold_events_counts_only_the_first_seen_interface() -> None:
    # flow 1 crosses interfaces 2 then 3 (each packet seen twice); flow 2 only on 3
    ev = events([(1, 3, 20, 100), (1, 2, 10, 100), (1, 3, 40, 100), (1, 2, 30, 100), (2, 3, 5, 70)])
    keys, stats = merge.fold_events(ev)
    got = {int(k["src_port"]): (int(s["if_first"]), int(s["packets"]), int(s["bytes"]), int(s["last_ns"]))
           for k, s in zip(keys, stats, strict=True)}
    assert got == {1: (2, 2, 200, 40), 2: (3, 1, 70, 5)}


def link_message(mtype: int, ifindex: int, name: bytes, truncate: int = 0) -> bytes:
    attr = struct.pack("=HH", 4 + len(name) + 1, interfaces.IFLA_IFNAME) + name + b"\0"
    attr += b"\0" * ((4 - len(attr) % 4) % 4)
    body = struct.pack("=BBHiII", 0, 0, 1, ifindex, 0, 0) + attr
    msg = struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, 0) + body
    return msg[:len(msg) - truncate] if truncate else msg


def test_netlink_link_messages_parse_and_survive_garbage() -> None:
    data = link_message(interfaces.RTM_NEWLINK, 7, b"eth1") + link_message(interfaces.RTM_DELLINK, 9, b"veth\xff0")
    assert interfaces.parse_link_messages(data) == [(16, 7, "eth1"), (17, 9, "veth\ufffd0")]
    assert interfaces.parse_link_messages(link_message(16, 3, b"eth0", truncate=6)) == [(16, 3, "et")]
    assert interfaces.parse_link_messages(b"\\x01\\x02") == []


@pytest.mark.parametrize(("value", "expected"), [
    ("443", (443, 443, 0)), (8080, (8080, 8080, 0)), ("8000-8080", (8000, 8080, 0)), ("80,443", (80, 80, 443)),
])
def test_port_forms(value: object, expected: tuple[int, int, int]) -> None:
    [entry] = filters.parse(f'[{{"ip_cidr": "10.0.0.0/8", "port": "{value}"}}]')
    rule = np.frombuffer(entry.rule, filters.RULE)[0]
    assert (rule["any_port_lo"], rule["any_port_hi"], rule["any_port_alt"]) == expected


@pytest.mark.parametrize("value", ["0", "70000", "90-80", "http", "80-90,100"])
def test_bad_ports_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="is not a port"):
        filters.parse(f'[{{"ip_cidr": "10.0.0.0/8", "destination_port": "{value}"}}]')


def test_v4_mapped_key_and_prefix() -> None:
    [entry] = filters.parse('[{"ip_cidr": "10.1.0.0/16", "action": "Reject", "tcp_flags": "SYN-ACK"}]')
    key = np.frombuffer(entry.key, filters.KEY)[0]
    rule = np.frombuffer(entry.rule, filters.RULE)[0]
    assert key["prefix_len"] == 96 + 16 and bytes(key["ip"]) == bytes(10) + b"\xff\xff" + bytes([10, 1, 0, 0])
    assert (rule["action"], rule["tcp_flags"], rule["prefix_len"]) == (1, 256, 112)
