"""Address matching as Polars expressions: is a text IP column inside a CIDR network?

Used by `engine.query.filters` for `address=10.128.0.0/14` and for full addresses given without
quotes. Addresses are parsed with string and list expressions (no per-row Python), so IPv6 text in
any valid compressed form compares equal to its expanded form.
"""

from __future__ import annotations

import ipaddress

import polars as pl

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NO_GROUPS = pl.lit([], dtype=pl.List(pl.String))


def _ipv4_octets(col: pl.Expr) -> tuple[pl.Expr, list[pl.Expr]]:
    """(valid, [4 octet expressions]); IPv4-mapped IPv6 text (`::ffff:10.0.0.1`) counts as IPv4."""
    parts = col.str.strip_prefix("::ffff:").str.split(".")
    octets = [parts.list.get(i, null_on_oob=True).str.to_integer(strict=False) for i in range(4)]
    valid = parts.list.len() == 4
    for o in octets:
        valid = valid & o.is_between(0, 255)
    return valid, octets


def _ipv6_groups(col: pl.Expr) -> tuple[pl.Expr, list[pl.Expr]]:
    """(valid, [8 hextet expressions]) after expanding `::` to the missing zero groups."""
    text = col.str.to_lowercase()
    halves = text.str.split("::")

    def groups(part: pl.Expr) -> pl.Expr:
        return part.str.split(":").list.filter(pl.element() != "").fill_null(_NO_GROUPS)

    left = groups(halves.list.get(0, null_on_oob=True))
    right = groups(halves.list.get(1, null_on_oob=True))
    known = (left.list.len() + right.list.len()).cast(pl.Int32)  # UInt32 would wrap below zero
    full = pl.concat_list([left, pl.lit("0").repeat_by((8 - known).clip(0)), right])
    hextets = [full.list.get(i, null_on_oob=True).str.to_integer(base=16, strict=False) for i in range(8)]
    shape_ok = ((halves.list.len() == 2) & (known <= 7)) | ((halves.list.len() == 1) & (known == 8))
    valid = text.str.contains(":", literal=True) & shape_ok
    for h in hextets:
        valid = valid & h.is_between(0, 0xFFFF)
    return valid, hextets


def _prefix_match(parts: list[pl.Expr], net_parts: list[int], prefix: int, bits: int) -> pl.Expr:
    """Compare the first `prefix` bits of `parts` (each `bits` wide) with the network's parts."""
    cond = pl.lit(True)
    whole, rest = divmod(prefix, bits)
    for k in range(whole):
        cond = cond & (parts[k] == net_parts[k])
    if rest:
        host_mask = (1 << (bits - rest)) - 1
        cond = cond & parts[whole].is_between(net_parts[whole], net_parts[whole] | host_mask)
    return cond


def in_network(col: pl.Expr, network: Network) -> pl.Expr:
    """True where `col` holds an address inside `network`; False for nulls and non-addresses."""
    packed = network.network_address.packed
    if network.version == 4:
        valid, octets = _ipv4_octets(col)
        return (valid & _prefix_match(octets, list(packed), network.prefixlen, 8)).fill_null(False)
    valid6, hextets = _ipv6_groups(col)
    net_hextets = [int.from_bytes(packed[i:i + 2], "big") for i in range(0, 16, 2)]
    return (valid6 & _prefix_match(hextets, net_hextets, network.prefixlen, 16)).fill_null(False)


def parse_network(text: str) -> Network | None:
    """A CIDR (`10.0.0.0/8`) or a single address (as a /32 or /128), or None if `text` is neither."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
