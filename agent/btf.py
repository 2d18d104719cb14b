"""Struct member offsets read from the running kernel's BTF (/sys/kernel/btf/vmlinux).

Called by `agent.program` before compiling: the drop tracepoint reads `sk_buff` and `sock` fields
with bpf_probe_read, and those offsets differ between the installed headers and the running kernel,
so they are read from BTF and passed to the compiler as constants, never assumed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

VMLINUX = Path("/sys/kernel/btf/vmlinux")
_MAGIC = 0xEB9F
_STRUCT, _UNION = 4, 5
# Bytes of kind-specific data after each 12-byte type header: fixed, or per member (vlen).
_FIXED_EXTRA = {1: 4, 3: 12, 14: 4, 17: 4}  # INT, ARRAY, VAR, DECL_TAG
_PER_MEMBER = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}  # STRUCT, UNION, ENUM, FUNC_PROTO, DATASEC, ENUM64


class BtfError(RuntimeError):
    """BTF is missing or does not describe a needed member; the message says which."""


@dataclass(frozen=True)
class Member:
    name: str
    type_id: int
    bit_offset: int


@dataclass(frozen=True)
class Composite:
    name: str
    size: int
    members: tuple[Member, ...]


class Btf:
    """The structs and unions of a BTF blob, enough to resolve member offsets through anonymous members."""

    def __init__(self, data: bytes) -> None:
        magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
            "<HBBIIIII", data, 0)
        if magic != _MAGIC:
            raise BtfError("not a BTF blob (bad magic)")
        types = data[hdr_len + type_off: hdr_len + type_off + type_len]
        strings = data[hdr_len + str_off: hdr_len + str_off + str_len]
        self.composites: dict[int, Composite] = {}
        self.by_name: dict[str, int] = {}
        pos, type_id = 0, 1
        while pos < len(types):
            name_off, info, size = struct.unpack_from("<III", types, pos)
            vlen, kind, kind_flag = info & 0xFFFF, (info >> 24) & 0x1F, info >> 31
            pos += 12
            if kind in (_STRUCT, _UNION):
                members = []
                for i in range(vlen):
                    m_name, m_type, m_off = struct.unpack_from("<III", types, pos + 12 * i)
                    members.append(Member(_str(strings, m_name), m_type, m_off & 0xFFFFFF if kind_flag else m_off))
                name = _str(strings, name_off)
                self.composites[type_id] = Composite(name, size, tuple(members))
                if name and kind == _STRUCT:
                    self.by_name.setdefault(name, type_id)
            pos += _FIXED_EXTRA.get(kind, 0) + _PER_MEMBER.get(kind, 0) * vlen
            type_id += 1

    def offset(self, struct_name: str, member: str) -> int:
        """Byte offset of `member` in `struct struct_name`, looking through anonymous unions/structs."""
        type_id = self.by_name.get(struct_name)
        if type_id is None:
            raise BtfError(f"struct {struct_name} is not in the kernel's BTF")
        found = self._find(type_id, member)
        if found is None:
            raise BtfError(f"struct {struct_name} has no member {member} in the running kernel")
        return found // 8

    def _find(self, type_id: int, member: str) -> int | None:
        comp = self.composites.get(type_id)
        if comp is None:
            return None
        for m in comp.members:
            if m.name == member:
                return m.bit_offset
            if not m.name:  # anonymous union/struct: its members belong to the parent
                inner = self._find(m.type_id, member)
                if inner is not None:
                    return m.bit_offset + inner
        return None


def _str(strings: bytes, off: int) -> str:
    end = strings.index(b"\0", off)
    return strings[off:end].decode()


def kernel_offsets(path: Path = VMLINUX) -> dict[str, int]:
    """The offsets the drop tracepoint needs, as compiler constants (name -> bytes)."""
    try:
        btf = Btf(path.read_bytes())
    except OSError as exc:
        raise BtfError(f"cannot read {path} ({exc}); the packet-drop feature needs a kernel built with "
                       "CONFIG_DEBUG_INFO_BTF=y") from exc
    return {
        "SKB_HEAD_OFF": btf.offset("sk_buff", "head"),
        "SKB_NETWORK_HEADER_OFF": btf.offset("sk_buff", "network_header"),
        "SKB_SK_OFF": btf.offset("sk_buff", "sk"),
        "SOCK_STATE_OFF": btf.offset("sock", "__sk_common") + btf.offset("sock_common", "skc_state"),
    }
