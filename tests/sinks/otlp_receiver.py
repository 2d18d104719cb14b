"""An OTLP receiver on loopback for the tests: gRPC and HTTP servers decoding the real protobuf messages.

The gRPC server implements the collector's LogsService and MetricsService from the generated stubs of the
`opentelemetry-proto` package; the HTTP server takes POST /v1/logs and /v1/metrics bodies (protobuf,
gzip or not) the way the OTLP/HTTP specification says. Both keep every request they decoded; `logs()`
flattens them into (resource attributes, scope, time, attributes) per log record, decoding each AnyValue.
`refuse` makes them answer UNAVAILABLE / 503, as a receiver that is overloaded.
"""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def value(v: AnyValue) -> Any:
    """An AnyValue as plain Python (arrays as lists, key-value lists as dicts)."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in kvs}


class Receiver:
    """Starts one server of `protocol` on 127.0.0.1 (port 0); `port`, `log_requests`, `metric_requests`."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.log_requests: list[logs_service_pb2.ExportLogsServiceRequest] = []
        self.metric_requests: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.refuse = False
        self._lock = threading.Lock()
        if protocol == "grpc":
            self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                     options=[("grpc.max_receive_message_length", 64 << 20)])
            logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(self), self._grpc)
            metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(self), self._grpc)
            self.port = self._grpc.add_insecure_port("127.0.0.1:0")
            self._grpc.start()
        else:
            self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
            self.port = self._http.server_address[1]
            threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def take(self, request: Any) -> None:
        with self._lock:
            if isinstance(request, logs_service_pb2.ExportLogsServiceRequest):
                self.log_requests.append(request)
            else:
                self.metric_requests.append(request)

    def logs(self) -> list[dict[str, Any]]:
        with self._lock:
            requests = list(self.log_requests)
        return [{"resource": attributes(rl.resource.attributes), "scope": sl.scope.name,
                 "time_ns": r.time_unix_nano, "body": value(r.body), "attributes": attributes(r.attributes)}
                for req in requests for rl in req.resource_logs for sl in rl.scope_logs for r in sl.log_records]

    def wait_logs(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(got := self.logs()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return got

    def metrics(self) -> dict[str, Any]:
        """The latest data point of every (metric, attributes), from the last request that had the metric."""
        with self._lock:
            requests = list(self.metric_requests)
        out: dict[str, Any] = {}
        for req in requests:
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        out[m.name] = m
        return out

    def close(self) -> None:
        if self.protocol == "grpc":
            self._grpc.stop(None).wait()
        else:
            self._http.shutdown()
            self._http.server_close()


class _Export:
    """The one Export method of both OTLP services: refuse while asked to, else keep the request."""

    response: Any

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def Export(self, request: Any, context: Any) -> Any:
        if self.receiver.refuse:
            context.abort(grpc.StatusCode.UNAVAILABLE, "refusing (test)")
        self.receiver.take(request)
        return self.response()


class _Logs(_Export, logs_service_pb2_grpc.LogsServiceServicer):
    response = logs_service_pb2.ExportLogsServiceResponse


class _Metrics(_Export, metrics_service_pb2_grpc.MetricsServiceServicer):
    response = metrics_service_pb2.ExportMetricsServiceResponse


def _handler(receiver: Receiver) -> type[http.server.BaseHTTPRequestHandler]:
    kinds: dict[str, tuple[Any, Any]] = {
        "/v1/logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
        "/v1/metrics": (metrics_service_pb2.ExportMetricsServiceRequest,
                        metrics_service_pb2.ExportMetricsServiceResponse),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path not in kinds:
                self.send_error(404)
                return
            if receiver.refuse:
                self.send_error(503)
                return
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request_cls, response_cls = kinds[self.path]
            receiver.take(request_cls.FromString(body))
            reply = response_cls().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
