"""Test hosts: network namespaces joined by veth pairs (and a bridge), removed even on failure.

Used by the kernel tests: each `Host` is a namespace with an address; `enter()` runs code (socket
creation, agent start) inside it from the test process; `run()` runs a command inside it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:  # os.setns exists only from Python 3.12
        raise OSError(ctypes.get_errno(), "setns failed")


def sh(cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True)


@dataclass
class Host:
    name: str  # the namespace
    ip: str
    ip6: str = ""
    dev: str = ""  # its main interface inside the namespace
    extra: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        """Run the block in this host's network namespace (this thread only; threads started inside
        inherit it)."""
        with open(f"/var/run/netns/{self.name}") as ns, open("/proc/self/ns/net") as home:
            _setns(ns.fileno())
            try:
                yield
            finally:
                _setns(home.fileno())

    def run(self, cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh(f"ip netns exec {self.name} {cmd}", check=check)


class Lab:
    """Namespaces on one bridge (in its own namespace) or a single veth pair; `close()` removes them."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:5]
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[str]] = []

    def pair(self, offload: bool = False) -> tuple[Host, Host]:
        """Two hosts on one veth pair: 10.77.0.1/24 + fd77::1 and 10.77.0.2/24 + fd77::2."""
        a, b = self._ns("a"), self._ns("b")
        da, db = f"fa{self.tag}", f"fb{self.tag}"
        sh(f"ip link add {da} netns {a} type veth peer name {db} netns {b}")
        hosts = []
        for ns, dev, n in ((a, da, 1), (b, db, 2)):
            self._up(ns, dev, f"10.77.0.{n}/24", f"fd77::{n}/64", offload)
            hosts.append(Host(ns, f"10.77.0.{n}", f"fd77::{n}", dev))
        return hosts[0], hosts[1]

    def bridged(self, n: int, offload: bool = False) -> list[Host]:
        """`n` hosts 10.78.0.1.. on a bridge that lives in its own namespace (the "switch")."""
        sw = self._ns("sw")
        sh(f"ip -n {sw} link add br0 type bridge && ip -n {sw} link set br0 up")
        hosts = []
        for i in range(1, n + 1):
            ns = self._ns(f"h{i}")
            dev, port = f"e{i}{self.tag}", f"p{i}{self.tag}"
            sh(f"ip link add {dev} netns {ns} type veth peer name {port} netns {sw}")
            sh(f"ip -n {sw} link set {port} master br0 && ip -n {sw} link set {port} up")
            self._up(ns, dev, f"10.78.0.{i}/24", f"fd78::{i}/64", offload)
            hosts.append(Host(ns, f"10.78.0.{i}", f"fd78::{i}", dev))
        return hosts

    def routed(self) -> tuple[Host, Host, Host]:
        """A --- R --- B: R forwards between two veths (10.79.1.0/24 and 10.79.2.0/24)."""
        a, r, b = self._ns("a"), self._ns("r"), self._ns("b")
        ra, rb = f"ra{self.tag}", f"rb{self.tag}"
        sh(f"ip link add a{self.tag} netns {a} type veth peer name {ra} netns {r}")
        sh(f"ip link add b{self.tag} netns {b} type veth peer name {rb} netns {r}")
        self._up(a, f"a{self.tag}", "10.79.1.1/24", "fd79:1::1/64", False)
        self._up(r, ra, "10.79.1.254/24", "fd79:1::fe/64", False)
        self._up(r, rb, "10.79.2.254/24", "fd79:2::fe/64", False)
        self._up(b, f"b{self.tag}", "10.79.2.1/24", "fd79:2::1/64", False)
        sh(f"ip -n {a} route add default via 10.79.1.254")
        sh(f"ip -n {b} route add default via 10.79.2.254")
        sh(f"ip netns exec {r} sysctl -qw net.ipv4.ip_forward=1")
        return (Host(a, "10.79.1.1", dev=f"a{self.tag}"), Host(r, "10.79.1.254", dev=ra, extra=[rb]),
                Host(b, "10.79.2.1", dev=f"b{self.tag}"))

    def delayed_pair(self, delay_ms: float) -> tuple[Host, Host]:
        """Two hosts joined through a userspace delay line: every frame waits `delay_ms` each way."""
        a, b = self._ns("a"), self._ns("b")
        proc = subprocess.Popen([sys.executable, "-P", str(Path(__file__).with_name("delayline.py")), a, b,
                                 str(delay_ms)], stdout=subprocess.PIPE, text=True)
        self.processes.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        hosts = []
        for ns, n in ((a, 1), (b, 2)):
            self._up(ns, "dl0", f"10.76.0.{n}/24", f"fd76::{n}/64", True)
            hosts.append(Host(ns, f"10.76.0.{n}", f"fd76::{n}", "dl0"))
        return hosts[0], hosts[1]

    def _ns(self, role: str) -> str:
        name = f"fl{role}{self.tag}"
        sh(f"ip netns add {name}")
        self.namespaces.append(name)
        sh(f"ip -n {name} link set lo up")
        return name

    @staticmethod
    def _up(ns: str, dev: str, ip4: str, ip6: str, offload: bool) -> None:
        sh(f"ip -n {ns} addr add {ip4} dev {dev}")
        sh(f"ip -n {ns} addr add {ip6} dev {dev} nodad")
        sh(f"ip -n {ns} link set {dev} up")
        if not offload:  # one skb = one wire packet, so an independent tap can count the same packets
            sh(f"ip netns exec {ns} ethtool -K {dev} tso off gso off gro off tx off rx off", check=False)

    def close(self) -> None:
        for proc in self.processes:
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        for ns in reversed(self.namespaces):
            sh(f"ip netns del {ns}", check=False)
        self.namespaces.clear()


def kernel_ready() -> str | None:
    """None when BPF tests can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    if sh("ip netns list", check=False).returncode != 0:
        return "ip netns unavailable"
    return None
