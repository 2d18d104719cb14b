"""Dedup stage: which egress copies are dropped or sampled, across batches, against the generator's truth."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from flowlake.engine import config
from flowlake.engine.errors import ConfigError
from flowlake.engine.stages import filter as flt
from flowlake.engine.stages.dedup import DedupStage
from flowlake.engine.synth import SynthFlows
from tests.conftest import BASE_MS, make_batch

A, B = "192.168.0.1", "192.168.0.2"


def rows(**columns: object) -> pl.DataFrame:
    n = len(next(iter(columns.values())))  # type: ignore[arg-type]
    df = pl.from_arrow(make_batch(n, **columns))
    assert isinstance(df, pl.DataFrame)
    return df


# One flow A->B reported twice, a flow to a Service, to external, an inner one and an ingress one.
HAND = dict(
    AgentIP=[A, B, A, A, A, B],
    FlowDirection=[1, 0, 1, 1, 2, 0],
    DstK8S_HostIP=[B, B, None, None, A, B],
    DstK8S_OwnerName=["db", "db", "kubernetes", None, "web", "db"],
)


@pytest.mark.parametrize(("rule", "dropped"), [
    pytest.param("node", [0], id="node: only the egress copy of the two-node flow"),
    pytest.param("owner", [0, 2], id="owner (reference): also the egress flow to a Service"),
])
def test_drop_rules(rule: str, dropped: list[int]) -> None:
    out = DedupStage("Drop", rule=rule).process(rows(**HAND))
    assert sorted(set(range(6)) - {b - 100 for b in out["Bytes"]}) == dropped


def test_disabled_keeps_everything() -> None:
    df = rows(**HAND)
    assert DedupStage("Disabled").process(df).equals(df)


def test_copy_to_a_node_that_never_reported_is_kept() -> None:
    stage = DedupStage("Drop", reporter_window_seconds=600)
    first = rows(AgentIP=[A, A], FlowDirection=[1, 1], DstK8S_HostIP=[B, B])
    assert stage.process(first).height == 2  # B has not reported yet: its ingress twin is not certain
    stage.process(rows(AgentIP=[B], FlowDirection=[0], DstK8S_HostIP=[B]))  # B's agent shows up
    assert stage.process(first).height == 0
    # B silent for longer than the window: copies to it are kept again
    later = rows(AgentIP=[A], FlowDirection=[1], DstK8S_HostIP=[B], TimeFlowEndMs=[BASE_MS + 601_000],
                 TimeFlowStartMs=[BASE_MS + 600_000])
    assert stage.process(later).height == 1
    assert DedupStage("Drop", reporter_window_seconds=0).process(later).height == 0  # no check


def test_sample_keeps_the_hashed_one_in_n_copies_without_touching_sampling() -> None:
    n = 400
    df = rows(AgentIP=[A] * n + [B], FlowDirection=[1] * n + [0], DstK8S_HostIP=[B] * (n + 1),
              Sampling=[1] * (n + 1))
    stage = DedupStage("Sample", sampling=10, salt=5)
    out = stage.process(df)
    keep = flt.row_hash(df, 5) % np.uint64(10) == 0
    keep[-1] = True  # the ingress report is not a copy
    assert out["Bytes"].to_list() == df.filter(pl.Series(keep))["Bytes"].to_list()
    assert 20 < out.height < 60 and out["Sampling"].unique().to_list() == [1]


def test_matches_the_generators_duplicates(synth: SynthFlows, synth_enriched: pl.DataFrame) -> None:
    out = DedupStage("Drop").process(synth_enriched)
    dropped = np.setdiff1d(synth_enriched["row"].to_numpy(), out["row"].to_numpy())
    assert dropped.tolist() == np.flatnonzero(synth.duplicate).tolist()
    assert out.height == synth.num_flows and len(dropped) > 10_000


def test_owner_rule_also_drops_egress_to_services(synth: SynthFlows, synth_enriched: pl.DataFrame) -> None:
    out = DedupStage("Drop", rule="owner").process(synth_enriched)
    dropped = np.setdiff1d(synth_enriched["row"].to_numpy(), out["row"].to_numpy())
    to_service = (synth_enriched["DstK8S_Type"] == "Service").fill_null(False).to_numpy()
    egress = (synth_enriched["FlowDirection"] == 1).to_numpy()
    assert dropped.tolist() == np.flatnonzero(synth.duplicate | (egress & to_service)).tolist()
    assert (egress & to_service).sum() > 1000  # flows the reference's rule loses


def test_batches_per_agent_over_time(synth: SynthFlows, synth_enriched: pl.DataFrame) -> None:
    """Agents send their own batches every 15 s: once every node has reported, the copies found are exact."""
    stage = DedupStage("Drop")
    frame = synth_enriched.with_columns((pl.col("TimeFlowEndMs") // 15_000).alias("tick"))
    ticks = frame["tick"].unique().sort().to_list()
    warm = frame.filter(pl.col("tick") == ticks[0])
    for _, batch in warm.group_by("AgentIP", maintain_order=True):
        stage.process(batch)  # the first round: every node reports once
    kept = [stage.process(batch) for tick in ticks[1:]
            for _, batch in frame.filter(pl.col("tick") == tick).group_by("AgentIP", maintain_order=True)]
    rest = frame.filter(pl.col("tick") != ticks[0])
    dropped = np.setdiff1d(rest["row"].to_numpy(), pl.concat(kept)["row"].to_numpy())
    assert dropped.tolist() == np.flatnonzero(synth.duplicate)[np.isin(np.flatnonzero(synth.duplicate),
                                                                       rest["row"].to_numpy())].tolist()


def test_bad_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"dedup\.mode: Input should be 'Disabled', 'Drop' or 'Sample'"):
        config.load(None, **{"dedup.mode": "drop"})
