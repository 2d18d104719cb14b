"""Conversation tracking stage (`stages: [conntrack]`): NetObserv's conntrack over whole Polars frames.

Built by the processor from `ProcessorConfig.conntrack`. Flows of one TCP/UDP/SCTP conversation (a flow
and its reply share `_HashId`, see `conntrack_hash`) are folded into a state frame keyed by that id, and
the stage emits `newConnection`, `heartbeat` and `endConnection` records next to the `flowLog` rows, as
selected by `log_types` (NetObserv's `processor.logTypes`).

Time: every call happens at one instant, "now" in ms. By default it is the processor's wall clock, as in
flowlogs-pipeline; `clock: event` uses the largest TimeFlowEndMs seen, advanced by the wall clock between
calls so that idle conversations still end; tests and benchmarks pass `clock=` (a callable). `process`
first ends the conversations already due (a flow arriving after its conversation timed out starts a new
one), then tracks the batch, then emits the heartbeats due; `flush` (called periodically by the
processor) ends conversations and emits heartbeats by time alone. A conversation ends `end_timeout` after
its last flow, or `terminating_timeout` after the first flow with FIN_ACK, RST or RST_ACK; deadlines are
strict (a conversation due at t ends at the first call after t).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import polars as pl

from flowlake.engine import schema, selfmetrics
from flowlake.engine.config import ConntrackConfig
from flowlake.engine.stages import conntrack_hash as chash
from flowlake.engine.stages import conntrack_state as cstate

TRANSPORT = (6, 17, 132)  # TCP, UDP, SCTP: the protocols with ports, as flowlogs-pipeline's IsTransportProtocol
CONVERSATION_TYPES = ("newConnection", "heartbeat", "endConnection")
LOG_TYPES = {"Flows": ("flowLog",), "Conversations": CONVERSATION_TYPES,
             "EndedConversations": ("endConnection",), "All": ("flowLog", *CONVERSATION_TYPES)}
# Flow columns the state needs; everything else only travels in flowLog rows.
_TRACK_COLUMNS = sorted({"Flags", "TimeFlowRttNs", *cstate.FIELD_COLUMNS} - {"numFlowLogs", "MaxTimeFlowRttNs"}
                        - {f"{c}{s}" for c in cstate.SPLIT_SUMS + cstate.OPTIONAL_SPLIT_SUMS for s in ("_AB", "_BA")})
_FLOW_SCHEMA = pl.DataFrame(schema.empty_batch()).schema


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class ConntrackStage:
    """Tracks conversations; thread-safe (transport threads call `process`, the flusher calls `flush`)."""

    name = "conntrack"

    def __init__(self, config: ConntrackConfig, clock: Callable[[], int] | None = None) -> None:
        self.config = config
        self.emit = set(LOG_TYPES[config.log_types])
        self._clock = clock
        self._end_ms = round(config.end_timeout_seconds * 1000)
        self._terminating_ms = round(config.terminating_timeout_seconds * 1000)
        self._heartbeat_ms = round(config.heartbeat_interval_seconds * 1000)
        self._columns = cstate.state_schema(_FLOW_SCHEMA)
        self.state = pl.DataFrame(schema=self._columns)
        self._now = 0  # never goes backwards, whatever the clock does
        self._wall: int | None = None
        self._lock = threading.Lock()

    # -- time
    def _tick(self, frame: pl.DataFrame | None) -> int:
        if self._clock is not None:
            now = self._clock()
        elif self.config.clock == "processing":
            now = _wall_ms()
        else:
            wall = _wall_ms()
            now = self._now + (wall - self._wall if self._wall is not None else 0)
            self._wall = wall
            seen = frame["TimeFlowEndMs"].max() if frame is not None and frame.height else None
            now = max(now, int(seen)) if isinstance(seen, int) else now
        self._now = max(self._now, now)
        return self._now

    # -- Stage protocol
    def process(self, frame: pl.DataFrame) -> pl.DataFrame:
        with self._lock:
            now = self._tick(frame)
            parts: list[pl.DataFrame | None] = [self._end_due(now, frame.schema)]
            passthrough = pl.col("_RecordType").is_not_null() & (pl.col("_RecordType") != "flowLog")
            passed = frame.filter(passthrough) if frame["_RecordType"].null_count() < frame.height else None
            flows = frame.filter(~passthrough) if passed is not None and passed.height else frame
            hashed = self._hash(flows)
            parts.append(self._track(hashed, now, frame.schema))
            if "flowLog" in self.emit:
                parts.append(hashed.drop("_hs", "_hd", "_h", "_keyed"))
                selfmetrics.CONNTRACK_OUTPUT.labels(type="flowLog").inc(hashed.height)
            parts += [self._heartbeats(now, frame.schema), passed]
            self._gauge()
            return pl.concat([p for p in parts if p is not None and p.height] or [frame.clear()])

    def flush(self) -> pl.DataFrame | None:
        with self._lock:
            now = self._tick(None)
            parts = [p for p in (self._end_due(now, _FLOW_SCHEMA), self._heartbeats(now, _FLOW_SCHEMA)) if p.height]
            self._gauge()
            return pl.concat(parts) if parts else None

    # -- steps
    def _hash(self, flows: pl.DataFrame) -> pl.DataFrame:
        """flowLog rows (`_RecordType`, `_HashId`) plus the endpoint and conversation hashes."""
        transport = pl.col("Proto").is_in(TRANSPORT).fill_null(False)
        ports = pl.all_horizontal(pl.col(c).is_not_null() for c in ("SrcAddr", "DstAddr", "SrcPort", "DstPort"))
        cls = flows.select(transport.alias("t"), (transport & ports).alias("k"))
        keyed = cls["k"].to_numpy()
        selfmetrics.CONNTRACK_INPUT.labels(classification="discarded").inc(flows.height - int(cls["t"].sum()))
        selfmetrics.CONNTRACK_INPUT.labels(classification="rejected").inc(int(cls["t"].sum()) - int(keyed.sum()))
        hs = chash.endpoint_hash(flows["SrcAddr"], flows["SrcPort"])
        hd = chash.endpoint_hash(flows["DstAddr"], flows["DstPort"])
        h = chash.conversation_hash(flows["Proto"], hs, hd)
        return flows.with_columns(pl.lit("flowLog").alias("_RecordType"), chash.hex_ids(h, keyed),
                                  pl.Series("_hs", hs), pl.Series("_hd", hd), pl.Series("_h", h),
                                  pl.Series("_keyed", keyed))

    def _track(self, hashed: pl.DataFrame, now: int, out: pl.Schema) -> pl.DataFrame | None:
        """Folds the batch into the state; returns the newConnection records (or None)."""
        rows = hashed.select("_keyed", "_h", "_hs", "_hd", *_TRACK_COLUMNS).filter("_keyed")
        if not rows.height:
            return None
        # The same flow twice in one batch (reported by two nodes, or sent twice) is counted once.
        dup = ~pl.struct("_h", "_hs", "TimeFlowStartMs", "TimeFlowEndMs", "Bytes", "Packets").is_first_distinct()
        rows = rows.with_columns(dup.alias("_dup"))
        keys = rows["_h"].unique()
        known = self.state.filter(pl.col("_h").is_in(keys.implode()))
        firsts = rows.filter(~pl.col("_h").is_in(known["_h"].implode()) & pl.col("_h").is_first_distinct())
        cap = self.config.max_connections_tracked
        room = firsts.height if cap == 0 else max(0, cap - self.state.height)
        firsts = firsts.head(room)  # flows of the conversations past the cap are not tracked (overflow)
        swap = (pl.lit(self.config.swap_ab) & ((pl.col("Flags") & cstate.SYN_ACK) != 0)).fill_null(False)
        firsts = firsts.with_columns(swap.alias("_swap")).with_columns(
            pl.when("_swap").then(pl.col("_hd")).otherwise(pl.col("_hs")).alias("_hA"))
        orient = pl.concat([known.select("_h", "_hA"), firsts.select("_h", "_hA")])
        # A narrow join keeps the wide rows in place; conversations over the cap get no A (null).
        rows = rows.with_columns(rows.select("_h").join(orient, on="_h", how="left", maintain_order="left")["_hA"])
        tracked = rows.filter(~pl.col("_dup") & pl.col("_hA").is_not_null())
        tracked = tracked.with_columns((pl.col("_hs") == pl.col("_hA")).alias("_ab"))
        self._count(rows, tracked, firsts)
        tracked = tracked.with_columns(cstate.directions(self.config.detect_end_connection))
        batch = cstate.unseen_as_null(tracked.group_by("_h").agg(cstate.aggregations()))
        is_new = pl.col("_h").is_in(firsts["_h"].implode())
        ident = firsts.select(cstate.identity(pl.col("_swap")))
        merged = cstate.merge(known, batch.filter(~is_new), now, self._end_ms, self._terminating_ms)
        created = cstate.create(batch.filter(is_new), ident, now, self._end_ms, self._terminating_ms,
                                self._heartbeat_ms, "newConnection" in self.emit)
        rest = self.state.filter(~pl.col("_h").is_in(known["_h"].implode())) if known.height else self.state
        self.state = pl.concat([cstate.conform(p, self._columns) for p in (rest, merged, created)])
        if self.state.n_chunks() > 32:
            self.state = self.state.rechunk()
        if "newConnection" not in self.emit or not firsts.height:
            return None
        # NetObserv emits newConnection right after the first flow is added: its values are that flow's.
        snap = pl.concat([ident, firsts.select(cstate.single_flow(pl.col("_swap")))], how="horizontal")
        selfmetrics.CONNTRACK_OUTPUT.labels(type="newConnection").inc(snap.height)
        return cstate.records(snap, "newConnection", now, pl.lit(True), self._ids(snap), out)

    def _count(self, rows: pl.DataFrame, tracked: pl.DataFrame, firsts: pl.DataFrame) -> None:
        dups = int(rows["_dup"].sum())
        over = rows.height - dups - tracked.height
        inputs = {"duplicate": dups, "discarded": over, "newConnection": firsts.height,
                  "update": tracked.height - firsts.height}
        for classification, n in inputs.items():
            selfmetrics.CONNTRACK_INPUT.labels(classification=classification).inc(n)
        selfmetrics.CONNTRACK_OVERFLOW.inc(over)
        if self.config.swap_ab:
            selfmetrics.CONNTRACK_TCP_FLAGS.labels(action="swapAB").inc(int(firsts["_swap"].sum()))
        if self.config.detect_end_connection:
            ends = tracked.select(((pl.col("Flags") & cstate.END_FLAGS) != 0).sum()).item()
            selfmetrics.CONNTRACK_TCP_FLAGS.labels(action="detectEndConnection").inc(int(ends or 0))

    def _end_due(self, now: int, out: pl.Schema) -> pl.DataFrame:
        """Removes conversations whose deadline passed; their endConnection records if selected."""
        soonest = self.state["_expiry"].min()
        if not isinstance(soonest, int) or soonest >= now:
            return pl.DataFrame(schema=out)
        due = self.state["_expiry"] < now
        ended, self.state = self.state.filter(due), self.state.filter(~due)
        by_flags = int(ended["_terminating"].sum())
        selfmetrics.CONNTRACK_ENDED.labels(reason="tcp_flags").inc(by_flags)
        selfmetrics.CONNTRACK_ENDED.labels(reason="timeout").inc(ended.height - by_flags)
        if "endConnection" not in self.emit:
            return pl.DataFrame(schema=out)
        selfmetrics.CONNTRACK_OUTPUT.labels(type="endConnection").inc(ended.height)
        return cstate.records(ended, "endConnection", now, ~pl.col("_reported"), self._ids(ended), out)

    def _heartbeats(self, now: int, out: pl.Schema) -> pl.DataFrame:
        """Heartbeat records of active (not terminating) conversations whose interval has passed."""
        if "heartbeat" not in self.emit or not self.state.height:
            return pl.DataFrame(schema=out)
        due_expr = ~pl.col("_terminating") & (pl.col("_next_hb") < now)
        due = self.state.select(due_expr).to_series()
        if not due.any():
            return pl.DataFrame(schema=out)
        beats = self.state.filter(due)
        self.state = self.state.with_columns(
            pl.when(due_expr).then(now + self._heartbeat_ms).otherwise(pl.col("_next_hb")).alias("_next_hb"),
            (pl.col("_reported") | due_expr).alias("_reported"))
        selfmetrics.CONNTRACK_OUTPUT.labels(type="heartbeat").inc(beats.height)
        return cstate.records(beats, "heartbeat", now, ~pl.col("_reported"), self._ids(beats), out)

    @staticmethod
    def _ids(rows: pl.DataFrame) -> pl.Series:
        return chash.hex_ids(rows["_h"].to_numpy().astype(np.uint64, copy=False))

    def _gauge(self) -> None:
        terminating = int(self.state["_terminating"].sum())
        selfmetrics.CONNTRACK_CONNECTIONS.labels(phase="terminating").set(terminating)
        selfmetrics.CONNTRACK_CONNECTIONS.labels(phase="active").set(self.state.height - terminating)
