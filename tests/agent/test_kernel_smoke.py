"""The machine can do what the agent needs: bcc compiles and loads BPF programs that see real packets.

This guards the setup (`make up` installs python3-bpfcc and kernel headers) before the agent exists.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from flowlake.agent import BccUnavailable, import_bcc

pytestmark = pytest.mark.kernel

COUNT_PROG = r"""
#include <uapi/linux/bpf.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/in.h>
BPF_ARRAY(counts, u64, 1);
int count_udp(struct __sk_buff *skb) {
    if (load_half(skb, 12) != ETH_P_IP || load_byte(skb, ETH_HLEN + 9) != IPPROTO_UDP)
        return -1;
    if (load_half(skb, ETH_HLEN + 20 + 2) == 9999) {  /* destination port */
        int k = 0; u64 *v = counts.lookup(&k); if (v) __sync_fetch_and_add(v, 1);
    }
    return -1;  /* socket filter: keep the packet */
}
int tc_pass(struct __sk_buff *skb) { return 0; /* TC_ACT_OK */ }
"""


CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    # os.setns exists only from Python 3.12; the system Python here is 3.11.
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


def _bcc():  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.skip("needs root for BPF")
    try:
        return import_bcc()
    except BccUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def netns_pair() -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth pair: 10.99.0.1 <-> 10.99.0.2."""
    tag = uuid.uuid4().hex[:6]
    a, b = f"fla{tag}", f"flb{tag}"
    cmds = [f"ip netns add {a}", f"ip netns add {b}",
            f"ip link add va{tag} netns {a} type veth peer name vb{tag} netns {b}",
            f"ip -n {a} addr add 10.99.0.1/24 dev va{tag}", f"ip -n {b} addr add 10.99.0.2/24 dev vb{tag}",
            f"ip -n {a} link set va{tag} up", f"ip -n {b} link set vb{tag} up"]
    try:
        for c in cmds:
            subprocess.run(c.split(), check=True, capture_output=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot create network namespaces: {exc}")
    yield a, f"va{tag}"
    for ns in (a, b):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_bcc_loads_tc_and_socket_programs_and_counts_real_packets(netns_pair: tuple[str, str]) -> None:
    bcc = _bcc()
    ns, dev = netns_pair
    b = bcc.BPF(text=COUNT_PROG.encode())
    assert b.load_func(b"tc_pass", bcc.BPF.SCHED_CLS).fd > 0  # the TC program type the agent uses
    fn = b.load_func(b"count_udp", bcc.BPF.SOCKET_FILTER)
    # A raw socket opened inside the namespace sees its veth traffic.
    with open(f"/var/run/netns/{ns}") as nsfile, open("/proc/self/ns/net") as home:
        _setns(nsfile.fileno())
        try:
            bcc.BPF.attach_raw_socket(fn, dev.encode())
        finally:
            _setns(home.fileno())
    sender = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "for i in range(7): s.sendto(b'x' * 32, ('10.99.0.2', 9999))")
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-P", "-c", sender], check=True,
                   capture_output=True)
    counted = b[b"counts"][b[b"counts"].Key(0)].value
    assert counted == 7, f"expected the 7 UDP datagrams sent, saw {counted}"
    sock = socket.fromfd(fn.sock, socket.AF_PACKET, socket.SOCK_RAW)
    sock.close()
