"""Prometheus text exposition with the flow metrics written column-wise; served by `flowlake processor`'s /metrics.

prometheus_client formats one sample at a time in Python (2 s for 100k series); the flow metrics are
frames already, so `render` builds their lines with Polars string expressions, and `generate` is
`generate_latest` for every other collector of the registry plus that text. The collector stays a normal
prometheus_client Collector (`collector.FlowMetricsCollector`), so any other registry reader still gets
the same samples the slow way; `attach` registers it and tells `generate` to take the fast path.
Samples match prometheus_client's text: same names, labels (an empty value is left out) and values.
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import polars as pl
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.exposition import gzip_accepted
from prometheus_client.utils import floatToGoString

from flowlake.engine.metrics.aggregate import COUNT, SUM, VALUE, CompiledMetric, bucket_column
from flowlake.engine.metrics.collector import FlowMetricsCollector

_LABELS = "__labels"  # the series' label text, built once per frame
_ATTACHED: dict[int, tuple[CollectorRegistry, list[FlowMetricsCollector]]] = {}  # id(registry) -> its collectors
_LOCK = threading.Lock()


def attach(registry: CollectorRegistry, collector: FlowMetricsCollector) -> None:
    """Register `collector` on `registry`, rendered column-wise by `generate`; raises ValueError on a clash."""
    registry.register(collector)
    with _LOCK:
        _ATTACHED.setdefault(id(registry), (registry, []))[1].append(collector)


def detach(registry: CollectorRegistry, collector: FlowMetricsCollector) -> None:
    registry.unregister(collector)
    with _LOCK:
        entry = _ATTACHED.get(id(registry))
        if entry is not None:
            entry[1].remove(collector)
            if not entry[1]:
                del _ATTACHED[id(registry)]


def generate(registry: CollectorRegistry, names: Iterable[str] | None = None) -> bytes:
    """The text exposition of `registry`; with `names` (`name[]`), only the samples of those names, as
    prometheus_client's `restricted_registry` keeps them (`x_bucket` alone, not its `_count`)."""
    wanted = set(names) if names is not None else None
    with _LOCK:
        fast = list(_ATTACHED.get(id(registry), (registry, []))[1])
    # snapshots first: they merge waiting updates, so the self-metrics below count the series served
    frames = [c.store.snapshot() for c in fast]
    with FlowMetricsCollector.rendered_elsewhere(fast):  # their collect() yields nothing in this thread
        head = generate_latest(registry.restricted_registry(sorted(wanted)) if wanted is not None else registry)
    parts = [head]
    for c, snapshot in zip(fast, frames, strict=True):
        parts.append(render(c.metrics, snapshot, wanted))
    return b"".join(parts)


def render(metrics: Sequence[CompiledMetric], frames: dict[str, pl.DataFrame],
           names: set[str] | None = None) -> bytes:
    """HELP, TYPE and sample lines of `metrics` from their `SeriesStore` frames (samples named in `names`)."""
    out: list[str] = []
    for m in metrics:
        frame = frames.get(m.name)
        if frame is None or frame.height == 0 or (names is not None and not _sample_names(m) & names):
            continue
        help_text = m.spec.help.replace("\\", r"\\").replace("\n", r"\n")
        # prometheus_client names a counter family without _total and adds it back on these two lines
        family = m.name.removesuffix("_total") + "_total" if m.kind == "counter" else m.name
        out.append(f"# HELP {family} {help_text}\n# TYPE {family} {m.kind}\n")
        lines = _lines(m, frame, names)
        out.append(lines.str.join("\n").item() + "\n")
    return "".join(out).encode()


def _escape(expr: pl.Expr) -> pl.Expr:
    return (expr.str.replace_all("\\", "\\\\", literal=True).str.replace_all("\n", "\\n", literal=True)
            .str.replace_all('"', '\\"', literal=True))


def _number(expr: pl.Expr) -> pl.Expr:
    """Go-parsable text of a float column: Polars' shortest round-trip form (`12.0`, `1000000.0`; prometheus_client
    writes `1e+06`, the same number to a parser), and +Inf, -Inf, NaN as Prometheus spells them."""
    return pl.when(expr.is_infinite()).then(pl.when(expr > 0).then(pl.lit("+Inf")).otherwise(pl.lit("-Inf"))) \
        .when(expr.is_nan()).then(pl.lit("NaN")).otherwise(expr.cast(pl.String))


def _sample_names(m: CompiledMetric) -> set[str]:
    if m.kind == "histogram":
        return {f"{m.name}_bucket", f"{m.name}_count", f"{m.name}_sum"}
    return {m.name}


def _lines(m: CompiledMetric, frame: pl.DataFrame, names: set[str] | None = None) -> pl.Series:
    """One string per series: its sample line (counter, gauge) or its block of lines (histogram); only
    the samples named in `names` when given."""
    used = [x for x in m.labels if (frame.get_column(x) != "").any()]  # columns empty in every series: none
    pairs = [pl.when(pl.col(x) != "").then(pl.concat_str(pl.lit(f'{x}="'), _escape(pl.col(x)), pl.lit('"')))
             for x in sorted(used)]
    # computed once per series, then shared by its samples (a histogram has len(buckets) + 3)
    frame = frame.with_columns((pl.concat_str(pairs, separator=",", ignore_nulls=True) if pairs else pl.lit(""))
                               .alias(_LABELS))
    labels = pl.col(_LABELS)

    def sample(name: str, value: pl.Expr, le: str | None = None) -> pl.Expr:
        inner = labels
        if le is not None:  # the bucket bound joins the series' labels (no comma when it has none)
            inner = pl.when(labels == "").then(pl.lit(f'le="{le}"')).otherwise(
                pl.concat_str(labels, pl.lit(f',le="{le}"')))
        braces = pl.when(inner == "").then(pl.lit("")).otherwise(pl.concat_str(pl.lit("{"), inner, pl.lit("}")))
        return pl.concat_str(pl.lit(name), braces, pl.lit(" "), _number(value))

    if m.kind != "histogram":
        return frame.select(sample(m.name, pl.col(VALUE)).alias("line")).to_series()
    bounds = [floatToGoString(b) for b in m.buckets]  # type: ignore[no-untyped-call]
    block: list[pl.Expr] = []
    if names is None or f"{m.name}_bucket" in names:
        block += [sample(f"{m.name}_bucket", pl.col(bucket_column(i)), le) for i, le in enumerate(bounds)]
        block.append(sample(f"{m.name}_bucket", pl.col(COUNT), "+Inf"))
    if names is None or f"{m.name}_count" in names:
        block.append(sample(f"{m.name}_count", pl.col(COUNT)))
    if names is None or f"{m.name}_sum" in names:
        block.append(sample(f"{m.name}_sum", pl.col(SUM)))
    return frame.select(pl.concat_str(block, separator="\n").alias("line")).to_series()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # http.server calls it by this name
        query = parse_qs(urlparse(self.path).query)
        body = generate(self.server.registry, query.get("name[]"))
        gzipped = gzip_accepted(self.headers.get("Accept-Encoding", ""))
        if gzipped:
            body = gzip.compress(body, compresslevel=1)  # tens of MB at 100k series: fast, still ~10x smaller
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not worth a log line
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, family: int) -> None:
        self.registry = registry
        self.address_family = family  # read by socketserver when it makes the socket, in __init__ below
        super().__init__(address, _Handler)


def serve(host: str, port: int, registry: CollectorRegistry) -> ThreadingHTTPServer:
    """Serve `generate(registry)` on every GET (like prometheus_client's start_http_server) from a thread.

    Always in the Prometheus text format 0.0.4, whatever the Accept header prefers: Prometheus takes it
    (it reads the Content-Type), and the flow metrics have no OpenMetrics-only samples (`_created`)."""
    # IPv4 or IPv6, as the address resolves (prometheus_client's server does the same)
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    server = _Server((host, port), registry, family)
    threading.Thread(target=server.serve_forever, name="flowlake-metrics-http", daemon=True).start()
    return server
