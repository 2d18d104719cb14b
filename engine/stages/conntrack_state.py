"""Conversation state for the conntrack stage: one Polars row per tracked conversation, merged per batch.

Called only by `stages.conntrack`. The output fields are those NetObserv's operator configures
(`flp_pipeline_builder.go addConnectionTracking`): Bytes and Packets summed and split A->B / B->A,
numFlowLogs counted, TimeFlowStartMs min, TimeFlowEndMs max, FlowDirection and AgentIP first, drops summed
and split, the latest drop state/cause, DNS response code (last), DnsLatencyMs max, MaxTimeFlowRttNs (max
of TimeFlowRttNs), NetworkEvents (last). A batch is reduced with one group-by per conversation and folded
into the state with joins: no Python loop over flows or conversations.
"""

from __future__ import annotations

import polars as pl

from flowlake.engine import schema

FIN_ACK, RST, RST_ACK, SYN_ACK = 512, 4, 1024, 256  # schema.py `Flags` bits
END_FLAGS = FIN_ACK | RST | RST_ACK  # a flow carrying one of these closes its TCP conversation

SPLIT_SUMS = ("Bytes", "Packets")  # required columns: the sums are never null
OPTIONAL_SPLIT_SUMS = ("PktDropBytes", "PktDropPackets")  # null while no flow carried the field
MINIMA = {"TimeFlowStartMs": "TimeFlowStartMs"}  # output field -> input field
MAXIMA = {"TimeFlowEndMs": "TimeFlowEndMs", "DnsLatencyMs": "DnsLatencyMs", "MaxTimeFlowRttNs": "TimeFlowRttNs"}
LASTS = ("PktDropLatestState", "PktDropLatestDropCause", "DnsFlagsResponseCode", "NetworkEvents")
# Taken from the conversation's first flow. Etype is required by the schema; the K8S/label columns make
# conversation records useful when conntrack runs after enrich (before it, enrich fills them later).
FIRSTS = ("Proto", "Etype", "FlowDirection", "AgentIP", "K8S_FlowLayer", "K8S_ClusterName")
# Src/Dst pairs oriented A/B: A is the first flow's source, or its destination when swapAB applies.
ORIENTED = (("SrcAddr", "DstAddr"), ("SrcPort", "DstPort"),
            *((f.name, "Dst" + f.name[3:]) for f in schema.FIELDS if f.name.startswith("SrcK8S_")),
            ("SrcSubnetLabel", "DstSubnetLabel"))

META: dict[str, pl.DataType] = {"_h": pl.UInt64(), "_hA": pl.UInt64(), "_terminating": pl.Boolean(),
                                "_expiry": pl.Int64(), "_next_hb": pl.Int64(), "_reported": pl.Boolean()}
FIELD_COLUMNS = (*(c for pair in ORIENTED for c in pair), *FIRSTS, "numFlowLogs",
                 *(f"{c}{s}" for c in SPLIT_SUMS + OPTIONAL_SPLIT_SUMS for s in ("", "_AB", "_BA")),
                 *MINIMA, *MAXIMA, *LASTS)


def state_schema(flow_schema: pl.Schema) -> dict[str, pl.DataType]:
    """Column -> dtype of the state frame: meta columns then output fields typed as in the flow schema."""
    return {**META, **{c: flow_schema[c] for c in FIELD_COLUMNS}}


def directions(detect_end: bool) -> list[pl.Expr]:
    """Row-wise A->B / B->A copies of the split sums (so the group-by only sums) and the end-flag test."""
    ab = pl.col("_ab")
    out = []
    for c in SPLIT_SUMS + OPTIONAL_SPLIT_SUMS:
        zero = pl.when(pl.col(c).is_not_null()).then(0)  # a null input stays null
        out += [pl.when(ab).then(pl.col(c)).otherwise(zero).alias(f"{c}_AB"),
                pl.when(ab).then(zero).otherwise(pl.col(c)).alias(f"{c}_BA")]
    end = ((pl.col("Flags") & END_FLAGS) != 0) if detect_end else pl.lit(False)
    return [*out, end.fill_null(False).alias("_end")]


def aggregations() -> list[pl.Expr]:
    """Per-conversation reductions of one batch's tracked rows (after `directions`); all fast-path."""
    out = [pl.len().alias("numFlowLogs"), pl.col("_end").any()]
    out += [pl.col(f"{c}{s}").sum() for c in SPLIT_SUMS + OPTIONAL_SPLIT_SUMS for s in ("", "_AB", "_BA")]
    out += [pl.col(c).count().alias(f"_n{c}") for c in OPTIONAL_SPLIT_SUMS]
    out += [pl.col(i).min().alias(o) for o, i in MINIMA.items()]
    out += [pl.col(i).max().alias(o) for o, i in MAXIMA.items()]
    return out + [pl.col(c).last(ignore_nulls=True) for c in LASTS]


def unseen_as_null(batch: pl.DataFrame) -> pl.DataFrame:
    """Optional sums of conversations where no flow carried the field are null, not 0."""
    return batch.with_columns(pl.when(pl.col(f"_n{c}") > 0).then(pl.col(f"{c}{s}")).alias(f"{c}{s}")
                              for c in OPTIONAL_SPLIT_SUMS for s in ("", "_AB", "_BA"))


def identity(swap: pl.Expr) -> list[pl.Expr]:
    """A new conversation's fixed fields from its first flow (one row each): FIRSTS and A/B-oriented pairs."""
    out = [pl.col("_h"), pl.col("_hA"), *(pl.col(c) for c in FIRSTS)]
    for a, b in ORIENTED:
        out += [pl.when(swap).then(pl.col(b)).otherwise(pl.col(a)).alias(a),
                pl.when(swap).then(pl.col(a)).otherwise(pl.col(b)).alias(b)]
    return out


def single_flow(swap: pl.Expr) -> list[pl.Expr]:
    """What `aggregations` gives for one flow, row-wise (the newConnection record's values)."""
    out = [pl.lit(1, pl.UInt32).alias("numFlowLogs")]
    for c in SPLIT_SUMS + OPTIONAL_SPLIT_SUMS:
        zero = pl.when(pl.col(c).is_not_null()).then(0)  # null stays null for the optional sums
        out += [pl.col(c), pl.when(swap).then(zero).otherwise(pl.col(c)).alias(f"{c}_AB"),
                pl.when(swap).then(pl.col(c)).otherwise(zero).alias(f"{c}_BA")]
    out += [pl.col(i).alias(o) for o, i in {**MINIMA, **MAXIMA}.items()]
    return [*out, *(pl.col(c) for c in LASTS)]


def merge(old: pl.DataFrame, batch: pl.DataFrame, now: int, end_ms: int, terminating_ms: int) -> pl.DataFrame:
    """Fold a batch's reductions (`batch`, one row per conversation) into the existing `old` state rows."""
    j = old.join(batch, on="_h", how="inner", suffix="_b")

    def b(c: str) -> pl.Expr:
        return pl.col(f"{c}_b")

    sums = [c for c in FIELD_COLUMNS if c == "numFlowLogs" or c.startswith(SPLIT_SUMS)]
    optional = [c for c in FIELD_COLUMNS if c.startswith(OPTIONAL_SPLIT_SUMS)]
    terminating = pl.col("_terminating")
    return j.with_columns(
        *[(pl.col(c) + b(c)).alias(c) for c in sums],
        *[pl.when(pl.col(c).is_null() & b(c).is_null()).then(None)
          .otherwise(pl.col(c).fill_null(0) + b(c).fill_null(0)).alias(c) for c in optional],
        *[pl.min_horizontal(c, b(c)).alias(c) for c in MINIMA],
        *[pl.max_horizontal(c, b(c)).alias(c) for c in MAXIMA],
        *[pl.coalesce(b(c), pl.col(c)).alias(c) for c in LASTS],
        # A terminating conversation keeps its deadline (NetObserv: "expiry time can't be updated anymore").
        pl.when(terminating).then(pl.col("_expiry")).when(pl.col("_end")).then(now + terminating_ms)
        .otherwise(now + end_ms).alias("_expiry"),
        (terminating | pl.col("_end")).alias("_terminating"),
    )


def create(batch: pl.DataFrame, ident: pl.DataFrame, now: int, end_ms: int, terminating_ms: int,
           heartbeat_ms: int, reported: bool) -> pl.DataFrame:
    """State rows for conversations first seen in this batch: reductions joined to their `identity`."""
    return batch.join(ident, on="_h", how="inner").with_columns(
        pl.when(pl.col("_end")).then(now + terminating_ms).otherwise(now + end_ms).alias("_expiry"),
        pl.col("_end").alias("_terminating"),
        pl.lit(now + heartbeat_ms).alias("_next_hb"),
        pl.lit(reported).alias("_reported"),
    )


def conform(frame: pl.DataFrame, columns: dict[str, pl.DataType]) -> pl.DataFrame:
    """Exactly `columns`, in order and typed, so state pieces concatenate without relaxing types."""
    return frame.select([pl.col(c).cast(t) for c, t in columns.items()])


def records(rows: pl.DataFrame, kind: str, now: int, is_first: pl.Expr, hash_ids: pl.Series,
            out_schema: pl.Schema) -> pl.DataFrame:
    """Conversation records (`kind` newConnection, heartbeat or endConnection) in the flow schema's layout."""
    special = {"_RecordType": pl.lit(kind, pl.String), "_HashId": pl.lit(hash_ids),
               "_IsFirst": is_first, "TimeReceived": pl.lit(now // 1000, pl.Int64)}
    return rows.select([
        (special[c] if c in special else pl.col(c) if c in rows.columns else pl.lit(None)).cast(t).alias(c)
        for c, t in out_schema.items()
    ])
