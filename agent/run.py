"""The agent: loads the kernel program, follows interfaces, drains maps into Arrow batches, exports.

Driven by `flowlake agent` (agent/cli.py) and by tests. One drain every `cache_active_timeout`
turns every map into aligned numpy arrays and one RecordBatch (agent/records.py); an exporter
thread sends batches so a slow processor never delays the drain (a full queue drops the oldest
batch and counts it).
"""

from __future__ import annotations

import concurrent.futures
import ctypes as ct
import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from flowlake.agent import attach, btf, drain, drops, filters, interfaces, merge, metrics, program, records
from flowlake.agent.export import open_exporter

log = logging.getLogger("flowlake.agent")

FEATURES = ("PacketDrop", "DNSTracking", "FlowRTT")
DRAIN_CHUNK = 65_536  # flows per chunk read from the kernel; one RecordBatch each
DRAIN_READERS = 2  # threads reading disjoint bucket ranges of the flow map (the syscall runs without the GIL)
KERNEL_COUNTERS = ("ringbuf_fallback", "ringbuf_lost", "filter_reject", "filter_accept", "ifaces_missed",
                   "dns_no_request", "drop_unparsed")


@dataclass
class AgentConfig:
    """Everything `flowlake agent` is told (flags or FLOWLAKE_* environment)."""

    target: str = "grpc://127.0.0.1:2055"
    interfaces: list[str] = field(default_factory=list)
    exclude_interfaces: list[str] = field(default_factory=lambda: ["lo"])
    cache_active_timeout: float = 5.0
    cache_max_flows: int = 5000
    sampling: int = 1
    features: tuple[str, ...] = ()
    filter_rules: str = ""
    dns_port: int = 53
    agent_ip: str = ""
    export_queue: int = 16


def detect_agent_ip() -> str:
    """The address this host uses towards the outside (no packet is sent), else loopback."""
    for family, probe in ((socket.AF_INET, ("192.0.2.1", 9)), (socket.AF_INET6, ("2001:db8::1", 9))):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect(probe)
                return str(s.getsockname()[0])
        except OSError:
            continue
    return "127.0.0.1"


class Agent:
    """One agent on one host (network namespace); `start`, then `run` until stopped, then `close`."""

    def __init__(self, cfg: AgentConfig) -> None:
        unknown = set(cfg.features) - set(FEATURES)
        if unknown:
            from flowlake.engine.errors import ConfigError

            raise ConfigError(f"unknown feature(s) {sorted(unknown)}; valid: {', '.join(FEATURES)}")
        self.cfg = cfg
        self.agent_ip = cfg.agent_ip or detect_agent_ip()
        self.selector = interfaces.Selector(cfg.interfaces, cfg.exclude_interfaces)
        self.rules = filters.parse(cfg.filter_rules) if cfg.filter_rules else []
        self.reason_names: dict[int, str] = {}
        offsets: dict[str, int] = {}
        if "PacketDrop" in cfg.features:
            fmt = drops.format_text()
            offsets = {**btf.kernel_offsets(), **drops.record_offsets(fmt)}
            self.reason_names = drops.reason_names(fmt)
        self.program = program.ProgramConfig(
            sampling=cfg.sampling, cache_max_flows=cfg.cache_max_flows, dns="DNSTracking" in cfg.features,
            dns_port=cfg.dns_port, rtt="FlowRTT" in cfg.features, drops="PacketDrop" in cfg.features,
            filters=bool(self.rules), offsets=offsets)
        self._events: list[bytes] = []
        self._events_lock = threading.Lock()
        self._consume_asked, self._consume_done = threading.Event(), threading.Event()
        self._attach_lock = threading.Lock()  # the link watcher and the initial enumeration race
        self.watcher: interfaces.Watcher | None = None
        self.attacher: attach.Attacher | None = None
        self._export_thread: threading.Thread | None = None
        self._ring_thread: threading.Thread | None = None
        # ifindex -> name, kept from link events: names are resolved in the agent's own network
        # namespace, whatever thread (or namespace) later calls drain().
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()  # one drain at a time (timer vs final drain on stop)
        self._queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=cfg.export_queue)
        # Sized in batches of up to DRAIN_CHUNK flows: a whole drain of a full map fits.
        self._stop = threading.Event()
        # Chunks convert in parallel with each other and with the kernel reads (Arrow and numpy
        # kernels release the GIL); two workers match the two cores this is sized for.
        self._convert = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="flowlake-conv")
        self.bpf: Any = None
        self._collector: metrics.KernelCollector | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Compile, load, attach to every selected interface, start the watcher and the exporter."""
        bcc, self.bpf = program.load(self.program)
        fn_in = self.bpf.load_func(b"flowlake_tc_ingress", bcc.BPF.SCHED_CLS)
        fn_out = self.bpf.load_func(b"flowlake_tc_egress", bcc.BPF.SCHED_CLS)
        self._prog_fds = {"tc_ingress": fn_in.fd, "tc_egress": fn_out.fd}
        if self.program.drops:
            self.bpf.attach_tracepoint(tp=b"skb:kfree_skb", fn_name=b"flowlake_kfree_skb")
            self._prog_fds["kfree_skb"] = self.bpf.funcs[b"flowlake_kfree_skb"].fd
        if self.rules:
            table = self.bpf[b"filter_rules"]
            for e in self.rules:
                table[table.Key.from_buffer_copy(e.key)] = table.Leaf.from_buffer_copy(e.rule)
        self.bpf[b"flow_events"].open_ring_buffer(self._on_event)
        self._ring_thread = threading.Thread(target=self._poll_ring, name="flowlake-ringbuf", daemon=True)
        self._ring_thread.start()
        max_flows = self.cfg.cache_max_flows
        self._drainers = {"flows": self._drainer(b"flows", records.KEY, records.STATS, max_flows)}
        if self.program.dns:
            self._drainers["dns"] = self._drainer(b"dns_flows", records.KEY, records.DNS, max_flows)
        if self.program.rtt:
            self._drainers["rtt"] = self._drainer(b"rtt_flows", records.KEY, np.dtype("<u8"), max_flows)
        if self.program.drops:
            self._drainers["drops"] = self._drainer(b"drop_flows", records.KEY, records.DROP, max_flows)
        self.attacher = attach.Attacher(fn_in.fd, fn_out.fd)
        self.watcher = interfaces.Watcher(self._link_added, self._link_removed, self._resync_links)
        self.watcher.start()
        for ifindex, name in interfaces.current_links():
            self._link_added(ifindex, name)
        self.exporter = open_exporter(self.cfg.target)
        self._export_thread = threading.Thread(target=self._export_loop, name="flowlake-export", daemon=True)
        self._export_thread.start()
        metrics.SAMPLING.set(self.cfg.sampling)
        collector = metrics.KernelCollector(self.kernel_counters, self.prog_stats)
        metrics.REGISTRY.register(collector)
        self._collector = collector
        log.info("agent: capturing on %d interface(s) as %s, sampling 1:%d, features %s, sending to %s",
                 len(self.attacher.attached), self.agent_ip, self.cfg.sampling,
                 ", ".join(self.cfg.features) or "none", self.cfg.target)

    def _drainer(self, name: bytes, kd: np.dtype, vd: np.dtype, n: int) -> drain.MapDrainer:
        return drain.MapDrainer(name.decode(), self.bpf[name].get_fd(), kd, vd, n)

    def run(self) -> None:
        """Drain and export every cache-active-timeout until `stop()`."""
        while not self._stop.wait(self.cfg.cache_active_timeout):
            try:
                self.drain_and_enqueue()
            except Exception:  # keep capturing: the next drain may well succeed
                metrics.DRAIN_ERRORS.inc()
                log.exception("agent: drain failed; retrying at the next interval")

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Final drain, flush the exporter, detach everything the agent attached.

        Safe after a partial start: whatever was set up is taken down.
        """
        self._stop.set()
        if self.watcher is not None:
            self.watcher.stop()
        if self.attacher is not None:
            self.attacher.detach_all()
        metrics.ATTACHED.set(0)
        if self.bpf is not None and hasattr(self, "_drainers"):
            try:
                self.drain_and_enqueue()
            except Exception:
                log.exception("agent: the final drain failed")
        if self._ring_thread is not None:
            self._ring_thread.join(timeout=2)
        if self._export_thread is not None:
            while True:  # the end marker must get in even when the queue is full
                try:
                    self._queue.put(None, timeout=1)
                    break
                except queue.Full:
                    continue
            self._export_thread.join(timeout=30)
            self.exporter.close()
        if self._collector is not None:
            metrics.REGISTRY.unregister(self._collector)
        self._convert.shutdown()
        if self.bpf is not None:
            self.bpf.cleanup()
        log.info("agent: stopped; filters and qdiscs removed")

    # -- interfaces ------------------------------------------------------------------------------
    def _link_added(self, ifindex: int, name: str) -> None:
        assert self.attacher is not None
        with self._attach_lock:
            self._names[ifindex] = name
            if ifindex in self.attacher.attached or not self.selector.wants(name):
                return
            try:
                self.attacher.attach(ifindex, name)
                metrics.IFACE_EVENTS.labels(event="added").inc()
            except Exception as exc:  # a bad interface is logged and counted, never fatal
                metrics.ATTACH_ERRORS.labels(interface=name).inc()
                log.warning("agent: cannot attach to %s: %s", name, exc)
            metrics.ATTACHED.set(len(self.attacher.attached))

    def _resync_links(self) -> None:
        """After lost netlink events (ENOBUFS): attach what appeared, forget what vanished."""
        assert self.attacher is not None
        links = dict(interfaces.current_links())
        for ifindex in [i for i in self.attacher.attached if i not in links]:
            self._link_removed(ifindex, self.attacher.attached[ifindex].name)
        for ifindex, name in links.items():
            self._link_added(ifindex, name)

    def _link_removed(self, ifindex: int, name: str) -> None:
        assert self.attacher is not None
        with self._attach_lock:
            if ifindex in self.attacher.attached:
                self.attacher.forget(ifindex)
                metrics.IFACE_EVENTS.labels(event="removed").inc()
                metrics.ATTACHED.set(len(self.attacher.attached))

    # -- draining --------------------------------------------------------------------------------
    def _on_event(self, _ctx: Any, data: Any, size: int) -> None:
        # Map-full fallback only: one callback per packet is bcc's ring-buffer API; kept as raw bytes.
        with self._events_lock:
            self._events.append(ct.string_at(data, size))

    def _poll_ring(self) -> None:
        """Read the fallback ring buffer continuously, so a burst never waits for the next drain.

        A drain asks for one last non-blocking pass (only this thread touches the ring: bcc's ring
        buffer is not safe to read from two threads), so nothing submitted before it is left behind.
        """
        while not self._stop.is_set():
            self.bpf.ring_buffer_poll(50)
            if self._consume_asked.is_set():
                self.bpf.ring_buffer_consume()
                self._consume_asked.clear()
                self._consume_done.set()

    def _catch_up_ring(self) -> None:
        if self._ring_thread is None or not self._ring_thread.is_alive():
            return
        self._consume_done.clear()
        self._consume_asked.set()
        self._consume_done.wait(2.0)

    def drain(self) -> list[pa.RecordBatch]:
        """Empty every map into RecordBatches of the flow schema (none when nothing was seen).

        The flow map is read in chunks by a helper thread while this one converts the previous
        chunk (the syscall runs without the GIL), so reading and converting overlap.
        """
        with self._lock, metrics.DRAIN_SECONDS.time():
            mono_to_wall = time.time_ns() - time.monotonic_ns()
            self._catch_up_ring()
            with self._events_lock:
                raw, self._events = self._events, []
            events = np.frombuffer(b"".join(raw), records.EVENT) if raw else np.zeros(0, records.EVENT)
            feats = {name: d.drain() for name, d in self._drainers.items() if name != "flows"}
            index = {name: merge.Index(*kv) for name, kv in feats.items()}
            chunks: queue.Queue[tuple[np.ndarray, np.ndarray] | None] = queue.Queue(maxsize=4)

            failure: list[BaseException] = []

            def produce(start: int, stop: int) -> None:
                try:
                    for chunk in self._drainers["flows"].chunks(DRAIN_CHUNK, start, stop):
                        chunks.put(chunk)
                except BaseException as exc:  # handed to the draining thread, raised there
                    failure.append(exc)
                finally:
                    chunks.put(None)

            # The kernel's lookup-and-delete is the costliest part: readers walk halves of the map at once.
            readers = [threading.Thread(target=produce, args=r, name="flowlake-drain", daemon=True)
                       for r in self._drainers["flows"].ranges(DRAIN_READERS)]
            for reader in readers:
                reader.start()
            futures, seen = [], []
            running = len(readers)
            while running:
                if (chunk := chunks.get()) is None:
                    running -= 1
                    continue
                keys, stats = chunk
                seen.append(keys)
                futures.append(self._convert.submit(self._batch, keys, stats, index, mono_to_wall))
            for reader in readers:
                reader.join()
            batches = [f.result() for f in futures]
            if failure:
                raise failure[0]
            in_map = sum(len(k) for k in seen)
            metrics.EVICTIONS.inc()
            metrics.MAP_FILL.set(in_map / self.cfg.cache_max_flows)
            metrics.EVICTED_FLOWS.labels(source="map").inc(in_map)
            metrics.EVICTED_FLOWS.labels(source="ringbuf").inc(len(events))
            if len(events):  # flows that did not fit the full map (a flow whose entry was created once
                # the drain freed room may also have a map row: two rows whose sums stay right)
                ekeys, estats = merge.fold_events(events)
                seen.append(ekeys)
                batches.append(self._batch(ekeys, estats, index, mono_to_wall))
            all_seen = np.concatenate(seen) if seen else np.zeros(0, records.KEY)
            only = merge.missing_keys(all_seen, *(k for k, _ in feats.values()))
            if len(only):  # flows seen only by a feature map (e.g. dropped before reaching TC)
                stats = np.zeros(len(only), records.STATS)
                now_mono = time.monotonic_ns()
                stats["first_ns"], stats["last_ns"], stats["sampling"] = now_mono, now_mono, self.cfg.sampling
                stats["eth_proto"] = np.where(merge.is_v4(only), 0x0800, 0x86DD)
                batches.append(self._batch(only, stats, index, mono_to_wall))
            return [b for b in batches if b.num_rows]

    def _batch(self, keys: np.ndarray, stats: np.ndarray, index: dict[str, merge.Index],
               mono_to_wall: int) -> pa.RecordBatch:
        metrics.EVICTED_PACKETS.inc(int(stats["packets"].sum()))
        aligned: dict[str, Any] = {}
        if "dns" in index:
            aligned["dns"] = index["dns"].get(keys)  # (records, found): id 0 and flags 0 are valid
        if "rtt" in index:
            # Path RTT whichever side of the conversation this node is on (see bpf/rtt.h).
            aligned["rtt_ns"] = np.maximum(index["rtt"].get(keys)[0], index["rtt"].get(merge.reverse(keys))[0])
        if "drops" in index:
            aligned["drops"] = index["drops"].get(keys)[0]
        return records.to_batch(keys, stats, agent_ip=self.agent_ip, mono_to_wall_ns=mono_to_wall,
                                ifname=lambda i: self._names.get(i, str(i)), drop_reasons=self.reason_names,
                                **aligned)

    def drain_and_enqueue(self) -> None:
        for batch in self.drain():
            try:
                self._queue.put_nowait(batch)
            except queue.Full:
                oldest = self._queue.get_nowait()
                if oldest is not None:
                    metrics.DROPPED_FLOWS.labels(reason="backpressure").inc(oldest.num_rows)
                    log.warning("agent: export queue full; dropped %d oldest flows", oldest.num_rows)
                self._queue.put_nowait(batch)

    def _export_loop(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            try:
                self.exporter.send([batch])
                metrics.EXPORTED_BATCHES.labels(exporter=self.exporter.kind).inc()
                metrics.EXPORTED_FLOWS.labels(exporter=self.exporter.kind).inc(batch.num_rows)
            except Exception as exc:  # the processor is down or refused: count, log, keep capturing
                metrics.DROPPED_FLOWS.labels(reason="export").inc(batch.num_rows)
                log.warning("agent: could not export %d flows to %s: %s", batch.num_rows, self.cfg.target, exc)

    # -- scrape-time readings ----------------------------------------------------------------------
    def kernel_counters(self) -> dict[str, int]:
        table = self.bpf[b"global_counters"]
        return {name: int(table.sum(table.Key(i)).value) for i, name in enumerate(KERNEL_COUNTERS)}

    def prog_stats(self) -> dict[str, tuple[int, int]]:
        """(run_time_ns, run_cnt) per program from /proc fdinfo (non-zero when bpf stats are on)."""
        out = {}
        for name, fd in self._prog_fds.items():
            lines = Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines()
            info = dict(line.split(":", 1) for line in lines if ":" in line)
            out[name] = (int(info.get("run_time_ns", "0")), int(info.get("run_cnt", "0")))
        return out
