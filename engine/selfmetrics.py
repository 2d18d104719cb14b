"""Self-metrics of every flowlake component, declared once as a table.

Each component exposes them on its `/metrics` endpoint; `docs/metrics.md` is rendered from `TABLE`.
Counters count batches and rows (never one label child per flow).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)


@dataclass(frozen=True)
class MetricDoc:
    name: str
    kind: str
    labels: tuple[str, ...]
    help: str


TABLE: tuple[MetricDoc, ...] = (
    MetricDoc("flowlake_ingest_batches_total", "counter", ("transport",),
              "flow batches accepted by the processor"),
    MetricDoc("flowlake_ingest_flows_total", "counter", ("transport",), "flows accepted by the processor"),
    MetricDoc("flowlake_ingest_rejected_batches_total", "counter", ("transport", "reason"),
              "batches rejected (reason: schema, decode, empty)"),
    MetricDoc("flowlake_stage_seconds", "histogram", ("stage",), "time spent per batch in each stage"),
    MetricDoc("flowlake_sink_rows_total", "counter", ("sink",), "rows published by each sink"),
    MetricDoc("flowlake_sink_errors_total", "counter", ("sink",), "sink write failures"),
    MetricDoc("flowlake_sink_dropped_rows_total", "counter", ("sink",),
              "rows a sink gave up on: its queue was full (a slow or dead destination), or a push failed "
              "after its retries; the lake never drops"),
    MetricDoc("flowlake_sink_retries_total", "counter", ("sink",),
              "rows a sink tried again after a failed attempt (lake: rows kept for the next publish; Loki: "
              "rows of a push retried after a 429, 5xx, timeout or refused connection)"),
    MetricDoc("flowlake_sink_requests_total", "counter", ("sink", "outcome"),
              "requests a pushing sink sent (Loki: outcome ok, retry = 429/5xx/timeout/connection error, "
              "error = any other status)"),
    MetricDoc("flowlake_sink_queued_rows", "gauge", ("sink",),
              "rows waiting in the bounded queue in front of a sink (remote sinks run behind one; "
              "processor.sink_queue_rows)"),
    MetricDoc("flowlake_sink_blocked_writers", "gauge", ("sink",),
              "ingest threads waiting for room in a sink that applies backpressure instead of dropping (the "
              "lake, while its destination fails and lake.max_buffer_rows are held)"),
    MetricDoc("flowlake_sink_blocked_seconds_total", "counter", ("sink",),
              "time ingest threads spent waiting for room in a backpressuring sink"),
    MetricDoc("flowlake_lake_files_total", "counter", (), "Parquet files published to the lake"),
    MetricDoc("flowlake_lake_compacted_files_total", "counter", (),
              "small lake files merged into one file per closed hour by `flowlake lake compact`"),
    MetricDoc("flowlake_lake_expired_partitions_total", "counter", (),
              "hour partitions deleted by retention (`flowlake lake expire`, lake.retention_days)"),
    MetricDoc("flowlake_enrich_unmatched_total", "counter", ("side",),
              "flow endpoints with no metadata entry (external or unknown IPs)"),
    MetricDoc("flowlake_buffered_rows", "gauge", (), "rows waiting in sink buffers"),
    MetricDoc("flowlake_api_requests_total", "counter", ("route", "status"), "API requests"),
    MetricDoc("flowlake_api_request_seconds", "histogram", ("route",), "API request latency"),
    MetricDoc("flowlake_api_rows_scanned_total", "counter", ("route",),
              "lake rows scanned by admin queries (not tenants': they would reveal other tenants' volumes)"),
    MetricDoc("flowlake_api_rows_returned_total", "counter", ("route",),
              "flow rows sent to clients (flow table and exports)"),
    MetricDoc("flowlake_api_bad_requests_total", "counter", ("route", "parameter"),
              "requests rejected for a bad parameter"),
    MetricDoc("flowlake_flight_requests_total", "counter", ("kind", "status"),
              "Flight query calls (kind: flows, metrics, topology, sql, ticket = unparsable, or the Flight method "
              "for auth failures; status: ok, bad_request, unauthenticated, error)"),
    MetricDoc("flowlake_flight_rows_total", "counter", ("kind",), "rows streamed by Flight query calls"),
    MetricDoc("flowlake_flight_bad_requests_total", "counter", ("kind", "parameter"),
              "Flight tickets rejected for bad input (parameter: the ticket key at fault, sql for bad SQL)"),
    MetricDoc("flowlake_synth_flows_total", "counter", ("output",), "synthetic flows generated"),
    MetricDoc("flowlake_metrics_series", "gauge", ("sink", "metric"),
              "series held per flow metric (docs/flow-metrics.md), after expiry and metrics.max_series; sink: "
              "metrics (Prometheus) or otlp, which keep their own"),
    MetricDoc("flowlake_metrics_refused_series_total", "counter", ("sink", "metric"),
              "new series refused because metrics.max_series were held (one per label set per batch)"),
    MetricDoc("flowlake_metrics_expired_series_total", "counter", ("sink", "metric"),
              "series dropped after metrics.expiry seconds without an update"),
    MetricDoc("flowlake_conntrack_input_records_total", "counter", ("classification",),
              "flows seen by the conntrack stage: discarded (not TCP/UDP/SCTP, or over "
              "conntrack.max_connections_tracked), rejected (no address or port), duplicate (the same flow "
              "twice in a batch), newConnection, update"),
    MetricDoc("flowlake_conntrack_output_records_total", "counter", ("type",),
              "records emitted by the conntrack stage: flowLog, newConnection, heartbeat, endConnection"),
    MetricDoc("flowlake_conntrack_end_connections_total", "counter", ("reason",),
              "conversations ended: tcp_flags (FIN_ACK/RST seen, then the terminating timeout) or timeout"),
    MetricDoc("flowlake_conntrack_connections", "gauge", ("phase",),
              "conversations held by the conntrack stage: active or terminating"),
    MetricDoc("flowlake_conntrack_overflow_total", "counter", (),
              "flows not tracked because conntrack.max_connections_tracked conversations were held"),
    MetricDoc("flowlake_conntrack_tcp_flags_total", "counter", ("action",),
              "TCP flag handling: detectEndConnection (flows with FIN_ACK/RST/RST_ACK), swapAB (conversations "
              "whose first flow was a SYN_ACK reply)"),
    MetricDoc("flowlake_stage_rows_in_total", "counter", ("stage",), "rows given to each processor stage"),
    MetricDoc("flowlake_stage_rows_out_total", "counter", ("stage",),
              "rows each stage passed on (filter and dedup remove rows, conntrack adds records)"),
    MetricDoc("flowlake_output_filtered_rows_total", "counter", ("output",),
              "rows the per-output `filters:` kept from sinks of an output target (all = every sink)"),
    MetricDoc("flowlake_kube_objects", "gauge", ("kind", "state"),
              "Kubernetes objects held by the processor's watches (kind: pods, nodes, services, replicasets, "
              "jobs; state: live, or deleted and kept for kubernetes.deleted_grace_seconds)"),
    MetricDoc("flowlake_kube_events_total", "counter", ("kind", "type"),
              "watch events applied (type: ADDED, MODIFIED, DELETED)"),
    MetricDoc("flowlake_kube_relists_total", "counter", ("kind", "reason"),
              "complete LISTs (reason: initial, expired = the watch got 410 Gone, resync, error = the retry of "
              "a failed list)"),
    MetricDoc("flowlake_kube_watch_errors_total", "counter", ("kind",),
              "failed list or watch requests (API server unreachable, HTTP errors), each retried with backoff"),
    MetricDoc("flowlake_kube_table_rows", "gauge", ("type",), "rows of the Kubernetes IP table by K8S_Type"),
    MetricDoc("flowlake_kube_table_build_seconds", "histogram", (),
              "time to rebuild the Kubernetes IP table from the watched objects"),
    MetricDoc("flowlake_kafka_produced_messages_total", "counter", ("topic",),
              "Arrow IPC messages produced by Kafka senders (agent, synth)"),
    MetricDoc("flowlake_kafka_produce_errors_total", "counter", ("topic",),
              "messages the broker did not acknowledge (after the client's own retries)"),
    MetricDoc("flowlake_kafka_consumed_messages_total", "counter", ("topic",),
              "messages read by the processor's Kafka ingest (`--ingest kafka://...`)"),
    MetricDoc("flowlake_kafka_bad_messages_total", "counter", ("topic", "reason"),
              "messages skipped by the Kafka ingest (reason: decode = not an Arrow IPC stream, schema = not "
              "the flow schema, empty, error = the pipeline failed on it); their offsets are committed"),
    MetricDoc("flowlake_kafka_commits_total", "counter", ("result",),
              "offset commits of the Kafka ingest (ok; failed = the commit was refused, e.g. by a rebalance; "
              "held = a sink did not publish, so nothing was committed and consumption paused)"),
    MetricDoc("flowlake_kafka_commit_lag_messages", "gauge", ("topic",),
              "messages of this processor's partitions after its last committed offsets (high watermark - "
              "committed): consumed but not yet published, plus not yet consumed"),
)

_KINDS = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}


def _make(doc: MetricDoc) -> Counter | Gauge | Histogram:
    name = doc.name.removesuffix("_total") if doc.kind == "counter" else doc.name
    return _KINDS[doc.kind](name, doc.help, doc.labels, registry=REGISTRY)  # type: ignore[no-any-return]


_M = {d.name: _make(d) for d in TABLE}

INGEST_BATCHES: Counter = _M["flowlake_ingest_batches_total"]  # type: ignore[assignment]
INGEST_FLOWS: Counter = _M["flowlake_ingest_flows_total"]  # type: ignore[assignment]
INGEST_REJECTED: Counter = _M["flowlake_ingest_rejected_batches_total"]  # type: ignore[assignment]
STAGE_SECONDS: Histogram = _M["flowlake_stage_seconds"]  # type: ignore[assignment]
SINK_ROWS: Counter = _M["flowlake_sink_rows_total"]  # type: ignore[assignment]
SINK_ERRORS: Counter = _M["flowlake_sink_errors_total"]  # type: ignore[assignment]
SINK_DROPPED: Counter = _M["flowlake_sink_dropped_rows_total"]  # type: ignore[assignment]
SINK_RETRIES: Counter = _M["flowlake_sink_retries_total"]  # type: ignore[assignment]
SINK_REQUESTS: Counter = _M["flowlake_sink_requests_total"]  # type: ignore[assignment]
SINK_QUEUED: Gauge = _M["flowlake_sink_queued_rows"]  # type: ignore[assignment]
SINK_BLOCKED: Gauge = _M["flowlake_sink_blocked_writers"]  # type: ignore[assignment]
SINK_BLOCKED_SECONDS: Counter = _M["flowlake_sink_blocked_seconds_total"]  # type: ignore[assignment]
LAKE_FILES: Counter = _M["flowlake_lake_files_total"]  # type: ignore[assignment]
LAKE_COMPACTED: Counter = _M["flowlake_lake_compacted_files_total"]  # type: ignore[assignment]
LAKE_EXPIRED: Counter = _M["flowlake_lake_expired_partitions_total"]  # type: ignore[assignment]
ENRICH_UNMATCHED: Counter = _M["flowlake_enrich_unmatched_total"]  # type: ignore[assignment]
BUFFERED_ROWS: Gauge = _M["flowlake_buffered_rows"]  # type: ignore[assignment]
API_REQUESTS: Counter = _M["flowlake_api_requests_total"]  # type: ignore[assignment]
API_SECONDS: Histogram = _M["flowlake_api_request_seconds"]  # type: ignore[assignment]
API_ROWS_SCANNED: Counter = _M["flowlake_api_rows_scanned_total"]  # type: ignore[assignment]
API_ROWS_RETURNED: Counter = _M["flowlake_api_rows_returned_total"]  # type: ignore[assignment]
API_BAD_REQUESTS: Counter = _M["flowlake_api_bad_requests_total"]  # type: ignore[assignment]
FLIGHT_REQUESTS: Counter = _M["flowlake_flight_requests_total"]  # type: ignore[assignment]
FLIGHT_ROWS: Counter = _M["flowlake_flight_rows_total"]  # type: ignore[assignment]
FLIGHT_BAD_REQUESTS: Counter = _M["flowlake_flight_bad_requests_total"]  # type: ignore[assignment]
SYNTH_FLOWS: Counter = _M["flowlake_synth_flows_total"]  # type: ignore[assignment]
METRICS_SERIES: Gauge = _M["flowlake_metrics_series"]  # type: ignore[assignment]
METRICS_REFUSED: Counter = _M["flowlake_metrics_refused_series_total"]  # type: ignore[assignment]
METRICS_EXPIRED: Counter = _M["flowlake_metrics_expired_series_total"]  # type: ignore[assignment]
CONNTRACK_INPUT: Counter = _M["flowlake_conntrack_input_records_total"]  # type: ignore[assignment]
CONNTRACK_OUTPUT: Counter = _M["flowlake_conntrack_output_records_total"]  # type: ignore[assignment]
CONNTRACK_ENDED: Counter = _M["flowlake_conntrack_end_connections_total"]  # type: ignore[assignment]
CONNTRACK_CONNECTIONS: Gauge = _M["flowlake_conntrack_connections"]  # type: ignore[assignment]
CONNTRACK_OVERFLOW: Counter = _M["flowlake_conntrack_overflow_total"]  # type: ignore[assignment]
CONNTRACK_TCP_FLAGS: Counter = _M["flowlake_conntrack_tcp_flags_total"]  # type: ignore[assignment]
STAGE_ROWS_IN: Counter = _M["flowlake_stage_rows_in_total"]  # type: ignore[assignment]
STAGE_ROWS_OUT: Counter = _M["flowlake_stage_rows_out_total"]  # type: ignore[assignment]
OUTPUT_FILTERED: Counter = _M["flowlake_output_filtered_rows_total"]  # type: ignore[assignment]
KUBE_OBJECTS: Gauge = _M["flowlake_kube_objects"]  # type: ignore[assignment]
KUBE_EVENTS: Counter = _M["flowlake_kube_events_total"]  # type: ignore[assignment]
KUBE_RELISTS: Counter = _M["flowlake_kube_relists_total"]  # type: ignore[assignment]
KUBE_WATCH_ERRORS: Counter = _M["flowlake_kube_watch_errors_total"]  # type: ignore[assignment]
KUBE_TABLE_ROWS: Gauge = _M["flowlake_kube_table_rows"]  # type: ignore[assignment]
KUBE_TABLE_BUILD_SECONDS: Histogram = _M["flowlake_kube_table_build_seconds"]  # type: ignore[assignment]
KAFKA_PRODUCED: Counter = _M["flowlake_kafka_produced_messages_total"]  # type: ignore[assignment]
KAFKA_PRODUCE_ERRORS: Counter = _M["flowlake_kafka_produce_errors_total"]  # type: ignore[assignment]
KAFKA_CONSUMED: Counter = _M["flowlake_kafka_consumed_messages_total"]  # type: ignore[assignment]
KAFKA_BAD: Counter = _M["flowlake_kafka_bad_messages_total"]  # type: ignore[assignment]
KAFKA_COMMITS: Counter = _M["flowlake_kafka_commits_total"]  # type: ignore[assignment]
KAFKA_COMMIT_LAG: Gauge = _M["flowlake_kafka_commit_lag_messages"]  # type: ignore[assignment]


def render_markdown() -> str:
    """`docs/metrics.md`, generated from `TABLE`."""
    lines = ["# Self-metrics", "",
             "<!-- generated by `flowlake docs --write` from flowlake.engine.selfmetrics; do not edit -->",
             "", "Every component serves these on its `/metrics` endpoint.", "",
             "| Metric | Type | Labels | Meaning |", "|---|---|---|---|"]
    lines += [f"| `{d.name}` | {d.kind} | {', '.join(d.labels) or '-'} | {d.help} |" for d in TABLE]
    return "\n".join(lines) + "\n"
