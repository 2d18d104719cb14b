"""Subnets stage: SrcSubnetLabel / DstSubnetLabel from named CIDR lists (FLP add_subnet_label).

Built by the processor from `stages: [subnets]` with the `subnets.labels` list. Semantics follow FLP
(`pkg/pipeline/transform/subnet_labels.go`, a longest-prefix-match routing table):
- IPv4 and IPv6; an address matches the most specific CIDR containing it, whatever list it is in
  (`10.0.0.0/8` -> "internal" and `10.1.0.0/16` -> "EXT:vpn" label 10.1.2.3 "EXT:vpn");
- the same CIDR in two lists: the later list wins (FLP's table insert replaces the value);
- a label with `private: true` also names private addresses (10/8, 172.16/12, 192.168/16, fc00::/7)
  that no CIDR matches (FLP's CheckPrivate);
- IPv4-mapped IPv6 text (`::ffff:10.0.0.1`) is the IPv4 address; unparsable text gets no label;
- a label an upstream already set is kept.

How: at construction the CIDRs are flattened (plain Python over the config, not per flow) into
disjoint address intervals, each with the label of its most specific prefix, in a 128-bit space
where IPv4 is `::ffff:a.b.c.d`. Per batch, the distinct addresses are parsed to UInt128 with Polars
string expressions and looked up with one `join_asof` (the interval starting at or before the
address, then a check of its end); the labels are joined back onto the flows.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Sequence

import polars as pl

from flowlake.engine.errors import ConfigError

_V4_BASE = 0xFFFF << 32  # ::ffff:0.0.0.0, where IPv4 lives in the 128-bit space
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
_NO_GROUPS = pl.lit([], dtype=pl.List(pl.String))


def _span(cidr: str, where: str) -> tuple[int, int, int]:
    """(first, last, prefix length in the 128-bit space) of a CIDR; ConfigError naming `where` if bad."""
    try:
        net = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError as exc:
        raise ConfigError(f"{where}: {cidr!r} is not a CIDR; write e.g. 10.0.0.0/8 or fd00::/8") from exc
    first = int(net.network_address) + (_V4_BASE if net.version == 4 else 0)
    bits = net.prefixlen + (96 if net.version == 4 else 0)
    return first, first + net.num_addresses - 1, bits


def build_intervals(labels: Sequence[tuple[str, Sequence[str], bool]]) -> pl.DataFrame:
    """Disjoint (start, end, label) intervals, longest prefix winning, for (name, cidrs, private) lists."""
    prefixes: dict[tuple[int, int], tuple[int, int, str]] = {}  # (first, bits) -> (last, rank, label)
    for i, (name, cidrs, private) in enumerate(labels):
        for j, cidr in enumerate(cidrs):
            first, last, bits = _span(cidr, f"subnets.labels[{i}].cidrs[{j}]")
            prefixes[(first, bits)] = (last, bits, name)  # later lists replace earlier ones, as in FLP
        if private:
            for cidr in PRIVATE:  # rank -1: below any configured prefix, even 0.0.0.0/0
                first, last, _ = _span(cidr, "private")
                prefixes.setdefault((first, -1), (last, -1, name))
    # Nested CIDRs: sweep the boundaries; each elementary piece takes the most specific cover.
    cuts = sorted({p for (first, _), (last, _, _) in prefixes.items() for p in (first, last + 1)})
    spans = sorted(((first, last, rank, label) for (first, _), (last, rank, label) in prefixes.items()))
    starts: list[int] = []
    ends: list[int] = []
    names: list[str] = []
    active: list[tuple[int, int, str]] = []  # (last, rank, label) of the spans covering the sweep point
    k = 0
    for lo, hi in itertools.pairwise(cuts):
        while k < len(spans) and spans[k][0] <= lo:
            active.append(spans[k][1:])
            k += 1
        active = [a for a in active if a[0] >= lo]
        if active:
            best = max(active, key=lambda a: a[1])[2]
            if names and names[-1] == best and ends[-1] == lo - 1:
                ends[-1] = hi - 1  # merge with the previous piece of the same label
            else:
                starts.append(lo)
                ends.append(hi - 1)
                names.append(best)
    return pl.DataFrame({"_start": pl.Series(starts, dtype=pl.UInt128), "_end": pl.Series(ends, dtype=pl.UInt128),
                         "_label": pl.Series(names, dtype=pl.String)})


def _pack(parts: list[pl.Expr], bits: int, base: int) -> pl.Expr:
    """`base` plus the big-endian number whose `bits`-wide digits are `parts`, as UInt128."""
    total = pl.lit(base, pl.UInt128)
    for i, part in enumerate(parts):
        total = total + part.cast(pl.UInt128) * pl.lit(1 << (bits * (len(parts) - 1 - i)), pl.UInt128)
    return total


def address_int(col: pl.Expr) -> pl.Expr:
    """Text IPv4/IPv6 addresses as UInt128 (IPv4 as ::ffff:a.b.c.d); null when not an address."""
    v4 = col.str.strip_prefix("::ffff:").str.split(".")
    octets = [v4.list.get(i, null_on_oob=True).str.to_integer(strict=False) for i in range(4)]
    v4_ok = (v4.list.len() == 4) & pl.all_horizontal([o.is_between(0, 255) for o in octets])
    v4_int = _pack(octets, 8, _V4_BASE)
    text = col.str.to_lowercase()
    halves = text.str.split("::")

    def groups(part: pl.Expr) -> pl.Expr:
        return part.str.split(":").list.filter(pl.element() != "").fill_null(_NO_GROUPS)

    left, right = groups(halves.list.get(0, null_on_oob=True)), groups(halves.list.get(1, null_on_oob=True))
    known = (left.list.len() + right.list.len()).cast(pl.Int32)  # UInt32 8 - 9 would wrap to 4e9 zeros
    full = pl.concat_list([left, pl.lit("0").repeat_by((8 - known).clip(0)), right])
    hextets = [full.list.get(i, null_on_oob=True).str.to_integer(base=16, strict=False) for i in range(8)]
    shape_ok = ((halves.list.len() == 2) & (known <= 7)) | ((halves.list.len() == 1) & (known == 8))
    v6_ok = text.str.contains(":", literal=True) & shape_ok & pl.all_horizontal(
        [h.is_between(0, 0xFFFF) for h in hextets])
    v6_int = _pack(hextets, 16, 0)
    return pl.when(v4_ok.fill_null(False)).then(v4_int).when(v6_ok.fill_null(False)).then(v6_int)


class SubnetsStage:
    """Labels both ends of each flow with the name of the most specific configured CIDR."""

    name = "subnets"

    def __init__(self, labels: Sequence[tuple[str, Sequence[str], bool]]) -> None:
        self.intervals = build_intervals(labels)

    def lookup(self, addresses: pl.Series) -> pl.DataFrame:
        """(address, label) for each distinct non-null address that falls in a configured CIDR."""
        addrs = (pl.DataFrame({"_addr": addresses}).drop_nulls().unique()
                 .with_columns(address_int(pl.col("_addr")).alias("_int")).drop_nulls("_int").sort("_int"))
        found = addrs.join_asof(self.intervals, left_on="_int", right_on="_start", strategy="backward")
        return found.filter(pl.col("_int") <= pl.col("_end")).select("_addr", "_label")

    def process(self, frame: pl.DataFrame) -> pl.DataFrame:
        if self.intervals.height == 0 or frame.height == 0:
            return frame
        table = self.lookup(pl.concat([frame.get_column("SrcAddr"), frame.get_column("DstAddr")]))
        for side in ("Src", "Dst"):
            frame = frame.join(table.rename({"_addr": f"{side}Addr"}), on=f"{side}Addr", how="left",
                               maintain_order="left").with_columns(
                pl.coalesce(pl.col(f"{side}SubnetLabel"), pl.col("_label")).alias(f"{side}SubnetLabel")
            ).drop("_label")
        return frame

    def flush(self) -> pl.DataFrame | None:
        return None
