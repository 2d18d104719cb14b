"""Conversation ids for the conntrack stage: FNV-1a 64 over the endpoint pair, vectorized with numpy.

Called by `stages.conntrack`. The id is stored in the lake and joins flowLog rows to their conversation
records, so it must not change between processes, restarts or library upgrades: it is an explicit FNV-1a
64 (the hash NetObserv's flowlogs-pipeline uses, Go's `fnv.New64a`) over a fixed byte layout, not
Python's salted `hash` nor Polars' `hash` (stable only within one Polars version):

    endpoint = FNV-1a64(UTF-8 address text, then the port as 2 big-endian bytes)
    id       = FNV-1a64(Proto as 1 byte, then min(endpoint A, endpoint B) and max(...) as 8 big-endian bytes)

Ordering the two endpoint hashes gives a flow and its reply the same id. `_HashId` is the id as 16
lowercase hex digits (flowlogs-pipeline prints its id in hex too, without the leading zeros). Loops below
run over byte positions (at most ~45), never over flows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

U64 = npt.NDArray[np.uint64]

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
_BYTE = np.uint64(0xFF)
# Byte value -> its two hex digits, so formatting is one gather over the ids' big-endian bytes.
_HEX_PAIRS = np.frombuffer(b"".join(f"{b:02x}".encode() for b in range(256)), np.uint8).reshape(256, 2)


def _mix(h: U64, byte: npt.NDArray[np.unsignedinteger]) -> None:
    """One FNV-1a step in place: xor the byte in, multiply by the prime (uint64 arrays wrap mod 2**64)."""
    np.bitwise_xor(h, byte.astype(np.uint64, copy=False), out=h)
    np.multiply(h, FNV_PRIME, out=h)


def _mix_big_endian(h: U64, value: U64, width: int) -> None:
    for k in range(width - 1, -1, -1):
        _mix(h, (value >> np.uint64(8 * k)) & _BYTE)


def string_hash(values: pl.Series) -> U64:
    """FNV-1a 64 of each string's UTF-8 bytes; a null hashes like the empty string (callers mask it)."""
    arr = values.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    n = len(arr)
    h = np.full(n, FNV_OFFSET, np.uint64)
    if n == 0:
        return h
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64, n + 1, arr.offset * 8)
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None and data_buf.size else np.zeros(1, np.uint8)
    start, length = offsets[:-1], np.diff(offsets)
    shortest, longest = int(length.min()), int(length.max())
    for j in range(shortest):  # every string has this byte: no masking
        _mix(h, data[start + j])
    last = len(data) - 1
    for j in range(shortest, longest):  # strings shorter than j + 1 keep their hash
        mixed = h.copy()
        _mix(mixed, data[np.minimum(start + j, last)])
        h = np.where(length > j, mixed, h)
    return h


def endpoint_hash(addr: pl.Series, port: pl.Series) -> U64:
    """FNV-1a 64 of the address text then the port's two bytes; null ports count as 0 (callers mask)."""
    h = string_hash(addr)
    _mix_big_endian(h, port.fill_null(0).to_numpy().astype(np.uint64), 2)
    return h


def conversation_hash(proto: pl.Series, a: U64, b: U64) -> U64:
    """The id of the conversation between endpoints `a` and `b`, the same whichever is the source."""
    h = np.full(len(a), FNV_OFFSET, np.uint64)
    _mix(h, proto.fill_null(0).to_numpy().astype(np.uint64))
    _mix_big_endian(h, np.minimum(a, b), 8)
    _mix_big_endian(h, np.maximum(a, b), 8)
    return h


def hex_ids(h: U64, valid: npt.NDArray[np.bool_] | None = None) -> pl.Series:
    """`_HashId` strings: 16 lowercase hex digits per id, null where `valid` is False; built as one buffer."""
    n = len(h)
    chars = np.ascontiguousarray(_HEX_PAIRS[h.astype(">u8").view(np.uint8)])  # (n * 8, 2) digits in order
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int64)
    validity, nulls = None, 0
    if valid is not None and not valid.all():
        validity, nulls = pa.py_buffer(np.packbits(valid, bitorder="little")), int(n - valid.sum())
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars), validity, nulls)
    out = pl.from_arrow(arr)
    assert isinstance(out, pl.Series)
    return out.alias("_HashId")
