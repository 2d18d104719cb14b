"""IPFIX (RFC 7011) encoding of flow frames, column by column; called by `sinks.ipfix`.

No Python loop per flow: addresses are parsed by Polars expressions, the fixed-width part of every data
record is one structured numpy array of big-endian fields, and variable-length strings are copied from
their Arrow data buffers with numpy gathers driven by the Arrow offsets. Loops run per column, per
template and per message only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from flowlake.engine.sinks.ipfix_ies import IE, TEMPLATE_V4, TEMPLATE_V6, TEMPLATES, VARLEN
from flowlake.engine.stages.subnets import address_int

VERSION = 10
HEADER = struct.Struct("!HHIII")  # version, length, export time, sequence number, observation domain
SET_HEADER = struct.Struct("!HH")  # set id, length
TEMPLATE_SET_ID = 2
MAX_STRING = 65_535  # the longest a 3-octet variable-length prefix can say; longer values are cut
_TWO64 = pl.lit(1 << 64, pl.UInt128)
_V4_MAPPED = 0xFFFF  # bits 32-47 of ::ffff:a.b.c.d

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


@dataclass
class Records:
    """The data records of one template: `data` holds them back to back, record i ends at `ends[i]`."""

    template_id: int
    data: U8
    ends: I64


def template_set(enterprise_id: int) -> bytes:
    """One Template Set describing both templates (IPv4 and IPv6 flows)."""
    body = bytearray()
    for tid, fields in TEMPLATES.items():
        body += struct.pack("!HH", tid, len(fields))
        for ie in fields:
            body += struct.pack("!HH", ie.id | (0x8000 if ie.enterprise else 0), ie.length)
            if ie.enterprise:
                body += struct.pack("!I", enterprise_id)
    return SET_HEADER.pack(TEMPLATE_SET_ID, SET_HEADER.size + len(body)) + bytes(body)


def _split_addresses(frame: pl.DataFrame) -> pl.DataFrame:
    """Adds both addresses as UInt64 halves of their 128-bit value (null or unparsable -> 0) and `_v6`.

    Addresses repeat (pods, nodes, services), so each distinct text is parsed once and joined back.
    """
    texts = pl.concat([frame.get_column("SrcAddr"), frame.get_column("DstAddr")]).unique().drop_nulls()
    value = address_int(pl.col("_addr"))
    table = pl.DataFrame({"_addr": texts}).select(
        "_addr", (value // _TWO64).cast(pl.UInt64).alias("_hi"), (value % _TWO64).cast(pl.UInt64).alias("_lo"))
    out = frame
    v4 = pl.lit(True)
    for side in ("Src", "Dst"):
        named = table.rename({"_addr": f"{side}Addr", "_hi": f"_{side}_hi", "_lo": f"_{side}_lo"})
        out = out.join(named, on=f"{side}Addr", how="left", maintain_order="left")
        hi, lo = pl.col(f"_{side}_hi"), pl.col(f"_{side}_lo")
        # IPv4 (::ffff:a.b.c.d) or missing at both ends: the IPv4 template; anything else: IPv6, where a
        # missing address is sent as :: (all zeros), as it is 0.0.0.0 in the IPv4 template
        v4 = v4 & (hi.is_null() | ((hi == 0) & ((lo // (1 << 32)) == _V4_MAPPED)))
    filled = [pl.col(f"_{side}_{half}").fill_null(0) for side in ("Src", "Dst") for half in ("hi", "lo")]
    return out.with_columns((~v4).alias("_v6")).with_columns(filled)


def _fixed(frame: pl.DataFrame, fields: tuple[IE, ...]) -> U8:
    """The fixed-width part of every record as an (n, width) byte matrix, from one structured array."""
    fixed = [ie for ie in fields if ie.length != VARLEN]
    dtype = np.dtype([(ie.name, _np_type(ie)) for ie in fixed])  # packed: itemsize = sum of lengths
    out = np.zeros(frame.height, dtype=dtype)
    for ie in fixed:
        out[ie.name] = _fixed_column(frame, ie)
    return out.view(np.uint8).reshape(frame.height, dtype.itemsize)


def _np_type(ie: IE) -> str | tuple[str, tuple[int, ...]]:
    if ie.kind == "ip6":
        return (">u8", (2,))
    if ie.kind == "mac":
        return ("u1", (6,))
    return f">u{ie.length}"


def _fixed_column(frame: pl.DataFrame, ie: IE) -> npt.NDArray[np.generic]:
    col = ie.column
    if ie.kind == "ip4":
        side = col.removesuffix("Addr")
        return (frame[f"_{side}_lo"].to_numpy() & 0xFFFF_FFFF).astype(np.uint32)
    if ie.kind == "ip6":
        side = col.removesuffix("Addr")
        return np.stack([frame[f"_{side}_hi"].to_numpy(), frame[f"_{side}_lo"].to_numpy()], axis=1)
    if ie.kind == "mac":
        value = frame.select(pl.col(col).str.replace_all(":", "", literal=True)
                             .str.to_integer(base=16, strict=False).cast(pl.UInt64).fill_null(0)).to_series()
        return value.to_numpy().astype(">u8").view(np.uint8).reshape(-1, 8)[:, 2:]
    expr = pl.col(col).list.first() if ie.kind == "first_u8" else pl.col(col)
    values = frame.select(expr.cast(pl.UInt64, strict=False).fill_null(0)).to_series().to_numpy()
    return values & ((1 << (8 * ie.length)) - 1)  # a wider value keeps its low octets, as a cast would


def _strings(frame: pl.DataFrame, ie: IE) -> tuple[U8, I64]:
    """(UTF-8 bytes, n+1 offsets) of a string column, nulls as empty strings, straight from Arrow buffers."""
    expr = pl.col(ie.column).list.first() if ie.kind == "first_str" else pl.col(ie.column)
    series = frame.select(expr.cast(pl.String).fill_null("")).to_series()
    arr = pa.compute.cast(series.to_arrow(), pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]  # type: ignore[arg-type]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return data, offsets


def _records(frame: pl.DataFrame, template_id: int) -> Records:
    fields = TEMPLATES[template_id]
    n = frame.height
    fixed = _fixed(frame, fields)
    width = fixed.shape[1]
    strings = [_strings(frame, ie) for ie in fields if ie.length == VARLEN]
    lengths = [np.minimum(np.diff(off), MAX_STRING) for _, off in strings]
    prefixes = [np.where(ln < 255, 1, 3) for ln in lengths]
    sizes = width + sum((p + ln for p, ln in zip(prefixes, lengths, strict=True)), np.zeros(n, np.int64))
    ends = np.cumsum(sizes, dtype=np.int64)
    starts = ends - sizes
    out = np.empty(int(ends[-1]) if n else 0, np.uint8)
    out[(starts[:, None] + np.arange(width)).ravel()] = fixed.ravel()
    pos = starts + width
    for (data, offsets), ln, prefix in zip(strings, lengths, prefixes, strict=True):
        long = prefix == 3
        out[pos] = np.where(long, 255, ln)  # RFC 7011 §7: one length octet, or 255 and two more
        out[pos[long] + 1] = ln[long] >> 8
        out[pos[long] + 2] = ln[long] & 0xFF
        dest = pos + prefix
        total = int(ln.sum())
        if total:
            row = np.repeat(np.arange(n), ln)
            within = np.arange(total) - np.repeat(np.cumsum(ln) - ln, ln)
            out[dest[row] + within] = data[offsets[:-1][row] + within]
        pos = dest + ln
    return Records(template_id, out, ends)


def encode(frame: pl.DataFrame) -> list[Records]:
    """The data records of a flow frame, one group per template (IPv4 flows, IPv6 flows), empty ones left out."""
    parsed = _split_addresses(frame)
    out = []
    for tid, is_v6 in ((TEMPLATE_V4, False), (TEMPLATE_V6, True)):
        part = parsed.filter(pl.col("_v6") == is_v6)
        if part.height:
            out.append(_records(part, tid))
    return out


def message(body: bytes, *, sequence: int, domain: int, export_time: int) -> bytes:
    """An IPFIX Message: the header, then `body` (whole sets)."""
    return HEADER.pack(VERSION, HEADER.size + len(body), export_time, sequence & 0xFFFF_FFFF, domain) + body


def data_sets(records: Records, max_message_bytes: int) -> tuple[list[tuple[bytes, int]], int]:
    """([(one data set that fits in a message, records in it)], records too large for any message).

    Records are cut at record boundaries only; a single record larger than a message is left out.
    """
    room = max_message_bytes - HEADER.size - SET_HEADER.size
    ends, data = records.ends, records.data
    sets: list[tuple[bytes, int]] = []
    first, skipped, n = 0, 0, len(ends)
    while first < n:
        start = int(ends[first - 1]) if first else 0
        last = int(np.searchsorted(ends, start + room, side="right"))  # records first..last-1 fit
        if last == first:  # one record is larger than a message (a huge string): cannot be sent
            skipped += 1
            first += 1
            continue
        stop = int(ends[last - 1])
        body = data[start:stop].tobytes()
        sets.append((SET_HEADER.pack(records.template_id, SET_HEADER.size + len(body)) + body, last - first))
        first = last
    return sets, skipped
