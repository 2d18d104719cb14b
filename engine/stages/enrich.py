"""Enrich stage: adds Src/DstK8S_* identity columns by joining SrcAddr/DstAddr on the metadata table.

Built by the processor from `stages: [enrich]`. Two vectorized left joins per batch; values an
upstream already set are kept (coalesce), so enriching twice is harmless.
"""

from __future__ import annotations

import polars as pl

from flowlake.engine import selfmetrics
from flowlake.engine.metadata.base import IDENTITY_COLUMNS, MetadataSource


class EnrichStage:
    """Kubernetes identity by IP, from any `MetadataSource` (static file now, informers later)."""

    name = "enrich"

    def __init__(self, source: MetadataSource | None, cluster_name: str = "") -> None:
        self.source = source
        self.cluster_name = cluster_name or (source.cluster_name if source else "")

    def process(self, frame: pl.DataFrame) -> pl.DataFrame:
        if self.source is not None:
            table = self.source.table()
            for side in ("Src", "Dst"):
                frame = self._join_side(frame, table, side)
        if self.cluster_name:
            frame = frame.with_columns(
                pl.col("K8S_ClusterName").fill_null(pl.lit(self.cluster_name)))
        return frame

    @staticmethod
    def _join_side(frame: pl.DataFrame, table: pl.DataFrame, side: str) -> pl.DataFrame:
        out_cols = [f"{side}K8S_{c}" for c in IDENTITY_COLUMNS]
        right = table.rename({"ip": f"{side}Addr", **{c: f"_{o}" for c, o in zip(IDENTITY_COLUMNS, out_cols,
                                                                                 strict=True)}})
        joined = frame.join(right, on=f"{side}Addr", how="left", maintain_order="left")
        unmatched = joined.get_column(f"_{side}K8S_Name").null_count()
        if unmatched:
            selfmetrics.ENRICH_UNMATCHED.labels(side=side.lower()).inc(unmatched)
        return joined.with_columns(
            [pl.coalesce(pl.col(o), pl.col(f"_{o}")).alias(o) for o in out_cols]
        ).drop([f"_{o}" for o in out_cols])

    def flush(self) -> pl.DataFrame | None:
        return None
