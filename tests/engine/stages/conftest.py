"""Stage-test fixtures: one synthetic cluster hour, raw and enriched, with the generator's ground truth."""

from __future__ import annotations

import polars as pl
import pytest

from flowlake.engine.stages.enrich import EnrichStage
from flowlake.engine.synth import SynthFlows, generate, make_cluster
from flowlake.engine.synth.cluster import Cluster

HOUR = 3_600_000
START = 1_764_028_800_000 + 10 * HOUR  # 2025-11-25T10:00:00Z


class ClusterMetadata:
    """A MetadataSource over a synthetic cluster's identity table."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster_name = cluster.name
        self._table = cluster.metadata_table()

    def table(self) -> pl.DataFrame:
        return self._table


@pytest.fixture(scope="session")
def synth() -> SynthFlows:
    return generate(make_cluster(seed=7), START, START + HOUR, 120_000, seed=11)


def enriched(flows: SynthFlows) -> pl.DataFrame:
    """The batch through the enrich stage, with a `row` column indexing the generator's arrays."""
    frame = pl.from_arrow(flows.batch)
    assert isinstance(frame, pl.DataFrame)
    out = EnrichStage(ClusterMetadata(flows.cluster)).process(frame)
    return out.with_row_index("row")


@pytest.fixture(scope="session")
def synth_enriched(synth: SynthFlows) -> pl.DataFrame:
    return enriched(synth)
