"""The sink conformance suite's fixtures: one harness per entry of `processor.SINKS`, and the receivers.

`harness` is parametrized over the registry with readable ids (`lake`, `loki-json`, `loki-protobuf`,
`memory`, `metrics`, ...). A sink registered without a harness here, and a scenario a sink cannot take
part in, show up as strict xfails with the reason (GAPS), never as silent passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flowlake.engine import schema
from flowlake.engine.processor import SINKS
from flowlake.engine.stages.enrich import EnrichStage
from flowlake.engine.synth import generate, make_cluster
from tests.conftest import BASE_MS, make_batch
from tests.kafka import broker as kafka_broker
from tests.sinks import goflow2, harnesses, victorialogs

VARIANTS: dict[str, list[str]] = {"lake": ["lake"], "memory": ["memory"], "metrics": ["metrics"],
                                  "loki": ["loki-json", "loki-protobuf"], "ipfix": ["ipfix-udp", "ipfix-tcp"],
                                  "otlp": ["otlp-grpc", "otlp-http"], "kafka": ["kafka"]}
# (variant or sink name, test name or "*") -> why the sink cannot pass it; each becomes a strict xfail.
GAPS: dict[tuple[str, str], str] = {
    ("memory", "test_destination_down"): "the memory sink has no destination that can fail",
    ("metrics", "test_destination_down"): "metrics are scraped from memory: no destination that can fail",
    ("ipfix-udp", "test_destination_down"): "UDP has no acknowledgement: a collector that is down is noticed "
                                             "only through ICMP errors on later datagrams (ipfix-tcp covers it)",
}
for _name in SINKS:
    if _name not in VARIANTS:
        GAPS[(_name, "*")] = f"no conformance harness for sink {_name!r}: add one to tests/sinks/harnesses.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        variant = callspec.params.get("harness") if callspec else None
        if variant is None:
            continue
        test = getattr(item, "originalname", item.name)
        reason = GAPS.get((variant, test)) or GAPS.get((variant, "*"))
        if reason:
            item.add_marker(pytest.mark.xfail(strict=True, raises=NotImplementedError, reason=reason))


def _variants() -> list[str]:
    return [v for name in SINKS for v in VARIANTS.get(name, [name])]


class _Tables:
    def __init__(self, table: pl.DataFrame, name: str) -> None:
        self._table, self.cluster_name = table, name

    def table(self) -> pl.DataFrame:
        return self._table


@pytest.fixture(scope="session")
def flows() -> pl.DataFrame:
    """2,000 enriched synthetic flows over two hours, plus rows with awkward values (quotes, UTF-8, lists)."""
    cluster = make_cluster(seed=7)
    synth = generate(cluster, BASE_MS, BASE_MS + 2 * 3_600_000, 2_000, seed=7)
    raw = pl.from_arrow(synth.batch)
    assert isinstance(raw, pl.DataFrame)
    enriched = EnrichStage(_Tables(cluster.metadata_table(), cluster.name)).process(raw)
    odd = pl.from_arrow(make_batch(
        4, start_ms=BASE_MS + 3_600_000, seed=1, DnsName=['quote " and \\ backslash', "żółw.example", None, "a\nb"],
        Interfaces=[["eth0", "br-ex"], None, [], ["ens3"]], Flags=[0, 2, 18, 1023],
        SrcK8S_Namespace=['ns "q"', "ns-ü", None, ""], K8S_FlowLayer=["app", "infra", None, "app"]))
    assert isinstance(odd, pl.DataFrame)
    frame = pl.concat([enriched, odd], how="vertical_relaxed")
    assert frame.height == 2_004 and frame.columns == [f.name for f in schema.FIELDS]
    return frame


@pytest.fixture(scope="session")
def victorialogs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[victorialogs.VictoriaLogs]:
    server = victorialogs.VictoriaLogs(harnesses.victorialogs_exe(), tmp_path_factory.mktemp("victorialogs") / "data")
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kafka_broker.KafkaBroker]:
    """A Kafka broker of its own (tests/kafka's fixture is not visible here); skips without java, the jars or
    the client, fails under FLOWLAKE_REQUIRE_KAFKA=1."""
    broker = kafka_broker.KafkaBroker(tmp_path_factory.mktemp("kafka"))
    try:
        import confluent_kafka  # noqa: F401

        broker.start()
    except (ImportError, kafka_broker.BrokerUnavailable) as exc:
        if os.environ.get("FLOWLAKE_REQUIRE_KAFKA") == "1":
            pytest.fail(f"no Kafka broker: {exc} (FLOWLAKE_REQUIRE_KAFKA=1 makes this a failure)", pytrace=False)
        pytest.skip(f"no Kafka broker: {exc}")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def goflow2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[goflow2.GoFlow2]:
    """goflow2 on loopback; skips without it, fails under FLOWLAKE_REQUIRE_GOFLOW2=1."""
    try:
        server = goflow2.GoFlow2(goflow2.binary(), tmp_path_factory.mktemp("goflow2")).start()
    except goflow2.Unavailable as exc:
        if goflow2.REQUIRE:
            pytest.fail(f"{exc} (FLOWLAKE_REQUIRE_GOFLOW2=1 makes this a failure)", pytrace=False)
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(params=_variants())
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[harnesses.Harness]:
    variant: str = request.param
    h: harnesses.Harness
    if variant == "lake":
        h = harnesses.LakeHarness(tmp_path)
    elif variant == "memory":
        h = harnesses.MemoryHarness()
    elif variant == "metrics":
        h = harnesses.MetricsHarness()
    elif variant.startswith("loki-"):
        h = harnesses.LokiHarness(request.getfixturevalue("victorialogs_server"), variant.removeprefix("loki-"))
    elif variant == "ipfix-udp":
        h = harnesses.Goflow2Harness(request.getfixturevalue("goflow2_server"))
    elif variant == "ipfix-tcp":
        h = harnesses.IpfixTcpHarness()
    elif variant == "kafka":
        h = harnesses.KafkaHarness(request.getfixturevalue("kafka_server"))
    elif variant.startswith("otlp-"):
        h = harnesses.OtlpHarness(variant.removeprefix("otlp-"))
    else:
        h = harnesses.Harness()  # every scenario raises NotImplementedError: a strict xfail from GAPS
    yield h
    h.close()


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """moto's S3 in server mode on loopback (its own process); yields the s3fs storage options to reach it."""
    port = victorialogs.free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen([sys.executable, "-P", "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto server did not start; see {log}") from None
            time.sleep(0.1)
    yield {"endpoint_url": endpoint, "key": "flowlake-test", "secret": "flowlake-test",
           "client_kwargs": {"region_name": "eu-west-1"}}
    proc.kill()
    proc.wait(10)
