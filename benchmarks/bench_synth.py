"""Generation speed of `flowlake synth`: one million flow records from a 6-node cluster.

Runs as a plain test under `--benchmark-disable` (CI) and checks the output; with
`--benchmark-enable` it times `flows.generate` (5 rounds) and puts flow records/s in `extra_info`.
"""

from __future__ import annotations

from typing import Any

import pytest

from flowlake.engine import schema
from flowlake.engine.synth import flows
from flowlake.engine.synth.cluster import Cluster, make_cluster

N_FLOWS = 1_000_000
START_MS = 1_764_028_800_000  # 2025-11-25T00:00:00Z
END_MS = START_MS + 3_600_000


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return make_cluster(seed=1)


@pytest.mark.benchmark(group="synth")
def test_synth_generate_1m(benchmark: Any, cluster: Cluster) -> None:
    flows.generate(cluster, START_MS, END_MS, 10_000, seed=1)  # warm up numpy and Arrow kernels
    synth = benchmark.pedantic(flows.generate, args=(cluster, START_MS, END_MS, N_FLOWS, 7),
                               rounds=5, iterations=1, warmup_rounds=1)
    assert synth.num_rows == N_FLOWS and 0.6 * N_FLOWS < synth.num_flows < N_FLOWS
    assert schema.validate(synth.batch) is synth.batch
    if benchmark.stats is not None:  # None under --benchmark-disable
        best = benchmark.stats.stats.min
        benchmark.extra_info.update(records_per_s=round(N_FLOWS / best),
                                    distinct_flows_per_s=round(synth.num_flows / best))
