"""Filter stage: keeps the flows matching a processor query, optionally 1 in N of them.

Built by the processor from `stages: [filter]` (settings in `filter:`); the processor also calls
`keep_rules` for the per-output `filters:` list. Queries are the FLP language (`engine.query.flplang`),
compiled once to one Polars expression.

Sampling follows FLP's `keepEntrySampling` + `samplingField` (`reference/netobserv.md` §3.1): a kept
row's `Sampling` is multiplied by N (null or 0, which both mean "every packet", count as 1), so
Sampling-normalized totals stay right. FLP draws a random number per flow; here the draw is a hash of
the row's own numbers (`sample_mask`), so the same input always keeps the same rows and tests are exact;
the two reports of one flow (same times, counters and ports) get the same draw.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import NDArray

from flowlake.engine.query import flpexpr

_M32 = 0xFFFFFFFF
# Numeric columns mixed into the sampling hash (nulls count as 0). Addresses are left out: hashing text
# costs more than it adds, as two flows rarely share times, counters and ports.
HASH_COLUMNS = ("TimeFlowEndMs", "TimeFlowStartMs", "Bytes", "Packets", "Proto", "SrcPort", "DstPort")
_GOLDEN, _MUL1, _MUL2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _splitmix64(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """SplitMix64's finalizer, in place; numpy array arithmetic wraps modulo 2**64 (no warnings)."""
    z += _GOLDEN
    z ^= z >> np.uint64(30)
    z *= _MUL1
    z ^= z >> np.uint64(27)
    z *= _MUL2
    z ^= z >> np.uint64(31)
    return z


def row_hash(frame: pl.DataFrame, salt: int) -> NDArray[np.uint64]:
    """A 64-bit hash of each row's HASH_COLUMNS seeded by `salt`: numpy over whole columns, reproducible."""
    h = np.full(frame.height, np.uint64(salt & 0xFFFFFFFFFFFFFFFF), np.uint64)
    for name in HASH_COLUMNS:
        v = frame.get_column(name).cast(pl.UInt64, strict=False).fill_null(0).to_numpy()
        h ^= v
        _splitmix64(h)
    return h


def sample_mask(frame: pl.DataFrame, n: int, salt: int) -> pl.Series:
    """True for about 1 row in `n` (all rows when n <= 1), chosen by `row_hash(frame, salt)`."""
    if n <= 1:
        return pl.Series("_sample", np.ones(frame.height, bool))
    return pl.Series("_sample", row_hash(frame, salt) % np.uint64(n) == 0)


def keep_rules(frame: pl.DataFrame, rules: list[tuple[pl.Expr, int]], salt: int) -> pl.DataFrame:
    """Rows kept by ANY rule (FLP ORs its keep rules), each rule sampling 1 in N of its matches; a row's
    Sampling is multiplied by the N of the first rule that kept it. No rules: the frame unchanged."""
    if not rules or frame.height == 0:
        return frame
    marks = {f"_s{i}": sample_mask(frame, n, salt + 7919 * i) for i, (_, n) in enumerate(rules) if n > 1}
    passes = [match & pl.col(f"_s{i}") if f"_s{i}" in marks else match for i, (match, _) in enumerate(rules)]
    if not marks:
        return frame.filter(passes[0] if len(passes) == 1 else pl.any_horizontal(passes))
    factor: pl.Expr = pl.lit(0, pl.UInt64)  # 0 = not kept, else the N of the first rule that kept it
    for p, (_, n) in reversed(list(zip(passes, rules, strict=True))):
        factor = pl.when(p).then(pl.lit(max(n, 1), pl.UInt64)).otherwise(factor)
    current = pl.col("Sampling").cast(pl.UInt64).fill_null(1)
    current = pl.when(current == 0).then(pl.lit(1, pl.UInt64)).otherwise(current)
    scaled = (current * pl.col("_factor")).clip(upper_bound=_M32).cast(pl.UInt32)
    return (frame.with_columns(**marks).with_columns(factor.alias("_factor")).filter(pl.col("_factor") > 0)
            .with_columns(pl.when(pl.col("_factor") > 1).then(scaled).otherwise(pl.col("Sampling"))
                          .alias("Sampling"))
            .drop("_factor", *marks))


class FilterStage:
    """Keeps rows matching `query`; with `sampling` N > 1, 1 in N of them (Sampling multiplied by N)."""

    name = "filter"

    def __init__(self, query: str = "", sampling: int = 1, salt: int = 0x5EED) -> None:
        self.rules = [(flpexpr.compile_query(query), sampling)] if query.strip() or sampling > 1 else []
        self.salt = salt

    def process(self, frame: pl.DataFrame) -> pl.DataFrame:
        return keep_rules(frame, self.rules, self.salt)

    def flush(self) -> pl.DataFrame | None:
        return None
