"""Reading the Parquet lake as a Polars LazyFrame with partition pruning by time.

Called by the API (`/api/flows`), notebooks (`open_lake`) and tests.
"""

from __future__ import annotations

import polars as pl
import pyarrow.dataset as ds

from flowlake.engine import schema
from flowlake.engine.store import layout

_NATIVE = {"file", "local"}  # protocols Polars reads itself, fastest path


def empty_frame() -> pl.LazyFrame:
    """A zero-row LazyFrame with the flow schema (what a query over an empty lake returns)."""
    return pl.from_arrow(schema.SCHEMA.empty_table()).lazy()  # type: ignore[union-attr]


def scan(url: str, start_ms: int | None = None, end_ms: int | None = None) -> pl.LazyFrame:
    """Flows with start_ms <= TimeFlowEndMs < end_ms, reading only the hour partitions in range."""
    fs, root = layout.open_root(url)
    files = layout.data_files(fs, root, start_ms, end_ms)
    if not files:
        return empty_frame()
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in _NATIVE:
        lf = pl.scan_parquet(files)
    else:
        lf = pl.scan_pyarrow_dataset(ds.dataset(files, filesystem=fs, format="parquet"))
    if start_ms is not None:
        lf = lf.filter(pl.col("TimeFlowEndMs") >= start_ms)
    if end_ms is not None:
        lf = lf.filter(pl.col("TimeFlowEndMs") < end_ms)
    return lf


def count_files(url: str, start_ms: int | None = None, end_ms: int | None = None) -> int:
    """How many data files a scan of this range opens (reported in query stats)."""
    fs, root = layout.open_root(url)
    return len(layout.data_files(fs, root, start_ms, end_ms))
