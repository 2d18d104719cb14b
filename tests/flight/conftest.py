"""Fixtures for the Flight query service and client tests: a synthetic, enriched lake and live servers.

The lake is made by the real pipeline in this process: `synth.generate` flows of a generated cluster,
through the processor's default stages (enrich from the cluster's identity file, direction, ...) into
the lake sink. Expected answers come from the generator's own ground truth (`SynthFlows`), never from
the code under test. Servers bind port 0 on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flowlake.api.flight_service import QueryFlightServer
from flowlake.engine.config import LakeConfig, ProcessorConfig
from flowlake.engine.metadata import static
from flowlake.engine.processor import Processor
from flowlake.engine.synth import SynthFlows, generate, make_cluster

START_MS = int(datetime(2026, 11, 25, 6, tzinfo=UTC).timestamp() * 1000)
END_MS = START_MS + 3 * 3_600_000
N_FLOWS = 40_000
SEED = 11


def build_lake(tmp: Path, n_flows: int = N_FLOWS, seed: int = SEED) -> tuple[str, SynthFlows]:
    """Generate, enrich and store flows; returns (lake path, the generator's flows)."""
    cluster = make_cluster(seed=seed)
    metadata = tmp / "metadata.json"
    static.dump(str(metadata), cluster.metadata_table(), cluster.name)
    synth = generate(cluster, START_MS, END_MS, n_flows, seed=seed)
    lake_url = str(tmp / "lake")
    proc = Processor(ProcessorConfig(metadata=str(metadata), lake=LakeConfig(url=lake_url)))
    for batch in synth.batches(8_192):
        proc.ingest(batch, "test")
    proc.close()
    return lake_url, synth


def truth(synth: SynthFlows) -> pl.DataFrame:
    """One row per lake row with the namespaces and bytes the generator chose (null: node or external)."""
    return pl.DataFrame([synth.src_namespace, synth.dst_namespace,
                         pl.Series("bytes", synth.batch.column("Bytes")).cast(pl.Int64)])


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    lake_url, synth = build_lake(tmp_path_factory.mktemp("flight"))
    return {"lake": lake_url, "synth": synth, "truth": truth(synth)}


@pytest.fixture(scope="session")
def server(world: dict[str, Any]) -> Iterator[QueryFlightServer]:
    srv = QueryFlightServer("grpc://127.0.0.1:0", world["lake"])
    yield srv
    srv.shutdown()


@pytest.fixture(scope="session")
def url(server: QueryFlightServer) -> str:
    return f"grpc://127.0.0.1:{server.port}"
