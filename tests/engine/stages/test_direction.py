"""Direction stage: FLP's reinterpret_direction on hand-built rows and against the generator's truth."""

from __future__ import annotations

import polars as pl
import pytest

from flowlake.engine.stages.direction import DirectionStage
from flowlake.engine.synth import SynthFlows
from tests.conftest import make_batch

A, B, C = "192.168.0.1", "192.168.0.2", "192.168.0.3"

# (reporter, src node, dst node, agent's FlowDirection) -> expected FlowDirection
CASES = [
    pytest.param(A, A, B, 0, 1, id="reporter-is-src-node: egress"),
    pytest.param(B, A, B, 1, 0, id="reporter-is-dst-node: ingress"),
    pytest.param(A, A, None, 0, 1, id="to-external: egress"),
    pytest.param(A, None, A, 1, 0, id="from-external: ingress"),
    pytest.param(C, A, B, 1, 1, id="reporter-is-neither: kept"),
    pytest.param(C, A, B, None, None, id="reporter-is-neither, no value: kept null"),
    pytest.param(A, A, A, 0, 2, id="same-node: inner"),
    pytest.param(C, A, A, 1, 2, id="same-node seen elsewhere: inner"),
    pytest.param(A, None, None, 1, 1, id="no nodes: kept"),
    pytest.param(None, A, B, 0, 0, id="no reporter: kept"),
    pytest.param("", A, A, 1, 1, id="empty reporter: kept"),
    pytest.param(A, "", "", 0, 0, id="empty nodes: kept"),
]


@pytest.mark.parametrize(("reporter", "src", "dst", "given", "want"), CASES)
def test_reinterpret_direction(reporter: str | None, src: str | None, dst: str | None, given: int | None,
                               want: int | None) -> None:
    df = pl.from_arrow(make_batch(1, AgentIP=[reporter], SrcK8S_HostIP=[src], DstK8S_HostIP=[dst],
                                  FlowDirection=[given]))
    assert isinstance(df, pl.DataFrame)
    out = DirectionStage().process(df)
    assert out["FlowDirection"].to_list() == [want]
    assert out.schema["FlowDirection"] == pl.UInt8


def test_interface_direction_is_kept_in_if_directions_when_missing() -> None:
    df = pl.from_arrow(make_batch(3, AgentIP=[A] * 3, SrcK8S_HostIP=[A] * 3, DstK8S_HostIP=[B] * 3,
                                  FlowDirection=[0, 0, None], IfDirections=[None, [0, 1], None]))
    assert isinstance(df, pl.DataFrame)
    out = DirectionStage(keep_interface_direction=True).process(df)
    assert out["FlowDirection"].to_list() == [1, 1, 1]
    assert out["IfDirections"].to_list() == [[0], [0, 1], None]
    off = DirectionStage(keep_interface_direction=False).process(df)
    assert off["IfDirections"].to_list() == [None, [0, 1], None]


def test_matches_the_generators_node_directions(synth: SynthFlows, synth_enriched: pl.DataFrame) -> None:
    # The generator writes node-level truth; give the stage the first interface's direction instead
    truth = pl.Series(synth.batch.column("FlowDirection"))
    raw = synth_enriched.with_columns(pl.col("IfDirections").list.first().alias("FlowDirection"))
    assert (raw["FlowDirection"] != truth).sum() > 1000  # the input really differs
    out = DirectionStage().process(raw)
    assert out["FlowDirection"].to_list() == truth.to_list()
    assert set(truth.unique().to_list()) == {0, 1, 2}
