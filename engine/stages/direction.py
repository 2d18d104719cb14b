"""Direction stage: FlowDirection reinterpreted at node level from the reporter and the two host IPs.

Built by the processor from `stages: [direction]` (settings in `direction:`); it must run after
`enrich`, which sets Src/DstK8S_HostIP. The rule is FLP's reinterpret_direction
(`pkg/pipeline/transform/transform_network_direction.go`; `reference/netobserv.md` §3.1), with the
reporter in AgentIP and the nodes in SrcK8S_HostIP / DstK8S_HostIP (absent = empty):
- no reporter (AgentIP null or empty): FlowDirection is left as it is;
- src node != dst node: reporter == src node -> 1 (egress); reporter == dst node -> 0 (ingress);
  otherwise (the reporter is neither node) the value is left as it is;
- src node == dst node and not empty -> 2 (inner: both ends on one node);
- both nodes unknown: left as it is.

The interface-level value: FLP can first copy FlowDirection to an `ifDirectionField`. Our schema already
carries the per-interface directions in IfDirections (the agent's first-seen interface is entry 0, and
its direction is the value the agent put in FlowDirection), so nothing is lost in the usual case. When
`keep_interface_direction` is on and a row has no IfDirections (an agent or exporter that does not send
the list), the stage stores the incoming FlowDirection as `IfDirections = [value]` before rewriting it.
"""

from __future__ import annotations

import polars as pl

EGRESS, INGRESS, INNER = 1, 0, 2


def direction_expr() -> pl.Expr:
    """The reinterpreted FlowDirection (UInt8) as one vectorized expression."""
    reporter = pl.col("AgentIP")
    src = pl.col("SrcK8S_HostIP").fill_null("")
    dst = pl.col("DstK8S_HostIP").fill_null("")
    keep = pl.col("FlowDirection")
    return (
        pl.when(reporter.is_null() | (reporter == "")).then(keep)
        .when((src != dst) & (src == reporter)).then(pl.lit(EGRESS, pl.UInt8))
        .when((src != dst) & (dst == reporter)).then(pl.lit(INGRESS, pl.UInt8))
        .when((src == dst) & (src != "")).then(pl.lit(INNER, pl.UInt8))
        .otherwise(keep)
        .cast(pl.UInt8)
        .alias("FlowDirection")
    )


class DirectionStage:
    """Rewrites FlowDirection (0 ingress, 1 egress, 2 inner) as seen by the node, not the interface."""

    name = "direction"

    def __init__(self, keep_interface_direction: bool = True) -> None:
        self.keep_interface_direction = keep_interface_direction

    def process(self, frame: pl.DataFrame) -> pl.DataFrame:
        columns = [direction_expr()]
        if self.keep_interface_direction:
            fd = pl.col("FlowDirection")
            columns.append(
                pl.when(pl.col("IfDirections").is_null() & fd.is_not_null())
                .then(pl.concat_list(fd.cast(pl.UInt8)))
                .otherwise(pl.col("IfDirections"))
                .alias("IfDirections"))
        return frame.with_columns(columns)

    def flush(self) -> pl.DataFrame | None:
        return None
