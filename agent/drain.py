"""Drains a BPF hash map with batched lookup-and-delete straight into numpy buffers.

Called by `agent.run` every cache-active-timeout for the flow map and each feature map: one syscall
per batch of entries, no per-flow Python object (bcc's own iteration is ~5x slower).
"""

from __future__ import annotations

import ctypes as ct
import errno
import os
from collections.abc import Iterator

import numpy as np

from flowlake.agent.bccload import import_bcc


class DrainError(OSError):
    """The kernel refused a batch operation; the message names the map."""


class MapDrainer:
    """Empties one map into numpy arrays: whole (`drain`) or chunk by chunk (`chunks`)."""

    def __init__(self, name: str, fd: int, key_dtype: np.dtype, value_dtype: np.dtype, max_entries: int) -> None:
        self.name = name
        self.fd = fd
        self.key_dtype, self.value_dtype, self.max_entries = key_dtype, value_dtype, max_entries
        self._lib = import_bcc().libbcc.lib

    def drain(self) -> tuple[np.ndarray, np.ndarray]:
        """Look up and delete every entry; returns (keys, values) of what was there."""
        chunks = list(self.chunks(self.max_entries))
        if not chunks:
            return np.zeros(0, self.key_dtype), np.zeros(0, self.value_dtype)
        if len(chunks) == 1:
            return chunks[0]
        return np.concatenate([k for k, _ in chunks]), np.concatenate([v for _, v in chunks])

    @property
    def buckets(self) -> int:
        """Hash buckets of the map: the kernel rounds max_entries up to a power of two."""
        return 1 << max(self.max_entries - 1, 0).bit_length()

    def ranges(self, parts: int) -> list[tuple[int, int]]:
        """`parts` disjoint bucket ranges covering the map, for readers that drain it in parallel."""
        step = -(-self.buckets // parts)
        return [(lo, min(lo + step, self.buckets)) for lo in range(0, self.buckets, step)]

    def chunks(self, size: int, start: int = 0, stop: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Empty buckets [start, stop) of the map `size` entries at a time, yielding each (keys, values)
        chunk as it is read.

        The kernel call runs without the GIL (ctypes), so a consumer converting the previous chunk
        in another thread overlaps with the next syscall. The batch token of a hash map is the next
        bucket index, so several readers can start at different buckets and walk the map at once; a
        reader may run past `stop` within its last call, which only finds buckets the next reader
        already emptied (each bucket is copied and emptied under its lock, so no entry is read twice).
        """
        stop = self.buckets if stop is None else stop
        in_batch, out_batch = ct.c_uint32(start), ct.c_uint32(0)
        while True:
            keys = np.empty(size, self.key_dtype)
            values = np.empty(size, self.value_dtype)
            got = 0
            done = False
            while got < size:
                count = ct.c_uint32(size - got)
                res = self._lib.bpf_lookup_and_delete_batch(
                    self.fd, ct.byref(in_batch), ct.byref(out_batch),
                    ct.c_void_p(keys.ctypes.data + got * keys.dtype.itemsize),
                    ct.c_void_p(values.ctypes.data + got * values.dtype.itemsize), ct.byref(count))
                err = ct.get_errno()
                got += count.value
                if res != 0:
                    if err == errno.ENOENT:  # the walk reached the last bucket: this batch was the last
                        done = True
                        break
                    if err == errno.ENOSPC:  # the next bucket does not fit in what is left of the chunk
                        if got == 0:
                            size *= 2
                        break
                    raise DrainError(err, f"draining BPF map {self.name}: {os.strerror(err)}")
                in_batch.value = out_batch.value
                if count.value == 0 or out_batch.value >= stop:
                    done = True
                    break
            if got:
                yield keys[:got], values[:got]
            if done:
                return
