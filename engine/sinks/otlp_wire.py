"""OTLP logs requests encoded column by column: a frame of flows -> ExportLogsServiceRequest bytes.

Used by `sinks.otlp` for flow logs. Protocol Buffers is a row format, but every piece of a log record is
a function of one column's value (a tag, a varint length, the value bytes), so each attribute column is
encoded for all rows at once with numpy (varints) and Arrow (element-wise binary joins), the pieces of
a row are joined element-wise, and the rows' bytes are Arrow's data buffer as it stands: no Python per
flow. Messages and field numbers follow opentelemetry-proto (`collector/logs/v1`, `logs/v1`,
`common/v1`); a test decodes the output with the official generated classes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

# Wire types: 0 varint, 1 fixed64, 2 length-delimited.
_KV_KEY, _KV_VALUE = b"\x0a", b"\x12"  # KeyValue.key = 1, KeyValue.value = 2
_STRING, _BOOL, _INT, _DOUBLE, _ARRAY = b"\x0a", b"\x10", b"\x18", b"\x21", b"\x2a"  # AnyValue oneof fields
_ARRAY_VALUES = b"\x0a"  # ArrayValue.values = 1
_RECORD_TIME, _RECORD_OBSERVED, _RECORD_ATTR = b"\x09", b"\x59", b"\x32"  # LogRecord fields 1, 11, 6
_SCOPE_RECORDS = b"\x12"  # ScopeLogs.log_records = 2


def varint(n: int) -> bytes:
    """One unsigned varint (for the few per-request lengths)."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _varints(values: np.ndarray) -> pa.BinaryArray:
    """Varints of uint64 values, one binary value each (negative int64s arrive as two's complement)."""
    v = values.astype(np.uint64, copy=False)
    top = int(v.max()) if len(v) else 0
    width = max(1, -(-top.bit_length() // 7))  # 7-bit groups the largest value needs (lengths: 1 or 2)
    if width == 1:
        data = v.astype(np.uint8)
        offsets = np.arange(len(v) + 1, dtype=np.int32)
    else:
        groups = np.empty((len(v), width), np.uint8)
        sizes = np.ones(len(v), np.int32)
        for i in range(width):
            rest = v >> np.uint64(7 * i)
            groups[:, i] = (rest & np.uint64(0x7F)).astype(np.uint8)
            if i:
                sizes += (rest != 0)
        cols = np.arange(width)[None, :]
        groups[cols < (sizes[:, None] - 1)] |= 0x80  # continuation bit on all but the last byte
        data = groups[cols < sizes[:, None]]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    return pa.BinaryArray.from_buffers(pa.binary(), len(v), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _lengths(arr: pa.Array) -> np.ndarray:
    out: np.ndarray = pc.binary_length(arr).to_numpy(zero_copy_only=False).astype(np.uint64)
    return out


def _join(*parts: pa.Array | bytes) -> pa.Array:
    """Element-wise concatenation; bytes are constants repeated on every row."""
    args = [pa.scalar(p, pa.binary()) if isinstance(p, bytes) else p for p in parts]
    return pc.binary_join_element_wise(*args, b"")


def _fixed(values: np.ndarray, width: int) -> pa.BinaryArray:
    """Fixed-width little-endian values (fixed64, double) as binary values of `width` bytes."""
    data = np.ascontiguousarray(values).view(np.uint8)
    offsets = np.arange(len(values) + 1, dtype=np.int32) * width
    return pa.BinaryArray.from_buffers(pa.binary(), len(values), [None, pa.py_buffer(offsets),
                                                                   pa.py_buffer(data)])


def _any_values(series: pl.Series) -> pa.Array:
    """AnyValue bytes for every non-null value of a column (nulls stay null)."""
    dtype = series.dtype
    if dtype == pl.Boolean:
        flag = _fixed(series.fill_null(False).cast(pl.UInt8).to_numpy(), 1)
        out = _join(_BOOL, flag)
    elif dtype.is_integer():
        ints = series.fill_null(0).cast(pl.Int64).to_numpy().view(np.uint64)
        out = _join(_INT, _varints(ints))
    elif dtype.is_float():
        out = _join(_DOUBLE, _fixed(series.fill_null(0.0).cast(pl.Float64).to_numpy().astype("<f8"), 8))
    elif isinstance(dtype, pl.List):
        lists_in = series.list.drop_nulls()  # a null item has no AnyValue to send
        items = lists_in.explode(empty_as_null=False, keep_nulls=False)
        encoded = _any_values(items)
        entries = _join(_ARRAY_VALUES, _varints(_lengths(encoded)), encoded)
        counts = lists_in.list.len().fill_null(0).to_numpy().astype(np.int32)
        lists = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)),
                                         entries)
        body = pc.binary_join(lists, b"")
        out = _join(_ARRAY, _varints(_lengths(body)), body)
    else:
        text = series.cast(pl.String).fill_null("").to_arrow().cast(pa.large_string()).cast(pa.binary())
        out = _join(_STRING, _varints(_lengths(text)), text)
    return pc.if_else(series.is_not_null().to_arrow(), out, pa.scalar(None, pa.binary()))


def _attribute_entries(key: str, series: pl.Series) -> pa.Array:
    """LogRecord.attributes entries (tag, length, KeyValue) of one column; empty bytes where null.

    Integers are laid out in one numpy pass (their entry is a fixed header chosen by the varint size,
    then the varint). Other columns repeat few distinct values (names, namespaces, zones, flags), so
    their entries are encoded once per distinct value and gathered.
    """
    if series.dtype.is_integer() and len(key) < 100:
        return _int_entries(key, series)
    if series.dtype == pl.String:
        encoded = pc.dictionary_encode(series.to_arrow())
        if len(encoded.dictionary) * 2 < len(series):
            return _entries(key, pl.Series("v", encoded.dictionary)).take(encoded.indices).fill_null(b"")
    if isinstance(series.dtype, pl.List):
        rows = series.to_frame("v").with_columns(
            pl.col("v").cast(pl.List(pl.String)).list.join("\x1f").alias("k"))
        distinct = rows.unique("k", keep="first", maintain_order=True).with_row_index("i")
        if distinct.height * 2 < len(series):
            index = rows.join(distinct.select("k", "i"), on="k", how="left", maintain_order="left").get_column("i")
            return _entries(key, distinct.get_column("v")).take(index.to_arrow()).fill_null(b"")
    return _entries(key, series)


def _int_entries(key: str, series: pl.Series) -> pa.Array:
    """Entries of an integer column built as one byte matrix: header by varint size, varint, cut per row."""
    raw = key.encode()
    v = series.fill_null(0).cast(pl.Int64).to_numpy().view(np.uint64)
    n = len(v)
    top = int(v.max()) if n else 0
    width = max(1, -(-top.bit_length() // 7))
    sizes = np.ones(n, np.int64)
    groups = np.empty((n, width), np.uint8)
    for i in range(width):
        rest = v >> np.uint64(7 * i)
        groups[:, i] = (rest & np.uint64(0x7F)).astype(np.uint8)
        if i:
            sizes += rest != 0
    cols = np.arange(width)[None, :]
    groups[cols < (sizes[:, None] - 1)] |= 0x80
    # entry = 0x32 Lkv 0x0a klen key 0x12 Lav 0x18 varint; with a key under 100 bytes both lengths are one byte
    head = np.frombuffer(_RECORD_ATTR + b"\x00" + _KV_KEY + varint(len(raw)) + raw + _KV_VALUE + b"\x00" + _INT,
                         np.uint8)
    h = len(head)
    matrix = np.empty((n, h + width), np.uint8)
    matrix[:, :h] = head
    av = 1 + sizes  # AnyValue: tag + varint
    matrix[:, 1] = (h - 3 + av).astype(np.uint8)  # KeyValue length: key part, 0x12, Lav, AnyValue
    matrix[:, h - 2] = av.astype(np.uint8)
    matrix[:, h:] = groups
    total = np.where(series.is_not_null().to_numpy(), h + sizes, 0)
    data = matrix[np.arange(h + width)[None, :] < total[:, None]]
    offsets = np.concatenate([[0], np.cumsum(total)]).astype(np.int32)
    return pa.BinaryArray.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _entries(key: str, series: pl.Series) -> pa.Array:
    value = _any_values(series)
    key_part = _KV_KEY + varint(len(key.encode())) + key.encode()
    kv = _join(key_part + _KV_VALUE, _varints(_lengths(value.fill_null(b""))), value)
    entry = _join(_RECORD_ATTR, _varints(_lengths(kv.fill_null(b""))), kv)
    return entry.fill_null(b"")


def _message(fields: list[tuple[int, bytes]]) -> bytes:
    """A small message of length-delimited fields (the once-per-request envelope)."""
    return b"".join(varint(num << 3 | 2) + varint(len(body)) + body for num, body in fields)


def _any_value(v: object) -> bytes:
    if isinstance(v, bool):
        return _BOOL + (b"\x01" if v else b"\x00")
    if isinstance(v, int):
        return _INT + varint(v & 0xFFFFFFFFFFFFFFFF)
    if isinstance(v, float):
        return _DOUBLE + struct.pack("<d", v)
    data = str(v).encode()
    return _STRING + varint(len(data)) + data


def _key_values(attributes: Mapping[str, object]) -> list[tuple[int, bytes]]:
    return [(1, _message([(1, k.encode()), (2, _any_value(v))])) for k, v in attributes.items()]


def encode_records(frame: pl.DataFrame, time_ns: pl.Series, observed_ns: int) -> pa.BinaryArray:
    """ScopeLogs.log_records entries, one per row of `frame` (attribute name -> column, null = left out),
    timestamps from `time_ns`; slice it into requests with `logs_request`."""
    n = frame.height
    if n == 0:
        return pa.array([], pa.binary())
    parts: list[pa.Array | bytes] = [
        _RECORD_TIME, _fixed(time_ns.cast(pl.Int64).to_numpy().astype("<i8"), 8),
        _RECORD_OBSERVED + struct.pack("<q", observed_ns),
    ]
    parts += [_attribute_entries(name, frame.get_column(name)) for name in frame.columns]
    record = _join(*parts)
    return _join(_SCOPE_RECORDS, _varints(_lengths(record)), record)


def logs_request(records: pa.BinaryArray, resource: Mapping[str, object], scope: str) -> bytes:
    """One ExportLogsServiceRequest holding `records` (a slice of `encode_records`) under one resource
    and instrumentation scope."""
    n = len(records)
    offsets = np.frombuffer(records.buffers()[1], np.int32)[records.offset:records.offset + n + 1]
    body = memoryview(records.buffers()[2])[int(offsets[0]):int(offsets[-1])] if n else memoryview(b"")
    # Records come last in every enclosing message, so the envelope is a prefix computed from lengths
    # and the records are copied once, into the request.
    scope_head = _message([(1, _message([(1, scope.encode())]))])
    scope_len = len(scope_head) + len(body)
    resource_head = _message([(1, _message(_key_values(resource)))]) + varint(2 << 3 | 2) + varint(scope_len)
    resource_len = len(resource_head) + scope_len
    return b"".join([varint(1 << 3 | 2), varint(resource_len), resource_head, scope_head, body])
