"""Shared fixtures: small hand-made flow batches with known contents, and the kernel-test policy."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pytest

from flowlake.engine import schema

if TYPE_CHECKING:
    from tests.k8s import apiserver

REQUIRE_KERNEL = os.environ.get("FLOWLAKE_REQUIRE_KERNEL") == "1"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Under FLOWLAKE_REQUIRE_KERNEL=1 (CI), a skipped kernel test is reported as a failure."""
    report = yield
    if REQUIRE_KERNEL and report.skipped and not hasattr(report, "wasxfail") \
            and item.get_closest_marker("kernel") is not None:
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid}: kernel test skipped under FLOWLAKE_REQUIRE_KERNEL=1: " \
                          f"{report.longrepr}"
    return report


BASE_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z, an hour boundary


def make_batch(n: int, *, start_ms: int = BASE_MS, step_ms: int = 1000, seed: int = 0,
               **columns: Any) -> pa.RecordBatch:
    """`n` valid flows one `step_ms` apart; src/dst cycle over 10.0.0.0-9 / 10.1.0.0-4; Bytes = 100+i."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    data: dict[str, Any] = {
        "TimeFlowStartMs": start_ms + i * step_ms - 500,
        "TimeFlowEndMs": start_ms + i * step_ms,
        "Etype": np.full(n, 2048, np.uint16),
        "Proto": np.full(n, 6, np.uint8),
        "SrcAddr": [f"10.0.0.{k % 10}" for k in range(n)],
        "DstAddr": [f"10.1.0.{k % 5}" for k in range(n)],
        "SrcPort": rng.integers(32768, 60999, n).astype(np.uint16),
        "DstPort": np.full(n, 443, np.uint16),
        "Bytes": (100 + i).astype(np.uint64),
        "Packets": np.ones(n, np.uint64),
        "AgentIP": ["192.168.0.1"] * n,
    }
    data.update(columns)
    batch = pa.RecordBatch.from_pydict(data)
    return schema.validate(batch)  # type: ignore[return-value]


@pytest.fixture
def batch_factory() -> Callable[..., pa.RecordBatch]:
    return make_batch


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[apiserver.Cluster]:
    """etcd + kube-apiserver on loopback, one per session for tests/k8s and tests/operator (tests/k8s/apiserver.py)."""
    # Imported here: tests/test_kernel_policy.py reuses this file as a conftest outside the repository.
    from tests.k8s import apiserver

    yield from apiserver.run_cluster(tmp_path_factory)
