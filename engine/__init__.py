"""flowlake processor engine, and the front door for notebooks: `fl.connect(...)`, `fl.open_lake(...)`.

    import flowlake.engine as fl
    client = fl.connect("grpc://127.0.0.1:8815")      # the Flight query service of `flowlake api`
    client.sql("SELECT SrcK8S_Namespace, sum(Bytes) FROM flows GROUP BY 1")
    fl.open_lake("./flowlake-data/lake", start="2026-11-26T00:00:00Z")   # LazyFrame, direct read

The client loads on first use, so importing the engine (every `flowlake` command does) stays cheap.
"""

from __future__ import annotations

import typing

if typing.TYPE_CHECKING:
    from flowlake.engine.client import Client, connect, open_lake

__all__ = ["Client", "connect", "open_lake"]


def __getattr__(name: str) -> typing.Any:
    if name in __all__:
        from flowlake.engine import client

        return getattr(client, name)
    raise AttributeError(f"module 'flowlake.engine' has no attribute {name!r}")
