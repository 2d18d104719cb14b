"""Filter stage and per-output `filters:`: which rows are kept, deterministic sampling, Sampling scaling."""

from __future__ import annotations

import zlib

import polars as pl
import pytest

from flowlake.engine import config
from flowlake.engine.errors import ConfigError
from flowlake.engine.processor import Processor
from flowlake.engine.sinks.memory import MemorySink
from flowlake.engine.stages import filter as flt
from tests.conftest import make_batch

MASK64 = (1 << 64) - 1


def splitmix64(z: int) -> int:
    """SplitMix64's finalizer on Python ints: an independent reference for `filter.row_hash`."""
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def expected_hash(row: dict[str, int | None], salt: int) -> int:
    h = salt
    for name in flt.HASH_COLUMNS:
        h = splitmix64(h ^ (row[name] or 0))
    return h


def frame(n: int, **columns: object) -> pl.DataFrame:
    out = pl.from_arrow(make_batch(n, **columns))
    assert isinstance(out, pl.DataFrame)
    return out


def test_row_hash_is_splitmix64_over_the_row_numbers() -> None:
    df = frame(40, SrcPort=[None] * 20 + list(range(20)))
    want = [expected_hash(r, 12345) for r in df.select(flt.HASH_COLUMNS).to_dicts()]
    assert flt.row_hash(df, 12345).tolist() == want


def test_query_keeps_matching_rows() -> None:
    df = frame(10, Proto=[6, 17] * 5)
    out = flt.FilterStage("Proto=17 and Bytes>=103").process(df)
    assert out["Bytes"].to_list() == [103, 105, 107, 109]
    assert out["Sampling"].null_count() == 4  # no sampling: Sampling untouched


def test_sampling_keeps_exactly_the_hashed_one_in_n_and_scales_sampling() -> None:
    n = 500
    df = frame(n, Proto=[6, 17] * (n // 2), Sampling=[None, 0, 1, 50] * (n // 4))
    salt = 99
    out = flt.FilterStage("Proto=6", sampling=4, salt=salt).process(df)
    want = [r["Bytes"] for r in df.to_dicts() if r["Proto"] == 6 and expected_hash(r, salt) % 4 == 0]
    assert out["Bytes"].to_list() == want
    assert 0.15 < len(want) / (n / 2) < 0.35
    # null and 0 both mean "every packet": they become 4; 50 becomes 200
    by_row = dict(zip(df["Bytes"], df["Sampling"], strict=True))
    scaled = {None: 4, 0: 4, 1: 4, 50: 200}
    assert out["Sampling"].to_list() == [scaled[by_row[b]] for b in want]


def test_same_input_same_rows() -> None:
    df = frame(300)
    stage = flt.FilterStage("", sampling=3)
    assert stage.process(df).equals(stage.process(df.clone()))


def test_keep_rules_or_the_rules_and_scale_by_the_first_that_kept() -> None:
    df = frame(12, Proto=[6, 17, 1] * 4, Sampling=[2] * 12)
    rules = [(pl.col("Proto") == 6, 1), (pl.col("Proto") != 1, 5)]
    salt = 7
    out = flt.keep_rules(df, rules, salt)
    rule2 = {r["Bytes"] for r in df.to_dicts() if expected_hash(r, salt + 7919) % 5 == 0}
    want = [r["Bytes"] for r in df.to_dicts() if r["Proto"] == 6 or (r["Proto"] == 17 and r["Bytes"] in rule2)]
    assert out["Bytes"].to_list() == want
    assert out["Sampling"].to_list() == [2 if b % 3 == 100 % 3 else 10 for b in want]  # Proto 6 rows: rule 1


def test_empty_frame_and_no_rules() -> None:
    df = frame(3)
    assert flt.keep_rules(df, [], 1) is df
    assert flt.FilterStage("Proto=6", 3).process(df.head(0)).height == 0


# -- per-output filters in the processor

def processor_with_outputs(filters: list[dict[str, object]]) -> tuple[Processor, MemorySink, MemorySink]:
    proc = Processor(config.load(None, sinks=["memory"], stages=[], filters=filters))
    store = proc.sinks[0]
    assert isinstance(store, MemorySink) and store.output == "Loki"
    metrics = MemorySink()
    metrics.output = "Metrics"  # stands in for the metrics sink
    proc.sinks.append(metrics)
    return proc, store, metrics


def test_each_output_gets_only_its_filtered_rows() -> None:
    proc, store, metrics = processor_with_outputs([
        {"query": "Bytes < 110", "output_target": ""},
        {"query": 'DstAddr="10.1.0.0"', "output_target": "Loki"},
        {"query": "Proto=17", "output_target": "Loki"},
        {"query": "Bytes >= 105", "output_target": "Metrics"},
    ])
    proc.ingest(make_batch(20, Proto=[6, 6, 6, 17] * 5), "test")
    proc.flush()
    # every sink: Bytes < 110 (rows 0-9); Loki: DstAddr 10.1.0.0 (rows 0, 5) OR Proto 17 (rows 3, 7)
    assert store.frame()["Bytes"].to_list() == [100, 103, 105, 107]
    assert metrics.frame()["Bytes"].to_list() == [105, 106, 107, 108, 109]


def test_output_sampling_scales_only_that_outputs_rows() -> None:
    proc, store, metrics = processor_with_outputs([{"query": "", "output_target": "Metrics", "sampling": 2}])
    batch = make_batch(200, Sampling=[10] * 200)
    proc.ingest(batch, "test")
    proc.flush()
    assert store.frame().height == 200 and store.frame()["Sampling"].unique().to_list() == [10]
    kept = metrics.frame()
    salt = zlib.crc32(b"Metrics")  # the processor salts each output's draw with its target name
    want = [r["Bytes"] for r in store.frame().to_dicts() if expected_hash(r, salt) % 2 == 0]
    assert kept["Bytes"].to_list() == want and 60 < len(want) < 140
    assert kept["Sampling"].unique().to_list() == [20]


def test_bad_output_filter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"filters\.0\.query: .*unknown field 'Src'"):
        config.load(None, filters=[{"query": 'Src="x"', "output_target": "Loki"}])
    with pytest.raises(ConfigError, match=r"filters\.0\.output_target"):
        config.load(None, filters=[{"query": "", "output_target": "Prometheus"}])
