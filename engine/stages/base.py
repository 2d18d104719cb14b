"""The Stage seam: one step of the processor pipeline over whole Polars frames. Built by the processor."""

from __future__ import annotations

from typing import Protocol

import polars as pl


class Stage(Protocol):
    """Transforms a frame of the flow schema; `flush` returns rows held back (conntrack), if any."""

    name: str

    def process(self, frame: pl.DataFrame) -> pl.DataFrame: ...

    def flush(self) -> pl.DataFrame | None: ...
