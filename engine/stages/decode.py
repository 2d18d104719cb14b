"""Decode stage: names for coded fields the agent sends as numbers; today the DNS response code.

Built by the processor from `stages: [decode]`. DnsFlagsResponseCode gets the RCODE name of the low
4 bits of DnsFlags (RFC 1035 §4.1.1, RFC 2136, RFC 8490; IANA "DNS RCODEs") where it is null and
DnsFlags is set; a name the agent already sent is kept. The names are the IANA mnemonics NetObserv
shows (NoError, NXDomain, ...); 12-15 are unassigned and stay their number as text.

TCP flags are not decoded here: Flags stays a uint16 bitfield in storage (compact, and a bit test is
the cheapest filter) and `engine.query.flags` turns it into names on output, as FLP's
decode_tcp_flags does for Loki lines.
"""

from __future__ import annotations

import polars as pl

RCODE_NAMES: tuple[str, ...] = (
    "NoError", "FormErr", "ServFail", "NXDomain", "NotImp", "Refused", "YXDomain", "YXRRSet",
    "NXRRSet", "NotAuth", "NotZone", "DSOTYPENI", "12", "13", "14", "15",
)


def rcode_expr() -> pl.Expr:
    """DnsFlagsResponseCode, filled from DnsFlags & 0xF where missing."""
    code = (pl.col("DnsFlags").cast(pl.Int32) & 0xF).replace_strict(
        list(range(16)), list(RCODE_NAMES), return_dtype=pl.String)
    return pl.coalesce(pl.col("DnsFlagsResponseCode"), code).alias("DnsFlagsResponseCode")


class DecodeStage:
    """Fills DnsFlagsResponseCode from DnsFlags."""

    name = "decode"

    def process(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(rcode_expr())

    def flush(self) -> pl.DataFrame | None:
        return None
