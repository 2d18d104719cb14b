"""The work behind `flowlake synth`: build the cluster, generate in chunks, write to one output.

Called by `synth.cli.run`, which keeps these imports (numpy, Polars, Arrow, tqdm) out of
`flowlake --help`. Outputs: a transport sender (`--target`), the Parquet lake sink (`--out`) or an
Arrow IPC stream on stdout (`--stdout`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from typing import Protocol

import polars as pl
import pyarrow as pa
from tqdm import tqdm

from flowlake.engine import schema, selfmetrics
from flowlake.engine.errors import TransportError
from flowlake.engine.metadata import static
from flowlake.engine.synth import flows, live
from flowlake.engine.synth.cluster import Cluster, make_cluster

log = logging.getLogger("flowlake.engine.synth")
CHUNK_FLOWS = 1_000_000  # rows per generation step: bounds memory (~0.5 GB) whatever --flows is


class Output(Protocol):
    label: str  # the `output` label of flowlake_synth_flows_total
    where: str

    def write(self, synth: flows.SynthFlows, max_rows: int) -> int: ...

    def close(self) -> None: ...


class TargetOutput:
    def __init__(self, url: str) -> None:
        from flowlake.engine import transport

        self.sender = transport.open_sender(url)
        self.label, self.where = url.partition("://")[0], url

    def write(self, synth: flows.SynthFlows, max_rows: int) -> int:
        return int(self.sender.send(list(synth.batches(max_rows))))

    def close(self) -> None:
        self.sender.close()


class LakeOutput:
    def __init__(self, url: str) -> None:
        from flowlake.engine.sinks.lake import LakeSink

        self.sink = LakeSink(url)
        self.label, self.where = "lake", url

    def write(self, synth: flows.SynthFlows, max_rows: int) -> int:
        frame = pl.from_arrow(synth.batch)
        assert isinstance(frame, pl.DataFrame)
        self.sink.write(frame)
        return frame.height

    def close(self) -> None:
        self.sink.close()


class StdoutOutput:
    def __init__(self) -> None:
        self.writer = pa.ipc.new_stream(sys.stdout.buffer, schema.SCHEMA)
        self.label, self.where = "stdout", "stdout (Arrow IPC stream)"

    def write(self, synth: flows.SynthFlows, max_rows: int) -> int:
        for batch in synth.batches(max_rows):
            self.writer.write_batch(batch)
        return int(synth.num_rows)

    def close(self) -> None:
        self.writer.close()
        sys.stdout.buffer.flush()


def open_output(args: argparse.Namespace) -> Output:
    if args.target:
        return TargetOutput(args.target)
    if args.out:
        return LakeOutput(args.out)
    return StdoutOutput()


def _cluster(args: argparse.Namespace) -> Cluster:
    return make_cluster(args.seed, args.nodes, args.zones, scale=args.scale, name=args.cluster_name)


def _dump(cluster: Cluster, path: str) -> None:
    table = cluster.metadata_table()
    static.dump(path, table, cluster.name)
    kinds = dict(table.group_by("Type").len().iter_rows())
    log.info("synth: wrote identities of %d IPs (%d pods, %d services, %d nodes) of cluster %r to %s",
             table.height, kinds.get("Pod", 0), kinds.get("Service", 0), kinds.get("Node", 0), cluster.name,
             path)


def write_metadata(args: argparse.Namespace) -> int:
    _dump(_cluster(args), args.metadata_out)
    return 0


def run(args: argparse.Namespace, start_ms: int, end_ms: int) -> int:
    cluster = _cluster(args)
    if args.metadata_out:
        _dump(cluster, args.metadata_out)
    out = open_output(args)
    t0 = time.perf_counter()
    rows = nbytes = distinct = 0
    bar = tqdm(total=None if args.live else args.flows, unit="flow", unit_scale=True, desc="synth",
               file=sys.stderr, disable=not sys.stderr.isatty(), leave=False)
    stop = threading.Event()
    timer = threading.Timer(args.stop_after / 1000, stop.set) if args.live and args.stop_after else None
    try:
        if args.live:
            if timer:
                timer.start()
            source = live.stream(cluster, args.rate, args.seed, sampling=args.sampling, stop=stop)
            log.info("synth --live: sending SYNTHETIC flows of generated cluster %r at %d flows/s to %s "
                     "(Ctrl-C stops)", cluster.name, args.rate, args.target)
        else:
            source = flows.generate_chunks(cluster, start_ms, end_ms, args.flows, args.seed, args.sampling,
                                           CHUNK_FLOWS)
        for synth in source:
            try:
                written = out.write(synth, args.batch_rows)
            except TransportError as exc:
                if not args.live:
                    raise
                log.warning("synth --live: %s; dropped %d rows, trying again next tick", exc, synth.num_rows)
                continue
            selfmetrics.SYNTH_FLOWS.labels(output=out.label).inc(written)
            rows, nbytes, distinct = rows + written, nbytes + synth.batch.nbytes, distinct + synth.num_flows
            bar.update(synth.num_rows)
    except KeyboardInterrupt:
        if not args.live:
            raise
        log.info("synth --live: interrupted")
    finally:
        if timer:
            timer.cancel()
        bar.close()
        out.close()
    took = time.perf_counter() - t0
    log.info("synth: wrote %d flow records (%d distinct flows, %.1f MB as Arrow) to %s in %.1f s "
             "(%.0f records/s)", rows, distinct, nbytes / 1e6, out.where, took, rows / took if took else 0.0)
    return 0
