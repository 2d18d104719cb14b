"""`flowlake up`: the embedded deployment on one machine, as one supervised process group.

Starts the processor, the API and a feed: the real eBPF agent on this host's interfaces when it
can run here, else a live synthetic feed, and it says which and why in its log and in the API's
/api/status. Restarts a component that dies; on Ctrl-C stops them in reverse order so the processor
flushes its buffers to the lake.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("flowlake.up")
STABLE_SECONDS = 60.0  # a component that ran this long is healthy again: its restart delay resets

EPILOG = """what runs:
  processor  Arrow Flight ingest on grpc://HOST:FLIGHT_PORT, lake in DATA_DIR/lake, /metrics on :9102
  api        HTTP API and OpenAPI docs on http://HOST:API_PORT
             and the Arrow Flight query service on grpc://HOST:QUERY_PORT (notebooks, Python client)
  feed       --feed auto (default): the eBPF agent on this host's interfaces when it can run (root,
             python3-bpfcc, kernel headers), else a live SYNTHETIC feed (a generated cluster, RATE
             flows/s); --feed agent | synthetic | both | none to choose

Stop with Ctrl-C: components stop in reverse order and the processor flushes to the lake."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("up", help="run processor + API + feed on this machine (the embedded deployment)",
                       description="Run the whole pipeline on one machine.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="./flowlake-data", help="where the lake and metadata live")
    p.add_argument("--host", default="127.0.0.1", help="address every component binds (default loopback)")
    p.add_argument("--api-port", type=int, default=8080, help="HTTP API port (default 8080)")
    p.add_argument("--flight-port", type=int, default=2055, help="Flight ingest port (default 2055)")
    p.add_argument("--query-port", type=int, default=8815,
                   help="Arrow Flight query service of the API, for notebooks and the Python client (default "
                        "8815; 0 disables it)")
    p.add_argument("--metrics-port", type=int, default=9102, help="processor /metrics port (default 9102)")
    p.add_argument("--rate", type=int, default=2000, help="synthetic flows per second (default 2000)")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic cluster")
    p.add_argument("--flush-seconds", type=float, default=5.0, help="lake publish interval (default 5)")
    p.add_argument("--feed", choices=["auto", "agent", "synthetic", "both", "none"], default="auto",
                   help="where flows come from (default auto: the agent when it can run, else synthetic)")
    p.add_argument("--agent-metrics-port", type=int, default=9400, help="agent /metrics port (default 9400)")


def agent_blocker() -> str | None:
    """Why the eBPF agent cannot run on this machine, or None when it can."""
    import os

    release = os.uname().release
    if os.geteuid() != 0:
        return "not root (the agent needs root or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN)"
    if not Path("/usr/lib/python3/dist-packages/bcc").exists():
        return "bcc is missing: install the Debian package python3-bpfcc (`make up` does)"
    if not Path(f"/lib/modules/{release}/build").exists():
        return f"no kernel headers in /lib/modules/{release}/build (`make up` installs and links them)"
    return None


def choose_feeds(feed: str) -> tuple[list[str], str]:
    """The feeds to run and a sentence saying why, for the log and /api/status."""
    if feed != "auto":
        return ([] if feed == "none" else ["agent", "synthetic"] if feed == "both" else [feed]), f"--feed {feed}"
    blocker = agent_blocker()
    if blocker is None:
        return ["agent"], "the eBPF agent can run here"
    return ["synthetic"], f"falling back to a SYNTHETIC feed: {blocker}"


@dataclass
class Component:
    name: str
    argv: list[str]
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started: float = 0.0

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-P", "-m", "flowlake.engine.cli", *self.argv],
                                     start_new_session=True)
        self.started = time.monotonic()
        log.info("up: started %s (pid %d)", self.name, self.proc.pid)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("up: %s did not stop in %.0fs, killing it", self.name, timeout)
            self.proc.kill()
            self.proc.wait()


def wait_port(host: str, port: int, comp: Component, stop: threading.Event, timeout: float = 30.0) -> bool:
    """True once the port accepts connections; False if the component died, Ctrl-C came, or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if comp.proc is not None and comp.proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            stop.wait(0.1)
    return False


def query_port(args: argparse.Namespace) -> int:
    """The Flight query port for the API, or 0 when it is taken (the API then runs without Flight).

    Another `flowlake up` or `flowlake api` on this machine may hold 8815; that must not stop this one.
    """
    if args.query_port == 0:
        return 0
    with socket.socket() as s:
        try:
            s.bind((args.host, args.query_port))
        except OSError as exc:
            log.error("up: the Flight query port %d is taken (%s); the API runs without it (choose another "
                      "with --query-port)", args.query_port, exc.strerror)
            return 0
    return int(args.query_port)


def plan(args: argparse.Namespace, feeds: list[str], why: str) -> list[Component]:
    """The components in start order (stopped in reverse)."""
    data = Path(args.data_dir)
    metadata = data / "metadata.json"
    flight = f"grpc://{args.host}:{args.flight_port}"
    level = ["--log-level", args.global_log_level]
    comps = [
        Component("processor", [*level, "processor", "--listen", flight, "--lake", str(data / "lake"),
                                *(["--metadata", str(metadata)] if "synthetic" in feeds else []),
                                "--metrics-address", f"{args.host}:{args.metrics_port}",
                                "--flush-seconds", str(args.flush_seconds)], args.flight_port),
        Component("api", [*level, "api", "--lake", str(data / "lake"), "--host", args.host,
                          "--port", str(args.api_port), "--flight-port", str(args.query_port),
                          "--feed", f"{'+'.join(feeds) or 'none'} ({why})"],
                  args.api_port),
    ]
    if "agent" in feeds:
        comps.append(Component("agent", [*level, "agent", "--target", flight,
                                         "--metrics-address", f"{args.host}:{args.agent_metrics_port}",
                                         "--features", "DNSTracking,FlowRTT,PacketDrop"]))
    if "synthetic" in feeds:
        comps.append(Component("feed (SYNTHETIC)", [*level, "synth", "--live", "--rate", str(args.rate),
                                                    "--seed", str(args.seed), "--target", flight]))
    return comps


def run(args: argparse.Namespace) -> int:
    from flowlake.engine.metadata import static
    from flowlake.engine.synth import make_cluster

    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    feeds, why = choose_feeds(args.feed)
    log.info("up: feeds %s (%s)", ", ".join(feeds) or "none", why)
    if "synthetic" in feeds:  # the processor enriches the synthetic feed from its cluster's identities
        cluster = make_cluster(seed=args.seed)
        static.dump(str(data / "metadata.json"), cluster.metadata_table(), cluster.name)
        log.info("up: SYNTHETIC feed: wrote the identities of generated cluster %r (seed %d) to %s",
                 cluster.name, args.seed, data / "metadata.json")
    args.query_port = query_port(args)
    comps = plan(args, feeds, why)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        for c in comps:
            c.start()
            if c.port is not None and not wait_port(args.host, c.port, c, stop):
                if stop.is_set():
                    return 0
                log.error("up: %s did not open port %d; see its log above", c.name, c.port)
                return 1
        agent_line = (f"\n  agent      http://{args.host}:{args.agent_metrics_port}/metrics   (eBPF on this "
                      "host's interfaces)") if "agent" in feeds else ""
        print(f"""
flowlake is up, feeds: {', '.join(feeds) or 'none'} ({why}):
  console    http://{args.host}:{args.api_port}/
  API        http://{args.host}:{args.api_port}/api/flows?timeRange=300
  API docs   http://{args.host}:{args.api_port}/docs
  status     http://{args.host}:{args.api_port}/api/status
  metrics    http://{args.host}:{args.metrics_port}/metrics{agent_line}
  ingest     grpc://{args.host}:{args.flight_port}   (Arrow Flight do_put)
  queries    {f"grpc://{args.host}:{args.query_port}" if args.query_port else "off"}   (Arrow Flight: notebooks, \
`fl.connect(...)`)
  lake       {data / 'lake'}
Press Ctrl-C to stop.
""", flush=True)
        supervise(comps, stop)
    finally:
        for c in reversed(comps):
            c.stop()
        log.info("up: stopped")
    return 0


def supervise(comps: list[Component], stop: threading.Event) -> None:
    """Restart a component that exits on its own, with a growing delay, until `stop` is set.

    The delay grows with consecutive quick failures and starts over once a component ran a minute.
    """
    while not stop.wait(1.0):
        for c in comps:
            if c.restarts and time.monotonic() - c.started > STABLE_SECONDS:
                c.restarts = 0
            if c.proc is not None and c.proc.poll() is not None:
                delay = min(30.0, 2.0 ** min(c.restarts, 5))
                log.error("up: %s exited with %s; restarting in %.0fs", c.name, c.proc.returncode, delay)
                if stop.wait(delay):
                    return
                c.restarts += 1
                c.start()
