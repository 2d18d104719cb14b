"""Agent self-metrics, one table; served on the agent's /metrics and listed in docs/metrics.md.

Updated by `agent.run` once per drain (whole-batch counts, never per flow). Kernel-side counters
(the per-CPU `global_counters` map) and bpf program stats are read at scrape time by a Collector.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

# name, kind, labels, help — rendered into docs/metrics.md by `flowlake docs`
TABLE: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("flowlake_agent_evictions_total", "counter", (), "map drains (every cache-active-timeout)"),
    ("flowlake_agent_evicted_flows_total", "counter", ("source",),
     "flows drained (source: map, ringbuf = map-full fallback)"),
    ("flowlake_agent_evicted_packets_total", "counter", (), "packets in the drained flows"),
    ("flowlake_agent_exported_batches_total", "counter", ("exporter",), "batches sent"),
    ("flowlake_agent_exported_flows_total", "counter", ("exporter",), "flows sent"),
    ("flowlake_agent_dropped_flows_total", "counter", ("reason",),
     "flows not exported (reason: backpressure = queue full, export = send failed)"),
    ("flowlake_agent_map_fill_ratio", "gauge", (), "flow map entries at the last drain / cache-max-flows"),
    ("flowlake_agent_drain_seconds", "histogram", (), "time to drain the maps and build the batch"),
    ("flowlake_agent_drain_errors_total", "counter", (), "drains that failed (the agent keeps running)"),
    ("flowlake_agent_attached_interfaces", "gauge", (), "interfaces with the TC programs attached"),
    ("flowlake_agent_attach_errors_total", "counter", ("interface",), "interfaces the agent failed to attach"),
    ("flowlake_agent_interface_events_total", "counter", ("event",), "links added / removed while running"),
    ("flowlake_agent_kernel_counter_total", "counter", ("counter",),
     "kernel-side counters: ringbuf_fallback, ringbuf_lost, filter_reject, filter_accept, ifaces_missed, "
     "dns_no_request, drop_unparsed"),
    ("flowlake_agent_bpf_run_seconds_total", "counter", ("program",),
     "kernel time spent in each program (bpf stats; needs kernel.bpf_stats_enabled=1)"),
    ("flowlake_agent_bpf_runs_total", "counter", ("program",), "runs of each program (bpf stats)"),
    ("flowlake_agent_sampling_rate", "gauge", (), "the global 1:N sampling rate"),
)

_KINDS = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}
_SCRAPED = {"flowlake_agent_kernel_counter_total", "flowlake_agent_bpf_run_seconds_total",
            "flowlake_agent_bpf_runs_total"}
_M = {name: _KINDS[kind](name.removesuffix("_total") if kind == "counter" else name, doc, labels,
                         registry=REGISTRY)
      for name, kind, labels, doc in TABLE if name not in _SCRAPED}

EVICTIONS: Counter = _M["flowlake_agent_evictions_total"]  # type: ignore[assignment]
EVICTED_FLOWS: Counter = _M["flowlake_agent_evicted_flows_total"]  # type: ignore[assignment]
EVICTED_PACKETS: Counter = _M["flowlake_agent_evicted_packets_total"]  # type: ignore[assignment]
EXPORTED_BATCHES: Counter = _M["flowlake_agent_exported_batches_total"]  # type: ignore[assignment]
EXPORTED_FLOWS: Counter = _M["flowlake_agent_exported_flows_total"]  # type: ignore[assignment]
DROPPED_FLOWS: Counter = _M["flowlake_agent_dropped_flows_total"]  # type: ignore[assignment]
MAP_FILL: Gauge = _M["flowlake_agent_map_fill_ratio"]  # type: ignore[assignment]
DRAIN_SECONDS: Histogram = _M["flowlake_agent_drain_seconds"]  # type: ignore[assignment]
DRAIN_ERRORS: Counter = _M["flowlake_agent_drain_errors_total"]  # type: ignore[assignment]
ATTACHED: Gauge = _M["flowlake_agent_attached_interfaces"]  # type: ignore[assignment]
ATTACH_ERRORS: Counter = _M["flowlake_agent_attach_errors_total"]  # type: ignore[assignment]
IFACE_EVENTS: Counter = _M["flowlake_agent_interface_events_total"]  # type: ignore[assignment]
SAMPLING: Gauge = _M["flowlake_agent_sampling_rate"]  # type: ignore[assignment]


class KernelCollector(Collector):
    """Renders kernel counters and bpf program stats at scrape time from callables the agent provides."""

    def __init__(self, counters: Callable[[], dict[str, int]],
                 prog_stats: Callable[[], dict[str, tuple[int, int]]]) -> None:
        self._counters, self._prog_stats = counters, prog_stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        fam = CounterMetricFamily("flowlake_agent_kernel_counter", "kernel-side counters", labels=["counter"])
        for name, value in self._counters().items():
            fam.add_metric([name], value)
        yield fam
        run_time = CounterMetricFamily("flowlake_agent_bpf_run_seconds", "kernel time in each program",
                                       labels=["program"])
        runs = CounterMetricFamily("flowlake_agent_bpf_runs", "runs of each program", labels=["program"])
        for prog, (ns, count) in self._prog_stats().items():
            run_time.add_metric([prog], ns / 1e9)
            runs.add_metric([prog], count)
        yield run_time
        yield runs


def render_markdown() -> str:
    """The agent section of docs/metrics.md."""
    lines = ["", "## Agent (`flowlake agent`, its own `/metrics`)", "",
             "| Metric | Type | Labels | Meaning |", "|---|---|---|---|"]
    lines += [f"| `{n}` | {k} | {', '.join(labels) or '-'} | {doc} |" for n, k, labels, doc in TABLE]
    return "\n".join(lines) + "\n"
