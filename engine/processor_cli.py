"""`flowlake processor`: runs the Flight ingest server (or a Kafka consumer), the pipeline and /metrics."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

log = logging.getLogger("flowlake.processor")

EPILOG = """examples:
  flowlake processor                                   # defaults: grpc://0.0.0.0:2055 -> ./flowlake-data/lake
  flowlake processor --metadata cluster.json --lake s3://bucket/flows
  flowlake processor --config processor.yaml --listen grpc://127.0.0.1:2055
  flowlake processor --ingest 'kafka://kafka:9092/network-flows?group=flowlake-processor'   # a consumer group

Every flag overrides the same key of --config (see docs/config.md). Agents and `flowlake synth
--target grpc://HOST:2055` send Arrow record batches of the flow schema (docs/flows-format.md);
a batch that does not match is rejected with an error naming the column, and counted in
flowlake_ingest_rejected_batches_total.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("processor", help="receive, enrich and store flows (Arrow Flight or Kafka -> Parquet lake)",
                       description="Receive flow batches over Arrow Flight, enrich them with Kubernetes "
                       "identities and publish them to the Parquet lake.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="processor YAML config (docs/config.md)")
    p.add_argument("--listen", help="Flight address to serve, e.g. grpc://0.0.0.0:2055")
    p.add_argument("--ingest", help="grpc (the Flight server on --listen; default) or "
                   "kafka://BROKER:PORT/TOPIC?group=NAME to consume a topic as a consumer group member")
    p.add_argument("--lake", help="lake URL (path, file://, memory://, s3://...)")
    p.add_argument("--metadata", help="static metadata file for enrichment (from `flowlake synth "
                   "--metadata-out`)")
    p.add_argument("--cluster-name", help="value of K8S_ClusterName")
    p.add_argument("--metrics-address", help="HOST:PORT for /metrics ('' disables)")
    p.add_argument("--flush-seconds", type=float, help="publish to the lake at least this often")


def config_from_args(args: argparse.Namespace) -> Any:
    from flowlake.engine import config

    return config.load(args.config, listen=args.listen, ingest=args.ingest, metadata=args.metadata,
                       cluster_name=args.cluster_name, metrics_address=args.metrics_address,
                       flush_seconds=args.flush_seconds, **{"lake.url": args.lake})


def run(args: argparse.Namespace) -> int:
    serve(config_from_args(args))
    return 0


def serve(cfg: Any, ready: threading.Event | None = None, stop: threading.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or `stop` is set), then flush every sink and exit cleanly."""
    import pyarrow as pa

    from flowlake.engine import selfmetrics
    from flowlake.engine.errors import ConfigError
    from flowlake.engine.metrics import exposition
    from flowlake.engine.processor import Processor
    from flowlake.engine.transport.flight import FlowFlightServer

    stop = stop or threading.Event()
    processor = Processor(cfg)
    server: FlowFlightServer | None = None
    consumer = None
    if cfg.ingest == "grpc":
        try:
            server = FlowFlightServer(cfg.listen, processor.ingest)
        except (pa.ArrowException, OSError) as exc:
            raise ConfigError(f"cannot listen on {cfg.listen} ({exc}); is the port taken by another "
                              "processor? choose another with --listen") from exc
    else:  # a Kafka consumer: it flushes and commits itself, so the background flusher stays off
        from flowlake.engine.transport.kafka_ingest import KafkaIngest

        consumer = KafkaIngest(cfg.ingest, processor, checkpoint_seconds=cfg.flush_seconds)
    metrics_server = None
    if cfg.metrics_address:
        host, _, port = cfg.metrics_address.rpartition(":")
        try:
            metrics_server = exposition.serve(host or "0.0.0.0", int(port), selfmetrics.REGISTRY)
        except OSError as exc:
            if server is not None:
                server.shutdown()
            raise ConfigError(f"cannot serve /metrics on {cfg.metrics_address} ({exc}); choose another "
                              "--metrics-address, or '' to disable it") from exc
    if consumer is None:
        processor.start_flusher()
    else:
        consumer.start(stop)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    source = f"Flight on {cfg.listen} (port {server.port})" if server else f"Kafka {cfg.ingest}"
    log.info("processor: %s, lake %s, metrics on %s, stages %s, sinks %s", source, cfg.lake.url,
             cfg.metrics_address or "off", cfg.stages, cfg.sinks)
    if ready is not None:
        ready.set()
    stop.wait()
    log.info("processor: shutting down, flushing sinks")
    if server is not None:
        server.shutdown()
    if consumer is not None:
        consumer.join()  # its last flush and commit, then it leaves the group
    processor.close()
    if metrics_server is not None:
        metrics_server.shutdown()
        metrics_server.server_close()
    log.info("processor: stopped")
    if consumer is not None and consumer.error is not None:
        raise consumer.error
