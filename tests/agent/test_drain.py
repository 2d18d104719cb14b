"""The flow map drain: parallel readers over disjoint bucket ranges return every entry exactly once.

Fills a real BPF hash map from user space (bpf_update_batch), then drains it the way `agent.run` does.
"""

from __future__ import annotations

import ctypes as ct
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from flowlake.agent import BccUnavailable, drain, records

N = 50_000  # 65536 buckets


def test_ranges_cover_every_bucket_once() -> None:
    d = drain.MapDrainer.__new__(drain.MapDrainer)
    for max_entries, parts in ((N, 2), (1, 2), (1000, 3), (65_536, 4)):
        d.max_entries = max_entries
        buckets = d.buckets
        assert buckets >= max_entries and buckets & (buckets - 1) == 0
        covered = np.concatenate([np.arange(lo, hi) for lo, hi in d.ranges(parts)])
        assert np.array_equal(covered, np.arange(buckets))


def _keys(n: int) -> np.ndarray:
    keys = np.zeros(n, records.KEY)
    ids = np.arange(n, dtype=np.uint32)
    raw = keys.view(np.uint8).reshape(n, records.KEY.itemsize)
    raw[:, 10:12], raw[:, 12] = 0xFF, 10
    raw[:, 13:16] = ids.view(np.uint8).reshape(n, 4)[:, :3][:, ::-1]
    keys["src_port"], keys["dst_port"], keys["proto"] = 40_000, 443, 6
    return keys


Fill = Callable[[np.ndarray, np.ndarray], None]


@pytest.fixture
def flow_map() -> Iterator[tuple[Any, Fill]]:
    """The agent's BPF program loaded with a flow map of N entries, and a function filling that map."""
    if os.geteuid() != 0:
        pytest.skip("needs root for BPF")
    from flowlake.agent import program
    from flowlake.agent.bccload import import_bcc

    try:
        lib = import_bcc().libbcc.lib
    except BccUnavailable as exc:
        pytest.skip(str(exc))
    _bcc, bpf = program.load(program.ProgramConfig(cache_max_flows=N))

    def fill(keys: np.ndarray, stats: np.ndarray) -> None:
        count = ct.c_uint32(len(keys))
        assert lib.bpf_update_batch(bpf[b"flows"].get_fd(), ct.c_void_p(keys.ctypes.data),
                                    ct.c_void_p(stats.ctypes.data), ct.byref(count)) == 0
        assert count.value == len(keys)

    try:
        yield bpf, fill
    finally:
        bpf.cleanup()


@pytest.mark.kernel
@pytest.mark.parametrize("readers", [1, 2, 3])
def test_parallel_drain_reads_every_flow_exactly_once(flow_map: tuple[Any, Fill], readers: int) -> None:
    bpf, fill = flow_map
    stats = np.zeros(N, records.STATS)
    stats["bytes"] = np.arange(N, dtype=np.uint64) + 1
    stats["packets"] = 1
    fill(_keys(N), stats)
    d = drain.MapDrainer("flows", bpf[b"flows"].get_fd(), records.KEY, records.STATS, N)
    got: list[tuple[np.ndarray, np.ndarray]] = []
    lock = threading.Lock()

    def read(lo: int, hi: int) -> None:
        for chunk in d.chunks(4096, lo, hi):  # small chunks: many calls per reader
            with lock:
                got.append(chunk)

    threads = [threading.Thread(target=read, args=r) for r in d.ranges(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    k = np.concatenate([c[0] for c in got])
    v = np.concatenate([c[1] for c in got])
    assert len(k) == N  # none missed, none twice
    assert len(np.unique(k.view("V40"))) == N
    assert int(v["bytes"].sum()) == N * (N + 1) // 2
    left_k, _ = d.drain()
    assert len(left_k) == 0  # the map is empty


@pytest.mark.kernel
def test_agent_drain_converts_a_full_map(flow_map: tuple[Any, Fill], monkeypatch: pytest.MonkeyPatch) -> None:
    """Agent.drain with its reader threads: one row per flow, bytes summing to what was written."""
    from flowlake.agent import run

    bpf, fill = flow_map
    monkeypatch.setattr(run, "DRAIN_CHUNK", 8192)
    agent = run.Agent(run.AgentConfig(agent_ip="10.0.0.1", cache_max_flows=N))
    try:
        agent.bpf = bpf
        bpf[b"flow_events"].open_ring_buffer(agent._on_event)
        agent._drainers = {"flows": drain.MapDrainer("flows", bpf[b"flows"].get_fd(), records.KEY, records.STATS, N)}
        stats = np.zeros(N, records.STATS)
        stats["bytes"], stats["packets"], stats["eth_proto"] = 100, 2, 0x0800
        stats["first_ns"] = stats["last_ns"] = time.monotonic_ns()
        stats["n_ifaces"], stats["ifaces"][:, 0], stats["sampling"] = 1, 1, 1
        fill(_keys(N), stats)
        batches = agent.drain()
        assert sum(b.num_rows for b in batches) == N
        assert sum(int(b.column("Bytes").to_numpy().sum()) for b in batches) == 100 * N
        addrs = set()
        for b in batches:
            addrs.update(b.column("SrcAddr").to_pylist())
        assert len(addrs) == N and "10.0.0.1" in addrs and "10.0.195.79" in addrs
    finally:
        agent._convert.shutdown()
