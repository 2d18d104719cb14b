"""flowlake's HTTP API: `create_app(lake_url)` builds the FastAPI app that `flowlake api` serves.

`create_app` is imported on first use, so `flowlake --help` (which imports `api.cli`) does not pay
for FastAPI and Polars.
"""

from __future__ import annotations

import typing

if typing.TYPE_CHECKING:
    from flowlake.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> typing.Any:
    if name == "create_app":
        from flowlake.api.app import create_app

        return create_app
    raise AttributeError(f"module 'flowlake.api' has no attribute {name!r}")
