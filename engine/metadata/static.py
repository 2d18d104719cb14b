"""Static metadata file: the IP -> Kubernetes identity source outside a cluster.

Written by `flowlake synth` (or by hand, or exported from a cluster); read by the processor's enrich
stage when no Kubernetes API is configured. Format (JSON):

    {"format": "flowlake-metadata/v1", "cluster": "prod-eu",
     "entries": [{"ip": "10.128.0.12", "name": "web-6f7d-x2x", "type": "Pod", "namespace": "shop",
                  "ownerName": "web", "ownerType": "Deployment", "hostIP": "10.0.0.3",
                  "hostName": "node-3", "zone": "eu-west-1a"}, ...]}
"""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import polars as pl

from flowlake.engine.errors import ConfigError
from flowlake.engine.metadata.base import IDENTITY_COLUMNS, TABLE_SCHEMA

FORMAT = "flowlake-metadata/v1"
# File keys (camelCase, as in Kubernetes objects) -> table columns.
KEYS: dict[str, str] = {"ip": "ip", "name": "Name", "type": "Type", "namespace": "Namespace",
                        "ownerName": "OwnerName", "ownerType": "OwnerType", "hostIP": "HostIP",
                        "hostName": "HostName", "zone": "Zone"}


class StaticMetadata:
    """Identity table loaded once from a static metadata file."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.cluster_name, self._table = load(self.path)

    def table(self) -> pl.DataFrame:
        return self._table


def load(path: str) -> tuple[str, pl.DataFrame]:
    """Parse a metadata file into (cluster name, identity table); errors name the file and the fix."""
    try:
        with fsspec.open(path, "rt") as fh:
            doc = json.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"metadata file {path} not found; create one with `flowlake synth "
                          f"--metadata-out {path}` or fix --metadata") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"metadata file {path}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"metadata file {path}: expected an object with \"format\": \"{FORMAT}\"")
    entries = doc.get("entries")
    if not isinstance(entries, list):
        raise ConfigError(f"metadata file {path}: \"entries\" must be a list of objects")
    bad = [i for i, e in enumerate(entries) if not isinstance(e, dict) or not e.get("ip")]
    if bad:
        raise ConfigError(f"metadata file {path}: entries {bad[:5]} have no \"ip\"")
    cols = {col: [e.get(key) for e in entries] for key, col in KEYS.items()}
    table = pl.DataFrame(cols, schema=TABLE_SCHEMA)
    # One identity per IP: a later entry wins, as a later informer event would.
    table = table.unique(subset="ip", keep="last", maintain_order=True)
    return str(doc.get("cluster") or ""), table


def dump(path: str, table: pl.DataFrame, cluster: str) -> None:
    """Write an identity table as a metadata file (used by `flowlake synth --metadata-out`)."""
    inverse = {col: key for key, col in KEYS.items()}
    missing = [c for c in ("ip", *IDENTITY_COLUMNS) if c not in table.columns]
    if missing:
        raise ConfigError(f"metadata table lacks columns {missing}")
    rows = table.select(["ip", *IDENTITY_COLUMNS]).rename(inverse).to_dicts()
    entries = [{k: v for k, v in r.items() if v is not None} for r in rows]
    with fsspec.open(path, "wt") as fh:
        json.dump({"format": FORMAT, "cluster": cluster, "entries": entries}, fh, indent=0)
