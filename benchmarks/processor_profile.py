"""Where the processor's CPU goes: every stage, sink, sort and encode step of one process, per 1M flows.

Usage: .venv/bin/python -P benchmarks/processor_profile.py [--flows 1000000] [--nodes 300 --scale 540]
           [--sinks lake,metrics] [--rounds 4]
Runs the pipeline in this process (no Flight: batches go straight to `Processor.ingest`, as a transport
thread would hand them over) for `--rounds` rounds of the same flows, and prints, for the last round,
the CPU seconds (all threads), kernel seconds and page faults spent inside each step. The steps nest
(`sink:lake` contains the flushes it triggers, which contain `lake.sort` and `lake.encode`;
`arrow->polars` counts every `pl.from_arrow` call, the ingest's and any stage's). For
docs/performance.md; `ingest.py` gives the end-to-end rates through a separate processor process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from flowlake.engine import allocator

allocator.configure()  # as `flowlake processor` does, before Polars loads

from flowlake.engine import processor, schema  # noqa: E402
from flowlake.engine.config import ProcessorConfig  # noqa: E402
from flowlake.engine.metadata import static  # noqa: E402
from flowlake.engine.metrics import aggregate, store  # noqa: E402
from flowlake.engine.store import writer  # noqa: E402
from flowlake.engine.synth import generate, make_cluster  # noqa: E402

START_MS = 1_795_651_200_000
Totals = dict[str, list[float]]  # step -> [cpu s, wall s, kernel s, page faults]


def _timed(totals: Totals, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        r0, c0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            row = totals.setdefault(name, [0.0, 0.0, 0.0, 0.0])
            row[0] += time.process_time() - c0
            row[1] += time.perf_counter() - w0
            row[2] += r1.ru_stime - r0.ru_stime
            row[3] += r1.ru_minflt - r0.ru_minflt
    return wrapper


def run(flows: int, nodes: int, scale: int, sinks: list[str], rounds: int) -> tuple[float, Totals]:
    cluster = make_cluster(seed=5, nodes=nodes, scale=scale)
    batches = list(generate(cluster, START_MS, START_MS + 3_600_000, flows, seed=5).batches(62_500))
    totals: Totals = {}
    with tempfile.TemporaryDirectory() as tmp:
        static.dump(f"{tmp}/metadata.json", cluster.metadata_table(), cluster.name)
        cfg = ProcessorConfig.model_validate({
            "metadata": f"{tmp}/metadata.json", "sinks": sinks, "flush_seconds": 3600,
            "lake": {"url": f"{tmp}/lake", "flush_rows": 500_000, "background_publish": False},
            "metrics": {"max_series": 1_000_000}})
        proc = processor.Processor(cfg)
        for stage in proc.stages:
            stage.process = _timed(totals, stage.name, stage.process)  # type: ignore[method-assign]
        for sink in proc.sinks:
            sink.write = _timed(totals, f"sink:{sink.name}", sink.write)  # type: ignore[method-assign]
            sink.flush = _timed(totals, f"flush:{sink.name}", sink.flush)  # type: ignore[method-assign]
        # module attributes the pipeline looks up at call time
        patches = [(schema, "validate", "validate"), (processor.pl, "from_arrow", "arrow->polars"),
                   (writer, "sort_rows", "lake.sort"), (writer, "_write", "lake.encode"),
                   (aggregate, "evaluate", "metrics.evaluate"), (store.SeriesStore, "add", "metrics.merge")]
        originals: list[tuple[Any, str, Any]] = [(mod, attr, getattr(mod, attr)) for mod, attr, _ in patches]
        for mod, attr, name in patches:
            setattr(mod, attr, _timed(totals, name, getattr(mod, attr)))
        try:
            for r in range(rounds):
                totals.clear()
                c0 = time.process_time()
                for batch in batches:
                    proc.ingest(batch, "profile")
                proc.flush()
                cpu = time.process_time() - c0
                print(f"round {r + 1}/{rounds}: {cpu:.2f} CPU-s", file=sys.stderr)
            proc.close()
        finally:
            for mod, attr, fn in originals:
                setattr(mod, attr, fn)
    return cpu, totals


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flows", type=int, default=1_000_000)
    p.add_argument("--nodes", type=int, default=300, help="synthetic cluster nodes (300 with --scale 540: 20k pods)")
    p.add_argument("--scale", type=int, default=540, help="replica multiplier of the synthetic cluster")
    p.add_argument("--sinks", default="lake,metrics", help="comma-separated sinks ('' for none)")
    p.add_argument("--rounds", type=int, default=4, help="rounds of the same flows; the last is reported")
    args = p.parse_args()
    if args.rounds < 1 or args.flows < 1:
        p.error("--rounds and --flows must be at least 1")
    cpu, totals = run(args.flows, args.nodes, args.scale, [s for s in args.sinks.split(",") if s], args.rounds)
    per = 1_000_000 / args.flows
    print(f"last round: {cpu * per:.2f} CPU-s per 1M flows")
    print(f"{'step':<18}{'CPU-s/1M':>10}{'wall-s/1M':>11}{'kernel-s/1M':>13}{'faults/1M':>11}")
    for name, (c, w, k, f) in totals.items():
        print(f"{name:<18}{c * per:>10.3f}{w * per:>11.3f}{k * per:>13.3f}{f * per:>11.0f}")


if __name__ == "__main__":
    main()
