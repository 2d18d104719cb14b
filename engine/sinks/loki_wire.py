"""Loki push bodies from flow frames, vectorized: stream labels, JSON lines, JSON or protobuf+snappy bodies.

Called by `sinks.loki`. As NetObserv's Loki writer (reference §1.3): label fields leave the record and
name the stream; every other non-null field goes into the line, a JSON object with the flow schema's
field names (Flags decoded to names, as FLP's decode_tcp_flags); the entry's timestamp is TimeFlowEndMs.
Lines are built by Polars (`struct.json_encode`), streams by a sort and a run-length id; nothing here
loops over flows in Python.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cramjam
import numpy as np
import polars as pl
import pyarrow as pa

from flowlake.engine.query import flags
from flowlake.engine.sinks import loki_pb

TS = "_loki_ts_ns"
LINE = "_loki_line"
_NULL_MEMBER = r',"\w+":null'  # a key is never inside a string: quotes there are escaped
_NULL_FIRST = r'^\{"\w+":null,?'


def prepare(frame: pl.DataFrame, label_fields: Sequence[str]) -> pl.DataFrame:
    """The columns a push needs: each label field as a string, TS (ns) and LINE (JSON of the other fields).

    A line leaves out the fields that are null in its row, as the reference's records do. Rows are encoded
    in groups of the same null pattern (few: DNS flows, RTT flows, drop flows, ...), each group with only
    its non-null columns, so no null ever needs removing from the JSON afterwards.
    """
    labels = set(label_fields)
    nulls = dict(zip(frame.columns, frame.null_count().row(0), strict=True))
    present = [c for c in frame.columns if nulls[c] < frame.height and c not in labels]
    partial = [c for c in present if nulls[c]]
    label_cols = [(pl.col(n).cast(pl.String) if n in frame.columns else pl.lit(None, pl.String)).alias(n)
                  for n in label_fields]
    work = _decoded_flags(frame) if "Flags" in present else frame
    keep = [*label_cols, (pl.col("TimeFlowEndMs").cast(pl.Int64) * 1_000_000).alias(TS)]
    if not partial:
        return work.select(*keep, _line(present).alias(LINE))
    pattern = work.select([pl.col(c).is_null() for c in partial])
    groups = pattern.with_row_index("_row").group_by(partial).agg("_row")
    if groups.height > _MAX_PATTERNS:  # many patterns: one encoding, then drop the nulls from the text
        line = _line(present).str.replace_all(_NULL_MEMBER, "").str.replace(_NULL_FIRST, "{")
        return work.select(*keep, line.alias(LINE))
    parts = []
    for row in groups.iter_rows(named=True):
        rows = work[row["_row"]]
        cols = [c for c in present if c not in partial or not row[c]]
        parts.append(rows.select(*keep, _line(cols).alias(LINE)))
    out: pl.DataFrame = pl.concat(parts, rechunk=True)
    return out


_MAX_PATTERNS = 256


def _line(columns: Sequence[str]) -> pl.Expr:
    return pl.struct(list(columns)).struct.json_encode() if columns else pl.lit("{}")


def _decoded_flags(frame: pl.DataFrame) -> pl.DataFrame:
    """Flags as names (FLP's decode_tcp_flags), decoded once per distinct value and joined back."""
    names = frame.select(pl.col("Flags").unique().drop_nulls()).with_columns(flags.decode(pl.col("Flags")).alias("_n"))
    return (frame.join(names, on="Flags", how="left", maintain_order="left")
            .with_columns(pl.col("_n").alias("Flags")).drop("_n"))


def line_bytes(prepared: pl.DataFrame) -> pl.Series:
    """Bytes of each line: what `batch_size_bytes` counts."""
    return prepared.get_column(LINE).str.len_bytes()


@dataclass(frozen=True)
class Streams:
    """Prepared rows grouped by label set: rows of stream i are `starts[i]:starts[i + 1]`, by time."""

    labels: list[dict[str, str]]
    starts: list[int]
    ts_ns: np.ndarray
    lines: pa.Array


def group(prepared: pl.DataFrame, label_fields: Sequence[str], static: Mapping[str, str]) -> Streams:
    """Sort by label set then time, and cut the runs of equal labels into streams."""
    fields = list(label_fields)
    ordered = prepared.sort([*fields, TS], nulls_last=True) if fields else prepared.sort(TS)
    if fields and ordered.height:
        runs = ordered.select(pl.struct(fields).rle().struct.field("len")).to_series()
        lengths = runs.to_list()
    else:
        lengths = [ordered.height] if ordered.height else []
    starts = [0, *np.cumsum(lengths).tolist()]
    firsts = ordered.select(fields)[starts[:-1]].to_dicts() if fields else [{} for _ in lengths]
    labels = [{**{k: str(v) for k, v in row.items() if v is not None and v != ""}, **static} for row in firsts]
    return Streams(labels, starts, ordered.get_column(TS).to_numpy(),
                   ordered.get_column(LINE).to_arrow().cast(pa.large_string()))


def label_string(labels: Mapping[str, str]) -> str:
    """Prometheus-style `{a="x", b="y"}`, names sorted: the protobuf StreamAdapter.labels form."""
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ", ".join(f'{k}="{esc(v)}"' for k, v in sorted(labels.items())) + "}"


def json_body(streams: Streams) -> bytes:
    """`{"streams": [{"stream": {labels}, "values": [["<ns>", "<line>"], ...]}, ...]}` (Loki's JSON push).

    Polars escapes the lines: each stream's values are one `{"values": [...]}` document from
    `struct.json_encode`, whose opening brace is swapped for the stream's labels.
    """
    sizes = np.diff(np.asarray(streams.starts, dtype=np.int64)).astype(np.int64)
    frame = pl.DataFrame({"sid": np.repeat(np.arange(len(sizes)), sizes), "ts": streams.ts_ns,
                          "line": pl.from_arrow(streams.lines)})
    docs = (frame.group_by("sid", maintain_order=True)
            .agg(pl.concat_list(pl.col("ts").cast(pl.String), pl.col("line")).alias("values"))
            .select(pl.struct("values").struct.json_encode()).to_series().to_list())
    parts = [f'{{"stream":{json.dumps(labels, ensure_ascii=False)},{doc[1:]}'
             for labels, doc in zip(streams.labels, docs, strict=True)]
    return ('{"streams":[' + ",".join(parts) + "]}").encode()


def protobuf_body(streams: Streams) -> bytes:
    """A logproto PushRequest, snappy block compressed (Loki's default push body)."""
    entries = loki_pb.encode_entries(streams.ts_ns, streams.lines)
    raw = loki_pb.push_request([loki_pb.stream_bytes(label_string(labels), entries, streams.starts[i],
                                                     streams.starts[i + 1])
                                for i, labels in enumerate(streams.labels)])
    return bytes(cramjam.snappy.compress_raw(raw))


CONTENT_TYPES = {"json": "application/json", "protobuf": "application/x-protobuf"}
BODIES = {"json": json_body, "protobuf": protobuf_body}
