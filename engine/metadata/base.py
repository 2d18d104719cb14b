"""The MetadataSource seam: IP -> Kubernetes identity, as one Polars table. Read by the enrich stage."""

from __future__ import annotations

from typing import Protocol

import polars as pl

# Columns of the identity table; the enrich stage prefixes them with Src/DstK8S_.
IDENTITY_COLUMNS: tuple[str, ...] = (
    "Name", "Type", "Namespace", "OwnerName", "OwnerType", "HostIP", "HostName", "Zone",
)
TABLE_SCHEMA: dict[str, type[pl.DataType]] = {"ip": pl.String, **{c: pl.String for c in IDENTITY_COLUMNS}}


class MetadataSource(Protocol):
    """Gives the current identity table (one row per IP) and the cluster name."""

    cluster_name: str

    def table(self) -> pl.DataFrame: ...
