"""OpenTelemetry sink (`sinks: [otlp]`, section `otlp`): flows as OTLP logs, the metric set as OTLP metrics.

Built by `engine.processor` (lazily: the SDK is the optional extra flowlake[otel]) from `OtlpConfig`,
the reference FlowCollector's `exporters[].openTelemetry` (targetHost, targetPort 4317, protocol
grpc|http, headers, tls, fieldsMapping, logs, metrics.pushTimeInterval 20s) and FLP's otlplogs and
otlpmetrics encoders. Flow logs are encoded column by column into ExportLogsServiceRequest bytes
(`sinks.otlp_wire`: no Python object per flow; the SDK's per-record encoding cost ~130 us per flow) and
sent to the LogsService over gRPC or to /v1/logs over HTTP; the metric set goes out through the
OpenTelemetry Python SDK's OTLP metric exporter. A failed log request is tried again up to
`max_retries` times, then its flows are dropped and counted. The sink runs behind the processor's
bounded queue (`sinks.queued`), which calls `flush` every `batch_wait_seconds`.
Each flow is one log record: timestamp = TimeFlowEndMs, no body, attributes = the flow's non-null fields
under their OTel names (`sinks.otlp_fields`).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import polars as pl
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from flowlake.engine import schema, selfmetrics
from flowlake.engine.config import MetricsConfig, OtlpConfig
from flowlake.engine.errors import ConfigError, SinkError
from flowlake.engine.metrics import aggregate, predefined, store
from flowlake.engine.sinks import otlp_fields, otlp_metrics, otlp_wire
from flowlake.engine.sinks.base import Capabilities

log = logging.getLogger(__name__)
SCOPE = InstrumentationScope("flowlake.flows")


LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def _metric_exporter(cfg: OtlpConfig) -> Any:
    """The SDK's OTLP metric exporter of the configured protocol."""
    headers = dict(cfg.headers)
    if cfg.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=f"{cfg.target_host}:{cfg.target_port}", insecure=not cfg.tls,
                                  credentials=_grpc_credentials(cfg), headers=headers, timeout=cfg.timeout_seconds)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter

    return HttpMetricExporter(endpoint=f"{_http_base(cfg)}/v1/metrics", headers=headers,
                              timeout=cfg.timeout_seconds, certificate_file=cfg.ca_cert_path or None)


def _grpc_credentials(cfg: OtlpConfig) -> Any:
    if not cfg.tls:
        return None
    import grpc  # type: ignore[import-untyped]

    root = open(cfg.ca_cert_path, "rb").read() if cfg.ca_cert_path else None  # noqa: SIM115
    return grpc.ssl_channel_credentials(root_certificates=root)


def _http_base(cfg: OtlpConfig) -> str:
    return f"{'https' if cfg.tls else 'http'}://{cfg.target_host}:{cfg.target_port}"


class LogsSender:
    """Sends encoded ExportLogsServiceRequest bytes: gRPC LogsService/Export or an HTTP POST to /v1/logs."""

    def __init__(self, cfg: OtlpConfig) -> None:
        self.cfg = cfg
        self._channel: Any = None
        self._call: Any = None
        self._context: ssl.SSLContext | None = None
        if cfg.protocol == "http" and cfg.tls:
            self._context = ssl.create_default_context(cafile=cfg.ca_cert_path or None)

    def send(self, request: bytes) -> str | None:
        """None when the receiver accepted the request, else why not."""
        if self.cfg.protocol == "grpc":
            return self._send_grpc(request)
        req = urllib.request.Request(f"{_http_base(self.cfg)}/v1/logs", data=request, method="POST",
                                     headers={**self.cfg.headers, "Content-Type": "application/x-protobuf"})
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.timeout_seconds, context=self._context) as resp:
                resp.read()
            return None
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except OSError as exc:  # refused, reset, timed out, TLS
            return f"{type(exc).__name__}: {exc}"

    def _send_grpc(self, request: bytes) -> str | None:
        import grpc

        if self._call is None:
            target = f"{self.cfg.target_host}:{self.cfg.target_port}"
            creds = _grpc_credentials(self.cfg)
            self._channel = grpc.secure_channel(target, creds) if creds else grpc.insecure_channel(target)
            self._call = self._channel.unary_unary(LOGS_METHOD)  # bytes in, bytes out
        try:
            self._call(request, timeout=self.cfg.timeout_seconds, metadata=list(self.cfg.headers.items()) or None)
            return None
        except grpc.RpcError as exc:
            return f"gRPC {exc.code().name}"  # type: ignore[attr-defined]

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = self._call = None


class OtlpSink:
    """Buffers flows for OTLP logs and aggregates them into the metric set; `flush` exports both."""

    name = "otlp"
    output = "Exporters"
    capabilities = Capabilities(durable=False, ordered=False, atomic_publish=False)

    def __init__(self, cfg: OtlpConfig, metrics_cfg: MetricsConfig, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not cfg.target_host:
            raise ConfigError("otlp sink: set otlp.target_host (the OTLP receiver, e.g. an OpenTelemetry Collector)")
        unknown = [f.input for f in cfg.fields_mapping if f.input not in schema.BY_NAME]
        if unknown:
            raise ConfigError(f"otlp.fields_mapping: {unknown} are not flow fields; see docs/flows-format.md")
        self.cfg = cfg
        self.flush_interval = cfg.batch_wait_seconds  # the queue worker flushes this often
        self.names = otlp_fields.mapping((f.input, f.output, f.multiplier) for f in cfg.fields_mapping)
        self.resource = Resource.create({"service.name": "flowlake"})
        self.logs = LogsSender(cfg)
        self.metric_exporter = _metric_exporter(cfg)
        self.address = f"{cfg.protocol}://{cfg.target_host}:{cfg.target_port}"
        self._sleep = sleep
        self._pending: list[pl.DataFrame] = []
        self._lock = threading.Lock()  # guards the buffer
        self._io_lock = threading.Lock()  # one export at a time
        specs = predefined.select(metrics_cfg.include + metrics_cfg.additional_include, metrics_cfg.definitions,
                                  metrics_cfg.prefix) if cfg.metrics else []
        self.metrics = [aggregate.compile_metric(s, metrics_cfg.prefix, scale_by_sampling=metrics_cfg.scale_by_sampling)
                        for s in specs]
        self.store = store.SeriesStore(self.metrics, max_series=metrics_cfg.max_series, expiry=metrics_cfg.expiry,
                                       sink="otlp")
        self._start_ns = time.time_ns()
        self._metrics_pushed = time.monotonic()
        self._metrics_dirty = False

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        if self.metrics:
            self.store.add(aggregate.evaluate(frame, self.metrics))
            self._metrics_dirty = True
        if self.cfg.logs:
            with self._lock:
                self._pending.append(frame)

    def flush(self, *, push_metrics: bool = False) -> int:
        """Export buffered flows as logs (and the metrics, every `metrics_push_seconds`); returns flows sent."""
        with self._io_lock:
            with self._lock:
                frames, self._pending = self._pending, []
            sent, dropped = self._export_logs(frames) if frames else (0, 0)
            due = time.monotonic() - self._metrics_pushed >= self.cfg.metrics_push_seconds
            if self.metrics and self._metrics_dirty and (due or push_metrics):
                self._push_metrics()
        if dropped:
            raise SinkError(f"otlp sink: dropped {dropped} flows that {self.address} did not accept after "
                            f"{self.cfg.max_retries} retries; is the receiver up, and otlp.target_host, "
                            "target_port, protocol right?")
        return sent

    def _export_logs(self, frames: list[pl.DataFrame]) -> tuple[int, int]:
        """(flows sent, flows dropped), `max_records_per_request` flows per request. The whole flush is
        encoded at once (the per-column cost is paid once), then sliced into requests."""
        frame = pl.concat(frames, how="vertical_relaxed")
        stamps = frame.get_column("TimeFlowEndMs").cast(pl.Int64) * 1_000_000
        records = otlp_wire.encode_records(otlp_fields.prepare(frame, self.names), stamps, time.time_ns())
        resource = dict(self.resource.attributes)
        sent, step = 0, self.cfg.max_records_per_request
        while sent < frame.height:
            chunk = records.slice(sent, step)
            if not self._export(otlp_wire.logs_request(chunk, resource, SCOPE.name), len(chunk),
                                left=frame.height - sent):
                return sent, frame.height - sent
            sent += len(chunk)
            selfmetrics.SINK_ROWS.labels(sink=self.name).inc(len(chunk))
        return sent, 0

    def _export(self, request: bytes, records: int, left: int) -> bool:
        """One export request, retried; False once given up (the `left` flows are then dropped and counted)."""
        for attempt in range(self.cfg.max_retries + 1):
            failure = self.logs.send(request)
            if failure is None:
                selfmetrics.SINK_REQUESTS.labels(sink=self.name, outcome="ok").inc()
                return True
            selfmetrics.SINK_REQUESTS.labels(sink=self.name, outcome="retry").inc()
            if attempt < self.cfg.max_retries:
                selfmetrics.SINK_RETRIES.labels(sink=self.name).inc(left)
                log.warning("otlp sink: export of %d log records to %s failed (%s); retry %d/%d", records,
                            self.address, failure, attempt + 1, self.cfg.max_retries)
                self._sleep(min(5.0, 0.5 * 2 ** attempt))
        log.error("otlp sink: %s did not accept the logs after %d retries; dropped %d flows", self.address,
                  self.cfg.max_retries, left)
        selfmetrics.SINK_DROPPED.labels(sink=self.name).inc(left)
        selfmetrics.SINK_ERRORS.labels(sink=self.name).inc()
        return False

    def _push_metrics(self) -> None:
        data = otlp_metrics.metrics_data(self.metrics, self.store.snapshot(), self.names, self.resource,
                                         self._start_ns, time.time_ns())
        self._metrics_pushed = time.monotonic()
        if data is None:
            return
        if self.metric_exporter.export(data) == MetricExportResult.SUCCESS:
            self._metrics_dirty = False
            return
        # cumulative series: the next push carries everything, nothing is lost but this point in time
        selfmetrics.SINK_ERRORS.labels(sink=self.name).inc()
        log.error("otlp sink: %s did not accept the metrics push; the next push carries the same totals",
                  self.address)

    def close(self) -> None:
        try:
            self.flush(push_metrics=True)
        finally:
            self.logs.close()
            self.metric_exporter.shutdown()
