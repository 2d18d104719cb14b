"""One harness per registered sink: build it on a fresh destination, read back through the sink's own reader.

`tests/sinks/conftest.py` parametrizes the conformance suite over `processor.SINKS` and picks the
harness of each name here; a scenario a sink cannot take part in raises NotImplementedError, which the
suite's GAPS table turns into a strict xfail. `read` and `expected` return the same normalized frame,
so one comparison serves every sink:
- memory: `.frame()`; lake: `engine.store.lake.scan`; both the flow columns as written;
- metrics: a counter of Bytes by SrcAddr/DstAddr scraped from its collector vs the same group_by;
- loki: VictoriaLogs' LogsQL API: (labels, timestamp, line as parsed JSON) vs the flow computed in Python;
- ipfix-udp: goflow2's JSON, ipfix-tcp: the RFC 7011 test decoder; both vs `ipfix_view.expected`;
- kafka: the topic's JSON messages read back with a plain consumer vs each flow's non-null fields;
- otlp-grpc, otlp-http: the log records the OTLP test receiver decoded (time, attributes) vs the flows
  renamed to their OTel names in Python.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from flowlake.engine import schema, selfmetrics
from flowlake.engine.config import IpfixConfig, KafkaExportConfig, LokiConfig, MetricsConfig, OtlpConfig
from flowlake.engine.query import flags
from flowlake.engine.sinks.base import Sink
from flowlake.engine.sinks.ipfix import IpfixSink
from flowlake.engine.sinks.kafka import KafkaExportSink
from flowlake.engine.sinks.lake import LakeSink
from flowlake.engine.sinks.loki import LokiSink
from flowlake.engine.sinks.memory import MemorySink
from flowlake.engine.sinks.metrics import MetricsSink
from flowlake.engine.store import lake
from tests.kafka import broker as kafka_broker
from tests.kafka.conftest import end_offsets, read_topic
from tests.sinks import goflow2, ipfix_collector, ipfix_view, otlp_receiver, victorialogs


class Harness:
    """A sink's test double of its destination; subclasses override what their sink supports."""

    def make(self) -> Sink:
        raise NotImplementedError

    def read(self) -> pl.DataFrame:
        raise NotImplementedError

    def expected(self, sent: pl.DataFrame) -> pl.DataFrame:
        return sent

    def make_down(self) -> Sink:
        """A sink whose destination is unreachable."""
        raise NotImplementedError(f"{type(self).__name__}: the sink has no destination that can be down")

    def bring_up(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class MemoryHarness(Harness):
    def make(self) -> Sink:
        self.sink = MemorySink()
        return self.sink

    def read(self) -> pl.DataFrame:
        got = self.sink.frame()
        return got if got.width else pl.DataFrame(schema=pl.from_arrow(schema.SCHEMA.empty_table()).schema)  # type: ignore[union-attr]


class LakeHarness(Harness):
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.url = str(tmp / "lake")

    def make(self) -> Sink:
        return LakeSink(self.url, retry_seconds=0.01)

    def read(self) -> pl.DataFrame:
        return lake.scan(self.url).collect()

    def make_down(self) -> Sink:
        (self.tmp / "blocked").write_text("a file where the lake's folder should be")
        self.url = str(self.tmp / "blocked" / "lake")
        return LakeSink(self.url, retry_seconds=0.01)

    def bring_up(self) -> None:
        (self.tmp / "blocked").unlink()


class MetricsHarness(Harness):
    SPEC: ClassVar[dict[str, Any]] = {"metricName": "conformance_bytes_total", "type": "Counter", "valueField": "Bytes",
            "labels": ["SrcAddr", "DstAddr"]}

    def make(self) -> Sink:
        self.registry = CollectorRegistry()
        cfg = MetricsConfig(prefix="conf_", include=[], definitions=[self.SPEC])  # type: ignore[list-item]
        self.sink = MetricsSink(cfg, registry=self.registry)
        return self.sink

    def read(self) -> pl.DataFrame:
        """What the collector renders (through a registry of its own: `close` unregisters it from the sink's)."""
        registry = CollectorRegistry()
        registry.register(self.sink.collector)
        rows = [{"SrcAddr": s.labels["SrcAddr"], "DstAddr": s.labels["DstAddr"], "Bytes": int(s.value)}
                for fam in text_string_to_metric_families(generate_latest(registry).decode())
                for s in fam.samples if s.name == "conf_conformance_bytes_total"]
        return _sorted(pl.DataFrame(rows, schema={"SrcAddr": pl.String, "DstAddr": pl.String, "Bytes": pl.Int64}))

    def expected(self, sent: pl.DataFrame) -> pl.DataFrame:
        return _sorted(sent.group_by("SrcAddr", "DstAddr").agg(pl.col("Bytes").sum().cast(pl.Int64)))

    def close(self) -> None:
        if hasattr(self, "sink"):
            self.sink.close()


class LokiHarness(Harness):
    def __init__(self, server: victorialogs.VictoriaLogs, fmt: str) -> None:
        self.server, self.fmt = server, fmt
        self.tenant = victorialogs.new_tenant()

    def config(self, **kw: Any) -> LokiConfig:
        base: dict[str, Any] = {"url": self.server.push_url, "format": self.fmt, "tenant_id": self.tenant,
                                "min_backoff_seconds": 0.01, "max_backoff_seconds": 0.05}
        return LokiConfig(**{**base, **kw})

    def make(self) -> Sink:
        return LokiSink(self.config())

    def make_down(self) -> Sink:
        return LokiSink(self.config(url=f"http://127.0.0.1:{victorialogs.free_port()}/insert/loki/api/v1/push"))

    def read(self) -> pl.DataFrame:
        got = self.server.query(self.tenant)
        return _loki_frame([(_labels_of(e), victorialogs.time_ns(e["_time"]), e["_msg"]) for e in got])

    def expected(self, sent: pl.DataFrame) -> pl.DataFrame:
        return _loki_frame(expected_entries(sent, LokiConfig()))


# goflow2 leaves its socket buffer at the kernel default (~200 KiB, about 90 datagrams); on two busy cores
# a burst of a few hundred datagrams overflows it, so the tests pace UDP as a deployment would
GOFLOW2_PACE = 1_000.0


class Goflow2Harness(Harness):
    """IPFIX over UDP to goflow2; reads the JSON lines it wrote since the harness was made."""

    def __init__(self, server: goflow2.GoFlow2) -> None:
        self.server = server
        self.mark = server.mark()
        self.sinks: list[IpfixSink] = []
        self.sent_before = selfmetrics.SINK_ROWS.labels(sink="ipfix")._value.get()

    def make(self) -> Sink:
        sink = IpfixSink(IpfixConfig(target_host="127.0.0.1", target_port=self.server.port, transport="udp",
                                     udp_messages_per_second=GOFLOW2_PACE))
        self.sinks.append(sink)
        return sink

    def read(self) -> pl.DataFrame:
        """What goflow2 wrote: as many flows as the sink says it sent (UDP: waiting for them, not for silence)."""
        sent = int(selfmetrics.SINK_ROWS.labels(sink="ipfix")._value.get() - self.sent_before)
        return ipfix_view.sort(ipfix_view.from_goflow2(self.server.lines_since(self.mark, want=sent)))

    def close(self) -> None:
        for sink in self.sinks:  # a failed test leaves its sink open; its socket must not leak into the next
            sink.transport.close()

    def expected(self, sent: pl.DataFrame) -> pl.DataFrame:
        return ipfix_view.sort(ipfix_view.expected(sent))


class IpfixTcpHarness(Harness):
    """IPFIX over TCP to the RFC 7011 test decoder (goflow2 has no TCP listener)."""

    def __init__(self) -> None:
        self.collector = ipfix_collector.Collector("tcp")

    def config(self, port: int) -> IpfixConfig:
        return IpfixConfig(target_host="127.0.0.1", target_port=port, transport="tcp", min_backoff_seconds=0.01,
                           max_backoff_seconds=0.02, timeout_seconds=2)

    def make(self) -> Sink:
        return IpfixSink(self.config(self.collector.port))

    def make_down(self) -> Sink:
        return IpfixSink(self.config(victorialogs.free_port()))

    def read(self) -> pl.DataFrame:
        records = self.collector.settled()  # TCP delivered it; the decoder thread may still be reading
        assert not self.collector.errors, self.collector.errors
        return ipfix_view.sort(ipfix_view.from_records(records))

    def expected(self, sent: pl.DataFrame) -> pl.DataFrame:
        return ipfix_view.sort(ipfix_view.expected(sent))

    def close(self) -> None:
        self.collector.close()


class KafkaHarness(Harness):
    """The Kafka exporter (format json) to a fresh topic of the real broker of tests/kafka/broker.py."""

    def __init__(self, broker: kafka_broker.KafkaBroker) -> None:
        self.broker = broker
        self.topic = broker.create_topic(f"conformance-{victorialogs.new_tenant()}", 2)

    def make(self) -> Sink:
        return KafkaExportSink(KafkaExportConfig(address=self.broker.bootstrap, topic=self.topic))

    def make_down(self) -> Sink:
        # The broker process is paused (SIGSTOP): connections open, nothing is acknowledged, as a hung broker.
        sink = KafkaExportSink(KafkaExportConfig(address=self.broker.bootstrap, topic=self.topic, timeout_seconds=3))
        assert self.broker.proc is not None
        self.broker.proc.send_signal(signal.SIGSTOP)
        self._paused = True
        return sink

    def bring_up(self) -> None:
        if getattr(self, "_paused", False) and self.broker.proc is not None:
            self.broker.proc.send_signal(signal.SIGCONT)
            self._paused = False

    def close(self) -> None:
        self.bring_up()  # never leave the shared broker paused, whatever the test did

    def read(self) -> pl.DataFrame:
        count = sum(end_offsets(self.broker.bootstrap, self.topic).values())
        messages = read_topic(self.broker.bootstrap, self.topic, count) if count else []
        return _json_frame([json.loads(m.value()) for m in messages])

    def expected(self, sent: pl.DataFrame) -> pl.DataFrame:
        return _json_frame([{k: v for k, v in row.items() if v is not None} for row in sent.to_dicts()])


def _json_frame(docs: list[dict[str, Any]]) -> pl.DataFrame:
    frame = pl.DataFrame({"doc": [json.dumps(d, sort_keys=True) for d in docs]}, schema={"doc": pl.String})
    return frame.sort("doc")


class OtlpHarness(Harness):
    """OTLP logs over gRPC or HTTP to the test receiver (metrics off here: test_otlp.py covers them)."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.receiver = otlp_receiver.Receiver(protocol)

    def config(self, port: int) -> OtlpConfig:
        return OtlpConfig(target_host="127.0.0.1", target_port=port, protocol=self.protocol,  # type: ignore[arg-type]
                          metrics=False, timeout_seconds=1.0, max_retries=1, max_records_per_request=700)

    def make(self) -> Sink:
        from flowlake.engine.sinks.otlp import OtlpSink

        return OtlpSink(self.config(self.receiver.port), MetricsConfig())

    def make_down(self) -> Sink:
        from flowlake.engine.sinks.otlp import OtlpSink

        return OtlpSink(self.config(victorialogs.free_port()), MetricsConfig())

    def read(self) -> pl.DataFrame:
        return _otlp_frame([(r["time_ns"], r["attributes"]) for r in self.receiver.logs()])

    def expected(self, sent: pl.DataFrame) -> pl.DataFrame:
        return _otlp_frame(expected_otlp(sent))

    def close(self) -> None:
        self.receiver.close()


def expected_otlp(sent: pl.DataFrame, names: dict[str, str] | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(time ns, attributes) of each flow, computed row by row in Python: the non-null fields under their OTel
    names, Flags as names."""
    from flowlake.engine.sinks.otlp_fields import OTEL_NAMES

    names = OTEL_NAMES if names is None else names
    out = []
    for row in sent.to_dicts():
        attrs = {names.get(k, k): v for k, v in row.items() if v is not None}
        if row["Flags"] is not None:
            attrs[names.get("Flags", "Flags")] = [n for n, bit in flags.TCP_FLAGS.items() if row["Flags"] & bit]
        out.append((row["TimeFlowEndMs"] * 1_000_000, attrs))
    return out


def _otlp_frame(records: list[tuple[int, dict[str, Any]]]) -> pl.DataFrame:
    frame = pl.DataFrame({"time_ns": [t for t, _ in records],
                          "attributes": [json.dumps(a, sort_keys=True) for _, a in records]},
                         schema={"time_ns": pl.Int64, "attributes": pl.String})
    return frame.sort(frame.columns)


def expected_entries(sent: pl.DataFrame, cfg: LokiConfig) -> list[tuple[dict[str, str], int, str]]:
    """(labels, ns, line) of each flow, computed row by row in Python: an oracle independent of the sink."""
    label_names = list(dict.fromkeys(cfg.labels + cfg.extra_labels))
    out = []
    for row in sent.to_dicts():
        labels = {k: str(row[k]) for k in label_names if row.get(k) not in (None, "")}
        labels.update(cfg.static_labels)
        body = {k: v for k, v in row.items() if k not in label_names and v is not None}
        if "Flags" in body:
            body["Flags"] = [n for n, bit in flags.TCP_FLAGS.items() if body["Flags"] & bit]
        out.append((labels, row["TimeFlowEndMs"] * 1_000_000, json.dumps(body)))
    return out


def _labels_of(entry: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in entry.items() if not k.startswith("_")}


def _loki_frame(entries: list[tuple[dict[str, str], int, str]]) -> pl.DataFrame:
    frame = pl.DataFrame({"labels": [json.dumps(lb, sort_keys=True) for lb, _, _ in entries],
                          "ts_ns": [ts for _, ts, _ in entries],
                          "line": [json.dumps(json.loads(line), sort_keys=True) for _, _, line in entries]},
                         schema={"labels": pl.String, "ts_ns": pl.Int64, "line": pl.String})
    return frame.sort(frame.columns)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns)


def sort_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Flow rows in a canonical order (for sinks that do not keep write order)."""
    keys = [c for c, dtype in frame.schema.items() if not dtype.is_nested()]
    return frame.sort(keys, nulls_last=True) if keys and frame.height else frame


def victorialogs_exe() -> Path:
    """The binary, built on demand; FLOWLAKE_VICTORIALOGS points at another one."""
    override = os.environ.get("FLOWLAKE_VICTORIALOGS")
    return Path(override) if override else victorialogs.binary()
