"""TCP flag names for the `Flags` bitfield: decoding to names for output, name lookup for filters.

Used by `engine.query.filters` (`tcp_flags=SYN`) and `engine.query.flows` (records carry names, like
NetObserv after its decode_tcp_flags stage). Bits are the ones documented on `schema.FIELDS["Flags"]`.
"""

from __future__ import annotations

import polars as pl

TCP_FLAGS: dict[str, int] = {
    "FIN": 1, "SYN": 2, "RST": 4, "PSH": 8, "ACK": 16, "URG": 32, "ECE": 64, "CWR": 128,
    "SYN_ACK": 256, "FIN_ACK": 512, "RST_ACK": 1024,
}


def decode(col: pl.Expr) -> pl.Expr:
    """The names of the bits set in a Flags column, in bit order; null where Flags is null."""
    names = [pl.when((col & bit) != 0).then(pl.lit(name)) for name, bit in TCP_FLAGS.items()]
    return pl.when(col.is_null()).then(None).otherwise(pl.concat_list(names).list.drop_nulls())
