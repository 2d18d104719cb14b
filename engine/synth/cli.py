"""`flowlake synth`: simulate a cluster's flows and send them (Flight), store them (lake) or pipe them.

Registered by `engine/cli.py` through `add_parser(sub)` / `run(args)`. Only the standard library is
imported at module level, so `flowlake --help` stays fast; numpy, Polars and Arrow load inside `run`.
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from datetime import UTC, datetime

from flowlake.engine.errors import ConfigError

log = logging.getLogger(__name__)

DESCRIPTION = """Generate realistic network flows from a simulated Kubernetes cluster (nodes in zones,
infra and app namespaces, Services, host-network pods, external endpoints) in the flow schema, with
a diurnal rate, heavy-tailed sizes, DNS, RTT and drops. Flows between nodes are reported by both
nodes, as real agents do. Kubernetes columns are left for the processor: give it the same cluster's
identity file (--metadata-out) to enrich them. The same --seed always gives the same flows."""

EPILOG = """examples:
  flowlake synth --metadata-out cluster.json --flows 1M --target grpc://127.0.0.1:2055
  flowlake synth --duration 24h --flows 5M --seed 7 --out file:///tmp/flowlake-lake
  flowlake synth --start 2024-05-01T00:00:00Z --end 2024-05-02T00:00:00Z --flows 2M --out ./lake
  flowlake synth --flows 10k --stdout > flows.arrows        (Arrow IPC stream)
  flowlake synth --live --rate 2000 --target grpc://127.0.0.1:2055      (until Ctrl-C)
  flowlake synth --metadata-out cluster.json                (only the identity file)

--flows counts flow records (rows, as stored): a flow between two nodes is reported by both nodes,
so it is two records. Run the processor with --metadata cluster.json written with the same
--seed/--nodes/--zones/--scale as the flows."""

_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def parse_count(text: str) -> int:
    """'1000000', '1_000_000', '250k', '1M', '1e6' -> an int."""
    m = re.fullmatch(r"([\d_.e+]+)\s*([kKmMgG]?)", text.strip())
    try:
        if not m:
            raise ValueError(text)
        value = float(m.group(1).replace("_", "")) * _SCALE[m.group(2).lower()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a count: {text!r} (try 1000000, 250k or 1M)") from None
    return int(value)


def parse_duration(text: str) -> int:
    """'90s', '15m', '1h30m', '2d', '3600' (seconds) -> milliseconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text.strip()):
        return int(float(text) * 1000)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text.strip())
    if not parts or "".join(a + u for a, u in parts) != text.strip():
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 90s, 15m, 1h30m or 2d)")
    return int(sum(float(a) * _UNITS[u] for a, u in parts))


def parse_time(text: str) -> int:
    """ISO 8601 ('2024-05-01T12:00:00Z'; no zone = UTC) or unix seconds -> ms since epoch."""
    try:
        return int(float(text) * 1000)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (try 2024-05-01T12:00:00Z or unix seconds)") from None
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("synth", help="generate synthetic flows from a simulated cluster",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    c = p.add_argument_group("cluster")
    c.add_argument("--seed", type=int, default=1, help="random seed: same seed, same cluster and flows (1)")
    c.add_argument("--nodes", type=int, default=6, help="nodes, the first one control plane (6)")
    c.add_argument("--zones", type=int, default=3, help="availability zones (3)")
    c.add_argument("--scale", type=int, default=1, help="multiply app replicas (1)")
    c.add_argument("--cluster-name", default="synth", help="cluster name in the metadata file (synth)")
    c.add_argument("--metadata-out", metavar="PATH", help="write the cluster's IP -> identity file "
                   "(for the processor's --metadata); any fsspec path")
    f = p.add_argument_group("flows")
    f.add_argument("--flows", type=parse_count, default=1_000_000, metavar="N",
                   help="flow records to generate (1M); accepts 250k, 1M, 1e6")
    f.add_argument("--start", type=parse_time, help="first flow end, ISO 8601 or unix seconds")
    f.add_argument("--end", type=parse_time, help="last flow end (default: now)")
    f.add_argument("--duration", type=parse_duration, help="time range length, e.g. 1h, 24h, 7d (1h)")
    f.add_argument("--sampling", type=int, default=1, help="agent sampling interval, 1 = every packet (1)")
    f.add_argument("--batch-rows", type=int, default=65_536, help="rows per sent batch (65536)")
    out = p.add_argument_group("output (choose one)").add_mutually_exclusive_group()
    out.add_argument("--target", metavar="URL", help="send to a processor: grpc://HOST:PORT, "
                     "grpc+tls://HOST:PORT, kafka://BROKER:9092/TOPIC (docs/kafka.md) or memory://NAME")
    out.add_argument("--out", metavar="URL", help="write a Parquet flow lake at this fsspec URL or path")
    out.add_argument("--stdout", action="store_true", help="write an Arrow IPC stream to stdout")
    lv = p.add_argument_group("live")
    lv.add_argument("--live", action="store_true", help="stream flows with current timestamps until Ctrl-C")
    lv.add_argument("--rate", type=parse_count, default=1_000,
                    help="with --live: flow records per second (1000)")
    lv.add_argument("--stop-after", type=parse_duration, metavar="DURATION",
                    help="with --live: stop after this long (default: never)")


def time_range(args: argparse.Namespace, now_ms: int) -> tuple[int, int]:
    """[start, end) in ms from --start/--end/--duration (default: the hour before now)."""
    if args.start is not None and args.end is not None and args.duration is not None:
        raise ConfigError("synth: give at most two of --start, --end and --duration")
    duration = args.duration if args.duration is not None else 3_600_000
    if args.start is not None:
        start = args.start
        end = args.end if args.end is not None else (
            start + duration if args.duration is not None else now_ms)
    else:
        end = args.end if args.end is not None else now_ms
        start = end - duration
    if end <= start:
        raise ConfigError(f"synth: the time range is empty (start {start} ms >= end {end} ms); "
                          f"check --start/--end/--duration")
    return start, end


def run(args: argparse.Namespace) -> int:
    from flowlake.engine.synth import runner  # numpy, polars, pyarrow: only when synth runs

    if args.flows < 0 or args.sampling < 1 or args.batch_rows < 1:
        raise ConfigError("synth: --flows must be >= 0, --sampling and --batch-rows >= 1")
    if args.rate <= 0:
        raise ConfigError("synth: --rate must be > 0 flows per second")
    if args.stop_after is not None and not args.live:
        raise ConfigError("synth: --stop-after only applies to --live (use --duration for a time range)")
    if not (args.target or args.out or args.stdout):
        if args.metadata_out and not args.live:
            return int(runner.write_metadata(args))
        raise ConfigError("synth: choose where flows go: --target grpc://HOST:PORT, --out URL or "
                          "--stdout (or give only --metadata-out)")
    start_ms, end_ms = time_range(args, int(time.time() * 1000))
    return int(runner.run(args, start_ms, end_ms))
