"""`flowlake demo`: a small cluster made of network namespaces, captured by the real agent, end to end.

Builds two "nodes" on a switch, pods behind each node (veth, routed), a DNS server pod, a backend
"service" pod, a dropping policy (nftables), runs realistic traffic from client pods, captures it
with one `flowlake agent` per node, enriches it in a `flowlake processor` from matching metadata,
serves the API, and removes every namespace and process on exit. Needs root.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("flowlake.demo")

EPILOG = """what it builds (all in network namespaces, removed on exit):
  node1, node2    two nodes on one switch (10.80.0.1, 10.80.0.2), each running a real flowlake agent
  pods            shop/frontend (node1), shop/backend (node2), kube-system/coredns (dnsmasq, node1),
                  shop/loadgen (node2)
  policy          node2 drops TCP to backend:9090 (nftables): kernel drops with NETFILTER_DROP
  traffic         loadgen and frontend resolve names (some NXDOMAIN), call backend:8080, try :9090

Then: processor on 10.80.0.254:2055 (enriching from the demo's metadata), API on http://HOST:PORT."""

PROGRAM_CLIENT = r"""
import socket, struct, sys, time, random
dns, backend, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
def query(name, qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack("!HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
    try:
        s.sendto(q, (dns, 53)); s.recv(512)
    except OSError:
        pass
    s.close()
i = 0
while True:
    i += 1
    query(random.choice(names), i & 0xFFFF)
    try:
        c = socket.create_connection((backend, 8080), timeout=2)
        c.sendall(b"GET /items HTTP/1.0\r\n\r\n" + b"x" * random.randint(100, 4000))
        c.recv(65536); c.close()
    except OSError:
        pass
    if i % 5 == 0:
        try:
            socket.create_connection((backend, 9090), timeout=0.3).close()
        except OSError:
            pass
    time.sleep(0.2)
"""

PROGRAM_SERVER = r"""
import socket, threading
srv = socket.create_server(("0.0.0.0", 8080), backlog=64)
def handle(c):
    try:
        c.recv(65536); c.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + b"y" * 20000)
    finally:
        c.close()
while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="a namespace cluster captured by the real agent, served by the API (root)",
                       description="Build a small cluster of network namespaces, capture it with the real "
                       "eBPF agent and serve the enriched flows.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="./flowlake-data/demo", help="lake and metadata of the demo")
    p.add_argument("--api-port", type=int, default=8080, help="HTTP API port on 127.0.0.1 (default 8080)")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: until Ctrl-C)")
    p.add_argument("--features", default="DNSTracking,FlowRTT,PacketDrop", help="agent features")


def sh(cmd: str) -> None:
    res = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"demo setup failed: {cmd}: {res.stderr.strip()}")


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    owner: str
    kind: str
    node: int
    ip: str


class DemoCluster:
    """The namespaces and links; `close()` removes every one of them."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:4]
        self.netns: list[str] = []
        self.links: list[str] = []
        self.pods = [
            Pod("frontend-7c9d8-x2k4p", "shop", "frontend", "Deployment", 1, "10.81.1.10"),
            Pod("coredns-5d78c-9tq2w", "kube-system", "coredns", "Deployment", 1, "10.81.1.53"),
            Pod("backend-0", "shop", "backend", "StatefulSet", 2, "10.81.2.20"),
            Pod("loadgen-6f5b7-m8zzc", "shop", "loadgen", "Deployment", 2, "10.81.2.30"),
        ]

    def ns(self, name: str) -> str:
        return f"fl{name}{self.tag}"

    def build(self) -> None:
        sw = self._add("sw")
        sh(f"ip -n {sw} link add br0 type bridge && ip -n {sw} link set br0 up")
        # The root namespace joins the switch so the agents can reach the processor.
        self._veth(None, f"flr{self.tag}", sw, f"flrp{self.tag}")
        sh(f"ip -n {sw} link set flrp{self.tag} master br0 && ip -n {sw} link set flrp{self.tag} up")
        sh(f"ip addr add 10.80.0.254/24 dev flr{self.tag} && ip link set flr{self.tag} up")
        for n in (1, 2):
            node = self._add(f"node{n}")
            self._veth(node, "eth0", sw, f"n{n}p{self.tag}")
            sh(f"ip -n {sw} link set n{n}p{self.tag} master br0 && ip -n {sw} link set n{n}p{self.tag} up")
            sh(f"ip -n {node} addr add 10.80.0.{n}/24 dev eth0 && ip -n {node} link set eth0 up")
            sh(f"ip netns exec {node} sysctl -qw net.ipv4.ip_forward=1")
            other = 3 - n
            sh(f"ip -n {node} route add 10.81.{other}.0/24 via 10.80.0.{other}")
        for i, pod in enumerate(self.pods):
            pns, node = self._add(f"p{i}"), self.ns(f"node{pod.node}")
            host_if = f"veth{i}{self.tag}"
            self._veth(pns, "eth0", node, host_if)
            sh(f"ip -n {pns} addr add {pod.ip}/32 dev eth0 && ip -n {pns} link set eth0 up")
            sh(f"ip -n {pns} route add 169.254.1.1 dev eth0 && ip -n {pns} route add default via 169.254.1.1")
            # Calico-style: the pod's gateway 169.254.1.1 is the node's end of every pod veth.
            sh(f"ip -n {node} addr add 169.254.1.1/32 dev {host_if} && ip -n {node} link set {host_if} up")
            sh(f"ip -n {node} route add {pod.ip}/32 dev {host_if}")
        node2 = self.ns("node2")
        sh(f"ip netns exec {node2} nft add table inet demo")
        sh(f"ip netns exec {node2} nft 'add chain inet demo dropper {{ type filter hook forward priority 0 ; }}'")
        sh(f"ip netns exec {node2} nft add rule inet demo dropper ip daddr 10.81.2.20 tcp dport 9090 drop")

    def pod_ns(self, owner: str) -> str:
        return self.ns(f"p{next(i for i, p in enumerate(self.pods) if p.owner == owner)}")

    def metadata(self) -> dict[str, Any]:
        """The static metadata file (flowlake-metadata/v1) for these pods and nodes."""
        entries: list[dict[str, str]] = [
            {"ip": f"10.80.0.{n}", "name": f"node{n}", "type": "Node", "hostIP": f"10.80.0.{n}",
             "hostName": f"node{n}", "zone": f"demo-zone-{'a' if n == 1 else 'b'}"} for n in (1, 2)]
        entries += [{"ip": p.ip, "name": p.name, "type": "Pod", "namespace": p.namespace, "ownerName": p.owner,
                     "ownerType": p.kind, "hostIP": f"10.80.0.{p.node}", "hostName": f"node{p.node}",
                     "zone": f"demo-zone-{'a' if p.node == 1 else 'b'}"} for p in self.pods]
        return {"format": "flowlake-metadata/v1", "cluster": "demo", "entries": entries}

    def _add(self, name: str) -> str:
        ns = self.ns(name)
        sh(f"ip netns add {ns} && ip -n {ns} link set lo up")
        self.netns.append(ns)
        return ns

    def _veth(self, ns_a: str | None, dev_a: str, ns_b: str, dev_b: str) -> None:
        """A veth pair created directly in its two namespaces (None: the root namespace)."""
        where_a = f"netns {ns_a}" if ns_a else ""
        sh(f"ip link add {dev_a} {where_a} type veth peer name {dev_b} netns {ns_b}")
        if ns_a is None:
            self.links.append(dev_a)

    def close(self) -> None:
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        for ns in reversed(self.netns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _listening(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> bool:
    """True once `host:port` accepts connections; False if `proc` exits first or time runs out."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def run(args: argparse.Namespace) -> int:
    import os

    if os.geteuid() != 0:
        print("flowlake demo: error: needs root to create network namespaces and load BPF programs",
              file=sys.stderr)
        return 2
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    cluster = DemoCluster()
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def start(argv: list[str], netns: str | None = None) -> None:
        prefix = ["ip", "netns", "exec", netns] if netns else []
        procs.append(subprocess.Popen([*prefix, *argv], start_new_session=True))

    flowlake = [sys.executable, "-P", "-m", "flowlake.engine.cli", "--log-level", "WARNING"]
    try:
        cluster.build()
        (data / "metadata.json").write_text(json.dumps(cluster.metadata()))
        start([*flowlake, "processor", "--listen", "grpc://10.80.0.254:2055", "--lake", str(data / "lake"),
               "--metadata", str(data / "metadata.json"), "--metrics-address", "127.0.0.1:9102",
               "--flush-seconds", "5"])
        if not _listening("10.80.0.254", 2055, procs[-1]):
            raise RuntimeError("the demo's processor did not start (see its error above); is another demo running?")
        for n in (1, 2):
            # Both "nodes" share one kernel here, and the drop tracepoint sees every namespace: only
            # node2's agent (where the dropping policy lives) traces drops, so none is reported twice.
            features = args.features if n == 2 else ",".join(
                f for f in args.features.split(",") if f != "PacketDrop")
            start([*flowlake, "agent", "--target", "grpc://10.80.0.254:2055", "--agent-ip", f"10.80.0.{n}",
                   "--features", features, "--cache-active-timeout", "5", "--metrics-address", ""],
                  cluster.ns(f"node{n}"))
        start([*flowlake, "api", "--lake", str(data / "lake"), "--port", str(args.api_port), "--feed",
               "demo (real agents in network namespaces)"])
        dns_ns = cluster.pod_ns("coredns")
        start(["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--port=53", "--user=root", "--pid-file=",
               "--address=/backend.shop.svc.cluster.local/10.81.2.20", "--address=/nx.example/"], dns_ns)
        start([sys.executable, "-P", "-c", PROGRAM_SERVER], cluster.pod_ns("backend"))
        names = "backend.shop.svc.cluster.local,api.nx.example,backend.shop.svc.cluster.local"
        for owner in ("frontend", "loadgen"):
            start([sys.executable, "-P", "-c", PROGRAM_CLIENT, "10.81.1.53", "10.81.2.20", names],
                  cluster.pod_ns(owner))
        print(f"""
flowlake demo is running: 2 nodes, 4 pods, real agents ({args.features}).
  API        http://127.0.0.1:{args.api_port}/api/flows?timeRange=120&filters=namespace=shop
  docs       http://127.0.0.1:{args.api_port}/docs
  metrics    http://127.0.0.1:9102/metrics
  lake       {data / 'lake'}
Flows appear after the first drain and lake flush (~10 s). Ctrl-C stops and cleans up.
""", flush=True)
        stop.wait(args.duration or None)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        cluster.close()
        log.info("demo: stopped, namespaces removed")
    return 0
