"""End to end with a real Prometheus: synth -> Arrow Flight -> `flowlake processor` (metrics sink) <- scrape.

The processor and Prometheus 2.42 (Debian's /usr/bin/prometheus, 1 s scrape interval) run as separate
processes on loopback. Two batches are sent with scrapes in between; PromQL answers (`sum by`,
`increase`/`rate` between two scrapes, histogram buckets and `histogram_quantile`) must equal what
Polars computes from the generated flows, enriched from the same metadata file.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
import yaml

from flowlake.engine import transport
from flowlake.engine.metadata import static
from flowlake.engine.metrics import predefined
from flowlake.engine.stages.enrich import EnrichStage
from flowlake.engine.synth import SynthFlows, generate, make_cluster
from tests.procs import flowlake, free_port, wait_port

pytestmark = pytest.mark.slow

PROMETHEUS = "/usr/bin/prometheus"
START_MS = int(datetime(2026, 11, 26, 6, tzinfo=UTC).timestamp() * 1000)
HOUR_MS = 3_600_000
N_FLOWS = 20_000
LE = [float(b) for b in predefined.LATENCY_BUCKETS]
CUSTOM = {"metricName": "interface_bytes_total", "type": "Counter", "valueField": "Bytes", "direction": "Egress",
          "labels": ["Interfaces"], "flatten": ["Interfaces"], "remap": {"Interfaces": "interface"}}


class Prom:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]["result"]  # type: ignore[no-any-return]

    def by(self, promql: str, label: str, at: float) -> dict[str, float]:
        """An instant vector keyed by one label ("" when absent, as for an empty label)."""
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(promql, at)}

    def scalar(self, promql: str, at: float | None = None) -> float | None:
        result = self.query(promql, at)
        return float(result[0]["value"][1]) if result else None


def truth_by(frame: pl.DataFrame, label: str, value: pl.Expr) -> dict[str, float]:
    out = frame.group_by(pl.col(label).fill_null("")).agg(value.sum().cast(pl.Float64).alias("v"))
    return dict(zip(out[label].to_list(), out["v"].to_list(), strict=True))


def wait_for(what: str, probe: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def send(port: int, flows: SynthFlows) -> None:
    sender = transport.open_sender(f"grpc://127.0.0.1:{port}")
    sender.send(list(flows.batches(max_rows=5_000)))
    sender.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if shutil.which(PROMETHEUS) is None:
        pytest.skip("Prometheus is not installed: apt-get install prometheus (`make install` does)")
    tmp = tmp_path_factory.mktemp("prom")
    cluster = make_cluster(seed=11)
    metadata = tmp / "metadata.json"
    static.dump(str(metadata), cluster.metadata_table(), cluster.name)
    first = generate(cluster, START_MS, START_MS + HOUR_MS, N_FLOWS, seed=11)
    second = generate(cluster, START_MS + HOUR_MS, START_MS + 2 * HOUR_MS, N_FLOWS, seed=12)
    enrich = EnrichStage(static.StaticMetadata(metadata))
    truth = [enrich.process(pl.from_arrow(f.batch)) for f in (first, second)]  # type: ignore[arg-type]
    flight, metrics, web = free_port(), free_port(), free_port()
    cfg = tmp / "processor.yaml"
    cfg.write_text(yaml.safe_dump({
        "listen": f"grpc://127.0.0.1:{flight}", "metrics_address": f"127.0.0.1:{metrics}", "metadata": str(metadata),
        "sinks": ["metrics"], "flush_seconds": 1,
        "metrics": {"additional_include": ["workload_flows_total"], "definitions": [CUSTOM]}}))
    (tmp / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{"job_name": "flowlake", "static_configs": [{"targets": [f"127.0.0.1:{metrics}"]}]}]}))
    processor = flowlake("processor", "--config", str(cfg))
    prometheus = subprocess.Popen([PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{web}",
                                   "--log.level=warn"], stderr=subprocess.DEVNULL)
    try:
        wait_port(flight, processor)
        wait_port(web, prometheus)
        prom = Prom(f"http://127.0.0.1:{web}")
        total = "sum(netobserv_namespace_flows_total)"  # no filter: every reported flow
        send(flight, first)
        wait_for("the first batch in Prometheus", lambda: prom.scalar(total) == N_FLOWS)
        time.sleep(2.5)  # a few more scrapes of the first batch alone
        send(flight, second)
        wait_for("the second batch in Prometheus", lambda: prom.scalar(total) == 2 * N_FLOWS)
        time.sleep(1.5)
        scrapes = [float(t) for t, _ in prom.query('up{job="flowlake"}[5m]')[0]["values"]]
        totals = [prom.scalar(total, t) for t in scrapes]
        s1 = max(t for t, v in zip(scrapes, totals, strict=True) if v == N_FLOWS)
        s2 = min(t for t, v in zip(scrapes, totals, strict=True) if v == 2 * N_FLOWS)
        yield {"prom": prom, "first": truth[0], "second": truth[1], "all": pl.concat(truth), "s1": s1, "s2": s2}
    finally:
        stop(prometheus)
        stop(processor)


def test_sum_by_namespace_equals_the_flows(run: dict[str, Any]) -> None:
    prom, flows = run["prom"], run["all"]
    got = prom.by("sum by (SrcK8S_Namespace) (netobserv_namespace_flows_total)", "SrcK8S_Namespace", run["s2"])
    assert got == truth_by(flows, "SrcK8S_Namespace", pl.len())
    assert len(got) > 5


def test_workload_egress_bytes_per_destination_namespace(run: dict[str, Any]) -> None:
    egress = run["all"].filter(pl.col("FlowDirection").is_in([1, 2]))
    got = run["prom"].by("sum by (DstK8S_Namespace) (netobserv_workload_egress_bytes_total)", "DstK8S_Namespace",
                         run["s2"])
    assert got == truth_by(egress, "DstK8S_Namespace", pl.col("Bytes"))


def test_node_ingress_bytes_keep_inner_flows(run: dict[str, Any]) -> None:
    flows = run["all"]
    ingress = flows.filter(pl.col("FlowDirection").is_in([0, 2]))
    got = run["prom"].by("sum by (DstK8S_HostName) (netobserv_node_ingress_bytes_total)", "DstK8S_HostName",
                         run["s2"])
    assert got == truth_by(ingress, "DstK8S_HostName", pl.col("Bytes"))
    assert flows.filter(pl.col("FlowDirection") == 2).height > 0  # inner flows were there to count


def test_drops_by_cause_and_node_to_node_flows(run: dict[str, Any]) -> None:
    prom, flows, at = run["prom"], run["all"], run["s2"]
    drops = flows.filter(pl.col("PktDropPackets").is_not_null())
    got = prom.by("sum by (PktDropLatestDropCause) (netobserv_namespace_drop_packets_total)",
                  "PktDropLatestDropCause", at)
    assert got == truth_by(drops, "PktDropLatestDropCause", pl.col("PktDropPackets")) and len(got) > 1
    n2n = flows.filter((pl.col("FlowDirection") != 2) & pl.col("SrcK8S_HostName").is_not_null()
                       & pl.col("DstK8S_HostName").is_not_null())
    assert prom.scalar("sum(netobserv_node_to_node_ingress_flows_total)", at) == n2n.height


def test_custom_definition_flattens_interfaces(run: dict[str, Any]) -> None:
    egress = run["all"].filter(pl.col("FlowDirection").is_in([1, 2])).explode("Interfaces")
    got = run["prom"].by("sum by (interface) (netobserv_interface_bytes_total)", "interface", run["s2"])
    assert got == truth_by(egress, "Interfaces", pl.col("Bytes"))
    assert {"genev_sys_6081", "ens5"} <= set(got)


def test_increase_and_rate_between_two_scrapes_equal_the_second_batch(run: dict[str, Any]) -> None:
    """Range [s1, s2] has its samples on both ends, so Prometheus does not extrapolate: exact."""
    prom, s1, s2 = run["prom"], run["s1"], run["s2"]
    window = f"{round((s2 - s1) * 1000)}ms"
    labels = predefined.GROUP_LABELS["namespace"]
    key = [pl.col(c).fill_null("") for c in labels]
    seen = run["first"].select(key).unique()  # series that existed at s1 (new ones have no increase)
    second = run["second"].with_columns(key).join(seen, on=labels, how="semi")
    expected = truth_by(second, "SrcK8S_Namespace", pl.len())
    # Only series that existed at s1: a series born between s1 and s2 gets an extrapolated increase.
    existed = f"netobserv_namespace_flows_total @ {s1:.3f}"
    got = prom.by(f"sum by (SrcK8S_Namespace) (increase(netobserv_namespace_flows_total[{window}]) and {existed})",
                  "SrcK8S_Namespace", s2)
    assert got == pytest.approx(expected, rel=1e-12) and sum(expected.values()) > N_FLOWS / 2
    rate = prom.by(f"sum by (SrcK8S_Namespace) (rate(netobserv_namespace_flows_total[{window}]) and {existed})",
                   "SrcK8S_Namespace", s2)
    # Scrape times are ~1.8e9 s as doubles (0.2 us apart at best): s2 - s1 carries ~1e-7 relative error.
    assert rate == pytest.approx({k: v / (s2 - s1) for k, v in expected.items()}, rel=1e-6)


def prometheus_quantile(q: float, bounds: list[float], cumulative: list[float]) -> float:
    """histogram_quantile's interpolation (promql/quantile.go) over cumulative counts, +Inf last."""
    rank = q * cumulative[-1]
    i = next(k for k, c in enumerate(cumulative) if c >= rank)
    if i == len(bounds):
        return bounds[-1]
    lower, below = (0.0, 0.0) if i == 0 else (bounds[i - 1], cumulative[i - 1])
    return lower + (bounds[i] - lower) * (rank - below) / (cumulative[i] - below)


def test_rtt_histogram_buckets_and_quantile(run: dict[str, Any]) -> None:
    prom, at = run["prom"], run["s2"]
    seconds = run["all"].filter(pl.col("TimeFlowRttNs").is_not_null())["TimeFlowRttNs"].cast(pl.Float64) / 1e9
    expected = [float((seconds <= b).sum()) for b in LE] + [float(seconds.len())]
    got = prom.by("sum by (le) (netobserv_namespace_rtt_seconds_bucket)", "le", at)
    assert [got[str(b)] for b in LE] + [got["+Inf"]] == expected
    assert prom.scalar("sum(netobserv_namespace_rtt_seconds_count)", at) == seconds.len()
    assert prom.scalar("sum(netobserv_namespace_rtt_seconds_sum)", at) == pytest.approx(seconds.sum(), rel=1e-9)
    for q in (0.5, 0.9, 0.99):
        quantile = prom.scalar(f"histogram_quantile({q}, sum by (le) (netobserv_namespace_rtt_seconds_bucket))", at)
        assert quantile == pytest.approx(prometheus_quantile(q, LE, expected), rel=1e-9)
        raw = seconds.quantile(q, "higher")
        assert raw is not None and quantile is not None
        bucket = next(i for i, b in enumerate([*LE, float("inf")]) if raw <= b)  # the same bucket as the flows
        assert (LE[bucket - 1] if bucket else 0.0) <= quantile <= [*LE, LE[-1]][bucket]


def test_dns_latency_histogram_per_response_code(run: dict[str, Any]) -> None:
    dns = run["all"].filter(pl.col("DnsId").is_not_null() & pl.col("DnsLatencyMs").is_not_null())
    seconds = dns.with_columns((pl.col("DnsLatencyMs").cast(pl.Float64) / 1000).alias("s"))
    got = run["prom"].query("sum by (le, DnsFlagsResponseCode) (netobserv_namespace_dns_latency_seconds_bucket)",
                            run["s2"])
    observed = {(r["metric"]["DnsFlagsResponseCode"], r["metric"]["le"]): float(r["value"][1]) for r in got}
    expected = {}
    for code, part in seconds.group_by("DnsFlagsResponseCode"):
        for b in LE:
            expected[(code[0], str(b))] = float((part["s"] <= b).sum())
        expected[(code[0], "+Inf")] = float(part.height)
    assert observed == expected and len({c for c, _ in expected}) > 1
