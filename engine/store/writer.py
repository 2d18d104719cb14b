"""Encoding and atomic publication of one lake data file; called by the lake sink and by compaction.

Every file gets the flow schema's columns (so readers can union files), rows sorted for compression
and time pruning, and appears in its hour partition whole or not at all: on a local disk it is written
under `_staging/` and renamed; on object stores (s3://, memory://) it is encoded in memory and put in
one request, which those stores publish atomically.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from flowlake.engine import schema
from flowlake.engine.store import layout

# Rows are sorted by 5-minute time bucket, then by endpoints, then by time. Buckets keep row-group time
# statistics tight (queries of a few minutes skip most of a large hour file); endpoints inside a bucket
# put the rows of one conversation side by side, so every Src*/Dst* column (names, namespaces, owners,
# hosts, MACs, zones) and the ports compress to runs. Measured on 1M synthetic enriched flows:
# 23.3 bytes/flow sorted by time and namespaces, 12.4 with this order (docs/performance.md).
BUCKET_MS = 300_000
SORT_KEYS: tuple[str, ...] = ("SrcAddr", "DstAddr", "TimeFlowEndMs")
# Dictionary-encode text only: integer columns came out larger and slower with dictionaries
# (1M synthetic flows: 23.5 vs 26.5 bytes/flow, 1.26 vs 1.58 s).
_DICTIONARY_COLUMNS = [f.name for f in schema.FIELDS if f.type == pa.string() or f.type == pa.list_(pa.string())]
# Row-group min/max only where a query can skip on them: numbers (times, ports, bytes); SrcAddr, the
# first sort key inside each 5-minute bucket (row groups of a busy bucket hold address ranges); and
# K8S_ClusterName (whole files of one cluster in a shared lake). Other text and list statistics never
# skip anything in files ordered by time bucket and address (every row group spans nearly every
# namespace or name), yet were a fifth of the encoding time (1M flows, 20k pods: 0.26 s).
_TEXT_STATISTICS = ("SrcAddr", "K8S_ClusterName")
_STATISTICS_COLUMNS = [f.name for f in schema.FIELDS if f.name in _TEXT_STATISTICS
                       or not (pa.types.is_string(f.type) or pa.types.is_list(f.type) or pa.types.is_struct(f.type))]
_LEVELED = {"zstd", "gzip", "brotli"}  # codecs that take a compression level
_POLARS_SCHEMA = pl.from_arrow(schema.SCHEMA.empty_table()).schema  # type: ignore[union-attr]


@dataclass(frozen=True)
class Encoding:
    """Parquet settings of every file the lake writes (`lake.compression`, ...)."""

    compression: str = "zstd"
    compression_level: int | None = 3
    row_group_rows: int = 256_000


def sort_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame in file order: hour, 5-minute bucket, endpoints, time (so hours are contiguous runs)."""
    return frame.sort([pl.col("TimeFlowEndMs") // BUCKET_MS, *SORT_KEYS], nulls_last=True)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Every file gets exactly the flow schema's columns and types, so any reader can union them."""
    if frame.schema == _POLARS_SCHEMA:
        return frame
    return frame.select([pl.col(n).cast(t) if n in frame.columns else pl.lit(None, t).alias(n)
                         for n, t in _POLARS_SCHEMA.items()])


def _write(frame: pl.DataFrame, sink: object, enc: Encoding, metadata: dict[bytes, bytes] | None) -> None:
    # compat_level newest keeps Polars' string views: zero-copy into Arrow and Parquet.
    table = frame.to_arrow(compat_level=pl.CompatLevel.newest())
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    pq.write_table(table, sink, compression=enc.compression,
                   compression_level=enc.compression_level if enc.compression in _LEVELED else None,
                   row_group_size=enc.row_group_rows, write_statistics=_STATISTICS_COLUMNS,
                   use_dictionary=_DICTIONARY_COLUMNS)


def publish(fs: AbstractFileSystem, root: str, hour_ms: int, frame: pl.DataFrame, enc: Encoding, *,
            prefix: str = layout.PART_PREFIX, replaces: list[str] | None = None) -> str:
    """Write `frame` (already conformed and sorted, one hour) as a new file of that hour; returns its path.

    `replaces` (compaction) lists the names of the files it supersedes, in the footer, so readers can
    hide them until they are deleted (`layout.visible_files`).
    """
    final = f"{layout.partition_dir(root, hour_ms)}/{layout.new_file_name(prefix)}"
    metadata = {layout.COMPACTED_FROM: json.dumps(replaces).encode()} if replaces is not None else None
    if not layout.is_local(fs):
        buf = io.BytesIO()
        _write(frame, buf, enc, metadata)
        fs.pipe_file(final, buf.getvalue())  # one PUT: the object exists whole or not at all
        return final
    staging = f"{root}/{layout.STAGING_DIR}/{final.rsplit('/', 1)[1]}"
    fs.makedirs(f"{root}/{layout.STAGING_DIR}", exist_ok=True)
    try:
        with fs.open(staging, "wb") as fh:
            _write(frame, fh, enc, metadata)
    except BaseException:
        if fs.exists(staging):  # never leave a partial file behind, even in staging
            fs.rm(staging)
        raise
    fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
    fs.mv(staging, final)  # a rename on one filesystem: atomic
    return final
