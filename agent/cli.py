"""`flowlake agent`: capture flows on this host's interfaces in the kernel and ship Arrow batches."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

EPILOG = """examples:
  flowlake agent --target grpc://collector:2055
  flowlake agent --target file:///tmp/flows --features DNSTracking,FlowRTT,PacketDrop --sampling 50
  flowlake agent --interfaces '/^eth/' --exclude-interfaces lo,docker0 --print-bpf

Every flag can also come from the environment as FLOWLAKE_<FLAG> (FLOWLAKE_TARGET, FLOWLAKE_SAMPLING,
...). Needs root (or CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN), the Debian package python3-bpfcc and
kernel headers (`make up` installs both). Filters and qdiscs it adds are removed on SIGINT/SIGTERM.

filter rules (--filter-rules, a JSON list; NetObserv flowFilter semantics):
  [{"ip_cidr": "10.128.0.0/14", "action": "Accept", "protocol": "TCP", "destination_port": "443"},
   {"ip_cidr": "0.0.0.0/0", "action": "Accept", "sample": 100}]
  fields: ip_cidr, action (Accept|Reject), direction (Ingress|Egress), protocol (TCP|UDP|SCTP|ICMP|
  ICMPv6), source_port / destination_port / port ("80", "80-100"), icmp_type, icmp_code, peer_cidr,
  tcp_flags (SYN, SYN-ACK, ACK, FIN, RST, PSH, URG, ECE, CWR, FIN-ACK, RST-ACK), sample.
  The rule with the longest prefix matching the source or destination address decides; packets
  matching no rule are not counted (add 0.0.0.0/0 Accept to keep the rest)."""


def _env(name: str, default: Any) -> Any:
    return os.environ.get(f"FLOWLAKE_{name.upper().replace('-', '_')}", default)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("agent", help="capture flows in the kernel (eBPF, TC) and send them to a processor",
                       description="Capture every flow on this host's interfaces with TC eBPF classifiers "
                       "and send Arrow record batches of the flow schema to a processor.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default=_env("target", "grpc://127.0.0.1:2055"),
                   help="grpc://HOST:PORT (Flight), grpc+tls://..., kafka://BROKER:9092/TOPIC (docs/kafka.md), "
                   "or file:///DIR (Arrow IPC files)")
    p.add_argument("--interfaces", default=_env("interfaces", ""),
                   help="comma-separated names or /regex/ to watch (default: all)")
    p.add_argument("--exclude-interfaces", default=_env("exclude-interfaces", "lo"),
                   help="comma-separated names or /regex/ to skip; wins over --interfaces (default lo)")
    p.add_argument("--cache-active-timeout", type=float, default=float(_env("cache-active-timeout", 5.0)),
                   help="seconds between map drains (default 5)")
    p.add_argument("--cache-max-flows", type=int, default=int(_env("cache-max-flows", 5000)),
                   help="flow map size; when full, packets go to a ring buffer and are counted (default 5000)")
    p.add_argument("--sampling", type=int, default=int(_env("sampling", 1)),
                   help="count 1 packet in N, decided per packet in the kernel (default 1 = all)")
    p.add_argument("--features", default=_env("features", ""),
                   help="comma-separated: PacketDrop, DNSTracking, FlowRTT")
    p.add_argument("--filter-rules", default=_env("filter-rules", ""), help="JSON list of flow filter rules")
    p.add_argument("--dns-port", type=int, default=int(_env("dns-port", 53)), help="DNS port to parse (53)")
    p.add_argument("--agent-ip", default=_env("agent-ip", ""), help="AgentIP of the flows (default: detected)")
    p.add_argument("--metrics-address", default=_env("metrics-address", "0.0.0.0:9400"),
                   help="HOST:PORT for /metrics ('' disables; default 0.0.0.0:9400)")
    p.add_argument("--print-bpf", action="store_true", help="print the kernel program and exit")


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def run(args: argparse.Namespace) -> int:
    from flowlake.agent import program
    from flowlake.agent.run import Agent, AgentConfig

    cfg = AgentConfig(target=args.target, interfaces=_split(args.interfaces),
                      exclude_interfaces=_split(args.exclude_interfaces),
                      cache_active_timeout=args.cache_active_timeout, cache_max_flows=args.cache_max_flows,
                      sampling=args.sampling, features=tuple(_split(args.features)),
                      filter_rules=args.filter_rules, dns_port=args.dns_port, agent_ip=args.agent_ip)
    agent = Agent(cfg)
    if args.print_bpf:
        sys.stdout.write(program.render(agent.program))
        return 0
    if os.geteuid() != 0:
        print("flowlake agent: error: needs root (or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN) to load BPF "
              "programs; run it with sudo", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: agent.stop())
    try:  # everything after the first attach is inside: a failed start still detaches
        agent.start()
        if args.metrics_address:
            from prometheus_client import start_http_server

            from flowlake.agent import metrics

            host, _, port = args.metrics_address.rpartition(":")
            try:
                start_http_server(int(port), addr=host or "0.0.0.0", registry=metrics.REGISTRY)
            except OSError as exc:
                from flowlake.engine.errors import ConfigError

                raise ConfigError(f"cannot serve /metrics on {args.metrics_address} ({exc}); choose another "
                                  "--metrics-address, or '' to disable it") from exc
        agent.run()
    finally:
        agent.close()
    return 0
