"""Benchmark fixtures: one realistic synthetic day shared by the lake and ingest benchmarks."""

from __future__ import annotations

import pytest

from flowlake.engine.synth import SynthFlows, generate, make_cluster

START_MS = 1_795_651_200_000  # 2026-11-25T22:00:00Z


@pytest.fixture(scope="session")
def flows_1m() -> SynthFlows:
    return generate(make_cluster(seed=3), START_MS, START_MS + 4 * 3_600_000, 1_000_000, seed=3)
