"""Aligns the feature maps (DNS, RTT, drops) and ring-buffer events with the flow map, by flow key.

Called by `agent.run` after each drain. All of it is numpy over whole arrays: keys are compared as
40-byte opaque values (np.void), aligned with unique/searchsorted, aggregated with ufunc.at.
"""

from __future__ import annotations

import numpy as np

from flowlake.agent import records


def key_bytes(keys: np.ndarray) -> np.ndarray:
    """The flow keys as one opaque 40-byte value each (sortable, comparable)."""
    out: np.ndarray = np.ascontiguousarray(keys).view(f"V{records.KEY.itemsize}")
    return out


def is_v4(keys: np.ndarray) -> np.ndarray:
    """True where the source address is v4-mapped (::ffff:a.b.c.d)."""
    raw = np.frombuffer(np.ascontiguousarray(keys["src_ip"]).tobytes(), np.uint8).reshape(-1, 16)
    mapped: np.ndarray = (raw[:, :10] == 0).all(axis=1) & (raw[:, 10] == 0xFF) & (raw[:, 11] == 0xFF)
    return mapped


def reverse(keys: np.ndarray) -> np.ndarray:
    """The keys of the opposite direction (source and destination swapped)."""
    out = keys.copy()
    out["src_ip"], out["dst_ip"] = keys["dst_ip"], keys["src_ip"]
    out["src_port"], out["dst_port"] = keys["dst_port"], keys["src_port"]
    return out


class Index:
    """A feature map's (keys, values), sorted once per drain so every chunk of flows can look up in it."""

    def __init__(self, table_keys: np.ndarray, table_values: np.ndarray) -> None:
        tk = key_bytes(table_keys)
        order = np.argsort(tk, kind="stable")
        self.keys, self.sorted, self.values = table_keys, tk[order], table_values[order]

    def get(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values aligned with `keys`, found mask); missing rows hold zeros."""
        out = np.zeros(len(keys), self.values.dtype)
        if len(self.sorted) == 0 or len(keys) == 0:
            return out, np.zeros(len(keys), bool)
        want = key_bytes(keys)
        pos = np.searchsorted(self.sorted, want).clip(max=len(self.sorted) - 1)
        found = self.sorted[pos] == want
        out[found] = self.values[pos[found]]
        return out, found


def lookup(keys: np.ndarray, table_keys: np.ndarray, table_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values aligned with `keys`, found mask) for a one-off lookup."""
    return Index(table_keys, table_values).get(keys)


def missing_keys(main: np.ndarray, *others: np.ndarray) -> np.ndarray:
    """Distinct keys of `others` that are not in `main` (flows seen only by a feature map)."""
    if not any(len(o) for o in others):
        return main[:0]
    extra = np.concatenate([o for o in others if len(o)])
    extra = extra[np.unique(key_bytes(extra), return_index=True)[1]]
    _, in_main = lookup(extra, main, np.zeros(len(main), np.uint8))
    only: np.ndarray = extra[~in_main]
    return only


def fold_events(keys: np.ndarray, stats: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add ring-buffer events (one packet each, map was full) into the drained flows, by key."""
    if len(events) == 0:
        return keys, stats
    all_keys = np.concatenate([keys, events["key"]])
    all_stats = np.concatenate([stats, events["stats"]])
    uniq, first, inverse = np.unique(key_bytes(all_keys), return_index=True, return_inverse=True)
    out = all_stats[first].copy()
    bytes_, packets = np.zeros(len(uniq), np.uint64), np.zeros(len(uniq), np.uint64)
    np.add.at(bytes_, inverse, all_stats["bytes"])
    np.add.at(packets, inverse, all_stats["packets"])
    first_ns = np.full(len(uniq), np.iinfo(np.uint64).max, np.uint64)
    last_ns = np.zeros(len(uniq), np.uint64)
    flags = np.zeros(len(uniq), np.uint32)
    np.minimum.at(first_ns, inverse, all_stats["first_ns"])
    np.maximum.at(last_ns, inverse, all_stats["last_ns"])
    np.bitwise_or.at(flags, inverse, all_stats["flags"])
    out["bytes"], out["packets"] = bytes_, packets.astype(np.uint32)
    out["first_ns"], out["last_ns"], out["flags"] = first_ns, last_ns, flags
    return all_keys[first], out
