"""Filter keys: which flow columns a console filter key names, and what kind of values they hold.

Used by `engine.query.filters` when it compiles a filter string. A key is a field name
(`SrcK8S_Namespace`), a filter id (`src_namespace`) or a common key (`namespace`: source or destination).
"""

from __future__ import annotations

import difflib
from enum import Enum

import pyarrow as pa

from flowlake.engine import schema
from flowlake.engine.errors import FilterError


class Kind(Enum):
    """How a column's values are matched."""

    TEXT = "text"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    TEXT_LIST = "text list"
    INTEGER_LIST = "integer list"
    UNSUPPORTED = "unsupported"


# Address columns also accept a CIDR and compare full addresses as addresses, not as text.
IP_FIELDS = frozenset({"SrcAddr", "DstAddr", "AgentIP", "SrcK8S_HostIP", "DstK8S_HostIP",
                       "XlatSrcAddr", "XlatDstAddr"})


def _kind(t: pa.DataType) -> Kind:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return Kind.TEXT
    if pa.types.is_integer(t):
        return Kind.INTEGER
    if pa.types.is_boolean(t):
        return Kind.BOOLEAN
    if pa.types.is_list(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
        return Kind.TEXT_LIST
    if pa.types.is_list(t) and pa.types.is_integer(t.value_type):
        return Kind.INTEGER_LIST
    return Kind.UNSUPPORTED


KINDS: dict[str, Kind] = {f.name: _kind(f.type) for f in schema.FIELDS}


def _common_keys() -> dict[str, tuple[str, str]]:
    """`namespace` -> (SrcK8S_Namespace, DstK8S_Namespace): every filter id that has src_ and dst_ twins."""
    out: dict[str, tuple[str, str]] = {}
    for fid, name in schema.FILTER_IDS.items():
        if fid.startswith("src_") and f"dst_{fid[4:]}" in schema.FILTER_IDS:
            out[fid[4:]] = (name, schema.FILTER_IDS[f"dst_{fid[4:]}"])
    return out


COMMON_KEYS: dict[str, tuple[str, str]] = _common_keys()
ALL_KEYS: tuple[str, ...] = tuple(sorted({*schema.BY_NAME, *schema.FILTER_IDS, *COMMON_KEYS}))


def resolve(key: str, position: int) -> tuple[str, ...]:
    """The column(s) a key names (two for a common key); `FilterError` naming close keys otherwise."""
    if not key:
        raise FilterError("empty filter key: write key=value, e.g. namespace=default", position)
    if key in schema.BY_NAME:
        return (key,)
    if key in schema.FILTER_IDS:
        return (schema.FILTER_IDS[key],)
    if key in COMMON_KEYS:
        return COMMON_KEYS[key]
    close = difflib.get_close_matches(key, ALL_KEYS, n=5, cutoff=0.6)
    if not close:  # case mistakes are common (srck8s_namespace): retry case-insensitively
        lowered = {k.lower(): k for k in ALL_KEYS}
        close = [lowered[k] for k in difflib.get_close_matches(key.lower(), lowered, n=5, cutoff=0.6)]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise FilterError(
        f"unknown filter key {key!r}: {hint}keys are flow field names (SrcK8S_Namespace), filter ids "
        "(src_namespace) or common keys matching either side (namespace); see docs/flows-format.md",
        position,
    )
