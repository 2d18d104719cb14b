"""Fixtures for the kernel tests: namespace labs, an agent started inside a host, packet taps."""

from __future__ import annotations

import socket
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pytest

from flowlake.engine.transport import memory
from tests.agent.netns import Host, Lab, kernel_ready


@pytest.fixture
def lab() -> Iterator[Lab]:
    why = kernel_ready()
    if why:
        pytest.skip(why)
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


class Captured:
    """Batches an agent exported to memory://, as one table."""

    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []
        self.lock = threading.Lock()

    def __call__(self, batch: pa.RecordBatch, transport: str) -> None:
        with self.lock:
            self.batches.append(batch)

    def table(self) -> pa.Table:
        from flowlake.engine import schema

        with self.lock:
            return pa.Table.from_batches(self.batches, schema=schema.SCHEMA)


@pytest.fixture
def start_agent() -> Iterator[Callable[..., tuple[Any, Captured]]]:
    """start_agent(host, **AgentConfig fields) -> (agent, captured); closed at teardown."""
    from flowlake.agent.run import Agent, AgentConfig

    started: list[Any] = []

    def start(host: Host, **kw: Any) -> tuple[Any, Captured]:
        name = f"agent-{uuid.uuid4().hex[:6]}"
        captured = Captured()
        memory.register(name, captured)
        kw.setdefault("cache_active_timeout", 3600.0)  # tests drain explicitly
        cfg = AgentConfig(target=f"memory://{name}", agent_ip=host.ip, **kw)
        agent = Agent(cfg)
        with host.enter():
            agent.start()
        started.append(agent)
        return agent, captured

    yield start
    for agent in started:
        agent.close()


def flush(agent: Any, captured: Captured) -> pa.Table:
    """Drain now and wait for the exporter thread to deliver."""
    agent.drain_and_enqueue()
    deadline = threading.Event()
    for _ in range(100):
        if agent._queue.empty():
            break
        deadline.wait(0.02)
    deadline.wait(0.05)
    return captured.table()


def flush_until(agent: Any, captured: Captured, done: Callable[[pa.Table], bool], timeout: float = 5) -> pa.Table:
    """Drain repeatedly until `done(table)` holds (packets may still be in flight), or give up."""
    waited = threading.Event()
    table = flush(agent, captured)
    for _ in range(int(timeout / 0.1)):
        if done(table):
            break
        waited.wait(0.1)
        table = flush(agent, captured)
    return table


class Tap:
    """Independent ground truth: an AF_PACKET socket counting packets/bytes per 5-tuple on one device."""

    def __init__(self, host: Host, dev: str) -> None:
        with host.enter():
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            self.sock.bind((dev, 0))
        self.sock.settimeout(0.2)
        self.counts: dict[tuple[str, str, int, int, int], list[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(frame) < 34 or frame[12:14] != b"\x08\x00":
                continue
            ihl = (frame[14] & 0x0F) * 4
            proto = frame[23]
            src, dst = socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34])
            sport = dport = 0
            if proto in (6, 17):
                sport, dport = struct.unpack("!HH", frame[14 + ihl:18 + ihl])
            c = self.counts.setdefault((src, dst, sport, dport, proto), [0, 0])
            c[0] += 1
            c[1] += len(frame)

    def close(self) -> dict[tuple[str, str, int, int, int], list[int]]:
        self._stop.wait(0.3)  # let the last frames arrive
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.counts
