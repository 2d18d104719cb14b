"""Loki's push protobuf (logproto PushRequest) and a vectorized encoder of its entries; used by `sinks.loki_wire`.

The messages are declared here by hand, field numbers as in Loki's `pkg/push/push.proto`:

    message PushRequest   { repeated StreamAdapter streams = 1; }
    message StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
    message EntryAdapter  { google.protobuf.Timestamp timestamp = 1; string line = 2;
                            repeated LabelPairAdapter structuredMetadata = 3; }
    message LabelPairAdapter { string name = 1; string value = 2; }

The `protobuf` package builds the classes (the tests decode every body with them), but entries are
encoded with numpy and Arrow, never one Python object per flow: a protobuf message is the concatenation
of its fields, so a stream is its `labels` field (from the package) followed by one `entries` field
per flow, whose bytes are laid out for all flows at once by `encode_entries`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

_F = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    f = descriptor_pb2.FileDescriptorProto(name="flowlake/loki_push.proto", package="logproto", syntax="proto3",
                                           dependency=["google/protobuf/timestamp.proto"])

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        m = f.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            m.field.add(name=fname, number=number, type=ftype, label=label, type_name=type_name or None,
                        json_name=fname)

    one, many = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    message("PushRequest", ("streams", 1, _F.TYPE_MESSAGE, many, ".logproto.StreamAdapter"))
    message("StreamAdapter", ("labels", 1, _F.TYPE_STRING, one, ""),
            ("entries", 2, _F.TYPE_MESSAGE, many, ".logproto.EntryAdapter"), ("hash", 3, _F.TYPE_UINT64, one, ""))
    message("LabelPairAdapter", ("name", 1, _F.TYPE_STRING, one, ""), ("value", 2, _F.TYPE_STRING, one, ""))
    message("EntryAdapter", ("timestamp", 1, _F.TYPE_MESSAGE, one, ".google.protobuf.Timestamp"),
            ("line", 2, _F.TYPE_STRING, one, ""),
            ("structuredMetadata", 3, _F.TYPE_MESSAGE, many, ".logproto.LabelPairAdapter"))
    return f


_POOL = descriptor_pool.DescriptorPool()
_POOL.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
_POOL.Add(_file())
PushRequest: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("logproto.PushRequest"))
StreamAdapter: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("logproto.StreamAdapter"))
EntryAdapter: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("logproto.EntryAdapter"))

_TAG_LEN_1 = 0x0A  # field 1, wire type 2 (length-delimited)
_TAG_LEN_2 = 0x12  # field 2, wire type 2
_TAG_VARINT_1 = 0x08  # field 1, wire type 0 (varint)
_TAG_VARINT_2 = 0x10  # field 2, wire type 0
_WIDTH = 5  # bytes of the widest varint here: lengths, seconds and nanos all stay below 2**35


def varint(value: int) -> bytes:
    """One protobuf varint (for the few per-stream lengths)."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Varint bytes of every value as an (n, 5) matrix, and which of those bytes are used."""
    v = values.astype(np.uint64)
    shifts = np.arange(_WIDTH, dtype=np.uint64) * np.uint64(7)
    groups = ((v[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    nbytes = 1 + (v[:, None] >= (np.uint64(1) << shifts[1:])).sum(axis=1)
    used = np.arange(_WIDTH) < nbytes[:, None]
    more = np.arange(_WIDTH) < (nbytes - 1)[:, None]
    return groups | (more.astype(np.uint8) << 7), used


def _const(byte: int, n: int, present: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    col = np.full((n, 1), byte, np.uint8)
    return col, (np.ones((n, 1), bool) if present is None else present[:, None])


def encode_entries(ts_ns: np.ndarray, lines: pa.Array) -> pa.Array:
    """Each flow's `entries` field of a StreamAdapter (tag, length, EntryAdapter) as one large_binary array.

    Rows keep their order, so the entries of a stream are one contiguous slice of the array's data buffer.
    `lines` are UTF-8 strings (the JSON lines), `ts_ns` int64 nanoseconds since the epoch.
    """
    n = len(lines)
    blines = pc.cast(lines, pa.large_binary())
    line_len = pc.binary_length(blines).to_numpy(zero_copy_only=False).astype(np.int64)
    if line_len.size and int(line_len.max()) >= 1 << 35:
        raise ValueError("a Loki line over 32 GiB cannot be encoded")
    seconds, nanos = np.divmod(ts_ns.astype(np.int64), 1_000_000_000)
    sec_v, sec_u = _varints(seconds)
    nan_v, nan_u = _varints(nanos)
    has_sec, has_nan, has_line = seconds != 0, nanos != 0, line_len != 0  # proto3 leaves zero fields out
    ts_len = has_sec * (1 + sec_u.sum(1)) + has_nan * (1 + nan_u.sum(1))
    len_v, len_u = _varints(line_len)
    entry_len = 1 + 1 + ts_len + has_line * (1 + len_u.sum(1)) + line_len  # ts_len < 128: a one-byte varint
    ent_v, ent_u = _varints(entry_len)
    pieces = [_const(_TAG_LEN_2, n), (ent_v, ent_u), _const(_TAG_LEN_1, n),
              (ts_len.astype(np.uint8)[:, None], np.ones((n, 1), bool)),
              _const(_TAG_VARINT_1, n, has_sec), (sec_v, sec_u & has_sec[:, None]),
              _const(_TAG_VARINT_2, n, has_nan), (nan_v, nan_u & has_nan[:, None]),
              _const(_TAG_LEN_2, n, has_line), (len_v, len_u & has_line[:, None])]
    matrix = np.hstack([p[0] for p in pieces])
    used = np.hstack([p[1] for p in pieces])
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(used.sum(1), out=offsets[1:])
    heads = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets),
                                                                    pa.py_buffer(matrix[used])])
    return pc.binary_join_element_wise(heads, blines, pa.scalar(b"", pa.large_binary()))


def stream_bytes(labels: str, entries: pa.Array, start: int, stop: int) -> bytes:
    """One serialized StreamAdapter: its labels, then the entries of rows [start, stop) of `encode_entries`."""
    offsets = np.frombuffer(entries.buffers()[1], np.int64, len(entries) + 1, entries.offset * 8)
    data = entries.buffers()[2]
    body: bytes = data[int(offsets[start]):int(offsets[stop])].to_pybytes()
    return bytes(StreamAdapter(labels=labels).SerializeToString()) + body


def push_request(streams: list[bytes]) -> bytes:
    """A serialized PushRequest of serialized StreamAdapters."""
    return b"".join(bytes([_TAG_LEN_1]) + varint(len(s)) + s for s in streams)
