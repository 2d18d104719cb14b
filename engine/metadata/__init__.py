"""Metadata sources: IP -> Kubernetes identity tables for the enrich stage; built by `engine.processor`.

    source = StaticMetadata("metadata.json")           # a file (`flowlake synth` writes one)
    source = KubeMetadata(config.kubernetes, "prod")   # informers against the API server
    source.table()                                     # ip, Name, Type, Namespace, OwnerName, ...

`KubeMetadata` loads lazily: the kubernetes client is an optional extra (`flowlake[k8s]`).
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from flowlake.engine.metadata.base import IDENTITY_COLUMNS, TABLE_SCHEMA, MetadataSource
    from flowlake.engine.metadata.kube import KubeMetadata
    from flowlake.engine.metadata.static import StaticMetadata

_WHERE = {"IDENTITY_COLUMNS": "base", "TABLE_SCHEMA": "base", "MetadataSource": "base", "KubeMetadata": "kube",
          "StaticMetadata": "static"}

__all__ = ["IDENTITY_COLUMNS", "KubeMetadata", "MetadataSource", "StaticMetadata", "TABLE_SCHEMA"]


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(_importlib.import_module(f"flowlake.engine.metadata.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
